//! What the method needs from the sandboxed executor.
//!
//! The decoder never runs model-written code itself. It hands candidate
//! programs to a [`CodeRunner`], which makes them executable, traces them on
//! the visible tests and renders the traces as prompt text, and checks final
//! programs against the visible tests. `egcfg-executor`'s sandboxed pool is
//! the real implementation (see [`crate::executor_runner`]); tests use fakes
//! that run nothing.

use serde::{Deserialize, Serialize};

use egcfg_task::TestCase;

/// How traces are rendered as text for the signal (method.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStyle {
    /// The reference's format: state before each line, caller frame at return.
    Compat,
    /// State after each line, callee's final state, bounded, with a status line.
    #[default]
    Improved,
}

/// How a traced program is run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invocation {
    /// Evaluate this call expression after the program (the assert's call,
    /// never the assert itself).
    Call {
        /// The expression, e.g. `remove_Occ("hello", "l")`.
        expr: String,
    },
    /// Feed `stdin` to the program and call `entry()` after it.
    Stdin {
        /// Standard input.
        stdin: String,
        /// The function that reads stdin, called with no arguments.
        entry: String,
    },
}

/// One traced run of a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceJob {
    /// The executable candidate program.
    pub program: String,
    /// The task's setup code, run before the program.
    pub setup: Option<String>,
    /// How to run it.
    pub invocation: Invocation,
}

/// A rendered trace and how the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceOutcome {
    /// The executor's status (`ok`, `exception`, `timeout`, `line_limit`, ...).
    pub status: String,
    /// The trace as prompt text, already bounded by the renderer's limits.
    pub text: String,
}

/// The result of one visible test on a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestVerdict {
    /// Index of the test in the task's visible tests.
    pub test: usize,
    /// Whether it passed.
    pub passed: bool,
    /// The executor's status or a short reason.
    pub detail: String,
}

/// The executor as a whole failed (not a single candidate run).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RunnerError(pub String);

/// Sandboxed execution services the decoder relies on.
///
/// Every method may be called from several agent threads at once.
pub trait CodeRunner: Send + Sync {
    /// Make partial programs executable and normalise them (method.md §5):
    /// `None` where a program cannot be made to parse.
    fn prepare(&self, programs: &[String]) -> Result<Vec<Option<String>>, RunnerError>;

    /// The call expression of an assert (`assert f(1) == 2` gives `f(1)`), or
    /// `None` when the assert has no such call.
    fn call_expression(&self, assert: &str) -> Option<String>;

    /// Trace each job and render it in `style`, in input order.
    fn trace(&self, jobs: &[TraceJob], style: TraceStyle)
        -> Result<Vec<TraceOutcome>, RunnerError>;

    /// Run `program` (after `setup`) against each test, in order.
    fn check(
        &self,
        program: &str,
        setup: Option<&str>,
        tests: &[TestCase],
    ) -> Result<Vec<TestVerdict>, RunnerError>;
}
