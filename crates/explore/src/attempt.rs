//! `/attempt?run=N&id=T&n=K[&token=S]`: one attempt as it grew, line by
//! line: each refresh's candidates, traces and signal, every guided token
//! (those where guidance chose differently from `P` marked), and at token S
//! the top tokens of `P`, `P_c` and the guided distribution.

use std::fmt::Write;

use egcfg_bench::RunId;
use egcfg_method::candidates::CandidateFate;
use egcfg_method::explain::{guidance_changed, lines};
use egcfg_method::guidance::TokenProb;
use egcfg_method::{AttemptRecord, RefreshRecord, TokenRecord};

use crate::page::{attempt_href, escape, layout, run_href, run_label, task_href};
use crate::source::{Generation, Source};
use crate::ExploreError;

/// The page; `None` when there is no such run, task or attempt.
pub fn page(
    source: &Source,
    run: RunId,
    task_id: &str,
    n: usize,
    token: Option<usize>,
) -> Result<Option<String>, ExploreError> {
    let Some((runs, index, result)) = source.run_and_task(run, task_id)? else {
        return Ok(None);
    };
    let info = &runs[index];
    let generation = Generation::of(&result);
    let Some(attempt) = generation.outcome.as_ref().and_then(|o| o.attempts.get(n)) else {
        return Ok(None);
    };
    let href = attempt_href(run.0, task_id, n);
    let mut body = String::new();
    summary(&mut body, attempt);
    if let Some(step) = token {
        match attempt.tokens.iter().find(|t| t.step == step) {
            Some(t) => distributions(&mut body, t, &generation),
            None => {
                let _ = writeln!(
                    body,
                    "<p class=\"note\">This attempt has no token {step}.</p>"
                );
            }
        }
    }
    growth(&mut body, attempt, &href, token);
    let _ = writeln!(
        body,
        "<h2>Answer</h2><pre id=\"answer\">{}</pre>",
        escape(&attempt.code)
    );
    let title = format!(
        "{} · attempt {} ({})",
        task_id, attempt.spec.index, attempt.name
    );
    let crumbs = [
        (
            run_href(run.0),
            format!("run {}: {}", run.0, run_label(info)),
        ),
        (task_href(run.0, task_id, None), task_id.to_string()),
        (href.clone(), format!("attempt {}", attempt.spec.index)),
    ];
    Ok(Some(layout(&title, &crumbs, false, &body)))
}

fn summary(out: &mut String, a: &AttemptRecord) {
    let c = &a.cost;
    let _ = writeln!(
        out,
        "<p>γ {} &middot; seed {} &middot; visible tests {}/{} &middot; {} forward tokens (prefill {}, decode {}, candidates {}), {} executions, {:.2} s{}</p>",
        a.spec.gamma,
        a.spec.seed,
        a.passed_count(),
        a.visible.len(),
        c.forward_tokens(),
        c.prefill_tokens,
        c.decode_tokens,
        c.candidate_tokens,
        c.executions,
        c.times.total_s,
        a.error
            .as_ref()
            .map(|e| format!(" &middot; error: {}", escape(e)))
            .unwrap_or_default()
    );
    out.push_str("<p class=\"note\">Highlighted tokens were chosen under guidance; orange ones differ from what plain decoding (the argmax of P) would have chosen. Click a guided token for its distributions.</p>\n");
}

