//! `egcfg model`: list, fetch, verify and locate models.

use std::process::ExitCode;

use anyhow::Result;
use egcfg_models::{FetchOptions, Models};

use crate::flags::ModelCommand;
use crate::stdout::outln;

pub fn run(command: ModelCommand) -> Result<ExitCode> {
    let models = Models::from_env(FetchOptions::default())?;
    match command {
        ModelCommand::List => list(&models)?,
        ModelCommand::Fetch { name } => {
            let path = models.fetch(&name)?;
            eprintln!("{name}: verified");
            outln!("{}", path.display())?;
        }
        ModelCommand::Verify { name } => {
            let path = models.verify(&name)?;
            outln!("{name}: sha256 matches ({})", path.display())?;
        }
        ModelCommand::Path { name } => {
            let spec = models.spec(&name)?;
            if !models.store().is_installed(spec) {
                anyhow::bail!("{name} is not installed; run `egcfg model fetch {name}`");
            }
            outln!("{}", models.store().model_path(spec).display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(models: &Models) -> Result<()> {
    outln!(
        "{:<30} {:>9} {:<8} {:<11} STATUS",
        "NAME",
        "SIZE",
        "QUANT",
        "LICENCE"
    )?;
    for entry in models.list() {
        let status = if entry.installed {
            entry.path.display().to_string()
        } else {
            "not installed (fetched on first use)".to_owned()
        };
        outln!(
            "{:<30} {:>6} MB {:<8} {:<11} {}",
            entry.name,
            entry.size / 1_000_000,
            entry.quantization,
            entry.licence,
            status
        )?;
    }
    outln!("\nAny local GGUF file also works: --model PATH")
}
