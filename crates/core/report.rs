//! `egcfg report`: tables and an HTML page from a benchmark database.

use std::process::ExitCode;

use anyhow::{bail, Result};
use egcfg_bench::{report, Store};

use crate::flags::ReportArgs;
use crate::output::{OutputFile, OutputKind};
use crate::stdout::out;

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    // Read-only: a report never changes the database it reads.
    let store = Store::open_read_only(&args.db)?;
    let html = args
        .html
        .as_deref()
        .map(|path| OutputFile::claim(path, HTML_REPORT, &[&args.db]))
        .transpose()?;
    let hashes: Vec<String> = store.runs()?.into_iter().map(|r| r.config_hash).collect();
    let unknown: Vec<&String> = args
        .leave_out
        .iter()
        .filter(|h| !hashes.contains(h))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "--leave-out: no run in {} has config hash {}; its runs' config hashes are {} (the `config` column of the report)",
            args.db.display(),
            unknown.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", "),
            hashes.join(", ")
        );
    }
    let report = report::build_leaving_out(&store, &args.leave_out)?;
    out!("{}", report::markdown(&report))?;
    if let Some(html) = html {
        let path = html.path().display().to_string();
        html.write(report::html(&report).as_bytes())?;
        eprintln!("wrote {path}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--html` pages: an existing egcfg report may be replaced, nothing else
/// (least of all a results database).
const HTML_REPORT: OutputKind = OutputKind {
    flag: "--html",
    what: "HTML report",
    is_earlier_output: |head| {
        head.starts_with(b"<!DOCTYPE html>")
            && head
                .windows(report::HTML_TITLE.len())
                .any(|w| w == report::HTML_TITLE.as_bytes())
    },
};
