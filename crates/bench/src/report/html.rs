//! The report as one self-contained HTML page: inline CSS, inline SVG, no
//! scripts, nothing fetched.

use std::fmt::Write;

use super::phases::{footnote, rows};
use super::requests;
use super::svg::{bars, boxes, lines, Bar, Distribution, Series};
use super::{
    fmt_count, fmt_opt, fmt_share, left_out_note, record_anchor, twin_note, unscored_note, Curve,
    CurvePoint, Group, Report, RunReport, AGAINST_SAMPLE_NOTE, DERIVED_NOTE, INTERVAL_NOTE,
};

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
td:first-child,th:first-child,td.l{text-align:left}th{background:#f4f4f4}
.note{color:#555;font-style:italic}.fixed{color:#11772d}.broken{color:#b3261e}
svg.chart{display:block;margin:.8em 0;font-size:12px}
.ct{font-weight:600}.cl{text-anchor:end}.pos{fill:#4a78b5}.neg{fill:#c0504d}
.box{fill:#cfe0f5;stroke:#4a78b5}.wh{stroke:#888}.med{stroke:#222;stroke-width:2}
details{margin:.3em 0;border:1px solid #e3e3e3;padding:.3em .6em}details:target{border-color:#4a78b5;background:#f5f9ff}
pre{background:#f7f7f7;padding:.5em;overflow:auto;max-height:30em;white-space:pre-wrap}
";

/// The port `egcfg explore` listens on by default, where the report's task
/// links point.
pub const EXPLORER_PORT: u16 = 8765;

/// The page's `<title>`, also how an earlier report is recognised before it
/// is replaced.
pub const HTML_TITLE: &str = "<title>egcfg benchmark report</title>";

/// The whole report as one HTML document.
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{HTML_TITLE}<style>{STYLE}</style></head><body>\n<h1>egcfg benchmark report</h1>\n<p>Strict pass@1 scores the one program each method selected using visible tests only; any-of-N counts a task when any of its N attempts passes (reference style). RSR = (method &minus; baseline) / (100 &minus; baseline), computed on the tasks both runs finished. Every number gives its task count.</p>\n"
    );
    if let Some(note) = left_out_note(report) {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(&note));
    }
    if report.groups.is_empty() {
        out.push_str("<p>No runs recorded yet.</p>\n");
    }
    for group in &report.groups {
        group_section(&mut out, group);
    }
    let _ = writeln!(
        out,
        "<h2>Recorded generations</h2>\n<p class=\"note\">Each task's selected program and attempts, and a link to its page in <code>egcfg explore DB</code> (which listens on port {EXPLORER_PORT} unless told otherwise), where its records are: the candidates and their traces, the program as it grew, and every guided token. The records stay off this page, which would otherwise run to several times the database's size.</p>"
    );
    for group in &report.groups {
        for run in &group.runs {
            records_section(&mut out, run);
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn run_label(run: &RunReport) -> String {
    format!(
        "{} [{}]",
        run.info.key.method,
        &run.info.config_hash[..8.min(run.info.config_hash.len())]
    )
}

fn group_section(out: &mut String, group: &Group) {
    let _ = writeln!(
        out,
        "<h2>{}:{} &middot; {}</h2>",
        escape(&group.dataset),
        escape(&group.split),
        escape(&group.model)
    );
    if let Some(note) = group.note {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
    }
    if let Some(note) = unscored_note(group) {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(&note));
    }
    if let Some(note) = twin_note(group) {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(&note));
    }
    summary_table(out, group);
    if let Some(curve) = &group.curve {
        curve_section(out, curve);
    }
    unrunnable_list(out, group);
    for run in &group.runs {
        phase_table(out, run);
        request_table(out, run);
    }
    let primary: Vec<Bar> = group
        .runs
        .iter()
        .filter_map(|run| {
            let s = run.suites.first()?;
            Some(Bar {
                label: format!("{} {}", run_label(run), s.suite),
                value: s.strict.percent(),
                text: s.strict.to_string(),
            })
        })
        .collect();
    out.push_str(&bars("Strict pass@1 (primary suite)", &primary, 100.0));
    let rsr: Vec<Bar> = group
        .runs
        .iter()
        .flat_map(|run| {
            run.suites.iter().filter_map(move |s| {
                let c = s.vs_baseline.as_ref()?;
                Some(Bar {
                    label: format!("{} {}", run_label(run), s.suite),
                    value: c.rsr?,
                    text: format!("RSR {:.1} (n={})", c.rsr?, c.method.total),
                })
            })
        })
        .collect();
    if !rsr.is_empty() {
        out.push_str(&bars(
            "RSR against the baseline (shared tasks)",
            &rsr,
            100.0,
        ));
    }
    let dist = |f: fn(&RunReport) -> Vec<f64>| -> Vec<Distribution> {
        group
            .runs
            .iter()
            .map(|run| Distribution {
                label: run_label(run),
                values: f(run),
            })
            .collect()
    };
    out.push_str(&boxes(
        "Wall time per task",
        "s",
        &dist(|r| r.results.iter().map(|t| t.wall_ms / 1000.0).collect()),
    ));
    out.push_str(&boxes(
        "Forward tokens per task (prefill + decode)",
        "tok",
        &dist(|r| {
            r.results
                .iter()
                .map(|t| (t.solution.cost.prefill_tokens + t.solution.cost.decode_tokens) as f64)
                .collect()
        }),
    ));
    fixed_broken(out, group);
}

/// Where the time of `run` went, if it recorded that.
fn phase_table(out: &mut String, run: &RunReport) {
    let Some(profile) = &run.profile else { return };
    let _ = writeln!(
        out,
        "<h3>Where the time went: {}</h3>\n<table><tr><th>phase</th><th>wall s</th><th>share</th><th>CPU s</th></tr>",
        escape(&run_label(run))
    );
    for row in rows(profile) {
        let cpu = row.cpu_s.map_or_else(|| "-".into(), |c| format!("{c:.1}"));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.0}%</td><td>{cpu}</td></tr>",
            escape(&row.label),
            row.wall_s,
            row.share
        );
    }
    let _ = writeln!(
        out,
        "</table>\n<p class=\"note\">{}</p>",
        escape(&footnote(profile))
    );
}

/// What the model server was asked for `run`, if its model was served.
fn request_table(out: &mut String, run: &RunReport) {
    let Some(cost) = &run.server_cost else { return };
    let _ = writeln!(
        out,
        "<h3>What the model server was asked: {}</h3>\n<table><tr><th>over</th><th>tasks</th><th>attempts</th><th>requests</th><th>prompt tokens</th><th>generated tokens</th><th>requests per generated token</th></tr>",
        escape(&run_label(run))
    );
    for row in requests::rows(cost) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.label),
            row.tasks,
            row.attempts,
            row.requests,
            escape(&row.prompt_tokens),
            row.generated_tokens,
            row.per_generated_token
        );
    }
    let _ = writeln!(
        out,
        "</table>\n<p class=\"note\">{}</p>",
        escape(requests::footnote(cost))
    );
}

