//! `egcfg solve`: one task file, solved with EG-CFG agents.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use egcfg_engine::Engine;
use egcfg_executor::{Executor, ExecutorConfig};
use egcfg_method::explain::explain_outcome;
use egcfg_method::ProgressEvent;
use egcfg_task::Task;
use indicatif::{ProgressBar, ProgressStyle};

use crate::flags::SolveArgs;
use crate::load;

pub fn run(args: SolveArgs) -> Result<ExitCode> {
    let task = Task::from_file(&args.task)?;
    let options = crate::options::solve_options(&args.options)?;
    let engine = load::engine(&args.model, load::SEQUENCES_PER_SOLVE)?;
    let executor = Arc::new(Executor::start(ExecutorConfig::default())?);

    let spinner = progress_spinner();
    let on_progress = |event: ProgressEvent| spinner.set_message(describe(&event));
    let outcome = egcfg_method::solve(&task, engine.clone(), executor, &options, &on_progress)?;
    spinner.finish_and_clear();

    if let Some(path) = &args.record {
        let json = serde_json::to_string_pretty(&outcome)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.explain {
        let piece = |token| spell(engine.as_ref(), token);
        eprintln!("{}", explain_outcome(&outcome, &piece));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Summary::of(&outcome))?);
    } else {
        println!("{}", outcome.code);
    }
    eprintln!(
        "{}: {} ({} of {} visible tests) after {} attempt(s), {} forward tokens, {:.1} s",
        task.id,
        if outcome.passed {
            "solved"
        } else {
            "NOT solved"
        },
        outcome.visible.iter().filter(|v| v.passed).count(),
        outcome.visible.len(),
        outcome.cost.attempts_run,
        outcome.cost.forward_tokens,
        outcome.cost.wall_s,
    );
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `--json` prints: the answer and its cost, without the full records
/// (`--record` writes those).
#[derive(serde::Serialize)]
struct Summary<'a> {
    task: &'a str,
    code: &'a str,
    passed: bool,
    visible_tests: &'a [egcfg_method::TestVerdict],
    winner: Option<&'a str>,
    cost: &'a egcfg_method::SolveCost,
    attempts: Vec<AttemptSummary<'a>>,
}

#[derive(serde::Serialize)]
struct AttemptSummary<'a> {
    name: &'a str,
    cost: &'a egcfg_method::AttemptCost,
}

impl<'a> Summary<'a> {
    fn of(outcome: &'a egcfg_method::SolveOutcome) -> Self {
        Summary {
            task: &outcome.task_id,
            code: &outcome.code,
            passed: outcome.passed,
            visible_tests: &outcome.visible,
            winner: outcome.winner_name.as_deref(),
            cost: &outcome.cost,
            attempts: outcome
                .attempts
                .iter()
                .map(|a| AttemptSummary {
                    name: &a.name,
                    cost: &a.cost,
                })
                .collect(),
        }
    }
}

fn spell(engine: &dyn Engine, token: egcfg_engine::Token) -> String {
    engine
        .token_bytes(token)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|_| format!("<{token}>"))
}

/// A spinner on stderr; hidden when stderr is not a terminal.
pub fn progress_spinner() -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("valid template"),
    );
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}

/// One line about what the agents are doing.
fn describe(event: &ProgressEvent) -> String {
    match event {
        ProgressEvent::AttemptStarted { index, name } => {
            format!("attempt {index} ({name}) started")
        }
        ProgressEvent::Refresh {
            index,
            line,
            unique,
            signal_tokens,
        } => format!(
            "attempt {index}: line {line}, {unique} candidate(s), signal {signal_tokens} tokens"
        ),
        ProgressEvent::AttemptFinished {
            index,
            name,
            passed,
            total,
            ..
        } => format!("attempt {index} ({name}) passed {passed}/{total} visible tests"),
    }
}
