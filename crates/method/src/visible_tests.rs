//! The visible tests as the method uses them: the ones a candidate can be
//! traced on, and how a program is run for them.
//!
//! Only visible tests are ever run while solving; hidden tests score the
//! chosen program afterwards, outside this crate.

use egcfg_executor::Invocation;
use egcfg_task::{Task, TestCase};

use crate::prompt::py_repr;
use crate::runner::{CodeRunner, RunnerError};

/// A visible test that can be traced.
#[derive(Debug, Clone)]
pub struct TracedTest {
    /// Index among the task's visible tests.
    pub index: usize,
    /// How a candidate is run for it.
    pub invocation: Invocation,
    /// The invocation as shown in the signal.
    pub label: String,
}

/// The visible tests a candidate can be traced on: asserts with a call
/// expression, and stdin/stdout cases. Other tests are skipped (D1).
pub(crate) fn traced_tests(
    task: &Task,
    runner: &dyn CodeRunner,
) -> Result<Vec<TracedTest>, RunnerError> {
    let mut out = Vec::new();
    for (index, test) in task.visible.iter().enumerate() {
        match test {
            TestCase::Assert { code } => match runner.call_expression(code)? {
                Some(expr) => out.push(TracedTest {
                    index,
                    label: expr.clone(),
                    invocation: Invocation::Call { expr },
                }),
                None => {
                    tracing::warn!(task = %task.id, test = index, "visible assert has no call to trace; skipped")
                }
            },
            TestCase::Stdio { stdin, stdout } => out.push(TracedTest {
                index,
                label: format!(
                    "stdin: {}\nexpected stdout: {}",
                    py_repr(stdin),
                    py_repr(stdout)
                ),
                invocation: Invocation::Stdin {
                    stdin: stdin.clone(),
                },
            }),
            TestCase::Script { .. } => {}
        }
    }
    Ok(out)
}

/// For stdin/stdout tasks, the call of the entry function (`solve()`) that
/// is appended to every program that runs, so that the program reads its
/// input; `None` for tasks tested by asserts.
pub(crate) fn script_call(task: &Task) -> Option<String> {
    task.visible
        .iter()
        .any(|t| matches!(t, TestCase::Stdio { .. }))
        .then(|| format!("{}()", task.entry_point))
}
