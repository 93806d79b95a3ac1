//! How fast the sandbox runs (`egcfg bench exec`; not to be confused with the
//! benchmark datasets of the `egcfg-bench` harness): traced executions per
//! second through the fork-server
//! pool versus a fresh interpreter per execution, on the same MBPP-size
//! workload (about 150 traced lines each), with the same isolation, in one
//! run.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::caps::SandboxCaps;
use crate::config::{ExecutorConfig, MinIsolation};
use crate::error::ExecutorError;
use crate::executor::Executor;
use crate::request::{Invocation, TraceRequest};
use crate::result::Status;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Traced executions through the fork-server pool.
    pub executions: usize,
    /// Executions with a fresh interpreter each (slow; fewer suffice).
    pub spawn_executions: usize,
    /// Fork-servers, and parallel spawners (default: cores + 1).
    pub pool_size: Option<usize>,
    /// Interpreter override (default: as [`crate::ExecutorConfig::python`]).
    pub python: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            executions: 2000,
            spawn_executions: 60,
            pool_size: None,
            python: None,
        }
    }
}

/// Measured rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Traced executions per second through the fork-server pool.
    pub fork_server_per_s: f64,
    /// Traced executions per second with one fresh interpreter each.
    pub spawn_per_s: f64,
    /// Mean traced lines per execution (checks the workload is MBPP-size).
    pub lines_per_exec: f64,
    /// Median time a child spent setting up and installing isolation, in ms.
    pub iso_ms: f64,
    /// CPU time per fork-server execution (manager, servers and children
    /// together), in ms: the machine-independent cost; on an idle machine
    /// exec/s ≈ cores × 1000 / this.
    pub fork_server_cpu_ms: f64,
    /// The isolation both sides ran with.
    pub caps: SandboxCaps,
}

impl BenchReport {
    /// fork-server rate / spawn-per-exec rate.
    pub fn ratio(&self) -> f64 {
        self.fork_server_per_s / self.spawn_per_s
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fork-server: {:.0} exec/s", self.fork_server_per_s)?;
        writeln!(f, "spawn-per-exec: {:.0} exec/s", self.spawn_per_s)?;
        write!(f, "ratio: {:.1}", self.ratio())
    }
}

/// Runs the benchmark: starts an executor with every available layer and
/// no cache, traces the workload through the pool, then spawns one
/// interpreter per execution for a prefix of the same workload.
pub fn run(options: &BenchOptions) -> Result<BenchReport, ExecutorError> {
    let mut config = ExecutorConfig {
        python: options.python.clone(),
        cache_capacity: 0,
        min_isolation: MinIsolation::none(),
        ..ExecutorConfig::default()
    };
    if let Some(n) = options.pool_size {
        config.pool_size = n.max(1);
    }
    let parallel = config.pool_size;
    let executor = Executor::start(config)?;
    let requests = workload(options.executions.max(1));
    executor.trace(&requests[..parallel.min(requests.len())]); // warm-up
    let cpu_before = tree_cpu_seconds();
    let started = Instant::now();
    let results = executor.trace(&requests);
    let fork_secs = started.elapsed().as_secs_f64();
    let fork_cpu = tree_cpu_seconds() - cpu_before;
    let failed = results.iter().filter(|r| r.status != Status::Ok).count();
    if failed > 0 {
        let first = results
            .iter()
            .find(|r| r.status != Status::Ok)
            .expect("one failed");
        return Err(ExecutorError::Bench {
            detail: format!(
                "{failed} of {} benchmark executions failed, e.g. {}: {:?}",
                results.len(),
                first.status,
                first.detail
            ),
        });
    }
    let n = results.len() as f64;
    let lines_per_exec = results.iter().map(|r| r.lines_executed as f64).sum::<f64>() / n;
    let mut iso: Vec<f64> = results.iter().map(|r| r.iso_ms).collect();
    iso.sort_by(f64::total_cmp);
    let iso_ms = iso[iso.len() / 2];

    let spawn_requests = &requests[..options.spawn_executions.clamp(1, requests.len())];
    let started = Instant::now();
    let spawned = executor.trace_spawning(spawn_requests, parallel);
    let spawn_secs = started.elapsed().as_secs_f64();
    if let Some(bad) = spawned.iter().find(|r| r.status != Status::Ok) {
        return Err(ExecutorError::Bench {
            detail: format!(
                "spawn-per-exec run failed: {}: {:?}",
                bad.status, bad.detail
            ),
        });
    }
    Ok(BenchReport {
        fork_server_per_s: n / fork_secs,
        spawn_per_s: spawned.len() as f64 / spawn_secs,
        lines_per_exec,
        iso_ms,
        fork_server_cpu_ms: fork_cpu * 1000.0 / n,
        caps: executor.caps().clone(),
    })
}

