//! `egcfg generate`: plain generation, streamed to the terminal.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use egcfg_engine::generate::{generate, GenerateOptions, Prompt};
use egcfg_engine::sampler::SamplerConfig;

use crate::flags::GenerateArgs;
use crate::load;

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let text = prompt_text(&args.prompt)?;
    let engine = load::engine(&args.model, 1)?;
    let prompt = if args.raw {
        Prompt::Raw(text)
    } else {
        Prompt::user(text)
    };
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        stop: args.stop,
        sampling: if args.temperature > 0.0 {
            SamplerConfig::nucleus(args.temperature, args.top_p, args.seed)
        } else {
            SamplerConfig::GREEDY
        },
    };
    let mut stdout = std::io::stdout().lock();
    let generation = generate(engine.as_ref(), &prompt, &options, &mut |piece| {
        // A closed pipe (e.g. `| head`) only ends the output, not the run.
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    })?;
    let _ = writeln!(stdout);
    eprintln!(
        "[{} prompt tokens, {} generated, stopped: {:?}]",
        generation.prompt_tokens, generation.generated_tokens, generation.stop_reason
    );
    Ok(ExitCode::SUCCESS)
}

/// The argument is a file when such a file exists, else the prompt itself.
fn prompt_text(arg: &str) -> Result<String> {
    let path = std::path::Path::new(arg);
    if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading prompt file {arg}"))
    } else {
        Ok(arg.to_owned())
    }
}
