//! `egcfg explore`: the run explorer on 127.0.0.1.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use egcfg_explore::{serve, Explorer, Source};

use crate::flags::ExploreArgs;
use crate::stdout::outln;

pub fn run(args: ExploreArgs) -> Result<ExitCode> {
    let source = Source::open(&args.file)?;
    serve(Explorer::new(source), args.port, |address| {
        // The address on stdout (flushed at once: scripts wait for it),
        // how to stop on stderr. A closed stdout does not stop the server.
        let _ = outln!("egcfg explore: http://{address}/");
        let _ = std::io::stdout().flush();
        eprintln!("serving {} until Ctrl-C", args.file.display());
    })?;
    Ok(ExitCode::SUCCESS)
}
