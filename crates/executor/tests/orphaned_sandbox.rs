//! A sandbox never outlives the process that started it.
//!
//! A fork-server is started with a parent-death signal, but the server's
//! own set-up changes its credentials (the group switch when the manager
//! is root), which clears that signal. Before it was set again, a manager
//! killed with SIGTERM or SIGKILL (a user stopping `egcfg bench`) left its
//! servers behind, adopted by init, still running the programs queued for
//! them, at 30 s a test for MBPP+'s hidden suites.
//!
//! The test runs its own binary a second time as the manager, lets it start
//! a program that never ends, kills it with SIGKILL (no destructor runs) and
//! checks that every process below it goes too. It has a binary of its own
//! because it reads the whole process tree below the manager.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use egcfg_executor::CheckRequest;
use egcfg_task::TestCase;

mod support;

/// Set in the copy of this binary that plays the manager.
const MANAGER_ROLE: &str = "EGCFG_TEST_ORPHAN_MANAGER";

/// What the manager prints before the list of processes below it.
const READY: &str = "sandbox processes:";

/// How long the sandbox may take to go once its manager is killed.
const GRACE: Duration = Duration::from_secs(10);

/// The manager's part: starts an executor, runs a test that never ends
/// (with a minute's timeout, far longer than `GRACE`), reports the
/// processes below it once the test runs, and waits to be killed.
fn be_the_manager() -> ! {
    let scratch = tempfile::tempdir().unwrap();
    let executor = support::one_server_executor(scratch.path());
    std::thread::spawn(move || {
        executor.check(&CheckRequest {
            program: "def spin():\n    while True:\n        pass".into(),
            setup: None,
            tests: (0..3)
                .map(|_| TestCase::Assert {
                    code: "assert spin()".into(),
                })
                .collect(),
            timeout: Some(Duration::from_secs(60)),
        })
    });
    // Long enough for the server to fork the test's child and start it.
    std::thread::sleep(Duration::from_secs(2));
    let below = support::descendants(std::process::id() as i32);
    println!(
        "{READY} {}",
        below
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::thread::sleep(Duration::from_secs(600));
    std::process::exit(1);
}

#[test]
fn killing_the_manager_ends_its_servers_and_their_programs() {
    if std::env::var_os(MANAGER_ROLE).is_some() {
        be_the_manager();
    }
    let mut manager = Command::new(std::env::current_exe().unwrap())
        .args([
            "killing_the_manager_ends_its_servers_and_their_programs",
            "--exact",
            "--nocapture",
        ])
        .env(MANAGER_ROLE, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the manager starts");
    let stdout = BufReader::new(manager.stdout.take().unwrap());
    let below: Vec<i32> = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix(READY).map(|pids| {
                pids.split_whitespace()
                    .map(|pid| pid.parse().unwrap())
                    .collect()
            })
        })
        .expect("the manager lists its sandbox processes");
    // A server, maybe its relay, and the child running the test.
    assert!(below.len() >= 2, "processes below the manager: {below:?}");

    manager.kill().unwrap();
    manager.wait().unwrap();
    let killed = Instant::now();
    let mut left = below.clone();
    while !left.is_empty() && killed.elapsed() < GRACE {
        std::thread::sleep(Duration::from_millis(100));
        left.retain(|&pid| support::is_alive(pid));
    }
    let survivors: Vec<String> = left
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|comm| comm.trim().to_string())
        .collect();
    for &pid in &left {
        // SAFETY: a plain signal, so that a failure leaves nothing running.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "{} of the {} processes below the killed manager still run after {GRACE:?}: {left:?} {survivors:?}",
        left.len(),
        below.len()
    );
}
