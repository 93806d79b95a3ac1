//! `egcfg solve --endpoint` against a real llama-server (built by
//! `scripts/llama-server.sh`; `scripts/test.sh` exports its path as
//! `EGCFG_LLAMA_SERVER`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;

use egcfg_engine::{Engine, ServedConfig, ServedEngine, Token};
use egcfg_method::outcome::SolveOutcome;
use egcfg_method::prompt::build_prompt;
use egcfg_task::Task;
use egcfg_test_server::LlamaServer;

use crate::util::{repo, stderr, stdout, success, tiny_model, Sandbox};

mod proxy;

use self::proxy::RecordingProxy;

/// Serves `model` with two slots (one per stream of an attempt), or
/// `None` when `$EGCFG_LLAMA_SERVER` is unset.
fn serve(model: &Path) -> Option<LlamaServer> {
    LlamaServer::start(model, 4096, 2)
}

/// The default model (`$EGCFG_E2E_MODEL`) and a server hosting it, or
/// `None`, with the reason printed, when either is not available.
fn serve_default_model() -> Option<(String, LlamaServer)> {
    let Ok(model) = std::env::var("EGCFG_E2E_MODEL") else {
        eprintln!("skipped: EGCFG_E2E_MODEL is unset (scripts/test.sh sets it)");
        return None;
    };
    let server = serve(Path::new(&model))?;
    Some((model, server))
}

fn solve_json(sandbox: &Sandbox, extra: &[&str]) -> serde_json::Value {
    let task = repo().join("examples/tasks/second_largest.toml");
    // EG-CFG's own path (top-k, candidate lines, guided prompts), not the
    // default `--method sample`.
    let mut args = vec![
        "solve",
        task.to_str().unwrap(),
        "--json",
        "--method",
        "egcfg",
    ];
    args.extend_from_slice(extra);
    let out = sandbox.run(&args);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "--json output is JSON ({e}):\n{}\n{}",
            stdout(&out),
            stderr(&out)
        )
    })
}

/// The acceptance run: the default model through llama-server solves the
/// example task, with the very program the local engine writes (the first
/// attempt is greedy, γ = 0, and both backends run the same llama.cpp).
#[test]
fn solves_an_example_task_through_llama_server_like_the_local_engine() {
    let Some((model, server)) = serve_default_model() else {
        return;
    };
    let sandbox = Sandbox::new();
    let one = ["--max-attempts", "1"];
    let served = solve_json(
        &sandbox,
        &[&one[..], &["--endpoint", server.url()]].concat(),
    );
    assert_eq!(served["passed"], true, "{served:#}");
    let local = solve_json(
        &sandbox,
        &[&one[..], &["--model", &model, "--threads", "1"]].concat(),
    );
    assert_eq!(served["code"], local["code"]);
}

