//! `/api/...`: the explorer's data as JSON, for scripts and notebooks.

use egcfg_bench::RunId;
use serde::Serialize;

use crate::runs::Headline;
use crate::source::Source;
use crate::ExploreError;

/// A run with its headline numbers (`/api/runs`).
#[derive(Serialize)]
struct RunSummary {
    #[serde(flatten)]
    info: egcfg_bench::RunInfo,
    passed: Option<usize>,
    suite: Option<String>,
    attempts_per_task: f64,
    tokens_per_task: f64,
    seconds_per_task: f64,
}

/// Every run with its headline numbers.
pub fn runs(source: &Source) -> Result<String, ExploreError> {
    let mut out = Vec::new();
    for info in source.runs()? {
        let h = Headline::of(&source.tasks(info.id)?);
        out.push(RunSummary {
            info,
            passed: h.passed,
            suite: h.suite,
            attempts_per_task: h.attempts,
            tokens_per_task: h.tokens,
            seconds_per_task: h.seconds,
        });
    }
    Ok(serde_json::to_string_pretty(&out).expect("plain data serialises"))
}

/// A run's tasks without their records (`/api/run?id=N`).
pub fn run(source: &Source, run: RunId) -> Result<String, ExploreError> {
    Ok(serde_json::to_string_pretty(&source.tasks(run)?).expect("plain data serialises"))
}

/// One task with its records (`/api/task?run=N&id=T`); `None` if absent.
pub fn task(source: &Source, run: RunId, task: &str) -> Result<Option<String>, ExploreError> {
    Ok(source
        .task(run, task)?
        .map(|r| serde_json::to_string_pretty(&r).expect("plain data serialises")))
}
