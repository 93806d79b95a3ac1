//! The public face of the crate: a started pool and its operations.

use crate::caps::SandboxCaps;
use crate::config::ExecutorConfig;
use crate::error::ExecutorError;
use crate::request::{CheckReport, CheckRequest, TraceRequest};
use crate::result::ExecResult;

/// A pool of sandboxed Python fork-servers. Cheap to share: wrap it in an
/// `Arc` and call it from many threads; requests from all of them are
/// spread over the servers.
pub struct Executor {
    caps: SandboxCaps,
}

impl Executor {
    /// Resolves the interpreter, probes the isolation layers, refuses to
    /// start if a layer in [`ExecutorConfig::min_isolation`] is missing,
    /// and starts the servers.
    pub fn start(config: ExecutorConfig) -> Result<Executor, ExecutorError> {
        let _ = config;
        todo!("in progress")
    }

    /// The isolation layers active in this executor.
    pub fn caps(&self) -> &SandboxCaps {
        &self.caps
    }

    /// Makes each partial candidate runnable (method.md §5: truncate / add
    /// `pass`, then normalise through Python's `ast`), in the sandbox.
    /// `None` where no prefix of the candidate is executable.
    pub fn prepare(&self, partials: &[String]) -> Vec<Option<String>> {
        let _ = partials;
        todo!("in progress")
    }

    /// The left operand of an assert's comparison (`f(1, 2)` from
    /// `assert f(1, 2) == 3`), or the asserted expression itself when it is
    /// no comparison; `None` when the statement is no assert.
    pub fn call_expression(&self, assert_stmt: &str) -> Option<String> {
        let _ = assert_stmt;
        todo!("in progress")
    }

    /// Runs each request traced, in parallel over the pool; results are in
    /// request order. Identical requests run once (also across calls).
    pub fn trace(&self, requests: &[TraceRequest]) -> Vec<ExecResult> {
        let _ = requests;
        todo!("in progress")
    }

    /// Runs a program against each test (untraced, each test in a fresh
    /// child, in parallel) and reports pass/fail/error per test.
    pub fn check(&self, request: &CheckRequest) -> CheckReport {
        let _ = request;
        todo!("in progress")
    }
}
