//! A sandbox that dies is an error, never a verdict on the candidate.
//!
//! The executor here loses its fork-servers (killed) and cannot start new
//! ones (its scratch root is replaced by a file). Before, `prepare` and
//! `call_expression` answered such a failure with `None`, exactly what they
//! answer for a program that does not parse. This test has a binary of its
//! own: it kills every descendant of the test process, which must all
//! be this executor's servers and their relays.

use std::path::Path;

use egcfg_executor::ExecutorError;

mod support;

/// Kills the executor's servers and keeps new ones from starting.
fn kill_sandbox(scratch_parent: &Path) {
    let servers = support::descendants(std::process::id() as i32);
    assert!(!servers.is_empty(), "the executor runs fork-servers");
    for pid in servers {
        // SAFETY: a plain signal to a child of this test process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for entry in std::fs::read_dir(scratch_parent).unwrap().flatten() {
        let root = entry.path();
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::write(&root, "not a directory").unwrap();
    }
}

fn is_sandbox_failure(error: &ExecutorError) -> bool {
    matches!(error, ExecutorError::Sandbox { .. })
}

#[test]
fn a_dead_sandbox_is_an_error_not_a_candidate_that_does_not_parse() {
    let scratch = tempfile::tempdir().unwrap();
    let executor = support::one_server_executor(scratch.path());
    let program = "def f(x):\n    return x".to_string();
    assert_eq!(
        executor.prepare(std::slice::from_ref(&program)).unwrap(),
        vec![Some(program.clone())],
        "a working sandbox prepares the program"
    );

    kill_sandbox(scratch.path());

    let prepared = executor.prepare(std::slice::from_ref(&program));
    assert!(
        prepared.as_ref().is_err_and(is_sandbox_failure),
        "prepare on a dead sandbox: {prepared:?}"
    );
    let call = executor.call_expression("assert f(1) == 1");
    assert!(
        call.as_ref().is_err_and(is_sandbox_failure),
        "call_expression on a dead sandbox: {call:?}"
    );
    let message = call.unwrap_err().to_string();
    assert!(message.contains("sandbox failed"), "{message}");
}
