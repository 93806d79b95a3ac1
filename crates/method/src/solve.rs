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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use egcfg_engine::{Engine, EngineError, SeqInput, Token};
use egcfg_task::{Task, TestCase};

use crate::attempt::{run_attempt, AttemptEnv, StylePrompt, TracedTest};
use crate::budget::Control;
use crate::config::{AgentConfig, Grid, Horizon, PromptStyle};
use crate::error::MethodError;
use crate::options::{Selection, SolveOptions};
use crate::prompt::{build_prompt, py_repr, PromptParts};
use crate::record::AttemptRecord;
use crate::runner::{CodeRunner, RunnerError, TestVerdict};
use crate::streams::SeqGuard;
use egcfg_executor::Invocation;

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
            message: "no function name: give `entry_point` or a visible assert that calls it"
                .into(),
        });
    }
    let mut schedule = options.grid.schedule(&task.id, options.retry);
    if let Some(max) = options.budget.max_attempts {
        schedule.truncate(max);
    }
    let control = Control::new(&options.budget, options.cancel.clone());
    let tests = traced_tests(task, runner)?;
    let script_call = task
        .visible
        .iter()
        .any(|t| matches!(t, TestCase::Stdio { .. }))
        .then(|| format!("{}()", task.entry_point));
    let mut heads: BTreeMap<PromptStyle, Head<'_>> = BTreeMap::new();
    for spec in &schedule {
        let style = spec.config.style;
        if let std::collections::btree_map::Entry::Vacant(slot) = heads.entry(style) {
            slot.insert(Head::render(engine, task, style, options)?);
        }
    }
    check_context(engine, heads.values(), options)?;
    let results: Mutex<Vec<(AttemptRecord, Option<MethodError>)>> = Mutex::new(Vec::new());
    let failures: Mutex<Vec<MethodError>> = Mutex::new(Vec::new());
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
                let prompt = match heads[&spec.config.style].prefilled(&control) {
                    Ok(prompt) => prompt,
                    Err(e) => {
                        failures
                            .lock()
                            .expect("no worker panics holding the lock")
                            .push(e);
                        continue;
                    }
                };
                let env = AttemptEnv {
                    engine,
                    runner,
                    task,
                    prompt,
                    tests: &tests,
                    options: &options.decode,
                    control: &control,
                    progress,
                    script_call: script_call.clone(),
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
                results
                    .lock()
                    .expect("no worker panics holding the lock")
                    .push((record, error));
            });
        }
    });
    let head_tokens: u64 = heads.values().map(Head::prefilled_tokens).sum();
    drop(heads);
    let mut results = results.into_inner().expect("workers are done");
    results.sort_by_key(|(r, _)| r.spec.index);
    if let Some(error) = failures
        .into_inner()
        .expect("workers are done")
        .into_iter()
        .next()
    {
        if results.is_empty() {
            return Err(error);
        }
    }
    if !results.is_empty() && results.iter().all(|(_, e)| e.is_some()) {
        let (_, error) = results.swap_remove(0);
        return Err(error.expect("checked above"));
    }
    let attempts: Vec<AttemptRecord> = results.into_iter().map(|(r, _)| r).collect();
    let winner = choose(&attempts);
    let cost = SolveCost {
        attempts_run: attempts.len(),
        head_prefill_tokens: head_tokens,
        forward_tokens: head_tokens
            + attempts
                .iter()
                .map(|a| a.cost.forward_tokens())
                .sum::<u64>(),
        reference_forward_tokens: attempts
            .iter()
            .map(|a| a.cost.reference.forward_tokens())
            .sum(),
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

/// llama.cpp sizes its KV cache in blocks of this many cells.
const CACHE_BLOCK: usize = 256;

/// Refuses a context that cannot hold the longest prompt of the schedule
/// with its answer, before any work. Every style is measured first, so the
/// context suggested is one that all of them fit: rounded up to a whole
/// cache block, it also leaves room for the signal and the candidates.
fn check_context<'h, 'e: 'h>(
    engine: &dyn Engine,
    heads: impl Iterator<Item = &'h Head<'e>>,
    options: &SolveOptions,
) -> Result<(), MethodError> {
    let n_ctx = engine.info().n_ctx;
    let needed = heads.map(Head::prompt_tokens).max().unwrap_or(0);
    // One more than the answer: the signal's cap keeps a token spare too.
    let needed_total = needed + options.decode.max_new_tokens + 1;
    if needed_total <= n_ctx {
        return Ok(());
    }
    Err(MethodError::PromptTooLong {
        needed,
        answer: options.decode.max_new_tokens,
        n_ctx,
        suggested_ctx: needed_total.div_ceil(CACHE_BLOCK) * CACHE_BLOCK,
    })
}

