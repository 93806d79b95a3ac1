//! Solving a task with a grid of agents (method.md §10).
//!
//! The attempts of a task are scheduled in grid order. Up to
//! `concurrency` of them run at once, each on its own thread, all sharing
//! one engine (which batches their decodes) and one sandbox. As soon as an
//! attempt's answer passes every *visible* test the others are cancelled,
//! and that answer is returned; otherwise the answer passing the most
//! visible tests wins, ties going to the earliest in schedule order. Hidden
//! tests are never looked at here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use egcfg_engine::{Engine, SeqInput};
use egcfg_task::{Task, TestCase};

use crate::attempt::{run_attempt, AttemptEnv, StylePrompt, TracedTest};
use crate::budget::Control;
use crate::config::{AgentConfig, Grid, Horizon, PromptStyle};
use crate::error::MethodError;
use crate::options::{Selection, SolveOptions};
use crate::prompt::{build_prompt, py_repr};
use crate::record::AttemptRecord;
use crate::runner::{CodeRunner, Invocation, TestVerdict};
use crate::streams::SeqGuard;

/// Progress reported while solving (for a terminal display).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// An attempt started.
    AttemptStarted {
        /// Schedule index.
        index: usize,
        /// Attempt name.
        name: String,
    },
    /// An attempt rebuilt its signal.
    Refresh {
        /// Schedule index.
        index: usize,
        /// Line of the code the refresh belongs to.
        line: usize,
        /// Unique executable candidates.
        unique: usize,
        /// Tokens of the new signal (0 = no guidance for this line).
        signal_tokens: usize,
    },
    /// An attempt finished.
    AttemptFinished {
        /// Schedule index.
        index: usize,
        /// Attempt name.
        name: String,
        /// Visible tests passed.
        passed: usize,
        /// Visible tests.
        total: usize,
        /// Forward tokens spent.
        forward_tokens: u64,
        /// Wall time in seconds.
        seconds: f64,
    },
}

/// Totals of a solve.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SolveCost {
    /// Attempts started.
    pub attempts_run: usize,
    /// Head tokens prefilled (once per prompt style).
    pub head_prefill_tokens: u64,
    /// All forward tokens: heads plus every attempt's.
    pub forward_tokens: u64,
    /// The reference's estimated forward tokens on the same trajectories
    /// (each attempt prefills its whole prompt there).
    pub reference_forward_tokens: u64,
    /// Traced executions.
    pub executions: u64,
    /// Wall time of the whole solve in seconds.
    pub wall_s: f64,
}

/// The result of solving one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveOutcome {
    /// The task.
    pub task_id: String,
    /// The chosen program.
    pub code: String,
    /// Whether it passes every visible test.
    pub passed: bool,
    /// Its per-test visible results.
    pub visible: Vec<TestVerdict>,
    /// Index into `attempts` of the chosen attempt.
    pub winner: Option<usize>,
    /// The chosen attempt's name.
    pub winner_name: Option<String>,
    /// Every attempt that ran, in schedule order.
    pub attempts: Vec<AttemptRecord>,
    /// Totals.
    pub cost: SolveCost,
}

/// Solve `task` with the agents of `options.grid`.
///
/// `progress` is called from the agent threads. Errors are returned only
/// when the task or prompt is unusable, or when no attempt could run at all;
/// a failing attempt is recorded and the others go on.
pub fn solve(
    task: &Task,
    engine: Arc<dyn Engine>,
    runner: Arc<dyn CodeRunner>,
    options: &SolveOptions,
    progress: &(dyn Fn(ProgressEvent) + Sync),
) -> Result<SolveOutcome, MethodError> {
    let started = Instant::now();
    let engine: &dyn Engine = engine.as_ref();
    let runner: &dyn CodeRunner = runner.as_ref();
    if task.entry_point.trim().is_empty() {
        return Err(MethodError::Task {
            task: task.id.clone(),
            message: "no function name: give `entry_point` or a visible assert that calls it".into(),
        });
    }
    let mut schedule = options.grid.schedule(&task.id, options.retry);
    if let Some(max) = options.budget.max_attempts {
        schedule.truncate(max);
    }
    let control = Control::new(&options.budget, options.cancel.clone());
    let tests = traced_tests(task, runner);
    let mut prompts: BTreeMap<PromptStyle, (StylePrompt, SeqGuard<'_>)> = BTreeMap::new();
    let mut head_tokens = 0u64;
    for spec in &schedule {
        let style = spec.config.style;
        if prompts.contains_key(&style) {
            continue;
        }
        let (prompt, guard) = prefill_head(engine, task, style, options)?;
        head_tokens += prompt.head_len as u64;
        control.charge(prompt.head_len as u64);
        prompts.insert(style, (prompt, guard));
    }
    let results: Mutex<Vec<(AttemptRecord, Option<MethodError>)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let workers = options.concurrency.clamp(1, schedule.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(spec) = schedule.get(i).copied() else {
                    break;
                };
                if control.stop_cause(spec.index).is_some() {
                    continue;
                }
                let env = AttemptEnv {
                    engine,
                    runner,
                    task,
                    prompt: &prompts[&spec.config.style].0,
                    tests: &tests,
                    options: &options.decode,
                    control: &control,
                    progress,
                };
                progress(ProgressEvent::AttemptStarted {
                    index: spec.index,
                    name: spec.name(),
                });
                let (record, error) = run_attempt(&env, spec);
                if record.passed_all() {
                    match options.selection {
                        Selection::FirstToPass => control.cut_all(),
                        Selection::ScheduleOrder => control.cut_after(spec.index),
                    }
                }
                progress(ProgressEvent::AttemptFinished {
                    index: spec.index,
                    name: record.name.clone(),
                    passed: record.passed_count(),
                    total: task.visible.len(),
                    forward_tokens: record.cost.forward_tokens(),
                    seconds: record.cost.times.total_s,
                });
                results.lock().expect("no worker panics holding the lock").push((record, error));
            });
        }
    });
    drop(prompts);
    let mut results = results.into_inner().expect("workers are done");
    results.sort_by_key(|(r, _)| r.spec.index);
    if !results.is_empty() && results.iter().all(|(_, e)| e.is_some()) {
        let (_, error) = results.swap_remove(0);
        return Err(error.expect("checked above"));
    }
    let attempts: Vec<AttemptRecord> = results.into_iter().map(|(r, _)| r).collect();
    let winner = choose(&attempts);
    let cost = SolveCost {
        attempts_run: attempts.len(),
        head_prefill_tokens: head_tokens,
        forward_tokens: head_tokens + attempts.iter().map(|a| a.cost.forward_tokens()).sum::<u64>(),
        reference_forward_tokens: attempts.iter().map(|a| a.cost.reference.forward_tokens()).sum(),
        executions: attempts.iter().map(|a| a.cost.executions).sum(),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let chosen = winner.map(|i| &attempts[i]);
    Ok(SolveOutcome {
        task_id: task.id.clone(),
        code: chosen.map(|a| a.code.clone()).unwrap_or_default(),
        passed: chosen.is_some_and(AttemptRecord::passed_all),
        visible: chosen.map(|a| a.visible.clone()).unwrap_or_default(),
        winner,
        winner_name: chosen.map(|a| a.name.clone()),
        attempts,
        cost,
    })
}

