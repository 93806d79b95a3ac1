//! The executor's operations end to end: prepare (docs/method.md §5), call
//! expressions, traces and their rendering in both formats (golden
//! texts), check verdicts, and the result cache.

use std::sync::OnceLock;
use std::time::Duration;

use egcfg_executor::render::{render, RenderLimits, TraceFormat};
use egcfg_executor::{
    CheckRequest, EventKind, ExecLimits, ExecResult, Executor, ExecutorConfig, Invocation,
    MinIsolation, Status, TraceRequest, Verdict,
};
use egcfg_task::TestCase;

fn executor() -> &'static Executor {
    static EXECUTOR: OnceLock<Executor> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        Executor::start(ExecutorConfig {
            pool_size: 2,
            limits: ExecLimits {
                compat_values: true,
                ..ExecLimits::default()
            },
            min_isolation: MinIsolation::none(),
            ..ExecutorConfig::default()
        })
        .expect("executor starts")
    })
}

fn call(program: &str, expr: &str) -> TraceRequest {
    TraceRequest {
        program: program.into(),
        setup: None,
        invocation: Invocation::Call { expr: expr.into() },
    }
}

/// Traces `req` alone and renders the trace in `format` under `limits`:
/// the result, for its status, and the text.
fn trace_and_render(
    req: &TraceRequest,
    format: TraceFormat,
    limits: &RenderLimits,
) -> (ExecResult, String) {
    let result = executor().trace(std::slice::from_ref(req)).remove(0);
    let text = render(&result, &req.traced_source(), format, limits);
    (result, text)
}

#[test]
fn prepare_follows_the_truncation_and_pass_rules() {
    let partials: Vec<String> = [
        "def f(x):\n    for i in x:",
        "def f(x):\n    \"\"\"doc\"\"\"\n    # c\n    y = x+1  # c\n    return y",
        "def f(x):",
        "```python\ndef f(x):\n    return \"a\"\n```",
        "def f(x):\n    y = [1,\n",
        "def f(x):\n    \"\"\"only a docstring\"\"\"",
        "def f(x):\n    if x:\n        return 1\n    elif",
        "def f(x):\n    for i in x:",
    ]
    .map(String::from)
    .to_vec();
    let prepared = executor().prepare(&partials).expect("the sandbox works");
    let expected = [
        Some("def f(x):\n    pass"),
        Some("def f(x):\n    y = x + 1\n    return y"),
        None,
        Some("def f(x):\n    return 'a'"),
        Some("def f(x):\n    pass"),
        Some("def f(x):\n    pass"),
        Some("def f(x):\n    if x:\n        return 1"),
        Some("def f(x):\n    pass"),
    ];
    for ((input, got), want) in partials.iter().zip(&prepared).zip(expected) {
        assert_eq!(got.as_deref(), want, "prepare({input:?})");
    }
}

#[test]
fn call_expressions_come_from_the_assert() {
    let ex = executor();
    assert_eq!(
        ex.call_expression("assert remove_Occ(\"hello\",\"l\") == \"heo\"")
            .unwrap()
            .as_deref(),
        Some("remove_Occ(\"hello\",\"l\")")
    );
    assert_eq!(
        ex.call_expression("assert not is_odd(4)")
            .unwrap()
            .as_deref(),
        Some("is_odd(4)")
    );
    assert_eq!(
        ex.call_expression("assert set(f([1, 2])) == {1, 2}")
            .unwrap()
            .as_deref(),
        Some("set(f([1, 2]))")
    );
    assert_eq!(ex.call_expression("f(1) == 2").unwrap(), None);
    assert_eq!(ex.call_expression("assert ((").unwrap(), None);
}

const ADD_ONE: &str = "def add_one(x):\n    y = x + 1\n    return y";

#[test]
fn compat_format_matches_the_reference_example() {
    let req = call(ADD_ONE, "add_one(3)");
    let (_, text) = trace_and_render(&req, TraceFormat::Compat, &RenderLimits::default());
    let expected = " \n= {} , {}\nCALL: def add_one(x):\n\
= {'add_one': '<Function add_one>'} , {'add_one': 'Function'}\nLINE: add_one(3)\n\
== {'x': 3} , {'x': 'int'}\nCALL: def add_one(x):\n\
== {'x': 3} , {'x': 'int'}\nLINE:     y = x + 1\n\
== {'x': 3, 'y': 4} , {'x': 'int', 'y': 'int'}\nLINE:     return y\n\
= {'add_one': '<Function add_one>'} , {'add_one': 'Function'}\nRETURN: add_one(3)\nReturn Value: 4\n ";
    assert_eq!(text, expected);
}

#[test]
fn compat_values_are_json_round_trips() {
    let req = call(
        "def f():\n    t = (1, 2)\n    d = {1: 'a'}\n    seen = {(5, 6)}\n    return t",
        "f()",
    );
    let (_, text) = trace_and_render(&req, TraceFormat::Compat, &RenderLimits::default());
    assert!(
        text.contains("{'t': [1, 2], 'd': {'1': 'a'}, 'seen': '{(5, 6)}'} , {'t': 'tuple', 'd': 'dict', 'seen': 'set'}"),
        "{text}"
    );
    assert!(
        text.ends_with("RETURN: f()\nReturn Value: (1, 2)\n "),
        "{text}"
    );
}

