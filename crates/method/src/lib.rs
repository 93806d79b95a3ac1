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
//! Entry points: [`solve()`] (a task with a grid of agents), [`baseline`]
//! (γ = 0 greedy), [`sample()`] (best-of-N sampling under the same
//! budget and selection, the equal-budget baseline) and
//! [`sample_then_egcfg()`] (sampling under a share of the budget, then the
//! grid's guided attempts with the rest). Every decision is kept in [`AttemptRecord`]s, which
//! serialise to JSON and which [`explain`] renders as a readable account.
//!
//! Module map, in the order the algorithm runs:
//!
//! * a solve ([`solve`]): [`config`] the agent grid, its schedule and
//!   seeds; [`head`] the prompt heads shared by the attempts, prefilled once
//!   ([`prompt`] renders the styles); `pool` the worker threads that run
//!   the attempts; [`outcome`] the choice of the answer and the totals;
//! * an attempt ([`attempt`], the per-line loop): `streams` the
//!   unconditional and conditional streams; `refresh_schedule` when the
//!   signal is rebuilt; `refresh` rebuilding it, from [`candidates`]
//!   (sampling and dedup) traced in the sandbox as each candidate stops
//!   (`overlap`) ([`runner`],
//!   [`visible_tests`]) and rendered by [`signal`]; [`early_stop`] the rule
//!   that ends an attempt whose candidates agree; `token_choice` the next
//!   token, guided by [`guidance`] (the formula); `meter` what every step
//!   costs, and [`profile`] where its time goes;
//! * around them: [`budget`] budgets and cancellation; [`cost`] the cost
//!   accounting and the reference estimate; [`record`] the records every
//!   decision leaves, which [`explain`] renders; [`progress`] the events a
//!   display follows.
//!
//! The method's specification, whose sections the docs cite as §N, is
//! `docs/method.md`.

#![deny(missing_docs)]

pub mod admission;
pub mod attempt;
pub mod attempt_env;
pub mod budget;
pub mod candidates;
pub mod code_text;
pub mod config;
pub mod cost;
pub mod early_stop;
pub mod error;
pub mod explain;
pub mod guidance;
pub mod head;
mod line;
mod meter;
pub mod options;
pub mod outcome;
mod overlap;
mod pool;
pub mod profile;
pub mod progress;
pub mod prompt;
pub mod record;
mod refresh;
mod refresh_schedule;
pub mod runner;
pub mod sample;
pub mod sample_then_egcfg;
pub mod signal;
pub mod solve;
mod streams;
#[cfg(test)]
mod testing;
mod token_choice;
mod token_estimate;
pub mod visible_tests;

pub use admission::StartRule;
pub use budget::{Budget, CancelCause, CancelToken};
pub use config::{
    AgentConfig, AttemptSpec, Grid, Horizon, PromptStyle, DEFAULT_GRID_TOML, REFERENCE_GRID_TOML,
};
pub use cost::{AttemptCost, PhaseTimes, ReferenceCost};
pub use error::MethodError;
pub use options::{
    DecodeOptions, Selection, SolveOptions, DEFAULT_SAMPLE_SHARE, DEFAULT_TASK_TOKENS,
};
pub use outcome::{SolveCost, SolveOutcome};
pub use profile::{PhaseProfile, PhaseTime};
pub use progress::ProgressEvent;
pub use record::{
    AttemptRecord, AttemptStop, BudgetCheck, BudgetWindow, RefreshRecord, TokenRecord, TraceRecord,
};
pub use runner::{CodeRunner, RunnerError, TestVerdict, TraceOutcome};
pub use sample::derive::{derive_at_budget, DeriveError, DerivedSolve};
pub use sample::{sample, sample_sequences_needed};
pub use sample_then_egcfg::{sample_then_egcfg, sample_then_egcfg_sequences_needed};
pub use solve::{baseline, baseline_options, check_test_syntax, sequences_needed, solve};
