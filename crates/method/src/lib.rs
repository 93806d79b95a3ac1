//! EG-CFG decoding: execution-guided, line-by-line code generation with
//! classifier-free guidance ("Execution Guided Line-by-Line Code
//! Generation", Lavon, Katz, Wolf), on top of a local model
//! ([`egcfg_engine::Engine`]) and a sandboxed Python executor
//! ([`CodeRunner`]).
//!
//! While the model writes the target function, every `k`-th new line the
//! decoder samples `s` candidate continuations of a few lines, runs them on
//! the task's visible tests in the sandbox, and renders the execution traces
//! as a text *signal*. It then decodes the next line greedily from
//! `P · (P_c / P)^γ`, where `P` is the model's distribution given the plain
//! prompt and `P_c` given the prompt with the signal. A grid of agent
//! configurations (temperature, candidates, horizon, refresh interval,
//! prompt style, γ) runs concurrently until one program passes every
//! visible test.
//!
//! Entry points: [`solve()`] (a task with a grid of agents) and [`baseline`]
//! (γ = 0 greedy). Every decision is kept in [`AttemptRecord`]s, which
//! serialise to JSON and which [`explain`] renders as a readable account.
//!
//! Module map: [`attempt`] is the per-line loop; [`guidance`] the formula;
//! [`candidates`] sampling and dedup; [`signal`] the trace block;
//! [`prompt`] the prompt styles; [`config`] the grid, schedule and seeds;
//! [`cost`] the cost accounting and the reference estimate; [`budget`]
//! budgets and cancellation.

pub mod attempt;
pub mod budget;
pub mod candidates;
pub mod code_text;
pub mod config;
pub mod cost;
pub mod early_stop;
pub mod error;
pub mod explain;
pub mod guidance;
pub mod options;
pub mod prompt;
pub mod record;
pub mod runner;
pub mod signal;
pub mod solve;
mod streams;
#[cfg(test)]
mod testing;

pub use budget::{Budget, CancelCause, CancelToken};
pub use config::{
    AgentConfig, AttemptSpec, Grid, Horizon, PromptStyle, DEFAULT_GRID_TOML, REFERENCE_GRID_TOML,
};
pub use cost::{AttemptCost, PhaseTimes, ReferenceCost};
pub use error::MethodError;
pub use options::{DecodeOptions, Selection, SolveOptions, DEFAULT_TASK_TOKENS};
pub use record::{AttemptRecord, AttemptStop, RefreshRecord, TokenRecord, TraceRecord};
pub use runner::{CodeRunner, RunnerError, TestVerdict, TraceOutcome};
pub use solve::{baseline, check_test_syntax, solve, ProgressEvent, SolveCost, SolveOutcome};