/// The reply line by line, each line's refreshes below it.
fn growth(out: &mut String, a: &AttemptRecord, href: &str, selected: Option<usize>) {
    out.push_str("<h2>The program as it grew</h2>\n<table class=\"code\" id=\"growth\">\n");
    let mut refreshes = a.refreshes.iter().peekable();
    for (number, line) in lines(&a.tokens).iter().enumerate() {
        let _ = write!(out, "<tr><td class=\"n\">{}</td><td>", number + 1);
        for t in line {
            token_span(out, t, href, selected);
        }
        out.push_str("</td></tr>\n");
        let end = line.last().map_or(0, |t| t.step + 1);
        while let Some(refresh) = refreshes.next_if(|r| r.step < end) {
            out.push_str("<tr><td></td><td>");
            refresh_details(out, refresh);
            out.push_str("</td></tr>\n");
        }
    }
    for refresh in refreshes {
        out.push_str("<tr><td></td><td>");
        refresh_details(out, refresh);
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
}

fn token_span(out: &mut String, t: &TokenRecord, href: &str, selected: Option<usize>) {
    let text = escape(t.piece.trim_end_matches('\n'));
    let sel = if selected == Some(t.step) { " sel" } else { "" };
    if t.guided {
        let class = if guidance_changed(t) {
            "tok g chg"
        } else {
            "tok g"
        };
        let _ = write!(
            out,
            "<a class=\"{class}{sel}\" data-step=\"{step}\" data-changed=\"{changed}\" href=\"{href}&amp;token={step}#dist\">{text}</a>",
            step = t.step,
            changed = guidance_changed(t),
            href = escape(href),
        );
    } else {
        let _ = write!(out, "<span class=\"tok{sel}\">{text}</span>");
    }
}

fn refresh_details(out: &mut String, r: &RefreshRecord) {
    let _ = writeln!(
        out,
        "<details class=\"refresh\"><summary>refresh at token {} (line {}): {} sampled, {} unique, signal {} tokens{}</summary>",
        r.step,
        r.line,
        r.candidates.len(),
        r.unique.len(),
        r.signal_tokens,
        if r.signal.is_none() {
            " (none: no guidance)"
        } else if r.entries_dropped > 0 {
            " (some entries left out by the cap)"
        } else {
            ""
        }
    );
    out.push_str("<table><tr><th>sample</th><th class=\"l\">fate</th><th class=\"l\">stop</th><th class=\"l\">sampled text</th></tr>\n");
    for c in &r.candidates {
        let fate = match &c.fate {
            CandidateFate::Kept { unique } => format!("kept as #{unique}"),
            other => format!("{other:?}").to_lowercase(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}.{}</td><td class=\"l\">{}</td><td class=\"l\">{:?}</td><td class=\"l\"><pre>{}</pre></td></tr>",
            c.round,
            c.sample,
            escape(&fate),
            c.stop,
            escape(&c.sampled)
        );
    }
    out.push_str("</table>\n");
    for (i, program) in r.unique.iter().enumerate() {
        let _ = writeln!(out, "<p>#{i} program:</p><pre>{}</pre>", escape(program));
        for trace in r.traces.iter().filter(|t| t.candidate == i) {
            let _ = writeln!(
                out,
                "<p>run <code>{}</code> &rarr; {}</p><pre class=\"trace\">{}</pre>",
                escape(&trace.invocation.replace('\n', "; ")),
                escape(&trace.status),
                escape(&trace.text)
            );
        }
    }
    if let Some(signal) = &r.signal {
        let _ = writeln!(
            out,
            "<p>signal ({} tokens) shown to the model:</p><pre class=\"signal\">{}</pre>",
            r.signal_tokens,
            escape(signal)
        );
    }
    if let Some(probe) = &r.probe {
        let _ = writeln!(
            out,
            "<p>early-stop probe: {} unique from the conditional stream</p>",
            probe.unique.len()
        );
    }
    out.push_str("</details>");
}

/// The top tokens of `P`, `P_c` and the guided distribution at one step.
fn distributions(out: &mut String, t: &TokenRecord, generation: &Generation) {
    let _ = writeln!(
        out,
        "<section id=\"dist\"><h2>Token {}: {}</h2><p>{}</p><div class=\"dists\">",
        t.step,
        escape(&format!("{:?}", t.piece)),
        if guidance_changed(t) {
            format!(
                "Guidance chose {} where plain decoding would have chosen {}.",
                escape(&format!("{:?}", t.piece)),
                escape(&format!(
                    "{:?}",
                    t.argmax_p.map(|p| generation.piece(p)).unwrap_or_default()
                ))
            )
        } else if t.guided {
            "Guidance agreed with plain decoding here.".to_string()
        } else {
            "Not guided (no signal at this step).".to_string()
        }
    );
    for (name, list) in [
        ("P", &t.top_p),
        ("P_c", &t.top_pc),
        ("guided", &t.top_guided),
    ] {
        top_table(out, name, list, t, generation);
    }
    out.push_str("</div></section>\n");
}

fn top_table(
    out: &mut String,
    name: &str,
    list: &[TokenProb],
    t: &TokenRecord,
    generation: &Generation,
) {
    let _ = write!(
        out,
        "<table class=\"top\" data-dist=\"{name}\"><tr><th class=\"l\" colspan=\"2\">{name}</th></tr>"
    );
    if list.is_empty() {
        out.push_str("<tr><td class=\"l\" colspan=\"2\">not recorded at this step</td></tr>");
    }
    for entry in list {
        let class = if entry.token == t.token {
            " class=\"chosen\""
        } else if Some(entry.token) == t.argmax_p {
            " class=\"argmax\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class}><td class=\"l tok\">{}</td><td>{:.3}</td></tr>",
            escape(&format!("{:?}", generation.piece(entry.token))),
            entry.prob
        );
    }
    out.push_str("</table>\n");
}