/// The prompt of one style: rendered and tokenized up front (so a prompt
/// that cannot work fails the solve at once), its head prefilled by the
/// first attempt that needs it (so a style the schedule never reaches costs
/// nothing).
struct Head<'e> {
    engine: &'e dyn Engine,
    parts: PromptParts,
    head: Vec<Token>,
    marker: Vec<Token>,
    cell: OnceLock<Result<(StylePrompt, SeqGuard<'e>), String>>,
}

impl<'e> Head<'e> {
    fn render(
        engine: &'e dyn Engine,
        task: &Task,
        style: PromptStyle,
        options: &SolveOptions,
    ) -> Result<Self, MethodError> {
        let parts = build_prompt(engine, task, style, options.decode.force_fence)?;
        let head = engine.tokenize(&parts.head, true)?;
        let marker = engine.tokenize(&parts.marker, true)?;
        Ok(Head {
            engine,
            parts,
            head,
            marker,
            cell: OnceLock::new(),
        })
    }

    /// Tokens of the prompt itself (head and marker).
    fn prompt_tokens(&self) -> usize {
        self.head.len() + self.marker.len()
    }

    /// The prompt with its head in the engine, prefilling it on first use.
    fn prefilled(&self, control: &Control) -> Result<&StylePrompt, MethodError> {
        let cell = self.cell.get_or_init(|| {
            let prefill = || -> Result<(StylePrompt, SeqGuard<'e>), EngineError> {
                let guard = SeqGuard::new(self.engine, self.engine.new_sequence()?);
                self.engine.decode(&[SeqInput {
                    seq: guard.id(),
                    tokens: self.head.clone(),
                }])?;
                control.charge(self.head.len() as u64);
                let prompt = StylePrompt {
                    parts: self.parts.clone(),
                    head_seq: guard.id(),
                    head_len: self.head.len(),
                    marker_tokens: self.marker.clone(),
                };
                Ok((prompt, guard))
            };
            prefill().map_err(|e| e.to_string())
        });
        match cell {
            Ok((prompt, _)) => Ok(prompt),
            Err(message) => Err(MethodError::HeadPrefill(message.clone())),
        }
    }

    /// Head tokens actually prefilled (0 when no attempt needed this style).
    fn prefilled_tokens(&self) -> u64 {
        match self.cell.get() {
            Some(Ok(_)) => self.head.len() as u64,
            _ => 0,
        }
    }
}

