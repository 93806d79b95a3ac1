//! What every attempt of a task shares: the model, the sandbox, the task,
//! its prompt, the traceable tests, the options and the task's budget.

use egcfg_engine::Engine;
use egcfg_task::Task;

use crate::budget::Control;
use crate::head::StylePrompt;
use crate::options::DecodeOptions;
use crate::progress::ProgressEvent;
use crate::runner::CodeRunner;
use crate::visible_tests::TracedTest;

/// What every attempt of a task shares.
pub struct AttemptEnv<'a> {
    /// The model.
    pub engine: &'a dyn Engine,
    /// The sandbox.
    pub runner: &'a dyn CodeRunner,
    /// The task (only its visible tests are used).
    pub task: &'a Task,
    /// The prompt of the attempt's style.
    pub prompt: &'a StylePrompt<'a>,
    /// The traceable visible tests.
    pub tests: &'a [TracedTest],
    /// Decoding options.
    pub options: &'a DecodeOptions,
    /// Budgets and cancellation.
    pub control: &'a Control,
    /// Where progress events go.
    pub progress: &'a (dyn Fn(ProgressEvent) + Sync),
    /// For stdin/stdout tasks, the call of the entry function (`solve()`)
    /// appended to every program that runs, the answer included.
    pub script_call: Option<String>,
}

impl AttemptEnv<'_> {
    /// `program` as it runs: with the entry call appended for script tasks.
    pub fn runnable(&self, program: &str) -> String {
        runnable_program(program, self.script_call.as_deref())
    }
}

/// `program` as it runs: followed by `script_call`, the entry call of a
/// stdin/stdout task, when there is one.
pub fn runnable_program(program: &str, script_call: Option<&str>) -> String {
    match script_call {
        Some(call) => format!(
            "{}

{call}",
            program.trim_end()
        ),
        None => program.to_string(),
    }
}
