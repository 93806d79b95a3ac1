//! Samples in and out: `egcfg bench --samples-out` and `egcfg evaluate`,
//! and the progress lines a run prints when nobody watches a terminal.

use std::path::Path;

use egcfg_bench::{Store, TaskResult};

use crate::util::{failure, stderr, success, tiny_model, Sandbox};

/// The results of the run of `method` in `db`.
fn run_results(db: &Path, method: &str) -> Vec<TaskResult> {
    let store = Store::open_read_only(db).unwrap();
    let run = store
        .runs()
        .unwrap()
        .into_iter()
        .find(|r| r.key.method == method)
        .unwrap_or_else(|| panic!("no {method} run"));
    store.results(run.id).unwrap()
}

/// Per task and suite: whether it passed and how many tests passed.
fn verdicts(results: &[TaskResult]) -> Vec<(String, String, bool, usize)> {
    results
        .iter()
        .flat_map(|r| {
            r.scores
                .iter()
                .map(|s| (r.task_id.clone(), s.suite.clone(), s.passed, s.tests_passed))
        })
        .collect()
}

/// The real model when the test suite has one (so that some tasks pass),
/// else the tiny fixture.
fn model() -> String {
    std::env::var("EGCFG_E2E_MODEL").unwrap_or_else(|_| tiny_model().to_str().unwrap().to_string())
}

#[test]
fn evaluate_reproduces_the_pass_counts_of_the_run_that_wrote_the_samples() {
    let sandbox = Sandbox::new();
    let model = model();
    let bench = sandbox.run(&[
        "bench",
        "--dataset",
        "mbpp:validation",
        // The real model passes Mbpp/514 and fails Mbpp/511.
        "--ids",
        "Mbpp/511,Mbpp/514",
        "--method",
        "baseline",
        "--model",
        &model,
        "--threads",
        "2",
        "--db",
        "runs.sqlite",
        "--samples-out",
        "samples.jsonl",
    ]);
    success(&bench);
    // stderr is a pipe here, as in CI: one line per finished task.
    let log = stderr(&bench);
    for id in ["[1/2] Mbpp/511: ", "[2/2] Mbpp/514: "] {
        assert!(log.contains(id), "no progress line {id:?}:\n{log}");
    }
    assert!(log.contains("attempt(s)") && log.contains("pass "), "{log}");

    let samples = std::fs::read_to_string(sandbox.path().join("samples.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = samples
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{samples}");
    assert_eq!(lines[0]["task_id"], "Mbpp/511");
    assert!(lines[1]["solution"].is_string());

    let evaluate = sandbox.run(&[
        "evaluate",
        "--dataset",
        "mbpp:validation",
        "samples.jsonl",
        "--db",
        "runs.sqlite",
    ]);
    success(&evaluate);
    let db = sandbox.path().join("runs.sqlite");
    let (bench, evaluated) = (run_results(&db, "baseline"), run_results(&db, "samples"));
    assert_eq!(verdicts(&evaluated), verdicts(&bench));
    if std::env::var("EGCFG_E2E_MODEL").is_ok() {
        assert!(
            bench.iter().any(|r| r.scores[0].passed),
            "the real model should pass a task, or this test compares only failures"
        );
    }
}

/// HumanEval's prompt of HumanEval/0 ends where the body begins.
const CLOSE_ELEMENTS: &str = "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n";

#[test]
fn evaluate_scores_samples_of_other_tools_in_both_formats() {
    let sandbox = Sandbox::new();
    let samples = [
        serde_json::json!({"task_id": "HumanEval/0", "completion": CLOSE_ELEMENTS}),
        serde_json::json!({"task_id": "HumanEval/0", "completion": "    return False\n"}),
        serde_json::json!({"task_id": "HumanEval/2", "solution": "def truncate_number(number: float) -> float:\n    return number % 1.0\n"}),
        serde_json::json!({"task_id": "HumanEval/4", "solution": "def mean_absolute_deviation(numbers):\n    return 0.0\n"}),
    ];
    let text: String = samples.iter().map(|s| format!("{s}\n")).collect();
    sandbox.write("samples.jsonl", &text);
    let out = sandbox.run(&[
        "evaluate",
        "--dataset",
        "humaneval",
        "samples.jsonl",
        "--name",
        "hand-written",
        "--db",
        "he.sqlite",
    ]);
    success(&out);
    let results = run_results(&sandbox.path().join("he.sqlite"), "samples");
    let passed: Vec<(&str, bool, usize)> = results
        .iter()
        .map(|r| {
            let score = r.score("humaneval").unwrap();
            (r.task_id.as_str(), score.passed, r.solution.attempts.len())
        })
        .collect();
    assert_eq!(
        passed,
        vec![
            ("HumanEval/0", true, 2),
            ("HumanEval/2", true, 1),
            ("HumanEval/4", false, 1)
        ]
    );
    let first = results[0].score("humaneval").unwrap();
    assert_eq!(
        first.attempts_passed,
        Some(vec![true, false]),
        "each sample of a task is scored"
    );
    let printed = success(&out);
    assert!(
        printed.contains("| samples |") && printed.contains("@1 50.0% (n=3)"),
        "evaluate prints the scores with pass@k:\n{printed}"
    );
    let report = success(&sandbox.run(&["report", "he.sqlite"]));
    assert!(
        report.contains("hand-written") && report.contains("66.7% (2/3)"),
        "{report}"
    );
}

#[test]
fn a_malformed_sample_or_an_unknown_task_is_named_by_its_line() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "bad.jsonl",
        "{\"task_id\": \"HumanEval/0\", \"solution\": \"x = 1\"}\n{\"task_id\": \"HumanEval/1\"}\n",
    );
    let err = failure(&sandbox.run(&["evaluate", "--dataset", "humaneval", "bad.jsonl"]));
    assert!(
        err.contains("bad.jsonl, line 2") && err.contains("neither `solution`"),
        "{err}"
    );
    sandbox.write(
        "unknown.jsonl",
        "{\"task_id\": \"HumanEval/0\", \"solution\": \"x = 1\"}\n\n{\"task_id\": \"Mbpp/2\", \"solution\": \"x = 1\"}\n",
    );
    let err = failure(&sandbox.run(&["evaluate", "--dataset", "humaneval", "unknown.jsonl"]));
    assert!(
        err.contains("unknown.jsonl, line 3: task Mbpp/2 is not in humaneval"),
        "{err}"
    );
    assert!(
        !sandbox.path().join("egcfg-bench.sqlite").exists()
            || Store::open_read_only(&sandbox.path().join("egcfg-bench.sqlite"))
                .unwrap()
                .runs()
                .unwrap()
                .is_empty(),
        "a refused file records no run"
    );
}

#[test]
fn samples_out_never_overwrites_a_file_that_is_not_earlier_samples() {
    let sandbox = Sandbox::new();
    let precious = sandbox.write("notes.jsonl", "{\"mine\": true}\n");
    let model = tiny_model();
    let err = failure(&sandbox.run(&[
        "bench",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "1",
        "--method",
        "baseline",
        "--model",
        model.to_str().unwrap(),
        "--samples-out",
        "notes.jsonl",
    ]));
    assert!(
        err.contains("--samples-out") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(precious).unwrap(),
        "{\"mine\": true}\n"
    );
}
