//! Why an executor could not be started, or stopped serving.

use std::path::PathBuf;

use crate::caps::{Layer, SandboxCaps};

/// Errors of [`crate::Executor::start`], and of the operations that need a
/// working sandbox to answer at all ([`crate::Executor::prepare`],
/// [`crate::Executor::call_expression`]). A candidate's own failures are
/// never errors: they are statuses in [`crate::ExecResult`], or `None`
/// from those operations.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// No usable Python interpreter was found.
    #[error("no Python interpreter found: {detail}. Install Python 3.9+ or set EGCFG_PYTHON to its binary")]
    PythonNotFound {
        /// What was tried.
        detail: String,
    },
    /// The interpreter is too old (the tracer needs `ast.unparse`, 3.9+).
    #[error(
        "{path} is Python {version}; egcfg needs 3.9 or newer. Set EGCFG_PYTHON to a newer binary"
    )]
    PythonTooOld {
        /// The interpreter.
        path: PathBuf,
        /// Its version.
        version: String,
    },
    /// A configured minimum isolation layer is unavailable on this machine.
    #[error("required isolation missing: {}; this machine offers: {caps}. Relax the minimum or run on a kernel that allows it", missing.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "))]
    IsolationMissing {
        /// The required layers that are not active.
        missing: Vec<Layer>,
        /// What is active.
        caps: Box<SandboxCaps>,
    },
    /// A fork-server did not start.
    #[error("the Python fork-server did not start: {detail}")]
    ServerStart {
        /// The server's own error output, or what went wrong.
        detail: String,
    },
    /// The sandbox stopped serving: a fork-server died or hung, could not
    /// be restarted, or answered with something it never sends. Unlike a
    /// candidate that fails, this says nothing about the program asked
    /// about, so callers must not read it as one.
    #[error("the sandbox failed while {operation}: {detail}. Check `egcfg doctor`; if it persists, the machine may be out of memory or processes")]
    Sandbox {
        /// What the executor was doing (`preparing candidates`, ...).
        operation: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The scratch directory could not be prepared.
    #[error("cannot prepare scratch directory {path}")]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The benchmark's workload did not run cleanly (so no rate is given).
    #[error("the executor benchmark failed: {detail}")]
    Bench {
        /// What failed.
        detail: String,
    },
    /// The seccomp filter could not be compiled.
    #[error("cannot compile the seccomp filter: {0}")]
    Seccomp(String),
}
