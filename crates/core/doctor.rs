//! `egcfg doctor`: which sandbox layers this machine gives the executor,
//! and whether they meet the minimum the other commands require.

use std::process::ExitCode;

use anyhow::Result;
use egcfg_executor::{Executor, ExecutorConfig, MinIsolation};

use crate::stdout::outln;

pub fn run() -> Result<ExitCode> {
    let config = ExecutorConfig {
        min_isolation: MinIsolation::none(),
        pool_size: 1,
        ..ExecutorConfig::default()
    };
    let executor = Executor::start(config)?;
    let caps = executor.caps();
    outln!("{caps}")?;
    let required = MinIsolation::default().layers;
    let names = |layers: &[egcfg_executor::Layer]| {
        layers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing = caps.missing(&required);
    if missing.is_empty() {
        outln!("minimum:     met ({})", names(&required))?;
    } else {
        outln!(
            "minimum:     NOT met: {} missing, so the commands that run candidates refuse to run here",
            names(&missing)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
