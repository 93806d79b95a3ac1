//! `egcfg generate`: plain generation, streamed to the terminal.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use egcfg_engine::generate::{generate, GenerateOptions, Prompt};
use egcfg_engine::sampler::SamplerConfig;

use crate::flags::GenerateArgs;
use crate::load;

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let text = prompt_text(&args.prompt)?;
    // Checked before the model loads: an empty prompt asks for nothing.
    if text.trim().is_empty() {
        bail!("the prompt is empty; give its text, a file that holds it, or `-` to read it from standard input");
    }
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

/// The prompt an argument names: `-` reads standard input, an existing
/// file is read, and anything else is the prompt text itself, unless it
/// looks like a path (one word with a `/` or a file extension): a mistyped
/// file name must not silently become the prompt.
fn prompt_text(arg: &str) -> Result<String> {
    let path = Path::new(arg);
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the prompt from standard input")?;
        return Ok(text);
    }
    if path.is_file() {
        return std::fs::read_to_string(path).with_context(|| format!("reading prompt file {arg}"));
    }
    if looks_like_a_path(arg) {
        bail!(
            "no prompt file {arg}; give an existing file, `-` for standard input, or the prompt text itself (with spaces)"
        );
    }
    Ok(arg.to_owned())
}

/// One word containing a path separator or ending in a short extension
/// (`prompts/fib`, `fib.txt`), as opposed to prose.
fn looks_like_a_path(arg: &str) -> bool {
    if arg.is_empty() || arg.contains(char::is_whitespace) {
        return false;
    }
    let has_extension = Path::new(arg)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| {
            (1..=8).contains(&e.len()) && e.chars().all(|c| c.is_ascii_alphanumeric())
        });
    arg.contains('/') || has_extension
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_is_a_prompt_and_a_missing_file_is_an_error() {
        assert_eq!(
            prompt_text("Write a function.").unwrap(),
            "Write a function."
        );
        assert_eq!(prompt_text("def").unwrap(), "def");
        for missing in ["prompts/fib", "fib.txt", "/nonexistent/p.md"] {
            let err = prompt_text(missing).unwrap_err().to_string();
            assert!(err.contains("no prompt file"), "{missing}: {err}");
        }
    }
}
