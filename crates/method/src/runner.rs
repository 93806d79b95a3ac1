//! What the method needs from a sandbox.
//!
//! The decoder never runs model-written code itself. It hands candidate
//! programs to a [`CodeRunner`], which makes them executable, traces them on
//! the visible tests and renders the traces as prompt text, and checks final
//! programs against tests. The benchmark crate implements it on the
//! sandboxed executor (`egcfg_bench::SandboxRunner`); tests use fakes that
//! run nothing.
//!
//! A candidate that fails (does not parse, raises, runs out of budget) is
//! an answer: `None`, a status, a failed verdict. A sandbox that fails is a
//! [`RunnerError`], which stops the attempt: read as an answer, it would
//! look like a bad candidate and quietly lower every result.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use egcfg_executor::render::{RenderLimits, TraceFormat};
use egcfg_executor::TraceRequest;
use egcfg_task::TestCase;

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
    /// How the run ended (`ok`, `exception`, `timeout`, ...).
    #[serde(default)]
    pub status: String,
    /// The executor's explanation, or its status when there is none.
    pub detail: String,
}

/// The sandbox as a whole failed (not a single candidate's run): the
/// message says what failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RunnerError(pub String);

/// Sandboxed execution services the decoder relies on.
///
/// Every method may be called from several agent threads at once.
pub trait CodeRunner: Send + Sync {
    /// Make partial programs executable and normalise them (docs/method.md
    /// §5): `None` where a program cannot be made to parse.
    fn prepare(&self, programs: &[String]) -> Result<Vec<Option<String>>, RunnerError>;

    /// The call expression of an assert (`assert f(1) == 2` gives `f(1)`), or
    /// `None` when the assert has no such call.
    fn call_expression(&self, assert: &str) -> Result<Option<String>, RunnerError>;

    /// Trace each request and render it in `format` within `limits`, in
    /// input order.
    fn trace(
        &self,
        requests: &[TraceRequest],
        format: TraceFormat,
        limits: &RenderLimits,
    ) -> Result<Vec<TraceOutcome>, RunnerError>;

    /// Run `program` (after `setup`) against each test, in order, each
    /// within `timeout` (`None`: the sandbox's own limit).
    fn check(
        &self,
        program: &str,
        setup: Option<&str>,
        tests: &[TestCase],
        timeout: Option<Duration>,
    ) -> Result<Vec<TestVerdict>, RunnerError>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::testing::{add_one_task, two_minds, FakeRunner, ScriptedEngine, DEAD_SANDBOX};
    use crate::{check_test_syntax, solve, MethodError, SolveOptions};

    fn is_dead_sandbox(error: &MethodError) -> bool {
        matches!(error, MethodError::Runner(e) if e.0 == DEAD_SANDBOX)
    }

    #[test]
    fn a_dead_sandbox_is_no_verdict_on_the_task_s_tests() {
        let err = check_test_syntax(&add_one_task(), FakeRunner::dead().as_ref()).unwrap_err();
        assert!(is_dead_sandbox(&err), "{err:?}");
        assert!(!err.concerns_only_the_task(), "{err}");
    }

    #[test]
    fn a_dead_sandbox_stops_the_solve_with_its_error() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(
            crate::testing::WRONG,
            crate::testing::RIGHT,
        )));
        let err = solve(
            &add_one_task(),
            engine.clone(),
            FakeRunner::dead(),
            &SolveOptions::default(),
            &|_| {},
        )
        .unwrap_err();
        assert!(is_dead_sandbox(&err), "{err:?}");
        assert_eq!(engine.live(), 0, "every sequence is freed");
    }
}