/// Refuses a task whose assert tests (visible or hidden) are not one Python
/// `assert` statement each, as the sandbox's parser reads them: a visible
/// test with a syntax error would fail every program after the whole budget
/// was spent on it, and a hidden one would score nothing. For tasks written
/// by a user, before any compute is spent; benchmark data is checked when
/// it is vendored.
pub fn check_test_syntax(task: &Task, runner: &dyn CodeRunner) -> Result<(), MethodError> {
    let groups = [("visible", &task.visible), ("hidden", &task.hidden)];
    for (group, tests) in groups {
        for (index, test) in tests.iter().enumerate() {
            let TestCase::Assert { code } = test else {
                continue;
            };
            if runner.call_expression(code)?.is_none() {
                return Err(MethodError::Task {
                    task: task.id.clone(),
                    message: format!(
                        "{group} test {} `{}` is not one Python assert statement that parses; fix it and run again",
                        index + 1,
                        code.trim()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The visible tests a candidate can be traced on: asserts with a call
/// expression, and stdin/stdout cases. Other tests are skipped (D1).
fn traced_tests(task: &Task, runner: &dyn CodeRunner) -> Result<Vec<TracedTest>, RunnerError> {
    let mut out = Vec::new();
    for (index, test) in task.visible.iter().enumerate() {
        match test {
            TestCase::Assert { code } => match runner.call_expression(code)? {
                Some(expr) => out.push(TracedTest {
                    index,
                    label: expr.clone(),
                    invocation: Invocation::Call { expr },
                }),
                None => {
                    tracing::warn!(task = %task.id, test = index, "visible assert has no call to trace; skipped")
                }
            },
            TestCase::Stdio { stdin, stdout } => out.push(TracedTest {
                index,
                label: format!(
                    "stdin: {}\nexpected stdout: {}",
                    py_repr(stdin),
                    py_repr(stdout)
                ),
                invocation: Invocation::Stdin {
                    stdin: stdin.clone(),
                },
            }),
            TestCase::Script { .. } => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Budget, CancelCause};
    use crate::config::GridAgent;
    use crate::record::AttemptStop;
    use crate::testing::*;

    fn grid(agents: &[(f32, Vec<f32>)]) -> Grid {
        Grid {
            grid: None,
            agents: agents
                .iter()
                .map(|(t, gamma)| GridAgent {
                    t: *t,
                    s: 2,
                    d: Horizon::Lines(1),
                    k: 1,
                    style: PromptStyle::Instruct,
                    gamma: gamma.clone(),
                })
                .collect(),
        }
    }

    fn options(grid: Grid) -> SolveOptions {
        SolveOptions {
            grid,
            concurrency: 1,
            ..SolveOptions::default()
        }
    }

    fn engine() -> Arc<ScriptedEngine> {
        Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)))
    }

    #[test]
    fn the_first_attempt_passing_every_visible_test_wins_and_stops_the_rest() {
        let opts = options(grid(&[(0.7, vec![0.0, 0.5, 3.0, 1.0])]));
        let out = solve(&add_one_task(), engine(), adds_one_runner(), &opts, &|_| {}).unwrap();
        assert_eq!(out.cost.attempts_run, 3, "γ=1 never starts");
        assert_eq!(out.winner, Some(2));
        assert_eq!(out.winner_name.as_deref(), Some("ns2t0.7d1k1_ln@g3"));
        assert!(out.passed);
        assert_eq!(out.code, "def add_one(x):\n    y = x + 1\n    return y");
        assert!(out.visible.iter().all(|v| v.passed));
    }

    #[test]
    fn without_a_full_pass_the_most_passing_wins_ties_to_the_earliest() {
        let task = {
            let mut t = add_one_task();
            t.visible.push(egcfg_task::TestCase::Assert {
                code: "assert add_one(0) == 1".into(),
            });
            t
        };
        let opts = options(grid(&[(0.7, vec![0.0, 3.0])]));
        let more = FakeRunner::per_test(|p, i| i == 0 || (i == 1 && p.contains("x + 1")));
        let out = solve(&task, engine(), more, &opts, &|_| {}).unwrap();
        assert_eq!((out.winner, out.passed), (Some(1), false));
        let tie = FakeRunner::per_test(|_, i| i == 0);
        let out = solve(&task, engine(), tie, &opts, &|_| {}).unwrap();
        assert_eq!(out.winner, Some(0));
        assert_eq!(out.attempts.len(), 2);
    }

    #[test]
    fn attempt_and_token_budgets() {
        let mut opts = options(grid(&[(0.7, vec![0.0, 0.5, 3.0])]));
        opts.budget = Budget {
            max_attempts: Some(1),
            ..Budget::default()
        };
        let out = solve(&add_one_task(), engine(), adds_one_runner(), &opts, &|_| {}).unwrap();
        assert_eq!(out.cost.attempts_run, 1);

        let e = engine();
        let head =
            crate::prompt::build_prompt(e.as_ref(), &add_one_task(), PromptStyle::Instruct, true)
                .unwrap()
                .head;
        let head_tokens = e.tokenize(&head, true).unwrap().len() as u64;
        opts.budget = Budget {
            max_tokens: Some(head_tokens + 30),
            ..Budget::default()
        };
        let out = solve(&add_one_task(), e, adds_one_runner(), &opts, &|_| {}).unwrap();
        assert_eq!(out.cost.attempts_run, 1, "later attempts never start");
        assert_eq!(
            out.attempts[0].stop,
            AttemptStop::Cancelled {
                cause: CancelCause::TokenBudget
            }
        );
        assert!(out.cost.forward_tokens <= head_tokens + 30 + 2);
    }

    #[test]
    fn the_caller_can_cancel_mid_attempt() {
        let opts = options(grid(&[(0.7, vec![3.0, 1.0])]));
        let cancel = opts.cancel.clone();
        let on_progress = move |e: ProgressEvent| {
            if matches!(e, ProgressEvent::Refresh { .. }) {
                cancel.cancel();
            }
        };
        let e = engine();
        let out = solve(
            &add_one_task(),
            e.clone(),
            adds_one_runner(),
            &opts,
            &on_progress,
        )
        .unwrap();
        assert_eq!(out.attempts.len(), 1);
        assert_eq!(
            out.attempts[0].stop,
            AttemptStop::Cancelled {
                cause: CancelCause::Caller
            }
        );
        assert_eq!(out.attempts[0].refreshes.len(), 1);
        assert_eq!(e.live(), 0, "cancelled sequences are freed");
    }

    #[test]
    fn deterministic_under_a_seed_and_independent_of_concurrency() {
        // A weak preference makes the candidates vary with the seed.
        let weak = || Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_strength(7.0));
        let mut opts = options(grid(&[(1.2, vec![0.5, 3.0]), (0.9, vec![1.0])]));
        opts.selection = crate::options::Selection::ScheduleOrder;
        let runner = || FakeRunner::new(|_| false);
        let strip = |out: &SolveOutcome| {
            out.attempts
                .iter()
                .map(|a| {
                    serde_json::to_string(&(&a.refreshes, &a.tokens, &a.code, &a.spec)).unwrap()
                })
                .collect::<Vec<_>>()
        };
        let one = solve(&add_one_task(), weak(), runner(), &opts, &|_| {}).unwrap();
        let again = solve(&add_one_task(), weak(), runner(), &opts, &|_| {}).unwrap();
        assert_eq!(strip(&one), strip(&again));
        opts.concurrency = 3;
        let parallel = solve(&add_one_task(), weak(), runner(), &opts, &|_| {}).unwrap();
        assert_eq!(strip(&one), strip(&parallel));
        opts.concurrency = 1;
        opts.retry = 1;
        let other = solve(&add_one_task(), weak(), runner(), &opts, &|_| {}).unwrap();
        assert_ne!(
            strip(&one),
            strip(&other),
            "another retry draws other candidates"
        );
        let sampled: std::collections::BTreeSet<&String> = one.attempts[0].refreshes[0]
            .candidates
            .iter()
            .map(|c| &c.sampled)
            .collect();
        assert!(sampled.len() > 1, "the test needs varied candidates");
    }

    #[test]
    fn the_head_is_prefilled_once_per_style() {
        let mut g = grid(&[(0.7, vec![0.5]), (0.9, vec![3.0])]);
        g.agents.push(GridAgent {
            style: PromptStyle::LongCode,
            ..g.agents[0].clone()
        });
        let e = engine();
        let out = solve(
            &add_one_task(),
            e.clone(),
            adds_one_runner(),
            &options(g),
            &|_| {},
        )
        .unwrap();
        // γ=0.5 fails, γ=3 passes, so the long_code attempt never starts
        // and its head is never prefilled.
        assert_eq!(out.cost.attempts_run, 2);
        let heads: usize = [PromptStyle::Instruct, PromptStyle::LongCode]
            .iter()
            .map(|s| {
                let head = crate::prompt::build_prompt(e.as_ref(), &add_one_task(), *s, true)
                    .unwrap()
                    .head;
                let tokens = e.tokenize(&head, true).unwrap();
                e.calls()
                    .iter()
                    .flatten()
                    .filter(|i| i.appended == tokens)
                    .count()
            })
            .sum();
        assert_eq!(heads, 1);
        let instruct =
            crate::prompt::build_prompt(e.as_ref(), &add_one_task(), PromptStyle::Instruct, true)
                .unwrap();
        assert_eq!(
            out.cost.head_prefill_tokens as usize,
            e.tokenize(&instruct.head, true).unwrap().len()
        );
    }

    #[test]
    fn engine_errors_are_reported_and_free_everything() {
        let e = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_max_seqs(2));
        let opts = options(grid(&[(0.7, vec![3.0])]));
        let err = solve(
            &add_one_task(),
            e.clone(),
            adds_one_runner(),
            &opts,
            &|_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("sequence slots"), "{err}");
        assert_eq!(e.live(), 0);
        let none = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_max_seqs(0));
        let err = solve(&add_one_task(), none, adds_one_runner(), &opts, &|_| {}).unwrap_err();
        assert!(matches!(err, MethodError::HeadPrefill(_)), "{err}");
    }

    #[test]
    fn outcome_round_trips_through_json_and_explains() {
        let opts = options(grid(&[(0.7, vec![3.0])]));
        let e = engine();
        let out = solve(
            &add_one_task(),
            e.clone(),
            adds_one_runner(),
            &opts,
            &|_| {},
        )
        .unwrap();
        let json = serde_json::to_string(&out).unwrap();
        let back: SolveOutcome = serde_json::from_str(&json).unwrap();
        assert_eq!(back, out, "records replay exactly (floats round-trip)");
        let piece = |t| e.text_of(&[t]);
        let text = crate::explain::explain_outcome(&out, &piece);
        assert!(text.contains("refresh at token 12 (line 0)"), "{text}");
        assert!(text.contains("^ guided \"1\""), "{text}");
        assert!(text.contains("reference estimate"), "{text}");
    }

    #[test]
    fn baseline_is_one_greedy_attempt() {
        let opts = options(grid(&[(0.7, vec![3.0])]));
        let out = baseline(
            &add_one_task(),
            engine(),
            adds_one_runner(),
            PromptStyle::Instruct,
            &opts,
            &|_| {},
        )
        .unwrap();
        assert_eq!(out.attempts.len(), 1);
        assert_eq!(out.attempts[0].spec.gamma, 0.0);
        assert!(out.attempts[0].refreshes.is_empty());
        assert_eq!(out.code, "def add_one(x):\n    y = x + 2\n    return y");
    }

    #[test]
    fn an_assert_the_parser_refuses_is_named_before_any_work() {
        let runner = adds_one_runner();
        let mut task = add_one_task();
        assert!(check_test_syntax(&task, runner.as_ref()).is_ok());
        task.hidden.push(TestCase::Assert {
            code: "add_one(2) == 3".into(),
        });
        let err = check_test_syntax(&task, runner.as_ref())
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden test 1 `add_one(2) == 3`"), "{err}");
    }
}
