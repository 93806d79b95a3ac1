//! `egcfg solve`: one task file, solved with the chosen `--method` (best-of-N
//! sampling by default, EG-CFG agents with `--method egcfg`).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use egcfg_engine::Engine;
use egcfg_executor::{Executor, ExecutorConfig, UnplannedTests};
use egcfg_method::explain::explain_outcome;
use egcfg_method::{CodeRunner, ProgressEvent, TestVerdict};
use egcfg_task::{Task, TaskFormat, TestCase};
use indicatif::{ProgressBar, ProgressStyle};

use crate::flags::SolveArgs;
use crate::load;
use crate::output::{OutputFile, OutputKind};
use crate::sandbox::SandboxRunner;
use crate::stdout::outln;

/// Names each test whose verdict comes from the candidate's own process,
/// where a hostile program could fake it, and how to write it instead.
fn warn_about_tests_judged_inside(task: &Task, executor: &Executor) {
    for (group, tests) in [("visible", &task.visible), ("hidden", &task.hidden)] {
        let outside = executor.judged_outside(tests);
        for (index, (test, outside)) in tests.iter().zip(outside).enumerate() {
            // Printed-output tests are always judged outside.
            if let (false, TestCase::Assert { code } | TestCase::Script { code }) = (outside, test)
            {
                tracing::warn!(
                    "{group} test {} `{}` is judged inside the candidate's process, where a hostile program could fake its verdict; \
                     write it as `assert CALL == EXPECTED` or `assert EXPRESSION` to have it judged outside",
                    index + 1,
                    code.trim()
                );
            }
        }
    }
}

pub fn run(args: SolveArgs) -> Result<ExitCode> {
    let task = load_task(&args.task)?;
    let options = crate::options::solve_options(&args.options)?;
    // Everything that can be refused is refused before the model loads and
    // the budget is spent: the tests' syntax and the record's path.
    // A user's own tests may take any shape; those the sandbox cannot judge
    // outside the candidate's process still run, with a warning, rather
    // than fail every program.
    let executor = Executor::start(ExecutorConfig {
        unplanned_tests: UnplannedTests::RunInChild,
        ..ExecutorConfig::default()
    })?;
    let runner = Arc::new(SandboxRunner::new(executor));
    egcfg_method::check_test_syntax(&task, runner.as_ref())?;
    // Only tests that parse are worth a word on how they are judged.
    warn_about_tests_judged_inside(&task, runner.executor());
    let record = args
        .record
        .as_deref()
        .map(|path| OutputFile::claim(path, RECORD, &[&args.task]))
        .transpose()?;
    let method = args.options.method;
    let engine = load::engine(&args.model, crate::solver::sequences_for(method, &options))?;

    let spinner = progress_spinner();
    let on_progress = |event: ProgressEvent| spinner.set_message(describe(&event));
    let outcome = crate::solver::solve_with(
        method,
        &task,
        engine.clone(),
        runner.clone(),
        &options,
        &on_progress,
    )?;
    spinner.finish_and_clear();
    // Hidden tests score the chosen program once, after the choice; the
    // solve never saw them.
    let hidden = if task.hidden.is_empty() {
        None
    } else {
        Some(runner.check(&outcome.code, task.setup.as_deref(), &task.hidden, None)?)
    };

    if args.explain {
        let piece = |token| spell(engine.as_ref(), token);
        eprintln!("{}", explain_outcome(&outcome, &piece));
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&Summary::of(&outcome, hidden.as_deref()))?
        )?;
    } else {
        outln!("{}", outcome.code)?;
    }
    eprintln!(
        "{}: {} ({} of {} visible tests) after {} attempt(s), {} forward tokens, {:.1} s",
        task.id,
        if outcome.passed {
            "solved"
        } else {
            "NOT solved"
        },
        passed_count(&outcome.visible),
        outcome.visible.len(),
        outcome.cost.attempts_run,
        outcome.cost.forward_tokens,
        outcome.cost.wall_s,
    );
    if let Some(hidden) = &hidden {
        eprintln!(
            "hidden tests (never shown to the model): {} of {} pass",
            passed_count(hidden),
            hidden.len()
        );
    }
    // Written after the program was printed: a record that cannot be
    // written must not cost the user the answer.
    if let Some(record) = record {
        let path = record.path().display().to_string();
        let records = crate::solver::records(&outcome, engine.as_ref());
        record.write(serde_json::to_string_pretty(&records)?.as_bytes())?;
        eprintln!("record written to {path}");
    }
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--record` files: the JSON of a [`SolveOutcome`]; an existing one may be
/// replaced, nothing else.
const RECORD: OutputKind = OutputKind {
    flag: "--record",
    what: "solve record",
    is_earlier_output: |head| {
        serde_json::from_slice::<serde_json::Value>(head).is_ok_and(|v| {
            ["task_id", "attempts", "cost"]
                .iter()
                .all(|key| v.get(key).is_some())
        })
    },
};

/// The task of `egcfg solve PATH`; `-` reads it from standard input (TOML,
/// or JSON when it starts with `{`).
fn load_task(path: &Path) -> Result<Task> {
    if path != Path::new("-") {
        return Ok(Task::from_file(path)?);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the task from standard input")?;
    Ok(Task::from_text(
        &text,
        TaskFormat::sniff(&text),
        "<stdin>",
        "stdin".into(),
    )?)
}

fn passed_count(verdicts: &[TestVerdict]) -> usize {
    verdicts.iter().filter(|v| v.passed).count()
}

/// What `--json` prints: the answer and its cost, without the full records
/// (`--record` writes those).
#[derive(serde::Serialize)]
struct Summary<'a> {
    task: &'a str,
    code: &'a str,
    passed: bool,
    visible_tests: &'a [TestVerdict],
    /// `None` when the task has no hidden tests.
    hidden_tests: Option<&'a [TestVerdict]>,
    winner: Option<&'a str>,
    cost: &'a egcfg_method::SolveCost,
    /// The share of the forward tokens spent on attempts that produced no
    /// program.
    no_program_share: f64,
    /// The task's time per phase and its waits, as the bench records them.
    profile: egcfg_bench::profile::TaskProfile,
    attempts: Vec<AttemptSummary<'a>>,
}

#[derive(serde::Serialize)]
struct AttemptSummary<'a> {
    name: &'a str,
    /// Why it stopped (`finished`, `lost_race`, `token_budget`, ...).
    stop: &'static str,
    cost: &'a egcfg_method::AttemptCost,
}

impl<'a> Summary<'a> {
    fn of(outcome: &'a egcfg_method::SolveOutcome, hidden: Option<&'a [TestVerdict]>) -> Self {
        Summary {
            task: &outcome.task_id,
            code: &outcome.code,
            passed: outcome.passed,
            visible_tests: &outcome.visible,
            hidden_tests: hidden,
            winner: outcome.winner_name.as_deref(),
            cost: &outcome.cost,
            no_program_share: outcome.cost.no_program_share(),
            profile: crate::solver::task_profile(&outcome.cost),
            attempts: outcome
                .attempts
                .iter()
                .map(|a| AttemptSummary {
                    name: &a.name,
                    stop: a.stop.kind(),
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

/// One line about what the attempts are doing.
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
