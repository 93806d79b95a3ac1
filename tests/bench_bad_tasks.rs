//! `egcfg bench` over tasks that cannot run: one such task never stops
//! the run, and is reported rather than scored as a failure.

use egcfg_bench::Store;

use crate::util::{stderr, success, Sandbox};

/// An MBPP-style task line whose prompt is `words` words long.
fn task(id: &str, words: usize) -> String {
    let text = format!(
        "Write a function f that returns 1. {}",
        "Note. ".repeat(words)
    );
    serde_json::json!({
        "task_id": id,
        "text": text,
        "test_list": ["assert f() == 1"],
    })
    .to_string()
}

#[test]
fn a_task_whose_prompt_does_not_fit_is_recorded_and_the_run_goes_on() {
    let sandbox = Sandbox::new();
    let tasks = [task("short-1", 0), task("huge", 3000), task("short-2", 0)].join("\n");
    let bench = || sandbox.bench_tiny_baseline(&tasks, "runs.db", &["--ctx", "2048"]);

    let first = bench();
    success(&first);
    let text = stderr(&first);
    assert!(text.contains("task huge cannot run"), "{text}");
    assert!(text.contains("1 task(s) could not run"), "{text}");

    let store = Store::open(&sandbox.path().join("runs.db")).unwrap();
    let run = store.runs().unwrap()[0].id;
    let scored: Vec<String> = store
        .results(run)
        .unwrap()
        .into_iter()
        .map(|r| r.task_id)
        .collect();
    assert_eq!(scored, ["short-1", "short-2"], "the tasks after it ran");
    let unrunnable = store.unrunnable(run).unwrap();
    assert_eq!(unrunnable.len(), 1);
    assert_eq!(unrunnable[0].task_id, "huge");
    assert!(unrunnable[0].reason.contains("--ctx"), "{unrunnable:?}");
    drop(store);

    // A rerun does not stop at it (nor retry it), and the report shows it.
    let again = bench();
    success(&again);
    assert!(!stderr(&again).contains("cannot run"), "{}", stderr(&again));
    let report = success(&sandbox.run(&["report", "runs.db"]));
    assert!(
        report.contains("1 task(s) could not run") && report.contains("- huge: the prompt needs"),
        "{report}"
    );
}

#[test]
fn a_line_that_holds_no_task_is_named_and_the_others_run() {
    let sandbox = Sandbox::new();
    let tasks = [
        task("first", 0),
        "{not json".to_string(),
        serde_json::json!({"task_id": "no-tests", "text": "t", "test_list": []}).to_string(),
        task("first", 0),
        task("last", 0),
    ]
    .join("\n");
    let run = sandbox.bench_tiny_baseline(&tasks, "runs.db", &["--max-tokens", "200"]);
    success(&run);
    let text = stderr(&run);
    for (line, why) in [
        (2, "not JSON"),
        (3, "test_list is empty"),
        (4, "task_id first repeats line 1's"),
    ] {
        assert!(
            text.contains(&format!("tasks.jsonl, line {line}: skipped, {why}")),
            "line {line}: {text}"
        );
    }
    let store = Store::open(&sandbox.path().join("runs.db")).unwrap();
    let run = store.runs().unwrap()[0].id;
    let scored: Vec<String> = (store.results(run).unwrap().into_iter())
        .map(|r| r.task_id)
        .collect();
    assert_eq!(scored, ["first", "last"]);
}
