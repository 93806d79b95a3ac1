//! `/`: every run side by side with its headline numbers.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use egcfg_bench::{RunInfo, TaskResult};

use crate::page::{escape, layout, model_name, passed, rate, run_href};
use crate::source::Source;
use crate::ExploreError;

/// How recently the file must have changed for its runs to count as live.
pub const LIVE_WINDOW: Duration = Duration::from_secs(120);

/// A run's headline numbers over its finished tasks.
pub struct Headline {
    /// Finished tasks.
    pub tasks: usize,
    /// Of them, passing the primary suite (`None`: no hidden tests).
    pub passed: Option<usize>,
    /// The primary suite's name.
    pub suite: Option<String>,
    /// Mean attempts per task.
    pub attempts: f64,
    /// Mean forward tokens per task.
    pub tokens: f64,
    /// Mean wall seconds per task.
    pub seconds: f64,
}

impl Headline {
    /// The numbers of `results`.
    pub fn of(results: &[TaskResult]) -> Headline {
        let n = results.len().max(1) as f64;
        let scored: Vec<bool> = results.iter().filter_map(passed).collect();
        Headline {
            tasks: results.len(),
            passed: (!scored.is_empty()).then(|| scored.iter().filter(|p| **p).count()),
            suite: results
                .iter()
                .find_map(|r| r.scores.first().map(|s| s.suite.clone())),
            attempts: results
                .iter()
                .map(|r| r.solution.attempt_programs().len() as f64)
                .sum::<f64>()
                / n,
            tokens: results
                .iter()
                .map(|r| (r.solution.cost.prefill_tokens + r.solution.cost.decode_tokens) as f64)
                .sum::<f64>()
                / n,
            seconds: results.iter().map(|r| r.wall_ms / 1000.0).sum::<f64>() / n,
        }
    }

    /// `3/8 (37.5%) on mbpp`, or `-`.
    pub fn pass_text(&self) -> String {
        match (self.passed, &self.suite) {
            (Some(p), Some(suite)) => format!("{} on {suite}", rate(p, self.tasks)),
            _ => "-".into(),
        }
    }
}

/// Whether the source changed within [`LIVE_WINDOW`], and how long ago.
pub fn liveness(source: &Source) -> (bool, Option<Duration>) {
    let ago = source
        .last_change()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    (ago.is_some_and(|a| a < LIVE_WINDOW), ago)
}

/// The page.
pub fn page(source: &Source) -> Result<String, ExploreError> {
    let runs = source.runs()?;
    let (live, ago) = liveness(source);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p>{} &middot; {} run(s){}</p>",
        escape(&source.path().display().to_string()),
        runs.len(),
        live_note(live, ago)
    );
    if runs.is_empty() {
        body.push_str("<p>No runs recorded yet.</p>\n");
    } else {
        body.push_str("<table><tr><th>run</th><th class=\"l\">dataset</th><th class=\"l\">method</th><th class=\"l\">model</th><th class=\"l\">config</th><th>tasks done</th><th>strict pass@1</th><th>attempts/task</th><th>tokens/task</th><th>s/task</th></tr>\n");
        for info in &runs {
            row(&mut body, info, &Headline::of(&source.tasks(info.id)?));
        }
        body.push_str("</table>\n");
    }
    Ok(layout("Runs", &[], live, &body))
}

/// ` · written 12 s ago: in progress` while the file changes.
pub fn live_note(live: bool, ago: Option<Duration>) -> String {
    match (live, ago) {
        (true, Some(ago)) => format!(
            " &middot; <span class=\"live\">written {} s ago: in progress, this page refreshes itself</span>",
            ago.as_secs()
        ),
        _ => String::new(),
    }
}

fn row(out: &mut String, info: &RunInfo, h: &Headline) {
    let k = &info.key;
    let _ = writeln!(
        out,
        "<tr><td><a data-run=\"{id}\" href=\"{href}\">{id}</a></td><td class=\"l\">{dataset}:{split}</td><td class=\"l\">{method}</td><td class=\"l\" title=\"{model_path}\">{model}</td><td class=\"l\"><code title=\"{config}\">{hash}</code></td><td>{tasks}</td><td>{pass}</td><td>{attempts:.1}</td><td>{tokens:.0}</td><td>{seconds:.1}</td></tr>",
        id = info.id.0,
        href = run_href(info.id.0),
        dataset = escape(&k.dataset),
        split = escape(&k.split),
        method = escape(&k.method),
        model = escape(model_name(&k.model)),
        model_path = escape(&k.model),
        config = escape(&k.config.to_string()),
        hash = escape(&info.config_hash),
        tasks = h.tasks,
        pass = escape(&h.pass_text()),
        attempts = h.attempts,
        tokens = h.tokens,
        seconds = h.seconds,
    );
}