/// `--method sample` on a served model, which has no logits to sample
/// from step by step: the server writes whole answers, and the solve prints
/// a program and records every answer it drew.
#[test]
fn sampling_through_llama_server_prints_a_program_and_records_its_answers() {
    let Some((_, server)) = serve_default_model() else {
        return;
    };
    let sandbox = Sandbox::new();
    let task = repo().join("examples/tasks/second_largest.toml");
    let out = sandbox.run(&[
        "solve",
        task.to_str().unwrap(),
        "--method",
        "sample",
        "--endpoint",
        server.url(),
        "--max-attempts",
        "2",
        "--concurrency",
        "2",
        "--record",
        "answers.json",
    ]);
    let program = success(&out);
    assert!(program.contains("def second_largest("), "{program}");
    let record = std::fs::read_to_string(sandbox.path().join("answers.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["code"].as_str(), Some(program.trim_end()));
    // Both answers were drawn in the first round, so both are recorded,
    // each with the tokens the server wrote and what they cost.
    let answers = record["attempts"].as_array().unwrap();
    assert_eq!(answers.len(), 2, "{record:#}");
    for answer in answers {
        assert!(answer["name"].as_str().unwrap().starts_with("sample"));
        assert!(!answer["tokens"].as_array().unwrap().is_empty());
        assert!(answer["reply"].as_str().unwrap().contains("def "));
        assert!(answer["cost"]["decode_tokens"].as_u64().unwrap() > 0);
    }
}

/// One guided agent (γ = 1, a refresh at every line) that the default model
/// follows on the example task.
const GUIDED_AGENT: &str =
    "[[agent]]\nt = 0.7\ns = 2\nd = 1\nk = 1\nstyle = \"instruct\"\ngamma = [1.0]\n";

/// Issue 13's "the conditional prompt is exactly head + signal + marker +
/// generated ids", checked on the wire: a recording proxy between egcfg
/// and llama-server keeps every request, and every prompt that holds a
/// signal block (one that is neither the head alone nor the head then the
/// marker) must be the head's ids, then the ids of a signal the attempt
/// built, then the marker's ids, then exactly the ids the attempt had
/// generated. The head and marker come from the prompt the attempt's style
/// renders and the signals from the record, all tokenized by the server
/// as egcfg tokenizes them. The check holds for whatever requests carry a
/// signal, not a fixed pattern of them.
#[test]
fn every_conditional_prompt_is_head_signal_marker_and_the_generated_ids() {
    let Some((_, server)) = serve_default_model() else {
        return;
    };
    let proxy = RecordingProxy::start(server.url());
    let sandbox = Sandbox::new();
    sandbox.write("guided.toml", GUIDED_AGENT);
    let task_path = repo().join("examples/tasks/second_largest.toml");
    // A small budget and signal keep the run short: a few guided lines
    // are enough, and an attempt the budget cuts is recorded too.
    let out = sandbox.run(&[
        "solve",
        task_path.to_str().unwrap(),
        "--endpoint",
        &proxy.url,
        "--method",
        "egcfg",
        "--agents",
        "guided.toml",
        "--max-attempts",
        "1",
        "--max-tokens",
        "2500",
        "--signal-tokens",
        "300",
        "--record",
        "record.json",
    ]);
    assert!(
        sandbox.path().join("record.json").exists(),
        "{}",
        stderr(&out)
    );
    let record = std::fs::read_to_string(sandbox.path().join("record.json")).unwrap();
    let record: SolveOutcome = serde_json::from_str(&record).unwrap();
    let [attempt] = &record.attempts[..] else {
        panic!("one attempt ran: {record:#?}");
    };

    // The pieces, from the server itself (not through the proxy).
    let engine = ServedEngine::connect(ServedConfig::new(server.url())).unwrap();
    let task = Task::from_file(&task_path).unwrap();
    let parts = build_prompt(&engine, &task, attempt.spec.config.style, true).unwrap();
    let head = engine.tokenize(&parts.head, true).unwrap();
    let marker = engine.tokenize(&parts.marker, true).unwrap();
    let generated: Vec<Token> = attempt.tokens.iter().map(|t| t.token).collect();
    // Each signal the attempt built, with the step from which it is in
    // force.
    let signals: Vec<(usize, Vec<Token>)> = attempt
        .refreshes
        .iter()
        .filter_map(|r| Some((r.step, engine.tokenize(r.signal.as_ref()?, false).unwrap())))
        .collect();
    assert!(!signals.is_empty(), "the attempt was guided: {record:#?}");

    let prompts: Vec<Vec<Token>> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path == "/completion")
        .filter_map(|r| {
            let prompt = r.body.get("prompt")?.as_array()?.clone();
            Some(
                prompt
                    .iter()
                    .map(|id| id.as_i64().expect("prompts are sent as ids") as Token)
                    .collect(),
            )
        })
        .collect();
    let mut conditional = 0;
    for prompt in &prompts {
        assert!(prompt.starts_with(&head), "a prompt without the head");
        let after_head = &prompt[head.len()..];
        if after_head.is_empty() || after_head.starts_with(&marker) {
            continue;
        }
        conditional += 1;
        let matches = signals.iter().any(|(step, signal)| {
            let Some(rest) = after_head.strip_prefix(&signal[..]) else {
                return false;
            };
            let Some(so_far) = rest.strip_prefix(&marker[..]) else {
                return false;
            };
            *step <= so_far.len() && generated.starts_with(so_far)
        });
        assert!(
            matches,
            "a conditional prompt is not head + signal + marker + generated ids:\n\
             after the head: {after_head:?}\nmarker: {marker:?}\ngenerated: {generated:?}"
        );
    }
    assert!(conditional > 0, "requests carried a signal");
}

/// The whole served path on the tiny model: every request kind (top-k,
/// candidate lines, tokenizer, template) is made, and the run ends as an
/// unsolved task, not an error.
#[test]
fn the_tiny_model_through_llama_server_runs_to_an_unsolved_answer() {
    let Some(server) = serve(&tiny_model()) else {
        return;
    };
    let sandbox = Sandbox::new();
    let json = solve_json(
        &sandbox,
        &[
            "--endpoint",
            server.url(),
            "--max-attempts",
            "2",
            "--max-tokens",
            "4000",
        ],
    );
    assert_eq!(json["passed"], false, "{json:#}");
    assert_eq!(json["visible_tests"].as_array().unwrap().len(), 3);
}

#[test]
fn an_endpoint_where_nothing_listens_is_named() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let task = repo().join("examples/tasks/second_largest.toml");
    let out = Sandbox::new().run(&["solve", task.to_str().unwrap(), "--endpoint", &url]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("model server {url}")), "{err}");
    assert!(err.contains("is the server running?"), "{err}");
}

