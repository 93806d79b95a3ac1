//! Candidates that attack the *results* rather than the machine: forged
//! verdicts, harness secrets reached from the candidate's own frames,
//! tracers switched off, hostile names and values, and failures that must
//! stay the candidate's own. Every case goes through the public API with
//! the settings of `bad_inputs.rs` (timeout 2 s, memory 512 MiB, no cache).

use std::sync::OnceLock;
use std::time::Duration;

use egcfg_executor::render::{render, RenderLimits, TraceFormat};
use egcfg_executor::{
    CheckReport, CheckRequest, ExecLimits, ExecResult, Executor, ExecutorConfig, Invocation,
    MinIsolation, Status, TraceRequest, UnplannedTests, Verdict,
};
use egcfg_task::TestCase;

fn executor() -> &'static Executor {
    static EXECUTOR: OnceLock<Executor> = OnceLock::new();
    EXECUTOR.get_or_init(|| start(2, UnplannedTests::default()))
}

fn start(pool_size: usize, unplanned_tests: UnplannedTests) -> Executor {
    Executor::start(ExecutorConfig {
        pool_size,
        unplanned_tests,
        limits: ExecLimits {
            timeout: Duration::from_secs(2),
            memory_bytes: 512 << 20,
            ..ExecLimits::default()
        },
        min_isolation: MinIsolation::none(),
        cache_capacity: 0,
        ..ExecutorConfig::default()
    })
    .expect("executor starts")
}

fn check(program: &str, tests: &[&str]) -> CheckReport {
    check_cases(
        executor(),
        program,
        tests
            .iter()
            .map(|code| TestCase::Assert {
                code: (*code).into(),
            })
            .collect(),
    )
}

fn check_cases(executor: &Executor, program: &str, tests: Vec<TestCase>) -> CheckReport {
    executor.check(&CheckRequest {
        program: program.into(),
        setup: None,
        tests,
        timeout: None,
    })
}

fn script(code: &str) -> TestCase {
    TestCase::Script { code: code.into() }
}

/// A program whose `f` returns an object equal to everything, true, and
/// with every item and attribute itself.
const ALWAYS_EQUAL: &str = "class Same:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n    def __lt__(self, other):\n        return True\n    def __hash__(self):\n        return 0\n    def __bool__(self):\n        return True\n    def __getitem__(self, i):\n        return self\n    def __len__(self):\n        return 1\ndef f(x):\n    return Same()";

fn trace(program: &str, call: &str) -> ExecResult {
    executor()
        .trace(&[TraceRequest {
            program: program.into(),
            setup: None,
            invocation: Invocation::Call { expr: call.into() },
        }])
        .remove(0)
}

fn verdicts(report: &CheckReport) -> Vec<Verdict> {
    report.tests.iter().map(|t| t.verdict).collect()
}

/// Two tests that cannot both hold: at most one may pass.
fn assert_not_both(report: &CheckReport) {
    assert!(
        report.passed() <= 1,
        "two contradictory tests passed: {:?}",
        report.tests
    );
}

#[test]
fn an_always_equal_object_cannot_pass_contradictory_tests() {
    let program = "class Same:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n    def __hash__(self):\n        return 0\n    def __bool__(self):\n        return True\ndef f(x):\n    return Same()";
    let report = check(
        program,
        &[
            "assert f(1) == 2",
            "assert f(1) == 3",
            "assert f(1) == [1]",
            "assert f(1) != 2",
            "assert not f(1) == 2",
            "assert f(1)",
            "assert f(-1) == -2",
            "assert f(*[1]) == [2]",
        ],
    );
    assert_eq!(report.passed(), 0, "{:?}", report.tests);
    // A builtin subclass is judged by its value, not by its `__eq__`.
    let program = "class Lying(int):\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Lying(5)";
    let report = check(program, &["assert f(1) == 5", "assert f(1) == 6"]);
    assert_eq!(verdicts(&report), [Verdict::Pass, Verdict::Fail]);
}

