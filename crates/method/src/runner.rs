//! What the method needs from the sandboxed executor.
//!
//! The decoder never runs model-written code itself. It hands candidate
//! programs to a [`CodeRunner`], which makes them executable, traces them on
//! the visible tests and renders the traces as prompt text, and checks final
//! programs against the visible tests. [`egcfg_executor::Executor`] (the
//! sandboxed fork-server pool) implements it; tests use fakes that run
//! nothing.

use serde::{Deserialize, Serialize};

use egcfg_executor::render::{render, RenderLimits, TraceFormat};
use egcfg_executor::{CheckRequest, Executor, TraceRequest, Verdict};
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
    /// The executor's explanation, or its status when there is none.
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

    /// Trace each request and render it in `format` within `limits`, in
    /// input order.
    fn trace(
        &self,
        requests: &[TraceRequest],
        format: TraceFormat,
        limits: &RenderLimits,
    ) -> Result<Vec<TraceOutcome>, RunnerError>;

    /// Run `program` (after `setup`) against each test, in order.
    fn check(
        &self,
        program: &str,
        setup: Option<&str>,
        tests: &[TestCase],
    ) -> Result<Vec<TestVerdict>, RunnerError>;
}

impl CodeRunner for Executor {
    fn prepare(&self, programs: &[String]) -> Result<Vec<Option<String>>, RunnerError> {
        Ok(Executor::prepare(self, programs))
    }

    fn call_expression(&self, assert: &str) -> Option<String> {
        Executor::call_expression(self, assert)
    }

    fn trace(
        &self,
        requests: &[TraceRequest],
        format: TraceFormat,
        limits: &RenderLimits,
    ) -> Result<Vec<TraceOutcome>, RunnerError> {
        Ok(Executor::trace(self, requests)
            .iter()
            .zip(requests)
            .map(|(result, request)| TraceOutcome {
                status: result.status.as_str().to_string(),
                text: render(result, &request.traced_source(), format, limits),
            })
            .collect())
    }

    fn check(
        &self,
        program: &str,
        setup: Option<&str>,
        tests: &[TestCase],
    ) -> Result<Vec<TestVerdict>, RunnerError> {
        let report = Executor::check(
            self,
            &CheckRequest {
                program: program.to_string(),
                setup: setup.map(str::to_string),
                tests: tests.to_vec(),
                timeout: None,
            },
        );
        Ok(report
            .tests
            .into_iter()
            .enumerate()
            .map(|(test, outcome)| TestVerdict {
                test,
                passed: outcome.verdict == Verdict::Pass,
                detail: if outcome.detail.is_empty() {
                    outcome.status.as_str().to_string()
                } else {
                    outcome.detail
                },
            })
            .collect())
    }
}