/// `egcfg bench --endpoint` runs, and its run is keyed by the model the
/// server reports, not by the `--model` default it never loaded.
#[test]
fn a_bench_on_a_served_model_is_keyed_by_that_model() {
    let Some(server) = serve(&tiny_model()) else {
        return;
    };
    let sandbox = Sandbox::new();
    let out = sandbox.run(&[
        "bench",
        "--method",
        "egcfg",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "1",
        "--max-attempts",
        "1",
        "--max-tokens",
        "4000",
        "--endpoint",
        server.url(),
        "--db",
        "runs.sqlite",
    ]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("served:tiny-llama.gguf"), "{all}");
    assert!(!all.contains("qwen2.5-coder"), "{all}");
}

/// The arguments of a three-task bench of the tiny model on `url`.
fn bench_args(url: &str) -> Vec<&str> {
    vec![
        "bench",
        "--method",
        "egcfg",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "3",
        "--max-attempts",
        "1",
        "--max-tokens",
        "4000",
        "--endpoint",
        url,
        "--db",
        "runs.sqlite",
    ]
}

/// A server killed as soon as the first task is recorded stops the bench
/// with an error naming it; the task it cut off is not recorded (neither
/// failed nor unrunnable), so a rerun on a live server solves it.
#[test]
fn a_server_dying_mid_bench_stops_the_run_and_a_rerun_resumes_the_cut_off_task() {
    let Some(mut server) = serve(&tiny_model()) else {
        return;
    };
    let sandbox = Sandbox::new();
    let mut bench = sandbox
        .command(&bench_args(server.url()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run egcfg");
    let mut err = String::new();
    let mut finished = 0;
    for line in BufReader::new(bench.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with('[') && line.contains("/3] ") {
            finished += 1;
            if finished == 1 {
                server.kill();
            }
        }
        err.push_str(&line);
        err.push('\n');
    }
    assert!(!bench.wait().unwrap().success(), "{err}");
    assert!(
        err.contains(&format!("model server {}", server.url())),
        "{err}"
    );
    assert!(err.contains("is not recorded; resume the run"), "{err}");

    let live = serve(&tiny_model()).unwrap();
    let out = sandbox.run(&bench_args(live.url()));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains(&format!(
            "{} recorded now, {finished} already done",
            3 - finished
        )),
        "only the {finished} task(s) finished before the kill are kept: {all}"
    );
}

/// `egcfg generate --endpoint` writes, a line per request, the text the
/// local engine writes greedily from the same model file. The prompt is raw:
/// a chat prompt with no system message renders differently, because
/// llama-server applies the model's full Jinja template (Qwen's adds a
/// default system message) where the local engine applies llama.cpp's
/// built-in ChatML, which adds none.
#[test]
fn generate_through_llama_server_writes_the_local_engines_text() {
    let Some((model, server)) = serve_default_model() else {
        return;
    };
    let sandbox = Sandbox::new();
    let prompt = "def square(x):\n    \"\"\"Return the square of x.\"\"\"";
    let generate = |how: &[&str]| {
        let args = ["generate", prompt, "--raw", "--max-tokens", "48"];
        let out = sandbox.run(&[&args[..], how].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let served = generate(&["--endpoint", server.url()]);
    let local = generate(&["--model", &model, "--threads", "1"]);
    assert!(served.lines().count() > 1, "{served}");
    assert_eq!(served, local);
}

/// A three-task bench of the tiny model on `url` with two tasks in flight
/// and two attempts per task, into `runs.sqlite`.
fn bench_in_flight(sandbox: &Sandbox, url: &str) -> egcfg_bench::Store {
    let out = sandbox.run(&[
        "bench",
        "--method",
        "egcfg",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "3",
        "--max-attempts",
        "2",
        "--max-tokens",
        "4000",
        "--endpoint",
        url,
        "--tasks-in-flight",
        "2",
        "--db",
        "runs.sqlite",
    ]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("3 recorded now"), "{all}");
    egcfg_bench::Store::open_read_only(&sandbox.path().join("runs.sqlite")).unwrap()
}

/// Two tasks in flight on one server: every task is recorded once, with
/// all its attempts.
#[test]
fn a_bench_with_two_tasks_in_flight_records_each_task_once() {
    let Some(server) = serve(&tiny_model()) else {
        return;
    };
    let sandbox = Sandbox::new();
    let store = bench_in_flight(&sandbox, server.url());
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    let results = store.results(runs[0].id).unwrap();
    let mut ids: Vec<&str> = results.iter().map(|r| r.task_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["Mbpp/511", "Mbpp/512", "Mbpp/513"]);
    for result in &results {
        assert!(!result.solution.attempts.is_empty(), "{}", result.task_id);
        assert!(
            result.solution.attempts.iter().all(|a| a.gamma.is_some()),
            "{}",
            result.task_id
        );
    }
}

/// What the server was asked is recorded per task and per attempt, and
/// `egcfg report` shows it with requests per generated token.
#[test]
fn a_served_bench_records_its_requests_and_the_report_shows_them() {
    let Some(server) = serve(&tiny_model()) else {
        return;
    };
    let sandbox = Sandbox::new();
    let store = bench_in_flight(&sandbox, server.url());
    let results = store.results(store.runs().unwrap()[0].id).unwrap();
    for result in &results {
        let task = result.solution.cost.usage;
        assert!(task.requests > 0 && task.generated_tokens > 0, "{task:?}");
        let attempts = result
            .solution
            .attempts
            .iter()
            .fold(egcfg_bench::ServerUsage::default(), |sum, a| {
                sum.plus(&a.usage)
            });
        assert!(attempts.requests > 0, "{}", result.task_id);
        assert!(attempts.requests <= task.requests, "{attempts:?} {task:?}");
    }
    let out = sandbox.run(&["report", "runs.sqlite"]);
    let report = stdout(&out);
    assert!(
        report.contains("What the model server was asked"),
        "{report}"
    );
    assert!(report.contains("| all tasks | 3 | - |"), "{report}");
    assert!(report.contains("| γ = "), "a row per γ: {report}");
}