#[test]
fn a_patched_result_builder_cannot_forge_a_pass() {
    // The soft-deadline handler leads to the harness's globals, its Run
    // and the code that builds the result frame.
    let program = "import signal\ndef forge():\n    handler = signal.getsignal(signal.SIGALRM)\n    g = getattr(handler, '__globals__', {})\n    for v in list(g.values()):\n        if isinstance(v, type) and hasattr(v, 'result'):\n            real = v.result\n            def result(self, status, real=real):\n                r = real(self, 'ok')\n                r['exception'] = None\n                return r\n            v.result = result\nforge()\ndef f(x):\n    return 0";
    let report = check(program, &["assert f(1) == 99", "assert f(1) == 98"]);
    assert_not_both(&report);
    assert_eq!(report.passed(), 0, "{:?}", report.tests);
}

#[test]
fn the_expected_values_are_not_in_the_candidates_process() {
    // Look through the harness's globals (reached from its signal
    // handler) and every frame for the test text, and
    // answer with the value it expects.
    let program = "import re, signal, sys\ndef strings(x, out, depth=0):\n    if depth > 6 or x is out:\n        return\n    if type(x) is str:\n        out.append(x)\n    elif type(x) in (list, tuple):\n        for v in x:\n            strings(v, out, depth + 1)\n    elif type(x) is dict:\n        for v in list(x.values()):\n            strings(v, out, depth + 1)\ndef find():\n    texts = []\n    handler = signal.getsignal(signal.SIGALRM)\n    run = getattr(handler, '__globals__', {}).get('CURRENT_RUN')\n    strings(getattr(run, 'job', None), texts)\n    frame = sys._getframe()\n    while frame is not None:\n        strings(dict(frame.f_locals), texts, 4)\n        frame = frame.f_back\n    for t in texts:\n        m = re.search('[(]1[)] == ([0-9]+)', t)\n        if m:\n            return int(m.group(1))\n    return -1\ndef f(x):\n    return find()";
    let report = check(program, &["assert f(1) == 731", "assert f(1) == 4417"]);
    assert_eq!(report.passed(), 0, "{:?}", report.tests);
    // Nor those of a HumanEval-style script: the child gets only the calls.
    let report = check_cases(
        executor(),
        program,
        vec![script(
            "def check(candidate):\n    assert candidate(1) == 731\n\ncheck(f)\n",
        )],
    );
    assert_eq!(report.passed(), 0, "{:?}", report.tests);
}

#[test]
fn no_test_text_of_an_earlier_check_survives_in_a_later_child() {
    // A planned assert: its expected value never reaches the server.
    assert_forgotten(
        TestCase::Assert {
            code: "assert g() == 'zq-hidden-test-marker-8086'".into(),
        },
        "zq-hidden-test-marker-8086",
    );
}

#[test]
fn no_script_text_of_an_earlier_check_survives_in_a_later_child() {
    // A script the child runs whole: its text passes through the server,
    // which must not keep it (freed memory included) for the next fork.
    assert_forgotten(
        TestCase::Script {
            code: format!(
                "def check(candidate):\n    hidden = 'zq-script-marker-4711'\n    assert candidate() != hidden\n{}check(g)",
                "# a test script of ordinary length\n".repeat(40)
            ),
        },
        "zq-script-marker-4711",
    );
}

/// Runs `test` against a program on a one-server pool (so later children
/// fork from the server that served it), then scans every writable
/// mapping of two later children for `marker`.
fn assert_forgotten(test: TestCase, marker: &str) {
    // Unplanned tests run in the child here, so the script reaches it.
    let executor = start(1, UnplannedTests::RunInChild);
    let report = executor.check(&CheckRequest {
        program: "def g():\n    return 1".into(),
        setup: None,
        tests: vec![test],
        timeout: None,
    });
    assert_eq!(report.tests.len(), 1);
    // The scanner is setup code, so no snapshot records the needle; it
    // skips the needle object itself and searches ctypes views of the
    // mappings without copying memory. The needle is built from a masked
    // form so that its literal is no match either.
    let masked: Vec<String> = marker.bytes().map(|b| (b ^ 1).to_string()).collect();
    let scanner = format!(
        "import ctypes, re\ndef scan():\n    needle = bytes([c ^ 1 for c in [{}]])\n    pattern = re.compile(re.escape(needle))\n    own = id(needle) + bytes.__basicsize__ - 1\n    found = 0\n    with open('/proc/self/maps') as maps:\n        regions = maps.read().splitlines()\n    for line in regions:\n        parts = line.split()\n        if not parts[1].startswith('rw') or (len(parts) > 5 and parts[5].startswith('[v')):\n            continue\n        lo, hi = (int(x, 16) for x in parts[0].split('-'))\n        view = (ctypes.c_char * (hi - lo)).from_address(lo)\n        for m in pattern.finditer(view):\n            if lo + m.start() != own:\n                found += 1\n    return found",
        masked.join(", ")
    );
    for _ in 0..2 {
        let r = executor
            .trace(&[TraceRequest {
                program: "pass".into(),
                setup: Some(scanner.clone()),
                invocation: Invocation::Call {
                    expr: "scan()".into(),
                },
            }])
            .remove(0);
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(
            r.ret.as_deref(),
            Some("0"),
            "test text of an earlier request in a later child"
        );
    }
}

