//! What the tests that kill sandbox processes share: a small executor and
//! the process tree.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::Path;

use egcfg_executor::{Executor, ExecutorConfig, MinIsolation};

/// An executor of one fork-server, scratch under `scratch`, that starts
/// with whatever isolation this machine has.
pub fn one_server_executor(scratch: &Path) -> Executor {
    Executor::start(ExecutorConfig {
        pool_size: 1,
        scratch_root: scratch.to_path_buf(),
        min_isolation: MinIsolation::none(),
        ..ExecutorConfig::default()
    })
    .expect("executor starts")
}

/// The parent of every process, from `/proc/PID/stat`.
fn parents() -> Vec<(i32, i32)> {
    std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            // `pid (comm) state ppid ...`; comm may hold spaces, so parse
            // after its closing parenthesis.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            Some((pid, rest.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect()
}

/// Every descendant of `root`: the servers sit below a relay (the parent
/// of their PID namespace), so children alone are not enough.
pub fn descendants(root: i32) -> Vec<i32> {
    let parents = parents();
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        next += 1;
    }
    found.split_off(1)
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for a
/// parent to reap it).
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}
