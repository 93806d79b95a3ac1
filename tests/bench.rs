//! `egcfg bench` and `egcfg report` as a user runs them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use egcfg_bench::Store;

use crate::util::{failure, stderr, success, tiny_model, Sandbox};

/// A small EG-CFG grid so that each task takes a noticeable time on the
/// tiny model (candidates are sampled, prepared and traced).
const GRID: &str = r#"
[[agent]]
t = 0.9
s = 2
d = 2
k = 1
style = "instruct"
gamma = [0.0, 1.0]
"#;

fn bench_args<'a>(db: &'a str, grid: &'a str, model: &'a str, limit: &'a str) -> Vec<&'a str> {
    vec![
        "bench",
        "--dataset",
        "mbpp:validation",
        "--limit",
        limit,
        "--method",
        "egcfg",
        "--agents",
        grid,
        "--model",
        model,
        "--threads",
        "1",
        "--db",
        db,
    ]
}

/// Task ids finished in every run of the database, with repeats kept.
fn finished(db: &Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let Ok(store) = Store::open_read_only(db) else {
        return Vec::new();
    };
    let runs = store.runs().unwrap_or_default();
    runs.iter()
        .flat_map(|run| store.results(run.id).unwrap_or_default())
        .map(|result| result.task_id)
        .collect()
}

#[test]
fn killed_run_resumes_without_losing_or_repeating_tasks() {
    let sandbox = Sandbox::new();
    let grid = sandbox.write("grid.toml", GRID);
    let db = sandbox.path().join("results.sqlite");
    let model = tiny_model();
    let (grid, model, db_arg) = (
        grid.to_str().unwrap(),
        model.to_str().unwrap(),
        db.to_str().unwrap(),
    );
    let total = 6;
    let limit = total.to_string();
    let args = bench_args(db_arg, grid, model, &limit);

    // Start, wait for the first recorded task, then kill -9 mid-run.
    let mut child = sandbox
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start egcfg bench");
    let started = Instant::now();
    while finished(&db).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "no task was recorded within 240 s"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("bench exited before the kill: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let before = finished(&db);
    assert!(
        before.len() < total,
        "the run finished before it could be killed; the test proves nothing"
    );

    // The same command again finishes the rest and redoes nothing.
    let out = sandbox.run(&args);
    success(&out);
    let after = finished(&db);
    let unique: BTreeSet<&String> = after.iter().collect();
    assert_eq!(
        after.len(),
        total,
        "every task recorded exactly once: {after:?}"
    );
    assert_eq!(unique.len(), total, "no task recorded twice: {after:?}");
    assert!(before.iter().all(|id| after.contains(id)), "nothing lost");
    let err = stderr(&out);
    let done = format!("{} already done", before.len());
    assert!(
        err.contains(&done),
        "resumed run should skip {done}:\n{err}"
    );

    // The report reads what the runs wrote.
    let report = sandbox.run(&["report", db_arg, "--html", "report.html"]);
    let text = success(&report);
    assert!(text.contains("mbpp"), "{text}");
    let html = std::fs::read_to_string(sandbox.path().join("report.html")).unwrap();
    assert!(html.contains("<svg"), "the HTML report has charts");
}

#[test]
fn list_datasets_shows_counts_and_licences() {
    let out = Sandbox::new().run(&["bench", "--list-datasets"]);
    let text = success(&out);
    for needle in [
        "mbpp+ (mbppplus)",
        "test* 500",
        "humaneval",
        "CC BY 4.0",
        "MIT",
        "partial",
        "mbpp-et-partial and mbpp+ where their data hold the task",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
}

#[test]
fn report_of_a_missing_database_says_how_to_make_one() {
    let out = Sandbox::new().run(&["report", "nothing.sqlite"]);
    let err = failure(&out);
    assert!(err.contains("egcfg bench"), "{err}");
}
