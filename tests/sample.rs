//! `--method sample`, the equal-budget baseline, through the binary.

use egcfg_bench::Store;

use crate::util::{repo, stderr, stdout, success, tiny_model, Sandbox};

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
    let out = sandbox.run(&[
        "solve",
        task.to_str().unwrap(),
        "--method",
        "sample",
        "--max-attempts",
        "3",
        "--max-tokens",
        "0",
        "--model",
        tiny_model().to_str().unwrap(),
        "--threads",
        "1",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = json["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
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

#[test]
fn bench_runs_several_budgets_into_one_database_and_report_draws_the_curve() {
    let sandbox = Sandbox::new();
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
        "2500,1500",
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "1",
        "--db",
        "curve.sqlite",
    ]);
    success(&out);
    let store = Store::open_read_only(&sandbox.path().join("curve.sqlite")).unwrap();
    let budgets: Vec<u64> = store
        .runs()
        .unwrap()
        .iter()
        .map(|r| r.key.config["budget"]["max_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(budgets, [1500, 2500], "one run per budget, smallest first");
    drop(store);
    let report = sandbox.run(&["report", "curve.sqlite", "--html", "curve.html"]);
    let table = success(&report);
    assert!(
        table.contains("Budget curve, on the 1 task(s) every run above finished"),
        "{table}"
    );
    assert!(table.contains("| mbpp | sample |"), "{table}");
    let html = std::fs::read_to_string(sandbox.path().join("curve.html")).unwrap();
    assert!(html.contains("strict pass@1 (%) against forward tokens per task"));
    assert!(html.contains("<polyline"));

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
