//! The `egcfg` command line: flags, logging and glue between the crates.
//!
//! Every capability lives in a library crate (`egcfg-engine`, `egcfg-models`,
//! `egcfg-executor`, `egcfg-method`, `egcfg-bench`); each module of this
//! binary parses nothing, decides nothing the user did not ask for, and only
//! connects one subcommand to the libraries and prints the result.

mod bench;
mod doctor;
mod evaluate;
mod explore;
mod flags;
mod generate;
mod load;
mod model;
mod options;
mod output;
mod report;
mod solve;
mod solver;

use std::io::IsTerminal;

use clap::Parser;

use flags::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Solve(args) => solve::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Model(command) => model::run(command),
        Command::Bench(args) => bench::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Report(args) => report::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Doctor => doctor::run(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the `-v` count. Colours only
/// on a terminal: escape codes in a log file are noise.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
