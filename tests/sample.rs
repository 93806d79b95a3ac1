//! `--method sample`, the equal-budget baseline, through the binary.

use egcfg_bench::{RunId, Store};

use crate::util::{attempt_names, repo, solve_json, stderr, success, tiny_model, Sandbox};

#[test]
fn bench_sample_records_every_answer_under_the_token_budget() {
    let sandbox = Sandbox::new();
    let model = tiny_model();
    let budget = 2500u64;
    let out = sandbox.run(&[
        "bench",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "2",
        "--method",
        "sample",
        "--max-tokens",
        &budget.to_string(),
        "--concurrency",
        "3",
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "1",
        "--db",
        "runs.sqlite",
    ]);
    success(&out);
    let store = Store::open_read_only(&sandbox.path().join("runs.sqlite")).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].key.method, "sample");
    assert_eq!(runs[0].key.config["width"], 3);
    let results = store.results(runs[0].id).unwrap();
    assert_eq!(results.len(), 2);
    for result in &results {
        let attempts = &result.solution.attempts;
        // The tiny random model never passes, so answers are drawn until
        // the budget ends them: greedy first, then sampled ones.
        assert!(attempts.len() > 1, "{attempts:?}");
        assert!(attempts.iter().all(|a| a.label.starts_with("sample")));
        let records = &result.solution.records;
        let spent = records["cost"]["forward_tokens"].as_u64().unwrap();
        let styles: std::collections::BTreeSet<&str> = records["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["spec"]["config"]["style"].as_str().unwrap())
            .collect();
        assert!(spent >= budget, "the budget was spent: {spent}");
        assert!(spent < budget + 512, "one step past it at most: {spent}");
        assert!(styles.len() == 2 || attempts.len() < 3, "{styles:?}");
        // The answers the budget cut are counted as tokens on no program.
        let no_program = result.solution.cost.no_program_tokens.unwrap();
        assert_eq!(records["cost"]["no_program_tokens"], no_program);
    }
    let report = sandbox.run(&["report", "runs.sqlite"]);
    let table = success(&report);
    let row = table.lines().find(|l| l.starts_with("| sample")).unwrap();
    assert!(
        row.ends_with("(n=2) |"),
        "the no-program share is reported: {row}"
    );
}

#[test]
fn solve_sample_prints_its_answers_as_attempts() {
    let sandbox = Sandbox::new();
    let task = repo().join("examples/tasks/second_largest.toml");
    let json = solve_json(
        &sandbox,
        &task,
        &[
            "--method",
            "sample",
            "--max-attempts",
            "3",
            "--max-tokens",
            "0",
        ],
    );
    let names = attempt_names(&json);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[0].starts_with("sample0_t0p1_ln"), "{names:?}");
    assert!(names[1].ends_with("_lci_ln"), "{names:?}");
    // Without a budget every answer ends by its own rule, and so no token
    // went to an answer without a program.
    for attempt in json["attempts"].as_array().unwrap() {
        assert_eq!(attempt["stop"], "finished", "{attempt}");
    }
    assert_eq!(json["no_program_share"], 0.0);
    assert_eq!(json["cost"]["no_program_tokens"], 0);
}

/// `egcfg bench --method sample` on the tiny model with `args`, into `db`.
fn bench_sample(sandbox: &Sandbox, db: &str, args: &[&str]) {
    success(&sandbox.bench_tiny("mbpp:validation", "sample", db, args));
}

/// What a run at one budget must agree on, task by task, however it was
/// made: everything but the wall times.
fn essentials(store: &Store, run: RunId) -> Vec<serde_json::Value> {
    let results = store.results(run).unwrap();
    results
        .iter()
        .map(|r| {
            let s = &r.solution;
            let labels: Vec<(&str, &str)> = (s.attempts.iter())
                .map(|a| (a.label.as_str(), a.program.as_str()))
                .collect();
            let stops: Vec<&serde_json::Value> = (s.records["attempts"].as_array().unwrap())
                .iter()
                .map(|a| &a["stop"])
                .collect();
            let scores: Vec<(bool, usize, &Option<Vec<bool>>)> = (r.scores.iter())
                .map(|s| (s.passed, s.tests_passed, &s.attempts_passed))
                .collect();
            serde_json::json!({
                "task": r.task_id,
                "program": s.program,
                "attempts": labels,
                "stops": stops,
                "cost": s.cost,
                "winner": s.records["winner"],
                "forward_tokens": s.records["cost"]["forward_tokens"],
                "scores": scores,
            })
        })
        .collect()
}

