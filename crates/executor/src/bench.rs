//! `egcfg bench exec`: traced executions per second through the fork-server
//! pool versus a fresh interpreter per execution, on the same MBPP-size
//! workload, in one run.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::caps::SandboxCaps;
use crate::error::ExecutorError;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Traced executions through the fork-server pool.
    pub executions: usize,
    /// Executions with a fresh interpreter each (slow; fewer suffice).
    pub spawn_executions: usize,
    /// Fork-servers (default: cores + 1).
    pub pool_size: Option<usize>,
    /// Interpreter override (default: as [`crate::ExecutorConfig::python`]).
    pub python: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            executions: 2000,
            spawn_executions: 200,
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
    /// Traced lines per execution in the workload (checks it is MBPP-size).
    pub lines_per_exec: f64,
    /// The isolation the fork-server ran with.
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

/// Runs the benchmark.
pub fn run(options: &BenchOptions) -> Result<BenchReport, ExecutorError> {
    let _ = options;
    todo!("in progress")
}