#[test]
fn humaneval_style_checks_are_judged_outside_the_candidate() {
    let checks = "METADATA = {'author': 'x'}\n\ndef check(candidate):\n    assert candidate(1) == 2\n    assert candidate(1) == 3, 'message'\n    assert True\n\ncheck(f)\n";
    let report = check_cases(executor(), ALWAYS_EQUAL, vec![script(checks)]);
    assert_eq!(verdicts(&report), [Verdict::Fail], "{:?}", report.tests);
    // An honest program: each assert is one check, in order.
    let honest = check_cases(
        executor(),
        "def f(x):\n    return x + 1",
        vec![script(checks)],
    );
    assert_eq!(honest.tests[0].verdict, Verdict::Fail);
    // The first assert holds, the second decides.
    assert_eq!(honest.tests[0].detail, "AssertionError: f(1) gave 2");
    let passing = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 3\ncheck(f)";
    let report = check_cases(
        executor(),
        "def f(x):\n    return x + 1",
        vec![script(passing)],
    );
    assert_eq!(verdicts(&report), [Verdict::Pass], "{:?}", report.tests);
}

#[test]
fn expected_values_computed_by_the_test_are_judged_outside() {
    let tests = [
        "assert f(1) == [1, 2] + [3]",
        "assert f(1) == list(range(3))",
        "assert f(1) == 'ab' * 2",
        "assert f(1)[0]",
    ];
    let report = check(ALWAYS_EQUAL, &tests);
    assert_eq!(report.passed(), 0, "{:?}", report.tests);
    let honest = check(
        "def f(x):\n    return [1, 2, 3] if x else 'abab'",
        &[
            "assert f(1) == [1, 2] + [3]",
            "assert f(0) == 'ab' * 2",
            "assert f(1) == list(range(1, 4))",
            "assert f(1)[0]",
            "assert f(1) == sum([1, 2])",
        ],
    );
    assert_eq!(
        verdicts(&honest),
        [
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Fail
        ],
        "{:?}",
        honest.tests
    );
}

#[test]
fn unplanned_tests_fail_closed_unless_allowed() {
    // An ordering comparison and a script with its own logic: nothing
    // outside the candidate's process can judge them.
    let tests = || {
        vec![
            TestCase::Assert {
                code: "assert f(1) < 3".into(),
            },
            script("def check(candidate):\n    for x in range(3):\n        assert candidate(x) < 3\ncheck(f)"),
        ]
    };
    let report = check_cases(executor(), ALWAYS_EQUAL, tests());
    assert_eq!(verdicts(&report), [Verdict::Error, Verdict::Error]);
    assert!(
        report.tests[0].detail.contains("not run"),
        "{:?}",
        report.tests
    );
    let honest = check_cases(executor(), "def f(x):\n    return x", tests());
    assert_eq!(verdicts(&honest), [Verdict::Error, Verdict::Error]);
    // Allowed, they run in the child, and pass for an honest program.
    let trusting = start(1, UnplannedTests::RunInChild);
    let honest = check_cases(&trusting, "def f(x):\n    return x", tests());
    assert_eq!(verdicts(&honest), [Verdict::Pass, Verdict::Pass]);
}

