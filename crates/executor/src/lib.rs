//! Running untrusted, model-written Python safely, fast, and with a
//! line-by-line trace of what it did.
//!
//! EG-CFG executes every sampled candidate continuation against the task's
//! visible tests, thousands of times per task, and shows the model what
//! happened. This crate is that executor:
//!
//! * a pool of long-lived Python *fork-servers* ([`Executor`]); each forks
//!   one child per program, which runs that program's invocations one after
//!   the other (each in a fresh namespace, with its own budgets and result),
//!   so an execution costs a few milliseconds, not a fresh interpreter;
//! * layered isolation (rlimits, seccomp, Landlock, a user and network
//!   namespace per server), probed at start-up and reported as
//!   [`SandboxCaps`] (what `egcfg doctor` prints);
//! * a tracer that records the candidate's own lines with bounded, safe
//!   value reprs, under line and time budgets the candidate cannot escape;
//! * the operations decoders and benchmarks need: [`Executor::prepare`]
//!   (make a partial function runnable), [`Executor::call_expression`],
//!   [`Executor::trace`] and [`Executor::check`] (pass/fail per test), with
//!   a result cache so nothing identical runs twice;
//! * [`render`]: turning raw traces into prompt text, in the reference's
//!   format or a compact one of our own;
//! * [`speed`]: how fast the fork-server runs against a fresh interpreter per
//!   execution (`egcfg bench exec`).
//!
//! Inside: `server` starts and talks to one Python process running the
//! embedded `python/harness.py` (fork-server, tracer, `prepare`), `pool`
//! gives each server a worker thread and a watchdog, `wire` is the message
//! format, `sandbox` builds the seccomp and Landlock policies and the
//! namespaces, `scratch` owns the directories programs may write in,
//! `probe` checks at start-up which layers took effect, `cache`
//! de-duplicates work.
//!
//! Nothing here knows about language models or decoding.

#![deny(missing_docs)]

mod cache;
mod caps;
mod check;
mod config;
mod error;
mod executor;
mod interpreter;
mod pool;
mod probe;
mod pyvalue;
pub mod render;
mod request;
mod result;
mod sandbox;
mod scratch;
mod server;
pub mod speed;
mod wire;

pub use caps::{Layer, LayerState, SandboxCaps};
pub use config::{
    ExecLimits, ExecutorConfig, MinIsolation, ReprLimits, ScratchLimits, UnplannedTests,
};
pub use error::ExecutorError;
pub use executor::Executor;
pub use request::{CheckReport, CheckRequest, Invocation, TestOutcome, TraceRequest, Verdict};
pub use result::{
    CallerState, EventKind, ExceptionInfo, ExecResult, LineHit, Status, TraceEvent, Variable,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Executor>();
    }
}
