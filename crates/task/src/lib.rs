//! What a coding task is, independent of how it is solved or scored.
//!
//! A [`Task`] is a problem statement, the name of the function to write, the
//! *visible* tests that may be shown to the model and used to steer and select
//! programs, and optionally the *hidden* tests that only score the final
//! answer. Benchmarks build tasks from their datasets; users write them as
//! JSON or TOML files (see `examples/` and [`Task::from_file`]).
//!
//! Keeping visible and hidden tests in separate, typed fields is how the
//! evaluation protocol is enforced: the solver only ever receives
//! [`Task::visible`].

#![deny(missing_docs)]

mod file;
mod name;

pub use file::{TaskFileError, TaskFormat};
pub use name::function_name_from_assert;

use serde::{Deserialize, Serialize};

/// One test of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TestCase {
    /// A single Python `assert` statement, such as
    /// `assert add(1, 2) == 3`; passes when it runs without an exception.
    Assert {
        /// The statement's source.
        code: String,
    },
    /// A whole program: feed `stdin`, compare everything printed with
    /// `stdout` (trailing whitespace of each line ignored).
    Stdio {
        /// Standard input.
        stdin: String,
        /// Expected standard output.
        stdout: String,
    },
    /// Arbitrary test code run after the program (for example HumanEval's
    /// `check(candidate)`); passes when it raises nothing.
    Script {
        /// The test code, run after the candidate program.
        code: String,
    },
}

/// A problem to solve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// A stable identifier, e.g. `mbpp/511` or the file stem.
    pub id: String,
    /// The problem statement shown to the model.
    pub prompt: String,
    /// The function the model must write.
    pub entry_point: String,
    /// Tests shown to the model and used to steer and select programs.
    pub visible: Vec<TestCase>,
    /// Tests used only to score the selected program; never shown.
    #[serde(default)]
    pub hidden: Vec<TestCase>,
    /// Code run before the program in every test (imports, helper classes).
    #[serde(default)]
    pub setup: Option<String>,
}