/// The tasks each run could not run at all, and why: they are in no score,
/// so the page says so next to the scores.
fn unrunnable_list(out: &mut String, group: &Group) {
    for run in group.runs.iter().filter(|r| !r.unrunnable.is_empty()) {
        let _ = writeln!(
            out,
            "<p>{}: {} task(s) could not run and are in no score:</p>\n<ul>",
            escape(&run_label(run)),
            run.unrunnable.len()
        );
        for task in &run.unrunnable {
            let _ = writeln!(
                out,
                "<li>{}: {}</li>",
                escape(&task.task_id),
                escape(&task.reason)
            );
        }
        out.push_str("</ul>\n");
    }
}

/// The budget curve: a table of its points and, per suite, charts of
/// strict pass@1 against tokens and against wall time per task.
fn curve_section(out: &mut String, curve: &Curve) {
    let _ = writeln!(
        out,
        "<h3>Budget curve</h3><p>On the {} task(s) every run of this group finished.</p>",
        curve.tasks
    );
    out.push_str("<table><tr><th>suite</th><th>line</th><th>config</th><th>token budget</th><th>derived from</th><th>strict pass@1</th><th>95% CI</th><th>vs sample</th><th>tokens/task</th><th>wall s/task</th></tr>\n");
    for p in &curve.points {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            escape(&p.suite),
            escape(&curve.line_name(p)),
            escape(&p.config_hash),
            p.budget.map_or("-".into(), |b| b.to_string()),
            escape(p.derived_from.as_deref().unwrap_or("-")),
            p.strict,
            p.strict.wilson_95_text(),
            p.against_sample.map_or("-".into(), |c| c.to_string()),
            fmt_count(p.tokens),
            p.wall_s
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(out, "<p>{}</p>", escape(INTERVAL_NOTE));
    if curve.points.iter().any(|p| p.against_sample.is_some()) {
        let _ = writeln!(out, "<p>{}</p>", escape(AGAINST_SAMPLE_NOTE));
    }
    if curve.points.iter().any(|p| p.derived_from.is_some()) {
        let _ = writeln!(out, "<p>{}</p>", escape(DERIVED_NOTE));
    }
    let mut suites: Vec<&str> = curve.points.iter().map(|p| p.suite.as_str()).collect();
    suites.dedup();
    for suite in suites {
        let points: Vec<&CurvePoint> = curve.points.iter().filter(|p| p.suite == suite).collect();
        for (axis, value) in [
            (
                "forward tokens per task",
                &(|p: &CurvePoint| p.tokens) as &dyn Fn(&CurvePoint) -> f64,
            ),
            ("wall seconds per task", &|p: &CurvePoint| p.wall_s),
        ] {
            let series: Vec<Series> = series_by_line(curve, &points, value);
            out.push_str(&lines(
                &format!("{suite}: strict pass@1 (%) against {axis}"),
                axis,
                &series,
            ));
        }
    }
}

/// One line per method and setting ([`Curve::line_name`]): its points (x,
/// strict pass@1 in percent) in budget order.
fn series_by_line(
    curve: &Curve,
    points: &[&CurvePoint],
    x: &dyn Fn(&CurvePoint) -> f64,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for p in points {
        let point = (x(p), p.strict.percent());
        let label = curve.line_name(p);
        match out.iter_mut().find(|s| s.label == label) {
            Some(series) => series.points.push(point),
            None => out.push(Series {
                label,
                points: vec![point],
            }),
        }
    }
    out
}

fn summary_table(out: &mut String, group: &Group) {
    out.push_str("<table><tr><th>method</th><th>config</th><th>suite</th><th>tasks</th><th>strict pass@1</th><th>any-of-N</th><th>N mean/max</th><th>pass@k</th><th>RSR (shared tasks)</th><th>tokens/task</th><th>exec/task</th><th>wall s/task</th><th>tokens on no program</th></tr>\n");
    for run in &group.runs {
        for s in &run.suites {
            let (any, n) = s.any_of_n.as_ref().map_or(("-".into(), "-".into()), |a| {
                (
                    a.rate.to_string(),
                    format!("{:.1}/{}", a.mean_attempts, a.max_attempts),
                )
            });
            let pass_k: Vec<String> = s
                .pass_at_k
                .iter()
                .map(|p| format!("@{} {:.1}% (n={})", p.k, p.percent, p.tasks))
                .collect();
            let rsr = s.vs_baseline.as_ref().map_or("-".into(), |c| {
                format!("{} ({} vs {})", fmt_opt(c.rsr), c.method, c.base)
            });
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td></tr>",
                escape(&run.info.key.method),
                escape(&run.info.config_hash),
                escape(&s.suite),
                s.strict.total,
                s.strict,
                any,
                n,
                escape(&pass_k.join(", ")),
                escape(&rsr),
                fmt_count(run.cost.tokens.mean),
                fmt_count(run.cost.executions.mean),
                run.cost.wall_s.mean,
                fmt_share(run.cost.no_program_share)
            );
        }
    }
    out.push_str("</table>\n");
}