#[test]
fn changed_state_format_golden() {
    let program = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s";
    let req = call(program, "total([4, 5])");
    let (_, text) = trace_and_render(&req, TraceFormat::ChangedState, &RenderLimits::default());
    let expected = [
        "  call total(xs=[4, 5])",
        "  L2 s = 0 | s=0",
        "  L3 for x in xs: | x=4",
        "  L4 s += x | s=4",
        "  L3 for x in xs: | x=5",
        "  L4 s += x | s=9",
        "  L3 for x in xs:",
        "  L5 return s -> 9",
        "L6 total([4, 5])",
        "result: 9",
        "status: ok (9 lines executed)",
    ]
    .join("\n");
    assert_eq!(text, expected);
}

#[test]
fn changed_state_format_reports_exceptions_and_limits() {
    let req = call("def f(x):\n    return 1 / x", "f(0)");
    let (result, text) =
        trace_and_render(&req, TraceFormat::ChangedState, &RenderLimits::default());
    assert_eq!(result.status, Status::Exception);
    assert!(
        text.contains("  L2 return 1 / x !! ZeroDivisionError: division by zero"),
        "{text}"
    );
    assert!(
        text.ends_with("raised: ZeroDivisionError: division by zero at L2\nstatus: exception"),
        "{text}"
    );

    let spin = call(
        "def f():\n    n = 0\n    while True:\n        n += 1",
        "f()",
    );
    let limits = RenderLimits {
        max_events: 20,
        ..RenderLimits::default()
    };
    let (result, text) = trace_and_render(&spin, TraceFormat::ChangedState, &limits);
    assert_eq!(result.status, Status::LineLimit);
    assert!(result.elided > 0);
    assert!(text.contains("... trace cut at 20 lines"), "{text}");
    assert!(text.ends_with("probably an endless loop)"), "{text}");
    assert!(text.lines().count() < 30);
}

#[test]
fn traces_keep_head_samples_and_counts() {
    let req = call(
        "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s",
        "f(2000)",
    );
    let r = executor().trace(&[req]).remove(0);
    assert_eq!(r.status, Status::Ok);
    assert_eq!(r.ret.as_deref(), Some("1999000"));
    let limits = ExecLimits::default();
    let head = r
        .events
        .iter()
        .filter(|e| e.index <= limits.head_events as u64)
        .count();
    assert_eq!(head, limits.head_events as usize);
    let samples: Vec<u64> = r
        .events
        .iter()
        .map(|e| e.index)
        .filter(|&i| i > 200)
        .collect();
    assert!(samples.starts_with(&[400, 800, 1600, 3200]), "{samples:?}");
    assert_eq!(
        r.events.last().unwrap().kind,
        EventKind::Return,
        "outer returns are kept"
    );
    assert_eq!(
        r.lines_executed,
        r.line_hits.iter().map(|h| h.hits).sum::<u64>()
    );
    assert_eq!(
        r.elided + r.events.len() as u64,
        r.events.last().unwrap().index
    );
}

#[test]
fn stdin_programs_and_setup_code_run() {
    let ex = executor();
    let req = TraceRequest {
        program: "a, b = map(int, input().split())\nprint(helper(a + b))".into(),
        setup: Some("def helper(v):\n    return v * 10".into()),
        invocation: Invocation::Stdin {
            stdin: "2 3\n".into(),
        },
    };
    let r = ex.trace(&[req]).remove(0);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "50\n");
    let bad = ex.trace(&[call("def f(:\n    pass", "f()")]).remove(0);
    assert_eq!(bad.status, Status::SyntaxError);
    assert_eq!(bad.exception.unwrap().line, Some(1));
}

#[test]
fn check_reports_pass_fail_and_error_per_test() {
    let assert = |code: &str| TestCase::Assert { code: code.into() };
    let report = executor().check(&CheckRequest {
        program: "def add(a, b):\n    return a + b\nprint('side effect')".into(),
        setup: None,
        tests: vec![
            assert("assert add(1, 2) == 3"),
            assert("assert add(1, 2) == 4"),
            assert("assert add(1) == 1"),
            TestCase::Script {
                code: "def check(f):\n    assert f(2, 2) == 4\ncheck(add)".into(),
            },
        ],
        timeout: None,
    });
    let verdicts: Vec<Verdict> = report.tests.iter().map(|t| t.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Pass, Verdict::Fail, Verdict::Error, Verdict::Pass]
    );
    assert!(
        report.tests[2].detail.starts_with("TypeError"),
        "{:?}",
        report.tests[2]
    );
    assert_eq!(report.passed(), 2);

    let stdio = |stdin: &str, stdout: &str| TestCase::Stdio {
        stdin: stdin.into(),
        stdout: stdout.into(),
    };
    let report = executor().check(&CheckRequest {
        program: "import sys\nn = int(sys.stdin.readline())\nprint(n * 2)\nsys.exit(0)".into(),
        setup: None,
        tests: vec![stdio("2\n", "4\n"), stdio("3\n", "7"), stdio("x\n", "0")],
        timeout: None,
    });
    let verdicts: Vec<Verdict> = report.tests.iter().map(|t| t.verdict).collect();
    assert_eq!(verdicts, [Verdict::Pass, Verdict::Fail, Verdict::Error]);

    let slow = executor().check(&CheckRequest {
        program: "while True:\n    pass".into(),
        setup: None,
        tests: vec![assert("assert True")],
        timeout: Some(Duration::from_millis(500)),
    });
    assert_eq!(slow.tests[0].status, Status::Timeout);
    assert_eq!(slow.tests[0].verdict, Verdict::Error);
}

