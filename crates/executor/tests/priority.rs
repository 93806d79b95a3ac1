//! The sandbox yields the CPU to the model: its fork-servers and the
//! programs they run are niced 10 steps below the process that started
//! them, so llama.cpp's decode threads keep their cores while candidates
//! run beside them (issue 15).

use egcfg_executor::{Executor, ExecutorConfig, Invocation, MinIsolation, Status, TraceRequest};

/// The nice value of the calling thread (Linux keeps one per thread).
fn own_nice() -> i32 {
    // SAFETY: getpriority has no memory arguments; errno is cleared first
    // because -1 is a valid nice value.
    unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    }
}

/// Raises the calling thread's priority to nice 0 when it may (a test
/// already running at nice 10 or more could not tell a lowered sandbox
/// from an inherited nice value); where it may not, the check below still
/// holds, at the cap of 19.
fn start_from_nice_zero() {
    if own_nice() >= 10 {
        // SAFETY: no memory arguments; failure leaves the nice value as is.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
    }
}

#[test]
fn servers_and_sandboxed_programs_run_ten_nice_steps_lower() {
    start_from_nice_zero();
    let expected = (own_nice() + 10).min(19);
    let executor = Executor::start(ExecutorConfig {
        pool_size: 2,
        min_isolation: MinIsolation::none(),
        ..ExecutorConfig::default()
    })
    .expect("executor starts");

    // The program itself, inside the sandbox, reads its own priority.
    let result = executor
        .trace(&[TraceRequest {
            program: "import os\ndef nice():\n    return os.getpriority(os.PRIO_PROCESS, 0)\n"
                .into(),
            setup: None,
            invocation: Invocation::Call {
                expr: "nice()".into(),
            },
        }])
        .remove(0);
    assert_eq!(result.status, Status::Ok, "{result:?}");
    assert_eq!(result.ret.as_deref(), Some(expected.to_string().as_str()));

    // The fork-servers, children of this process, as `ps` sees them.
    let ps = std::process::Command::new("ps")
        .args(["-o", "ni=,comm=", "--ppid", &std::process::id().to_string()])
        .output()
        .expect("ps runs");
    let listing = String::from_utf8_lossy(&ps.stdout);
    let servers: Vec<i32> = listing
        .lines()
        .filter(|l| l.contains("egcfg-exec"))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(servers.len(), 2, "two servers in {listing:?}");
    assert!(servers.iter().all(|&ni| ni == expected), "{listing:?}");
}