fn fixed_broken(out: &mut String, group: &Group) {
    let Some(b) = group.baseline else {
        out.push_str("<p>No baseline run in this group: no fixed/broken lists.</p>\n");
        return;
    };
    let base = &group.runs[b];
    for run in group.runs.iter().filter(|r| r.info.id != base.info.id) {
        let Some(primary) = run.suites.first() else {
            continue;
        };
        let Some(c) = &primary.vs_baseline else {
            continue;
        };
        let _ = writeln!(
            out,
            "<h3>{} vs baseline on {}: {} fixed, {} broken of {} shared tasks</h3>",
            escape(&run_label(run)),
            escape(&c.suite),
            c.fixed.len(),
            c.broken.len(),
            c.method.total
        );
        if c.fixed.is_empty() && c.broken.is_empty() {
            continue;
        }
        out.push_str("<table><tr><th>task</th><th>change</th><th>method's generation</th><th>baseline's generation</th></tr>\n");
        let rows = c
            .fixed
            .iter()
            .map(|t| (t, "fixed"))
            .chain(c.broken.iter().map(|t| (t, "broken")));
        for (task, change) in rows {
            let _ = writeln!(
                out,
                "<tr><td>{t}</td><td class=\"l {change}\">{change}</td><td class=\"l\"><a href=\"#{m}\">run {mr}</a></td><td class=\"l\"><a href=\"#{bl}\">run {br}</a></td></tr>",
                t = escape(task),
                m = record_anchor(run.info.id.0, task),
                mr = run.info.id.0,
                bl = record_anchor(base.info.id.0, task),
                br = base.info.id.0,
            );
        }
        out.push_str("</table>\n");
    }
}

/// Where `egcfg explore DB` (on its default port) shows a task: the
/// report's way into every decision behind a number.
fn explorer_link(run: i64, task_id: &str) -> String {
    let mut id = String::new();
    for byte in task_id.bytes() {
        if byte.is_ascii_alphanumeric() {
            id.push(byte as char);
        } else {
            let _ = write!(id, "%{byte:02X}");
        }
    }
    format!("http://127.0.0.1:{EXPLORER_PORT}/task?run={run}&id={id}")
}