/// CPU seconds used so far by this process and its direct children
/// (the fork-servers) including the children they reaped, from `/proc`.
fn tree_cpu_seconds() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let me = std::process::id().to_string();
    let mut total = 0.0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let is_self = name == me;
        if !(is_self || fields.get(1) == Some(&me.as_str())) {
            continue;
        }
        // utime, stime, and for servers also their reaped children.
        let wanted: &[usize] = if is_self {
            &[11, 12]
        } else {
            &[11, 12, 13, 14]
        };
        total += wanted
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum::<f64>()
            / ticks;
    }
    total
}

/// MBPP-style functions, each called with arguments that make it run about
/// 150 traced lines; argument `i` varies so no two requests are identical.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "def primes_below(n):\n    found = []\n    for k in range(2, n):\n        is_prime = True\n        for p in found:\n            if p * p > k:\n                break\n            if k % p == 0:\n                is_prime = False\n                break\n        if is_prime:\n            found.append(k)\n    return found",
        "primes_below({})",
    ),
    (
        "def bubble_sort(items):\n    xs = list(items)\n    for i in range(len(xs)):\n        for j in range(len(xs) - 1 - i):\n            if xs[j] > xs[j + 1]:\n                xs[j], xs[j + 1] = xs[j + 1], xs[j]\n    return xs",
        "bubble_sort([{}, 3, 9, 1, 7, 2, 8])",
    ),
    (
        "def count_vowels(text):\n    counts = {}\n    for ch in text.lower():\n        if ch in 'aeiou':\n            counts[ch] = counts.get(ch, 0) + 1\n    return counts",
        "count_vowels('The quick brown fox {} jumps over the lazy dog again and again and again')",
    ),
    (
        "def max_subarray(nums):\n    best = nums[0]\n    current = 0\n    for x in nums:\n        current = max(x, current + x)\n        best = max(best, current)\n    return best",
        "max_subarray([{}, -2, 1, -3, 4, -1, 2, 1, -5, 4, 3, -2, 6, -7, 2, 1, -1, 5, -3, 2, 4, -6, 1, 3, -2, 2, 1, -4, 3, 5, -1, 2, -3, 4, 1, -2, 3, 1, -1, 2, 4, -3, 2, 1, 5, -2, 1, 3, -1])",
    ),
];

/// Tests per candidate program, as for MBPP's three visible asserts.
const TESTS_PER_PROGRAM: usize = 3;

/// `n` requests shaped like EG-CFG's: distinct candidate programs (the
/// task number is a default argument), each traced against three calls.
pub(crate) fn workload(n: usize) -> Vec<TraceRequest> {
    (0..n)
        .map(|i| {
            let task = i / TESTS_PER_PROGRAM;
            let test = i % TESTS_PER_PROGRAM;
            let (program, call) = PROGRAMS[task % PROGRAMS.len()];
            let program = program.replacen("):", &format!(", _task={task}):"), 1);
            let arg = match task % PROGRAMS.len() {
                0 => 30 + test,
                _ => test,
            };
            TraceRequest {
                program,
                setup: None,
                invocation: Invocation::Call {
                    expr: call.replace("{}", &arg.to_string()),
                },
            }
        })
        .collect()
}
