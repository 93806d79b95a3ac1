//! `egcfg report`: tables and an HTML page from a benchmark database.

use std::process::ExitCode;

use anyhow::Result;
use egcfg_bench::{report, Store};

use crate::flags::ReportArgs;
use crate::output::{OutputFile, OutputKind};

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    // Read-only: a report never changes the database it reads.
    let store = Store::open_read_only(&args.db)?;
    let html = args
        .html
        .as_deref()
        .map(|path| OutputFile::claim(path, HTML_REPORT, &[&args.db]))
        .transpose()?;
    let report = report::build(&store)?;
    print!("{}", report::markdown(&report));
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
