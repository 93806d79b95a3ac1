//! `egcfg bench engine` and `egcfg bench exec`: how fast the engine and the
//! sandbox run on this machine (no dataset, no results database).

use std::process::ExitCode;

use anyhow::Result;

use crate::load;
use crate::stdout::outln;

/// `egcfg bench engine`: prefill, decode and fork rates of the model.
pub fn engine(model: &crate::flags::ModelArgs) -> Result<ExitCode> {
    let options = egcfg_engine::speed::BenchOptions::default();
    // The prompt, the largest batch of its forks, and one timed fork.
    let slots = options.batch_sizes.iter().copied().max().unwrap_or(1) + 2;
    let engine = load::engine(model, slots)?;
    let report = egcfg_engine::speed::run(engine.as_ref(), &options)?;
    outln!("{report}")?;
    Ok(ExitCode::SUCCESS)
}

/// `egcfg bench exec`: traced executions per second in the sandbox.
pub fn exec(executions: usize, spawn_executions: usize) -> Result<ExitCode> {
    let options = egcfg_executor::speed::BenchOptions {
        executions,
        spawn_executions,
        ..Default::default()
    };
    let report = egcfg_executor::speed::run(&options)?;
    eprintln!("isolation:\n{}", report.caps);
    eprintln!("traced lines per execution: {:.0}", report.lines_per_exec);
    outln!("{report}")?;
    Ok(ExitCode::SUCCESS)
}
