//! `--method sample-then-egcfg`: sampling under a share of the budget, then
//! EG-CFG's guided attempts, through the binary.

use egcfg_bench::Store;

use crate::util::{attempt_names, repo, solve_json, success, tiny_model, Sandbox};

#[test]
fn solve_samples_its_share_of_the_attempts_then_guides_without_the_greedy_twin() {
    let sandbox = Sandbox::new();
    let task = repo().join("examples/tasks/second_largest.toml");
    let json = solve_json(
        &sandbox,
        &task,
        &[
            "--method",
            "sample-then-egcfg",
            "--max-attempts",
            "4",
            "--sample-share",
            "0.5",
            "--max-tokens",
            "0",
        ],
    );
    let names = attempt_names(&json);
    // The tiny random model passes nothing: two answers (half the cap),
    // greedy first, then the default grid's guided attempts, its greedy
    // attempt left out because sampling's first answer is the same decode.
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names[0].starts_with("sample0_t0p1_ln"), "{names:?}");
    assert!(names[1].starts_with("sample1_"), "{names:?}");
    assert!(names[2..].iter().all(|n| n.ends_with("@g1")), "{names:?}");
}

#[test]
fn bench_keys_the_run_by_its_share_and_stays_within_the_budget() {
    let sandbox = Sandbox::new();
    let budget = 3000u64;
    let bench = |share: &str| {
        success(&sandbox.run(&[
            "bench",
            "--dataset",
            "mbpp:validation",
            "--limit",
            "1",
            "--method",
            "sample-then-egcfg",
            "--sample-share",
            share,
            "--max-tokens",
            &budget.to_string(),
            "--model",
            tiny_model().to_str().unwrap(),
            "--threads",
            "1",
            "--db",
            "runs.sqlite",
        ]));
    };
    bench("0.5");
    bench("0.25");
    let store = Store::open_read_only(&sandbox.path().join("runs.sqlite")).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 2, "each share is a run of its own");
    let shares: Vec<f64> = runs
        .iter()
        .map(|r| r.key.config["sample_share"].as_f64().unwrap())
        .collect();
    assert_eq!(shares, [0.5, 0.25]);
    for run in &runs {
        assert_eq!(run.key.method, "sample-then-egcfg");
        let results = store.results(run.id).unwrap();
        assert_eq!(results.len(), 1);
        let solution = &results[0].solution;
        let sampled = solution
            .attempts
            .iter()
            .filter(|a| a.label.starts_with("sample"))
            .count();
        let guided = solution.attempts.len() - sampled;
        // Nothing passes: sampling spends its share, the guided attempts
        // what is left, and the whole stays within a step of the budget.
        assert!(sampled > 1 && guided > 0, "{:?}", solution.attempts);
        let spent = solution.records["cost"]["forward_tokens"].as_u64().unwrap();
        assert!(spent >= budget / 2 && spent < budget + 512, "{spent}");
    }
}