fn records_section(out: &mut String, run: &RunReport) {
    let k = &run.info.key;
    let _ = writeln!(
        out,
        "<h3>Run {}: {}:{} &middot; {} &middot; {}</h3>\n<p class=\"note\">config {}: <code>{}</code></p>",
        run.info.id.0,
        escape(&k.dataset),
        escape(&k.split),
        escape(&k.method),
        escape(&k.model),
        escape(&run.info.config_hash),
        escape(&k.config.to_string())
    );
    for r in &run.results {
        let verdicts: Vec<String> = r
            .scores
            .iter()
            .map(|s| format!("{} {}", s.suite, if s.passed { "pass" } else { "fail" }))
            .collect();
        let _ = write!(
            out,
            "<details id=\"{id}\"><summary>{task} &middot; {verdicts} &middot; {n} attempt(s), {wall:.1} s &middot; <a class=\"explore\" href=\"{explore}\">open in egcfg explore</a></summary>\n<p>Selected program:</p><pre>{program}</pre>\n",
            id = record_anchor(run.info.id.0, &r.task_id),
            task = escape(&r.task_id),
            explore = escape(&explorer_link(run.info.id.0, &r.task_id)),
            verdicts = escape(&verdicts.join(", ")),
            n = r.solution.attempt_programs().len(),
            wall = r.wall_ms / 1000.0,
            program = escape(&r.solution.program),
        );
        for s in r
            .scores
            .iter()
            .filter(|s| !s.passed && !s.detail.is_empty())
        {
            let _ = writeln!(out, "<p>{}: {}</p>", escape(&s.suite), escape(&s.detail));
        }
        for (i, a) in r.solution.attempts.iter().enumerate() {
            let _ = writeln!(
                out,
                "<p>Attempt {} ({}), visible {}/{}:</p><pre>{}</pre>",
                i + 1,
                escape(&a.label),
                a.visible_passed,
                a.visible_total,
                escape(&a.program)
            );
        }
        out.push_str("</details>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{build, tests::sample_store};
    use super::*;

    #[test]
    fn a_served_run_shows_its_requests() {
        let page = html(&build(&super::super::tests::served_store()).unwrap());
        assert!(
            page.contains("<h3>What the model server was asked: "),
            "{page}"
        );
        assert!(
            page.contains("<tr><td>γ = 1 attempts</td><td>2</td><td>2</td><td>16</td><td>1600 (40% cached)</td><td>80</td><td>0.200</td></tr>"),
            "{page}"
        );
    }

    #[test]
    fn page_is_self_contained_and_links_resolve() {
        let page = html(&build(&sample_store()).unwrap());
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(
            page.contains("<p class=\"note\">None of these tasks is in mbpp-et-partial or mbpp+;"),
            "{page}"
        );
        assert!(
            page.contains("<td>66.7% (2/3)</td><td>21–94%</td>"),
            "{page}"
        );
        // Nothing is fetched: the only addresses are links to the local
        // explorer, one per recorded task.
        let explorer = "href=\"http://127.0.0.1:8765/task?run=";
        let without_explorer_links = page.replace(explorer, "");
        for banned in ["<script", "http://", "https://", "<link", "src="] {
            assert!(
                !without_explorer_links.contains(banned),
                "page contains {banned}"
            );
        }
        assert!(
            page.contains("href=\"http://127.0.0.1:8765/task?run=2&amp;id=Mbpp%2F514\""),
            "tasks link to the explorer"
        );
        assert!(
            page.contains("return true  # &lt;b&gt;&amp;"),
            "programs are escaped"
        );
        assert!(
            !page.contains("x&lt;/script"),
            "records are for the explorer, not the page"
        );
        assert!(page.contains("1 fixed, 1 broken of 3 shared tasks"));
        assert!(
            page.contains("<tr><td>answer decode</td><td>8.0</td><td>67%</td><td>2.0</td></tr>"),
            "the EG-CFG run's time per phase"
        );
        assert!(!page.contains("model server"), "local runs ask no server");
        // Every link points at an anchor on the page.
        let mut links = 0;
        for part in page.split("href=\"#").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            assert!(
                page.contains(&format!("id=\"{target}\"")),
                "dangling link {target}"
            );
            links += 1;
        }
        assert_eq!(
            links, 4,
            "fixed + broken, each to the method's and the baseline's record"
        );
        assert!(
            page.matches("<svg").count() >= 4,
            "pass, RSR, wall, tokens charts"
        );
    }
}
