//! `/run?id=N[&vs=M][&filter=F]`: the tasks of a run, against another run.

use std::collections::HashMap;
use std::fmt::Write;

use egcfg_bench::report::BASELINE_METHOD;
use egcfg_bench::{RunId, RunInfo, TaskResult};

use crate::page::{escape, layout, passed, run_href, run_label, task_href, verdict};
use crate::runs::{live_note, liveness, Headline};
use crate::source::Source;
use crate::ExploreError;

/// Which tasks a run page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every finished task.
    All,
    /// Passing the primary suite.
    Solved,
    /// Failing it.
    Failed,
    /// Passing where the other run fails.
    Fixed,
    /// Failing where the other run passes.
    Broken,
}

impl Filter {
    const ALL: [Filter; 5] = [
        Filter::All,
        Filter::Solved,
        Filter::Failed,
        Filter::Fixed,
        Filter::Broken,
    ];

    /// The filter named in a URL (`all` when absent or unknown).
    pub fn parse(name: Option<&str>) -> Filter {
        Filter::ALL
            .into_iter()
            .find(|f| Some(f.name()) == name)
            .unwrap_or(Filter::All)
    }

    fn name(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Solved => "solved",
            Filter::Failed => "failed",
            Filter::Fixed => "fixed",
            Filter::Broken => "broken",
        }
    }

    /// Whether a task with these verdicts (this run, the other run) is listed.
    pub fn keeps(self, this: Option<bool>, other: Option<bool>) -> bool {
        match self {
            Filter::All => true,
            Filter::Solved => this == Some(true),
            Filter::Failed => this == Some(false),
            Filter::Fixed => this == Some(true) && other == Some(false),
            Filter::Broken => this == Some(false) && other == Some(true),
        }
    }
}

/// The run a run is compared with by default: the baseline of its dataset,
/// split and model (as in `egcfg report`), unless it is that baseline.
pub fn default_vs(runs: &[RunInfo], run: &RunInfo) -> Option<RunId> {
    runs.iter()
        .find(|r| {
            r.id != run.id
                && r.key.method == BASELINE_METHOD
                && r.key.dataset == run.key.dataset
                && r.key.split == run.key.split
                && r.key.model == run.key.model
        })
        .map(|r| r.id)
}

/// The page; `None` when there is no such run.
pub fn page(
    source: &Source,
    run: RunId,
    vs: Option<RunId>,
    filter: Filter,
) -> Result<Option<String>, ExploreError> {
    let runs = source.runs()?;
    let Some(info) = runs.iter().find(|r| r.id == run) else {
        return Ok(None);
    };
    let vs = vs.or_else(|| default_vs(&runs, info));
    let results = source.tasks(run)?;
    let other: HashMap<String, Option<bool>> = match vs {
        Some(vs) => source
            .tasks(vs)?
            .iter()
            .map(|r| (r.task_id.clone(), passed(r)))
            .collect(),
        None => HashMap::new(),
    };
    let (live, ago) = liveness(source);
    let headline = Headline::of(&results);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p>{} tasks done &middot; strict pass@1 {} &middot; {:.1} attempts, {:.0} forward tokens, {:.1} s per task{}</p>",
        headline.tasks,
        escape(&headline.pass_text()),
        headline.attempts,
        headline.tokens,
        headline.seconds,
        live_note(live, ago)
    );
    compare_form(&mut body, &runs, run, vs);
    filters(&mut body, run, vs, filter, &results, &other);
    let _ = writeln!(
        body,
        "<table id=\"tasks\"><tr><th class=\"l\">task</th><th>hidden tests</th><th>{}</th><th>attempts</th><th>forward tokens</th><th>executions</th><th>seconds</th></tr>",
        match vs {
            Some(vs) => format!("run {}", vs.0),
            None => "other run".into(),
        }
    );
    for r in &results {
        let this = passed(r);
        let that = other.get(&r.task_id).copied().flatten();
        if !filter.keeps(this, that) {
            continue;
        }
        let class = match (this, that) {
            (Some(true), Some(false)) => " class=\"fixed\"",
            (Some(false), Some(true)) => " class=\"broken\"",
            _ => "",
        };
        let tests = r
            .scores
            .first()
            .map(|s| {
                format!(
                    "{} {}/{}",
                    verdict(Some(s.passed)),
                    s.tests_passed,
                    s.tests_total
                )
            })
            .unwrap_or_else(|| "-".into());
        let cost = &r.solution.cost;
        let _ = writeln!(
            body,
            "<tr{class}><td class=\"l\"><a data-task=\"{id}\" href=\"{href}\">{id}</a></td><td>{tests}</td><td>{that}</td><td>{attempts}</td><td>{tokens}</td><td>{executions}</td><td>{seconds:.1}</td></tr>",
            id = escape(&r.task_id),
            href = escape(&task_href(run.0, &r.task_id, vs.map(|v| v.0))),
            that = verdict(that),
            attempts = r.solution.attempt_programs().len(),
            tokens = cost.prefill_tokens + cost.decode_tokens,
            executions = cost.executions,
            seconds = r.wall_ms / 1000.0,
        );
    }
    body.push_str("</table>\n");
    let title = format!("Run {}: {}", run.0, run_label(info));
    Ok(Some(layout(
        &title,
        &[(run_href(run.0), format!("run {}", run.0))],
        live,
        &body,
    )))
}

/// A form to choose the run to compare with (a plain GET, no script).
fn compare_form(out: &mut String, runs: &[RunInfo], run: RunId, vs: Option<RunId>) {
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/run\"><input type=\"hidden\" name=\"id\" value=\"{}\">compare with <select name=\"vs\">",
        run.0
    );
    for other in runs.iter().filter(|r| r.id != run) {
        let _ = write!(
            out,
            "<option value=\"{}\"{}>run {}: {}</option>",
            other.id.0,
            if Some(other.id) == vs {
                " selected"
            } else {
                ""
            },
            other.id.0,
            escape(&run_label(other))
        );
    }
    out.push_str("</select> <button>compare</button></form>\n");
}

fn filters(
    out: &mut String,
    run: RunId,
    vs: Option<RunId>,
    current: Filter,
    results: &[TaskResult],
    other: &HashMap<String, Option<bool>>,
) {
    out.push_str("<p class=\"filters\">");
    for filter in Filter::ALL {
        if vs.is_none() && matches!(filter, Filter::Fixed | Filter::Broken) {
            continue;
        }
        let count = results
            .iter()
            .filter(|r| filter.keeps(passed(r), other.get(&r.task_id).copied().flatten()))
            .count();
        let mut href = format!("/run?id={}&filter={}", run.0, filter.name());
        if let Some(vs) = vs {
            let _ = write!(href, "&vs={}", vs.0);
        }
        let _ = write!(
            out,
            "<a{} data-filter=\"{name}\" href=\"{}\">{name} ({count})</a>",
            if filter == current {
                " class=\"on\""
            } else {
                ""
            },
            escape(&href),
            name = filter.name(),
        );
    }
    out.push_str("</p>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compare_with_the_other_run() {
        let (t, f) = (Some(true), Some(false));
        assert!(Filter::Fixed.keeps(t, f) && !Filter::Fixed.keeps(t, t));
        assert!(Filter::Broken.keeps(f, t) && !Filter::Broken.keeps(f, None));
        assert!(Filter::Solved.keeps(t, None) && !Filter::Failed.keeps(t, None));
        assert_eq!(Filter::parse(Some("broken")), Filter::Broken);
        assert_eq!(Filter::parse(Some("<nonsense>")), Filter::All);
    }
}
