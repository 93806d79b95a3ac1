//! Flags, help and the errors a user meets first.

use std::process::Stdio;

use crate::util::{failure, stderr, success, Sandbox};

#[test]
fn help_names_every_subcommand() {
    let out = Sandbox::new().run(&["--help"]);
    let text = success(&out);
    for command in ["solve", "generate", "model", "bench", "report", "doctor"] {
        assert!(text.contains(command), "--help lacks {command}:\n{text}");
    }
}

#[test]
fn malformed_task_file_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let task = sandbox.write("broken.toml", "prompt = [\n");
    let out = sandbox.run(&[
        "solve",
        task.to_str().unwrap(),
        "--model",
        "/nonexistent.gguf",
    ]);
    let err = failure(&out);
    assert!(
        err.contains("broken.toml") && err.contains("malformed"),
        "{err}"
    );
}

#[test]
fn unknown_model_lists_the_known_ones() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["generate", "--model", "no-such-model", "hello"]);
    let err = failure(&out);
    assert!(
        err.contains("no-such-model") && err.contains("qwen2.5-coder-0.5b-instruct"),
        "{err}"
    );
}

#[test]
fn corrupt_model_file_is_refused() {
    let sandbox = Sandbox::new();
    let bad = sandbox.write("bad.gguf", "definitely not a gguf file");
    let out = sandbox.run(&["generate", "--model", bad.to_str().unwrap(), "hello"]);
    let err = failure(&out);
    assert!(err.contains("bad.gguf"), "{err}");
}

#[test]
fn model_list_shows_the_registry() {
    let out = Sandbox::new().run(&["model", "list"]);
    let text = success(&out);
    for name in [
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "smollm2-135m-instruct",
    ] {
        assert!(text.contains(name), "{text}");
    }
    assert!(
        text.contains("not installed"),
        "fresh home has nothing installed:\n{text}"
    );
}

#[test]
fn doctor_reports_every_layer() {
    let out = Sandbox::new().run(&["doctor"]);
    let text = success(&out);
    for layer in [
        "rlimits",
        "seccomp",
        "landlock",
        "namespaces",
        "unprivileged",
        "minimum:",
    ] {
        assert!(text.contains(layer), "{text}");
    }
    assert!(text.contains("per execution"), "the scratch bound: {text}");
}

#[test]
fn generate_runs_on_the_tiny_model() {
    let sandbox = Sandbox::new();
    let model = crate::util::tiny_model();
    let out = sandbox.run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "1",
        "--max-tokens",
        "8",
        "def add(a, b):",
    ]);
    success(&out);
    assert!(stderr(&out).contains("generated"), "{}", stderr(&out));
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // `egcfg bench --list-datasets | head -1`, with the reader gone before
    // the first line: egcfg stops writing and succeeds, with no panic.
    let mut child = Sandbox::new()
        .command(&["bench", "--list-datasets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run egcfg");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for egcfg");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}