#[test]
fn bench_runs_the_largest_sample_budget_and_derives_the_smaller_ones_as_a_real_run_gives_them() {
    let sandbox = Sandbox::new();
    bench_sample(
        &sandbox,
        "curve.sqlite",
        &["--limit", "2", "--max-tokens", "4000,3200,2000"],
    );
    let store = Store::open_read_only(&sandbox.path().join("curve.sqlite")).unwrap();
    let runs = store.runs().unwrap();
    let budgets: Vec<u64> = (runs.iter())
        .map(|r| r.key.config["budget"]["max_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(budgets, [4000, 2000, 3200], "the largest runs first");
    for derived in &runs[1..] {
        let from = &derived.key.config["derived_from"];
        assert_eq!(from["config_hash"], runs[0].config_hash.as_str());
        assert_eq!(from["max_tokens"], 4000);
        assert_eq!(derived.tasks_done, 2);
    }
    assert!(runs[0].key.config.get("derived_from").is_none());
    // Both prompt heads take about 1,800 tokens of the tiny model's, and
    // its answers run to the 512-token cap: at 2,000 the first two answers
    // are cut, at 3,200 they end and are checked, and the next are cut.
    // The same budgets run for real give the same results.
    for (budget, derived) in [("2000", &runs[1]), ("3200", &runs[2])] {
        let db = format!("real{budget}.sqlite");
        bench_sample(&sandbox, &db, &["--limit", "2", "--max-tokens", budget]);
        let real = Store::open_read_only(&sandbox.path().join(&db)).unwrap();
        let real_run = real.runs().unwrap()[0].id;
        assert_eq!(
            essentials(&store, derived.id),
            essentials(&real, real_run),
            "budget {budget}"
        );
    }
    drop(store);
    // A later sitting that finishes more tasks of the largest run gives
    // them their derived rows.
    bench_sample(
        &sandbox,
        "curve.sqlite",
        &["--limit", "3", "--max-tokens", "4000,3200,2000"],
    );
    let store = Store::open_read_only(&sandbox.path().join("curve.sqlite")).unwrap();
    let done: Vec<usize> = store.runs().unwrap().iter().map(|r| r.tasks_done).collect();
    assert_eq!(done, [3, 3, 3]);
    drop(store);
    let report = sandbox.run(&["report", "curve.sqlite", "--html", "curve.html"]);
    let table = success(&report);
    assert!(
        table.contains("Budget curve, on the 3 task(s) every run above finished"),
        "{table}"
    );
    let from = &runs[0].config_hash;
    for row in ["| 2000 | {from} |", "| 3200 | {from} |", "| 4000 | - |"] {
        let row = row.replace("{from}", from);
        assert!(table.contains(&row), "{row} in {table}");
    }
    assert!(table.contains("A derived run was not run"), "{table}");
    let html = std::fs::read_to_string(sandbox.path().join("curve.html")).unwrap();
    assert!(html.contains("strict pass@1 (%) against forward tokens per task"));
    assert!(html.contains("<polyline"));
    assert!(html.contains("A derived run was not run"));

    let model = tiny_model();
    let refused = sandbox.run(&[
        "bench",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "1",
        "--max-tokens",
        "2500,1500",
        "--samples-out",
        "s.jsonl",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("give one --max-tokens budget"));
}

#[test]
fn a_largest_run_recorded_before_budget_checks_were_kept_runs_every_budget() {
    let sandbox = Sandbox::new();
    bench_sample(
        &sandbox,
        "old.sqlite",
        &["--limit", "1", "--max-tokens", "4000"],
    );
    // As a binary from before the checks were kept would have left it.
    let db = rusqlite::Connection::open(sandbox.path().join("old.sqlite")).unwrap();
    db.execute(
        "UPDATE results SET records = json_remove(records, '$.step_checks')",
        [],
    )
    .unwrap();
    drop(db);
    let model = tiny_model();
    let out = sandbox.run(&[
        "bench",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "1",
        "--method",
        "sample",
        "--max-tokens",
        "4000,2000",
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "1",
        "--db",
        "old.sqlite",
    ]);
    success(&out);
    assert!(
        stderr(&out).contains("every budget runs for real"),
        "{}",
        stderr(&out)
    );
    let store = Store::open_read_only(&sandbox.path().join("old.sqlite")).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[1].key.config.get("derived_from").is_none());
    assert_eq!(runs[1].tasks_done, 1);
    assert!(store.unrunnable(runs[1].id).unwrap().is_empty());
}
