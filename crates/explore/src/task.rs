//! `/task?run=N&id=T[&vs=M]`: one task of a run: hidden-test verdicts, the
//! attempts in schedule order, and the chosen program beside the other
//! run's.

use std::fmt::Write;

use egcfg_bench::{RunId, TaskResult};

use crate::page::{attempt_href, escape, layout, passed, run_href, run_label, task_href, verdict};
use crate::run::default_vs;
use crate::source::{Generation, Source};
use crate::ExploreError;

/// The page; `None` when the run has no such task.
pub fn page(
    source: &Source,
    run: RunId,
    task_id: &str,
    vs: Option<RunId>,
) -> Result<Option<String>, ExploreError> {
    let Some((runs, index, result)) = source.run_and_task(run, task_id)? else {
        return Ok(None);
    };
    let info = &runs[index];
    let vs = vs.or_else(|| default_vs(&runs, info));
    let other = match vs {
        Some(vs) => source.task(vs, task_id)?,
        None => None,
    };
    let generation = Generation::of(&result);
    let mut body = String::new();
    let cost = &result.solution.cost;
    let _ = writeln!(
        body,
        "<p>{} &middot; {} attempt(s), {} forward tokens, {} executions, {:.1} s</p>",
        verdict(passed(&result)),
        result.solution.attempt_programs().len(),
        cost.prefill_tokens + cost.decode_tokens,
        cost.executions,
        result.wall_ms / 1000.0
    );
    hidden_tests(&mut body, &result);
    attempts(&mut body, run, &result, &generation);
    programs(&mut body, &result, other.as_ref(), vs);
    let title = format!("{} in run {}", task_id, run.0);
    let crumbs = [
        (
            run_href(run.0),
            format!("run {}: {}", run.0, run_label(info)),
        ),
        (
            task_href(run.0, task_id, vs.map(|v| v.0)),
            task_id.to_string(),
        ),
    ];
    Ok(Some(layout(&title, &crumbs, false, &body)))
}

fn hidden_tests(out: &mut String, result: &TaskResult) {
    out.push_str("<h2>Hidden tests of the chosen program</h2>\n");
    if result.scores.is_empty() {
        out.push_str("<p class=\"note\">No hidden tests were run (a solve record holds only visible tests).</p>\n");
        return;
    }
    out.push_str("<table id=\"hidden\"><tr><th class=\"l\">suite</th><th>verdict</th><th>tests passed</th><th class=\"l\">first failure</th><th class=\"l\">attempts passing</th></tr>\n");
    for s in &result.scores {
        let attempts = s
            .attempts_passed
            .as_ref()
            .map(|v| {
                v.iter()
                    .map(|p| if *p { "✓" } else { "✗" })
                    .collect::<String>()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}/{}</td><td class=\"l\">{}</td><td class=\"l\">{attempts}</td></tr>",
            escape(&s.suite),
            verdict(Some(s.passed)),
            s.tests_passed,
            s.tests_total,
            escape(&s.detail)
        );
    }
    out.push_str("</table>\n");
}

fn attempts(out: &mut String, run: RunId, result: &TaskResult, generation: &Generation) {
    out.push_str("<h2>Attempts in schedule order</h2>\n");
    let Some(outcome) = &generation.outcome else {
        out.push_str("<p class=\"note\">No generation record (samples scored as given, or a record of an older egcfg): only the programs are known.</p>\n<table><tr><th>#</th><th class=\"l\">attempt</th><th>visible tests</th></tr>\n");
        for (i, a) in result.solution.attempts.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td>{i}</td><td class=\"l\">{}</td><td>{}/{}</td></tr>",
                escape(&a.label),
                a.visible_passed,
                a.visible_total
            );
        }
        out.push_str("</table>\n");
        return;
    };
    let hidden = result
        .scores
        .first()
        .and_then(|s| s.attempts_passed.as_ref());
    out.push_str("<table id=\"attempts\"><tr><th>#</th><th class=\"l\">attempt</th><th>γ</th><th class=\"l\">stop</th><th>visible tests</th><th>hidden</th><th>refreshes</th><th>guided tokens</th><th>changed by guidance</th><th>forward tokens</th><th>executions</th><th>seconds</th><th></th></tr>\n");
    for (i, a) in outcome.attempts.iter().enumerate() {
        let guided = a.tokens.iter().filter(|t| t.guided).count();
        let changed = a
            .tokens
            .iter()
            .filter(|t| egcfg_method::explain::guidance_changed(t))
            .count();
        let stop = stop_text(&a.stop);
        let _ = writeln!(
            out,
            "<tr><td>{index}</td><td class=\"l\"><a data-attempt=\"{i}\" href=\"{href}\">{name}</a></td><td>{gamma}</td><td class=\"l\">{stop}{error}</td><td>{vp}/{vt}</td><td>{hidden}</td><td>{refreshes}</td><td>{guided}</td><td>{changed}</td><td>{tokens}</td><td>{executions}</td><td>{seconds:.1}</td><td>{winner}</td></tr>",
            index = a.spec.index,
            href = escape(&attempt_href(run.0, &result.task_id, i)),
            name = escape(&a.name),
            gamma = a.spec.gamma,
            stop = escape(&stop),
            error = a
                .error
                .as_ref()
                .map(|e| format!(" (error: {})", escape(e)))
                .unwrap_or_default(),
            vp = a.passed_count(),
            vt = a.visible.len(),
            hidden = verdict(hidden.and_then(|h| h.get(i).copied())),
            refreshes = a.refreshes.len(),
            tokens = a.cost.forward_tokens(),
            executions = a.cost.executions,
            seconds = a.cost.times.total_s,
            winner = if outcome.winner == Some(i) { "chosen" } else { "" },
        );
    }
    out.push_str("</table>\n");
}

fn programs(out: &mut String, result: &TaskResult, other: Option<&TaskResult>, vs: Option<RunId>) {
    out.push_str("<h2>Programs</h2>\n<div class=\"side\"><div><h3>chosen program</h3>");
    let _ = write!(
        out,
        "<pre id=\"chosen\">{}</pre></div>",
        escape(&result.solution.program)
    );
    match (other, vs) {
        (Some(other), Some(vs)) => {
            let _ = write!(
                out,
                "<div><h3>run {}'s program ({})</h3><pre id=\"other\">{}</pre></div>",
                vs.0,
                verdict(passed(other)),
                escape(&other.solution.program)
            );
        }
        _ => out.push_str("<div><h3>other run</h3><p class=\"note\">No baseline or other run has this task.</p></div>"),
    }
    out.push_str("</div>\n");
}

/// `token_limit`, or `cancelled (budget)`: why an attempt ended, in the
/// words of its record.
fn stop_text(stop: &egcfg_method::AttemptStop) -> String {
    let value = serde_json::to_value(stop).unwrap_or_default();
    let reason = value.get("reason").and_then(|r| r.as_str()).unwrap_or("?");
    match value.get("cause") {
        Some(cause) => format!(
            "{reason} ({})",
            cause
                .as_str()
                .map_or_else(|| cause.to_string(), str::to_string)
        ),
        None => reason.to_string(),
    }
}