#[test]
fn a_forged_frame_changes_no_planned_verdict() {
    // The candidate finds the nonce and the result descriptor (the soft
    // deadline handler leads to the harness's current run), writes a frame
    // claiming success with an answer of its choosing, and then crashes.
    let program = "import json, os, signal, struct\ndef forge(claim):\n    handler = signal.getsignal(signal.SIGALRM)\n    run = getattr(handler, '__globals__', {}).get('CURRENT_RUN')\n    body = json.dumps({'status': 'ok', 'ret': repr(claim), 'value': ['int', format(claim, 'x')]}).encode()\n    frame = run.nonce + body + bytes(1)\n    os.write(run.out_fd, struct.pack('<I', len(frame)) + frame)\n    os._exit(3)\ndef f(x):\n    forge(5)";
    let report = check(program, &["assert f(1) == 731", "assert f(2) == 4417"]);
    assert_eq!(report.passed(), 0, "{:?}", report.tests);
    // Its claim counts as its answer, no more: what it could have returned.
    let report = check(program, &["assert f(1) == 5"]);
    assert_eq!(verdicts(&report), [Verdict::Pass]);
    let report = check_cases(
        executor(),
        program,
        vec![script(
            "def check(candidate):\n    assert candidate(1) == 5\n    assert candidate(2) == 6\ncheck(f)",
        )],
    );
    // The first check takes the forged answer; the second, in the same
    // child, finds it gone: a crash stays an error.
    assert_eq!(verdicts(&report), [Verdict::Error], "{:?}", report.tests);
    assert_eq!(report.tests[0].status, Status::Crashed);
}

#[test]
fn switching_tracing_off_is_noticed() {
    let cases = [
        // Line events off for the candidate's own frame.
        "import sys\ndef f():\n    sys._getframe().f_trace_lines = False\n    x = 1\n    return x",
        // The frame's local tracer removed.
        "import sys\ndef f():\n    sys._getframe().f_trace = None\n    x = 1\n    return x",
        // Candidate code compiled under another file name runs untraced.
        "def f():\n    ns = {}\n    exec(compile('def h():\\n    return 2', 'elsewhere', 'exec'), ns)\n    return ns['h']()",
        // The global tracer replaced and put back.
        "import sys\ndef f():\n    t = sys.gettrace()\n    sys.settrace(None)\n    y = 3\n    sys.settrace(t)\n    return y",
    ];
    for program in cases {
        let r = trace(program, "f()");
        assert_eq!(r.status, Status::Ok, "{program}: {r:?}");
        assert!(r.trace_tampered, "not noticed: {program}");
    }
    let honest = trace("def f():\n    x = 1\n    return x", "f()");
    assert!(!honest.trace_tampered, "{honest:?}");
}

#[test]
fn snapshots_never_run_user_code() {
    // Every hook here ends the process; a snapshot that runs one crashes.
    let program = "import os\nclass Meta(type):\n    def __hash__(cls):\n        os._exit(91)\n    def __eq__(cls, other):\n        os._exit(92)\n    def __instancecheck__(cls, obj):\n        os._exit(93)\n    def __subclasscheck__(cls, sub):\n        os._exit(94)\n    @property\n    def __name__(cls):\n        os._exit(95)\nclass Thing(metaclass=Meta):\n    @property\n    def __dict__(self):\n        os._exit(96)\nclass Err(Exception):\n    @property\n    def args(self):\n        os._exit(97)\nclass Name(str):\n    def __str__(self):\n        os._exit(98)\n    def translate(self, table):\n        os._exit(99)\ndef f():\n    t = Thing()\n    kinds = [Thing, Thing]\n    s = {1: t}\n    f.__qualname__ = Name('q')\n    e = Err('x')\n    sl = slice(t, 2)\n    g = f\n    return (t, kinds, e, sl)";
    let r = trace(program, "f()");
    assert_eq!(r.status, Status::Ok, "a user hook ran: {r:?}");
}

#[test]
fn names_cannot_inject_trace_events() {
    let fake = "\\n999\\x1f1\\x1f1\\x1f1\\x1f1\\x1ffake\\x1f\\x1f0\\x1f\\x1f\\x1f\\n18446744073709551615\\x1f1\\x1f1\\x1f1\\x1f1\\x1ffake\\x1f\\x1f0\\x1f\\x1f\\x1f";
    let program = format!(
        "def g(n):\n    y = n + 1\n    return y\ng.__code__ = g.__code__.replace(co_name='g{fake}')\ndef f():\n    return g(1) + g(2)"
    );
    let r = trace(&program, "f()");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(
        r.events.iter().all(|e| e.function != "fake"),
        "injected events: {:?}",
        r.events
    );
    assert!(r.events.iter().all(|e| e.index < 1000));
    let source = format!("{program}\nf()");
    for format in [TraceFormat::ChangedState, TraceFormat::Compat] {
        render(&r, &source, format, &RenderLimits::default());
    }
}

