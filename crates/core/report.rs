//! `egcfg report`: tables and an HTML page from a benchmark database.

use std::process::ExitCode;

use anyhow::{Context, Result};
use egcfg_bench::{report, Store};

use crate::flags::ReportArgs;

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    if !args.db.is_file() {
        anyhow::bail!(
            "no database at {}; create one with `egcfg bench --db {}`",
            args.db.display(),
            args.db.display()
        );
    }
    let store = Store::open(&args.db)?;
    let report = report::build(&store)?;
    print!("{}", report::markdown(&report));
    if let Some(path) = &args.html {
        std::fs::write(path, report::html(&report))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
