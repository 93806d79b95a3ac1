//! `egcfg solve` end to end.

use crate::util::{attempt_names, repo, stderr, stdout, tiny_model, Sandbox};

/// The real-model run: `scripts/test.sh` fetches the model and sets
/// `EGCFG_E2E_MODEL`; without it (a plain `cargo test`) this test says so
/// and passes vacuously.
#[test]
fn solves_an_example_task_with_the_real_model() {
    let Ok(model) = std::env::var("EGCFG_E2E_MODEL") else {
        eprintln!(
            "EGCFG_E2E_MODEL is not set: skipping the real-model run (scripts/test.sh sets it)"
        );
        return;
    };
    let sandbox = Sandbox::new();
    let task = repo().join("examples/tasks/second_largest.toml");
    // The default method (sampling), then EG-CFG, which runs only when
    // asked for.
    for (method, sampled) in [(&[][..], true), (&["--method", "egcfg"], false)] {
        let args = [
            "solve",
            task.to_str().unwrap(),
            "--model",
            &model,
            "--max-attempts",
            "4",
            "--json",
            "--explain",
        ];
        let out = sandbox.run(&[&args[..], method].concat());
        let names = attempt_names(&check_solved(&out));
        assert!(!names.is_empty());
        let samples = names.iter().filter(|name| name.starts_with("sample"));
        let expected = if sampled { names.len() } else { 0 };
        assert_eq!(samples.count(), expected, "{method:?}: {names:?}");
    }
}

/// The JSON answer of a solve that passed every visible test and printed
/// an `--explain` account on stderr.
fn check_solved(out: &std::process::Output) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap_or_else(|e| {
        panic!(
            "--json output is JSON ({e}):\n{}\n{}",
            stdout(out),
            stderr(out)
        )
    });
    assert_eq!(json["passed"], true, "{json:#}\n{}", stderr(out));
    assert!(out.status.success());
    let code = json["code"].as_str().unwrap();
    assert!(code.contains("def second_largest("), "{code}");
    assert!(json["cost"]["forward_tokens"].as_u64().unwrap() > 0);
    assert!(
        stderr(out).contains("attempt"),
        "--explain prints an account"
    );
    json
}

#[test]
fn tiny_model_solve_reports_visible_results_and_exits_nonzero_when_unsolved() {
    let sandbox = Sandbox::new();
    let task = repo().join("examples/tasks/second_largest.toml");
    let model = tiny_model();
    let out = sandbox.run(&[
        "solve",
        task.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "1",
        "--max-attempts",
        "2",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "--json output is JSON ({e}):\n{}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    // A random-weight model cannot write this function.
    assert_eq!(json["passed"], false);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["visible_tests"].as_array().unwrap().len(), 3);
    assert!(json["attempts"].as_array().unwrap().len() <= 2);
}
