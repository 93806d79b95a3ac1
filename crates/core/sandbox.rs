//! The method's [`CodeRunner`] on the sandboxed executor.
//!
//! The method states what it needs from a sandbox in its own terms; the
//! executor knows nothing of the method. This binary, which plugs the two
//! together, is where one meets the other. Final checks go through the
//! benchmark harness's [`Checker`], so that a sandbox failure during a
//! test is told apart from a failed test in one place.

use std::time::Duration;

use egcfg_bench::Checker;
use egcfg_executor::render::{render, RenderLimits, TraceFormat};
use egcfg_executor::{CheckRequest, Executor, ExecutorError, Status, TraceRequest, Verdict};
use egcfg_method::{CodeRunner, RunnerError, TestVerdict, TraceOutcome};
use egcfg_task::TestCase;

/// A started executor, serving the method.
pub struct SandboxRunner {
    executor: Executor,
}

impl SandboxRunner {
    /// Serves the method with `executor`.
    pub fn new(executor: Executor) -> Self {
        SandboxRunner { executor }
    }

    /// The executor, for the benchmark harness's checks.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }
}

fn runner_error(error: ExecutorError) -> RunnerError {
    RunnerError(error.to_string())
}

impl CodeRunner for SandboxRunner {
    fn prepare(&self, programs: &[String]) -> Result<Vec<Option<String>>, RunnerError> {
        self.executor.prepare(programs).map_err(runner_error)
    }

    fn call_expression(&self, assert: &str) -> Result<Option<String>, RunnerError> {
        self.executor.call_expression(assert).map_err(runner_error)
    }

    fn trace(
        &self,
        requests: &[TraceRequest],
        format: TraceFormat,
        limits: &RenderLimits,
    ) -> Result<Vec<TraceOutcome>, RunnerError> {
        let results = self.executor.trace(requests);
        // An internal error is the sandbox's, never the candidate's: shown
        // to the model as the candidate's trace, it would mislead it.
        if let Some(failed) = results.iter().find(|r| r.status == Status::InternalError) {
            return Err(runner_error(ExecutorError::Sandbox {
                operation: "tracing candidates",
                detail: failed.detail.clone().unwrap_or_default(),
            }));
        }
        Ok(results
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
        timeout: Option<Duration>,
    ) -> Result<Vec<TestVerdict>, RunnerError> {
        let request = CheckRequest {
            program: program.to_string(),
            setup: setup.map(str::to_string),
            tests: tests.to_vec(),
            timeout,
        };
        let report = Checker::check(&self.executor, &request).map_err(runner_error)?;
        Ok(report
            .tests
            .into_iter()
            .enumerate()
            .map(|(test, outcome)| TestVerdict {
                test,
                passed: outcome.verdict == Verdict::Pass,
                status: outcome.status.as_str().to_string(),
                detail: if outcome.detail.is_empty() {
                    outcome.status.as_str().to_string()
                } else {
                    outcome.detail
                },
            })
            .collect())
    }
}
