//! What can stop the method from producing an answer.

use egcfg_engine::EngineError;

use crate::runner::RunnerError;

/// Errors of the EG-CFG decoder and its agents.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// The engine failed (model, context, decode). Its own message says
    /// so; wrapping it in a second message would print the cause twice.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The sandboxed executor failed as a whole (not one candidate's run).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The grid file is unusable.
    #[error("invalid agent grid: {0}")]
    Grid(String),
    /// The task cannot be solved as given.
    #[error("task {task}: {message}")]
    Task {
        /// The task id.
        task: String,
        /// What is wrong with it.
        message: String,
    },
    /// The prompt does not fit the model's context.
    #[error("the prompt needs {needed} tokens and its answer up to {answer} more, but the context holds {n_ctx}; a context of {suggested_ctx} tokens or more holds every prompt with its answer")]
    PromptTooLong {
        /// Prompt tokens (of the longest prompt the schedule uses).
        needed: usize,
        /// The answer's token budget.
        answer: usize,
        /// Context size.
        n_ctx: usize,
        /// A context that holds every prompt of the schedule with its
        /// answer, rounded up to whole cache blocks.
        suggested_ctx: usize,
    },
    /// The shared prompt head could not be prefilled.
    #[error("prefilling the prompt failed: {0}")]
    HeadPrefill(String),
    /// The model's chat template could not hold the prompt layout.
    #[error("the chat template does not keep the user message intact, so the trace signal cannot be spliced in: {0}")]
    Template(String),
}

impl MethodError {
    /// Whether the error concerns only the task being solved (its prompt
    /// does not fit the context, it names no function), so that a
    /// benchmark can record the task as unable to run and go on. Engine,
    /// executor, grid and template errors would hit every task alike.
    pub fn concerns_only_the_task(&self) -> bool {
        matches!(self, Self::Task { .. } | Self::PromptTooLong { .. })
    }

    /// Whether the machinery the method runs on failed (a model server
    /// that died, stalled or misbehaved after its retries; the sandbox as
    /// a whole), not the method or the task: what such an error cut off
    /// says nothing about the task, so a solve it touches has no answer to
    /// record and is redone once the machinery works again.
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self,
            Self::Engine(EngineError::Server { .. }) | Self::Runner(_)
        )
    }
}