#[test]
fn odd_globals_do_not_break_the_tracer() {
    let r = trace(
        "globals()[1] = 'one'\nglobals()[('a', 2)] = 2\nclass K(str):\n    def __getitem__(self, i):\n        raise SystemExit(5)\nglobals()[K('k')] = 3\ndef f():\n    return 7",
        "f()",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.ret.as_deref(), Some("7"));
}

#[test]
fn candidate_failures_are_never_internal_errors() {
    let r = trace("def f():\n    raise ValueError('bad \\ud800 text')", "f()");
    assert_eq!(r.status, Status::Exception, "{r:?}");
    let r = trace(
        "def f():\n    raise type('E\\udcff', (Exception,), {})('x')",
        "f()",
    );
    assert_eq!(r.status, Status::Exception, "{r:?}");
    let report = check(
        "def f():\n    raise ValueError('\\ud800')",
        &["assert f() == 1"],
    );
    assert_eq!(report.tests[0].status, Status::Exception);

    let huge = format!("x = '{}'\ndef f():\n    return 1", "a".repeat(5 << 20));
    let r = trace(&huge, "f()");
    assert_ne!(r.status, Status::InternalError, "{:?}", r.detail);
    assert_eq!(r.status, Status::SyntaxError);
    let report = check(&huge, &["assert f() == 1"]);
    assert_eq!(report.tests[0].status, Status::SyntaxError);
    assert_eq!(report.tests[0].verdict, Verdict::Error);
}

#[test]
fn the_test_after_a_timed_out_one_still_runs() {
    let program = "def f(x):\n    if x == 0:\n        while True:\n            try:\n                pass\n            except BaseException:\n                pass\n    return x";
    let report = check(
        program,
        &["assert f(0) == 0", "assert f(1) == 1", "assert f(2) == 2"],
    );
    let statuses: Vec<Status> = report.tests.iter().map(|t| t.status).collect();
    assert_eq!(
        verdicts(&report),
        [Verdict::Error, Verdict::Pass, Verdict::Pass],
        "{:?}",
        report.tests
    );
    assert_eq!(statuses[0], Status::Timeout);
}

#[test]
fn tests_judged_outside_agree_with_python() {
    let program = "import collections, re\ndef f(kind):\n    return {'list': [1, 2], 'tuple': (1, 2), 'float': 0.1 + 0.2, 'none': None,\n            'match': re.match('a', 'abc'), 'empty': [], 'counter': collections.Counter('aa'),\n            'big': 2 ** 70, 'nested': {'k': [(1, 'x'), {2.0}]}}[kind]";
    let cases = [
        ("assert f('list') == [1, 2]", Verdict::Pass),
        ("assert f('tuple') == (1, 2)", Verdict::Pass),
        ("assert f('list') == (1, 2)", Verdict::Fail),
        ("assert set(f('list')) == set([2, 1])", Verdict::Pass),
        ("assert math.isclose(f('float'), 0.3)", Verdict::Pass),
        ("assert f('float') == 0.3", Verdict::Fail),
        ("assert f('none') is None", Verdict::Pass),
        ("assert f('match')", Verdict::Pass),
        ("assert f('match') is not None", Verdict::Pass),
        ("assert not f('empty')", Verdict::Pass),
        ("assert f('counter') == {'a': 2}", Verdict::Pass),
        ("assert f('big') == 1180591620717411303424", Verdict::Pass),
        (
            "assert f('nested') == {'k': [(1, 'x'), {2}]}",
            Verdict::Pass,
        ),
        ("assert f('list') != [1, 2]", Verdict::Fail),
        ("assert f('missing') == 1", Verdict::Error),
    ];
    let tests: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let report = check(&format!("import math\n{program}"), &tests);
    for ((test, want), got) in cases.iter().zip(&report.tests) {
        assert_eq!(got.verdict, *want, "{test}: {got:?}");
    }
}
