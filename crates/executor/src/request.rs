//! What callers ask the executor to run, and what `check` reports back.

use std::time::Duration;

use egcfg_task::TestCase;
use serde::{Deserialize, Serialize};

use crate::result::Status;

/// How a traced program is exercised after its module-level code ran.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invocation {
    /// Evaluate a call expression (e.g. `remove_Occ("hello","l")`, taken
    /// from a visible assert by [`crate::Executor::call_expression`]); it is
    /// appended to the program as its last line and its value is returned.
    Call {
        /// The expression's source, one line.
        expr: String,
    },
    /// Run the program as a script with this standard input; what it prints
    /// is captured.
    Stdin {
        /// The bytes fed to standard input.
        stdin: String,
    },
}

/// One traced execution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceRequest {
    /// The (prepared) candidate program.
    pub program: String,
    /// Code run first, untraced, in the same namespace (imports, helpers).
    pub setup: Option<String>,
    /// What to run after the program.
    pub invocation: Invocation,
}

impl TraceRequest {
    /// The source whose line numbers the trace refers to: the program, plus
    /// the call expression as its last line for [`Invocation::Call`]. Pass
    /// this to [`crate::render::render`].
    pub fn traced_source(&self) -> String {
        match &self.invocation {
            Invocation::Call { expr } => format!("{}\n{}", self.program, expr),
            Invocation::Stdin { .. } => self.program.clone(),
        }
    }
}

/// A program to test against a list of tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    /// The complete program.
    pub program: String,
    /// Code run before the program in every test.
    pub setup: Option<String>,
    /// The tests, each run in its own fresh child.
    pub tests: Vec<TestCase>,
    /// Per-test wall-clock budget; `None` uses the executor's limit.
    pub timeout: Option<Duration>,
}

/// The verdict on one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The test ran and held.
    Pass,
    /// The test ran and did not hold: an `AssertionError`, or the printed
    /// output differs from the expected one.
    Fail,
    /// The test could not be judged: another exception, a syntax error, a
    /// timeout, a crash.
    Error,
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    /// Pass, fail or error.
    pub verdict: Verdict,
    /// How the execution ended.
    pub status: Status,
    /// A one-line explanation (exception, mismatch, timeout), empty on pass.
    pub detail: String,
    /// Wall time of the test's execution.
    pub wall_ms: f64,
}

/// The outcomes of a [`CheckRequest`], in test order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// One outcome per test.
    pub tests: Vec<TestOutcome>,
}

impl CheckReport {
    /// How many tests passed.
    pub fn passed(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| t.verdict == Verdict::Pass)
            .count()
    }

    /// Whether every test passed (vacuously true without tests).
    pub fn all_passed(&self) -> bool {
        self.passed() == self.tests.len()
    }
}
