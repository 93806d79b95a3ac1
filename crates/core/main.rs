//! The `egcfg` command line: flags, logging and glue between the crates.
//!
//! Every capability lives in a library crate (`egcfg-engine`, `egcfg-models`,
//! `egcfg-executor`, `egcfg-method`, `egcfg-bench`); each module of this
//! binary parses nothing, decides nothing the user did not ask for, and only
//! connects one subcommand to the libraries and prints the result.

mod benchmark;
mod doctor;
mod evaluate;
mod explore;
mod flags;
mod generate;
mod hints;
mod load;
mod model;
mod options;
mod output;
mod report;
mod sandbox;
mod solve;
mod solver;
mod speed;
mod stdout;

use std::io::IsTerminal;

use clap::Parser;

use flags::{Cli, Command, SpeedTarget};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    clean_up_on_termination();
    let result = match cli.command {
        Command::Solve(args) => solve::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Model(command) => model::run(command),
        Command::Bench(args) => match args.target {
            Some(SpeedTarget::Engine { model }) => speed::engine(&model),
            Some(SpeedTarget::Exec {
                executions,
                spawn_executions,
            }) => speed::exec(executions, spawn_executions),
            None => benchmark::run(args.run),
        },
        Command::Evaluate(args) => evaluate::run(args),
        Command::Report(args) => report::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Doctor => doctor::run(),
    };
    match result {
        Ok(code) => code,
        // `egcfg report DB | head`: the reader has what it wanted.
        Err(error) if error.downcast_ref::<stdout::ReaderGone>().is_some() => {
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", hints::describe(&error));
            std::process::ExitCode::from(2)
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP, first undo what a model fetch under way
/// would leave behind (its `pip` process, its partial files), then die of
/// the signal as before. Destructors do not run when a signal ends the
/// process, so this is the one place that cleanup can happen.
fn clean_up_on_termination() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!("cannot watch for Ctrl-C; an interrupted fetch may leave files: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            egcfg_models::abandon_fetches();
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}

/// Logs go to stderr; `RUST_LOG` overrides the `-v` count. Colours only
/// on a terminal: escape codes in a log file are noise. By default the
/// model store says what it fetches (fetches are rare, long and networked).
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,egcfg_models=info",
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
