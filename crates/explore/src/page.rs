//! What every page shares: the layout, escaping, links and small formats.

use std::fmt::Write;

pub use egcfg_bench::report::escape;
use egcfg_bench::{RunInfo, TaskResult};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// The stylesheet, compiled into the binary.
pub const STYLE: &str = include_str!("assets/style.css");

/// A whole HTML page around `body`; `refresh` reloads it every few seconds
/// (a run that is still being written).
pub fn layout(title: &str, crumbs: &[(String, String)], refresh: bool, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} &middot; egcfg explore</title>{}<link rel=\"stylesheet\" href=\"/style.css\"></head><body>\n<nav><a href=\"/\">runs</a>",
        escape(title),
        if refresh {
            "<meta http-equiv=\"refresh\" content=\"5\">"
        } else {
            ""
        }
    );
    for (href, label) in crumbs {
        let _ = write!(
            out,
            " &rsaquo; <a href=\"{}\">{}</a>",
            escape(href),
            escape(label)
        );
    }
    let _ = write!(
        out,
        "</nav>\n<h1>{}</h1>\n{body}</body></html>\n",
        escape(title)
    );
    out
}

/// `text` encoded for a URL's query.
pub fn q(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// The page of a run.
pub fn run_href(run: i64) -> String {
    format!("/run?id={run}")
}

/// The page of a task in a run, compared with run `vs` where given.
pub fn task_href(run: i64, task: &str, vs: Option<i64>) -> String {
    let mut href = format!("/task?run={run}&id={}", q(task));
    if let Some(vs) = vs {
        let _ = write!(href, "&vs={vs}");
    }
    href
}

/// The page of attempt `n` of a task.
pub fn attempt_href(run: i64, task: &str, n: usize) -> String {
    format!("/attempt?run={run}&id={}&n={n}", q(task))
}

/// `dataset:split · method · model [config]`.
pub fn run_label(info: &RunInfo) -> String {
    let k = &info.key;
    format!(
        "{}:{} · {} · {} [{}]",
        k.dataset,
        k.split,
        k.method,
        model_name(&k.model),
        &info.config_hash[..8.min(info.config_hash.len())]
    )
}

/// A model as named on the command line, without the directories of a
/// path (a model's file name says which it is; the full path is long).
pub fn model_name(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// Whether a task's chosen program passed its primary (first) suite;
/// `None` when it has no hidden-test score (a solve record).
pub fn passed(result: &TaskResult) -> Option<bool> {
    result.scores.first().map(|s| s.passed)
}

/// `pass` / `fail` / `-` with a class to colour it.
pub fn verdict(passed: Option<bool>) -> &'static str {
    match passed {
        Some(true) => "<span class=\"pass\">pass</span>",
        Some(false) => "<span class=\"fail\">fail</span>",
        None => "-",
    }
}

/// `3/8 (37.5%)`.
pub fn rate(hits: usize, total: usize) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!(
            "{hits}/{total} ({:.1}%)",
            100.0 * hits as f64 / total as f64
        )
    }
}