#[test]
fn identical_requests_run_once() {
    let ex = executor();
    let req = call("import time\ndef f():\n    return time.time()", "f()");
    let results = ex.trace(&[req.clone(), req.clone()]);
    assert_eq!(
        results[0], results[1],
        "duplicates in a batch share one run"
    );
    let again = ex.trace(&[req]).remove(0);
    assert_eq!(
        again, results[0],
        "a later identical request hits the cache"
    );
    let other = ex
        .trace(&[call(
            "import time\ndef f():\n    return time.time()",
            "f() ",
        )])
        .remove(0);
    assert_ne!(other.ret, results[0].ret, "a different invocation runs");
}

#[test]
fn invocations_of_one_program_are_isolated_and_survive_failures() {
    let program = "import os, time\ncount = 0\ndef f(x):\n    global count\n    count += 1\n    if x == 'crash':\n        os._exit(3)\n    if x == 'spin':\n        while True:\n            pass\n    return (x, count)";
    let calls = ["f(1)", "f('crash')", "f(2)", "f('spin')", "f(3)", "f(4)"];
    let requests: Vec<TraceRequest> = calls.iter().map(|c| call(program, c)).collect();
    let results = executor().trace(&requests);
    let statuses: Vec<Status> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Ok,
            Status::Crashed,
            Status::Ok,
            Status::LineLimit,
            Status::Ok,
            Status::Ok
        ]
    );
    let rets: Vec<Option<&str>> = results.iter().map(|r| r.ret.as_deref()).collect();
    assert_eq!(rets[0], Some("(1, 1)"), "module state starts fresh");
    assert_eq!(
        rets[2],
        Some("(2, 1)"),
        "module state starts fresh after a crash"
    );
    assert_eq!(rets[4], Some("(3, 1)"));
    assert_eq!(rets[5], Some("(4, 1)"));
    assert_eq!(results[1].exit_code, Some(3));
}

#[test]
fn oversized_programs_are_refused_without_harming_the_pool() {
    let ex = executor();
    let before = ex.server_restarts();
    let huge = format!("x = '{}'", "a".repeat(5 << 20));
    let r = ex.trace(&[call(&huge, "x")]).remove(0);
    assert_eq!(r.status, Status::SyntaxError, "the candidate's own failure");
    assert_eq!(r.exception.unwrap().type_name, "ProgramTooLarge");
    assert_eq!(ex.server_restarts(), before);
    let ok = ex.trace(&[call("def f():\n    return 1", "f()")]).remove(0);
    assert_eq!(ok.status, Status::Ok);
}

#[test]
fn large_stdout_caps_need_and_get_large_result_frames() {
    let ex = Executor::start(ExecutorConfig {
        pool_size: 1,
        limits: ExecLimits {
            stdout_bytes: 8 << 20,
            result_bytes: 16 << 20,
            ..ExecLimits::default()
        },
        min_isolation: MinIsolation::none(),
        ..ExecutorConfig::default()
    })
    .unwrap();
    let r = ex
        .trace(&[TraceRequest {
            program: "print('x' * (6 << 20))".into(),
            setup: None,
            invocation: Invocation::Stdin {
                stdin: String::new(),
            },
        }])
        .remove(0);
    assert_eq!(r.status, Status::Ok, "{:?}", r.detail);
    assert_eq!(r.stdout.len(), (6 << 20) + 1);
    assert_eq!(ex.server_restarts(), 0);
}

#[test]
fn string_hashing_is_the_same_in_every_server() {
    // Distinct programs (no cache hits) spread over both servers; a set of
    // strings prints in hash order, which must not depend on the server.
    let requests: Vec<TraceRequest> = (0..8)
        .map(|i| {
            call(
                &format!("def f():\n    n = {i}\n    return str({{'pear', 'fig', 'plum', 'kiwi', 'lime', 'date'}})"),
                "f()",
            )
        })
        .collect();
    let orders: Vec<Option<String>> = executor()
        .trace(&requests)
        .into_iter()
        .map(|r| r.ret)
        .collect();
    assert!(orders[0].is_some(), "{orders:?}");
    assert!(orders.iter().all(|o| o == &orders[0]), "{orders:?}");
}