/// The γ = 0 greedy baseline of one prompt style: one plain decode, checked
/// on the visible tests. For benchmarks (RSR needs it).
pub fn baseline(
    task: &Task,
    engine: Arc<dyn Engine>,
    runner: Arc<dyn CodeRunner>,
    style: PromptStyle,
    options: &SolveOptions,
    progress: &(dyn Fn(ProgressEvent) + Sync),
) -> Result<SolveOutcome, MethodError> {
    let greedy = AgentConfig {
        t: 0.0,
        s: 1,
        d: Horizon::Lines(0),
        k: 1,
        style,
    };
    let options = SolveOptions {
        grid: Grid::single(greedy, vec![0.0]),
        ..options.clone()
    };
    solve(task, engine, runner, &options, progress)
}

/// The attempt that answers: under [`Selection::FirstToPass`] the first to
/// pass in finishing order is the only passing one that was not cancelled
/// mid-way, so both rules reduce to: the earliest passing attempt in
/// schedule order, else the most passing tests, ties to the earliest.
fn choose(attempts: &[AttemptRecord]) -> Option<usize> {
    if let Some(i) = attempts.iter().position(AttemptRecord::passed_all) {
        return Some(i);
    }
    let mut best: Option<usize> = None;
    for (i, a) in attempts.iter().enumerate() {
        if a.visible.is_empty() {
            continue;
        }
        if best.is_none_or(|b| a.passed_count() > attempts[b].passed_count()) {
            best = Some(i);
        }
    }
    best.or_else(|| (!attempts.is_empty()).then_some(0))
}

/// Render, tokenize and prefill the head of one prompt style.
fn prefill_head<'e>(
    engine: &'e dyn Engine,
    task: &Task,
    style: PromptStyle,
    options: &SolveOptions,
) -> Result<(StylePrompt, SeqGuard<'e>), MethodError> {
    let parts = build_prompt(engine, task, style, options.decode.force_fence)?;
    let head = engine.tokenize(&parts.head, true)?;
    let marker_tokens = engine.tokenize(&parts.marker, true)?;
    let n_ctx = engine.info().n_ctx;
    let needed = head.len() + marker_tokens.len();
    let needed_total = needed + options.decode.max_new_tokens;
    if needed_total > n_ctx {
        return Err(MethodError::PromptTooLong {
            needed,
            n_ctx,
            needed_total,
        });
    }
    let guard = SeqGuard::new(engine, engine.new_sequence()?);
    let head_len = head.len();
    engine.decode(&[SeqInput {
        seq: guard.id(),
        tokens: head,
    }])?;
    let prompt = StylePrompt {
        parts,
        head_seq: guard.id(),
        head_len,
        marker_tokens,
    };
    Ok((prompt, guard))
}

/// The visible tests a candidate can be traced on: asserts with a call
/// expression, and stdin/stdout cases. Other tests are skipped (D1).
fn traced_tests(task: &Task, runner: &dyn CodeRunner) -> Vec<TracedTest> {
    let mut out = Vec::new();
    for (index, test) in task.visible.iter().enumerate() {
        match test {
            TestCase::Assert { code } => match runner.call_expression(code) {
                Some(expr) => out.push(TracedTest {
                    index,
                    label: expr.clone(),
                    invocation: Invocation::Call { expr },
                }),
                None => tracing::warn!(task = %task.id, test = index, "visible assert has no call to trace; skipped"),
            },
            TestCase::Stdio { stdin, stdout } => out.push(TracedTest {
                index,
                label: format!("stdin: {}\nexpected stdout: {}", py_repr(stdin), py_repr(stdout)),
                invocation: Invocation::Stdin {
                    stdin: stdin.clone(),
                    entry: task.entry_point.clone(),
                },
            }),
            TestCase::Script { .. } => {}
        }
    }
    out
}
