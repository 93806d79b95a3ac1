//! Running untrusted, model-written Python safely, fast, and with a
//! line-by-line trace of what it did.
//!
//! EG-CFG executes every sampled candidate continuation against the task's
//! visible tests, thousands of times per task, and shows the model what
//! happened. This crate is that executor:
//!
//! * a pool of long-lived Python *fork-servers* ([`Executor`]); each forks
//!   one child per execution, so an execution costs a few milliseconds, not a
//!   fresh interpreter;
//! * layered isolation in every child (rlimits, seccomp, Landlock, a user and
//!   network namespace per server), probed at start-up and reported as
//!   [`SandboxCaps`];
//! * a tracer that records the candidate's own lines with bounded, safe
//!   value reprs, under line and time budgets the candidate cannot escape;
//! * the operations decoders and benchmarks need: [`Executor::prepare`]
//!   (make a partial function runnable), [`Executor::trace`] and
//!   [`Executor::check`] (pass/fail per test), with a result cache;
//! * [`render`]: turning raw traces into prompt text, in the reference's
//!   format or a compact one of our own.
//!
//! Nothing here knows about language models or decoding.

pub mod bench;
mod cache;
mod caps;
mod check;
mod config;
mod error;
mod executor;
mod interpreter;
mod pool;
pub mod render;
mod request;
mod result;
mod sandbox;
mod server;
mod wire;

pub use caps::{Layer, LayerState, SandboxCaps};
pub use config::{ExecLimits, ExecutorConfig, MinIsolation, ReprLimits};
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
