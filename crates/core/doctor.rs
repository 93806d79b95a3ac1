//! `egcfg doctor`: which sandbox layers this machine gives the executor.

use std::process::ExitCode;

use anyhow::Result;
use egcfg_executor::{Executor, ExecutorConfig, MinIsolation};

pub fn run() -> Result<ExitCode> {
    let config = ExecutorConfig {
        min_isolation: MinIsolation::none(),
        pool_size: 1,
        ..ExecutorConfig::default()
    };
    let executor = Executor::start(config)?;
    println!("{}", executor.caps());
    Ok(ExitCode::SUCCESS)
}
