//! The benchmark harness of egcfg: datasets, resumable runs in SQLite,
//! honest metrics and reports.
//!
//! The pieces, in the order a benchmark uses them:
//!
//! * [`datasets`]: the vendored benchmark files (embedded in the binary)
//!   turned into tasks whose visible tests a solver may see and whose hidden
//!   test suites score it; plus `jsonl:PATH` for a user's own tasks.
//! * [`Solver`]: what a method implements. It receives a [`VisibleTask`]
//!   (no hidden tests exist in it) and returns the program it selected on
//!   visible tests, its attempts and its costs.
//! * [`run_benchmark`]: solves each unfinished task, applies the hidden
//!   suites once to the selected program through the sandboxed executor,
//!   and records the task in the [`Store`] in one transaction, so a killed
//!   run resumes without losing or repeating work.
//! * [`metrics`]: strict pass@1, any-of-N with its N, pass@k, RSR against
//!   the baseline on the same tasks, and cost per task, each with its task
//!   count.
//! * [`server_cost`]: what a served model's requests cost, per task and
//!   per γ.
//! * [`report`]: a markdown table and a self-contained HTML page.
//! * [`samples`]: programs in the field's JSON Lines formats, read for
//!   scoring (`egcfg evaluate`) and written from a run.
//!
//! This crate knows nothing of language models: the CLI plugs methods in
//! through [`Solver`].

#![deny(missing_docs)]

pub mod datasets;
pub mod metrics;
pub mod profile;
mod progress;
pub mod report;
mod runner;
pub mod samples;
pub mod server_cost;
mod solver;
mod store;

pub use datasets::{BenchTask, Dataset, DatasetError, DatasetSpec, Selection, Suite};
pub use runner::{run_benchmark, Checker, RunError, RunOptions, RunSummary};
pub use solver::{Attempt, Cost, ServerUsage, Solution, Solver, VisibleTask};
pub use store::{
    RunId, RunInfo, RunKey, Store, StoreError, SuiteScore, TaskResult, UnrunnableTask,
};
