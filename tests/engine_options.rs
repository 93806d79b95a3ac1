//! Engine settings as a user types them: out-of-range values are named
//! before anything loads, and the context a too-small `--ctx` suggests is
//! one that then works.

use crate::util::{failure, repo, stderr, tiny_model, Sandbox};

/// `egcfg solve` of an example task on the tiny model with `extra` flags.
fn solve(sandbox: &Sandbox, extra: &[&str]) -> std::process::Output {
    let task = repo().join("examples/tasks/run_lengths.json");
    let model = tiny_model();
    let mut args = vec![
        "solve",
        task.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--max-attempts",
        "3",
    ];
    args.extend_from_slice(extra);
    sandbox.run(&args)
}

#[test]
fn zero_threads_or_context_is_refused_as_a_setting_not_a_broken_model() {
    let sandbox = Sandbox::new();
    for (flag, value) in [("--threads", "0"), ("--ctx", "0"), ("--ctx", "-5")] {
        let text = failure(&solve(&sandbox, &[flag, value]));
        assert!(text.contains(flag), "{flag} {value}: {text}");
        assert!(!text.contains("fetch"), "{flag} {value}: {text}");
    }
}

#[test]
fn the_suggested_context_is_one_that_works() {
    let sandbox = Sandbox::new();
    let text = failure(&solve(&sandbox, &["--threads", "1", "--ctx", "64"]));
    let suggested = text
        .split("use --ctx ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no suggestion in: {text}"));
    suggested.parse::<u32>().expect("a number of tokens");

    let output = solve(&sandbox, &["--threads", "1", "--ctx", suggested]);

    // 0: solved, 1: not solved; 2 would be an error such as another
    // context that is too small.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "--ctx {suggested} failed:\n{}",
        stderr(&output)
    );
}
