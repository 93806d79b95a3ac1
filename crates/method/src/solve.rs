//! Solving a task with a grid of agents (docs/method.md §10).
//!
//! The attempts of a task are scheduled in grid order. Up to
//! `concurrency` of them run at once (`pool`), all sharing one
//! engine (which batches their decodes) and one sandbox. As soon as an
//! attempt's answer passes every *visible* test the others are cancelled,
//! and that answer is returned; otherwise the answer passing the most
//! visible tests wins, ties going to the earliest in schedule order
//! ([`crate::outcome`]). Hidden tests are never looked at here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use egcfg_engine::Engine;
use egcfg_task::{Task, TestCase};

use crate::admission::{prior_guided_cost, Admission};
use crate::budget::Control;
use crate::config::{AgentConfig, AttemptSpec, Grid, Horizon, PromptStyle};
use crate::error::MethodError;
use crate::head::{check_context, Head};
use crate::options::SolveOptions;
use crate::outcome::{SolveClock, SolveOutcome};
use crate::pool::{run_all, Finished, Workload};
use crate::profile::PhaseTime;
use crate::progress::ProgressEvent;
use crate::record::AttemptRecord;
use crate::runner::CodeRunner;
use crate::visible_tests::{script_call, traced_tests};

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
    let clock = SolveClock::start(engine.as_ref());
    let engine: &dyn Engine = engine.as_ref();
    let runner: &dyn CodeRunner = runner.as_ref();
    check_entry_point(task)?;
    let schedule = grid_schedule(&task.id, options);
    let control = Control::new(&options.budget, options.cancel.clone());
    let tests = traced_tests(task, runner)?;
    // Every prompt is rendered and measured before any work, so a prompt
    // that cannot fit fails the solve before the budget is spent on it.
    let heads = render_heads(engine, task, &schedule, options)?;
    check_context(engine, heads.values(), options)?;
    let finished = run_all(&Workload {
        engine,
        runner,
        task,
        schedule: &schedule,
        heads: &heads,
        tests: &tests,
        options,
        control: &control,
        admission: &Admission::new(
            options.start_rule,
            prior_guided_cost(options.decode.signal_max_tokens),
        ),
        progress,
        script_call: script_call(task),
    });
    conclude(task, engine, &clock, heads, finished)
}

/// The outcome of a solve of `task` whose attempts brought back
/// `finished`: the answer the selection picks, with the totals of the
/// clock and of the shared `heads` (freed here, before the totals are
/// taken).
pub(crate) fn conclude(
    task: &Task,
    engine: &dyn Engine,
    clock: &SolveClock,
    heads: BTreeMap<PromptStyle, Head<'_>>,
    finished: Finished,
) -> Result<SolveOutcome, MethodError> {
    let head_tokens: u64 = heads.values().map(Head::prefilled_tokens).sum();
    let mut head_time = PhaseTime::default();
    heads.values().for_each(|h| head_time.add(h.prefill_time()));
    drop(heads);
    let workers = finished.usage;
    let attempts = attempts_or_error(finished)?;
    let mut cost = clock.finish(engine, head_tokens, &attempts, workers);
    cost.profile.head_prefill.add(head_time);
    Ok(SolveOutcome::choose_from(&task.id, attempts, cost))
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
    solve(
        task,
        engine,
        runner,
        &baseline_options(style, options),
        progress,
    )
}

/// `options` with the grid replaced by the one greedy attempt of `style`.
pub fn baseline_options(style: PromptStyle, options: &SolveOptions) -> SolveOptions {
    let greedy = AgentConfig {
        temperature: 0.0,
        candidates: 1,
        horizon: Horizon::Lines(0),
        refresh_interval: 1,
        style,
    };
    SolveOptions {
        grid: Grid::single(greedy, vec![0.0]),
        ..options.clone()
    }
}

/// The most engine sequences a solve with `options` keeps alive at once,
/// for sizing the engine ([`egcfg_engine::EngineConfig`]'s `n_seq_max`):
/// one prefilled head per prompt style of the schedule, plus what the
/// `concurrency` hungriest attempts hold at their peak. A guided attempt
/// holds U, C and one batch of candidate forks (`s`, or `2s` in a top-up
/// round; the early-stop probe samples `s` from C); a greedy attempt (γ = 0)
/// never refreshes and holds U alone. The task changes only the seeds, not
/// the schedule's shape, so the count holds for every task.
pub fn sequences_needed(options: &SolveOptions) -> usize {
    let schedule = grid_schedule("", options);
    styles_count(&schedule) + attempts_peak(&schedule, options)
}

/// How many prompt styles, so heads, `schedule` uses.
pub(crate) fn styles_count(schedule: &[AttemptSpec]) -> usize {
    let styles: BTreeSet<PromptStyle> = schedule.iter().map(|a| a.config.style).collect();
    styles.len()
}

/// The most sequences the attempts of `schedule` hold at once, beside the
/// heads: what the `concurrency` hungriest hold at their peak.
pub(crate) fn attempts_peak(schedule: &[AttemptSpec], options: &SolveOptions) -> usize {
    let mut per_attempt: Vec<usize> = schedule
        .iter()
        .map(|spec| {
            if spec.gamma == 0.0 {
                return 1;
            }
            let batch = if options.decode.top_up {
                2 * spec.config.candidates
            } else {
                spec.config.candidates
            };
            2 + batch
        })
        .collect();
    per_attempt.sort_unstable_by(|a, b| b.cmp(a));
    let workers = options.concurrency.clamp(1, schedule.len().max(1));
    per_attempt.iter().take(workers).sum::<usize>()
}

/// Refuses a task without a function to write: guidance starts at its
/// `def`, and every test calls it.
pub(crate) fn check_entry_point(task: &Task) -> Result<(), MethodError> {
    if task.entry_point.trim().is_empty() {
        return Err(MethodError::Task {
            task: task.id.clone(),
            message: "no function name: give `entry_point` or a visible assert that calls it"
                .into(),
        });
    }
    Ok(())
}

/// The attempts of the grid for task `task_id` in schedule order, cut to
/// the attempt budget.
pub(crate) fn grid_schedule(task_id: &str, options: &SolveOptions) -> Vec<AttemptSpec> {
    let mut schedule = options.grid.schedule(task_id, options.retry);
    if let Some(max) = options.budget.max_attempts {
        schedule.truncate(max);
    }
    schedule
}

/// The prompt of every style `schedule` uses, rendered and tokenized.
pub(crate) fn render_heads<'e>(
    engine: &'e dyn Engine,
    task: &Task,
    schedule: &[AttemptSpec],
    options: &SolveOptions,
) -> Result<BTreeMap<PromptStyle, Head<'e>>, MethodError> {
    let mut heads = BTreeMap::new();
    for spec in schedule {
        let style = spec.config.style;
        if let std::collections::btree_map::Entry::Vacant(slot) = heads.entry(style) {
            slot.insert(Head::render(engine, task, style, options)?);
        }
    }
    Ok(heads)
}

/// The records of the attempts that ran, in schedule order. A failing
/// attempt is kept with its error in its record; the solve fails when
/// nothing could answer (no attempt ran because a prompt could not be
/// prefilled, or every attempt that ran failed) and when the
/// infrastructure cut any attempt off ([`MethodError::is_infrastructure`]):
/// the answer would then depend on when a server died, not on the task,
/// so the whole solve is redone rather than recorded short of attempts.
pub(crate) fn attempts_or_error(finished: Finished) -> Result<Vec<AttemptRecord>, MethodError> {
    let Finished {
        attempts: mut results,
        failures,
        ..
    } = finished;
    results.sort_by_key(|(r, _)| r.spec.index);
    let infrastructure = results
        .iter()
        .position(|(_, e)| e.as_ref().is_some_and(MethodError::is_infrastructure));
    if let Some(at) = infrastructure {
        let (_, error) = results.swap_remove(at);
        return Err(error.expect("checked above"));
    }
    if let Some(error) = failures.iter().position(MethodError::is_infrastructure) {
        return Err(failures.into_iter().nth(error).expect("checked above"));
    }
    if let Some(error) = failures.into_iter().next() {
        if results.is_empty() {
            return Err(error);
        }
    }
    if !results.is_empty() && results.iter().all(|(_, e)| e.is_some()) {
        let (_, error) = results.swap_remove(0);
        return Err(error.expect("checked above"));
    }
    Ok(results.into_iter().map(|(r, _)| r).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Budget, CancelCause};
    use crate::config::GridAgent;
    use crate::record::AttemptStop;
    use crate::testing::*;
    use egcfg_engine::EngineError;

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

    fn engine() -> Arc<ScriptedEngine> {
        Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)))
    }

    /// Two finished attempts of a two-attempt schedule, the second ended
    /// by `error`.
    fn one_ok_one_ended_by(error: MethodError) -> Finished {
        let specs = grid(&[(0.7, vec![0.0, 1.0])]).schedule("t", 0);
        Finished {
            attempts: vec![
                (finished_record(specs[0], 10), None),
                (finished_record(specs[1], 10), Some(error)),
            ],
            failures: Vec::new(),
            usage: egcfg_engine::Usage::default(),
        }
    }

    #[test]
    fn a_server_failure_in_any_attempt_fails_the_solve_so_it_is_redone() {
        let dead = MethodError::Engine(EngineError::Server {
            endpoint: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        });
        let err = attempts_or_error(one_ok_one_ended_by(dead)).unwrap_err();
        assert!(err.is_infrastructure(), "{err}");
        assert!(err.to_string().contains("http://127.0.0.1:1"), "{err}");
    }

    #[test]
    fn an_attempt_failing_on_its_own_is_kept_with_its_error() {
        let own = MethodError::Template("no user message".into());
        let attempts = attempts_or_error(one_ok_one_ended_by(own)).unwrap();
        assert_eq!(attempts.len(), 2);
    }

    #[test]
    fn the_first_attempt_passing_every_visible_test_wins_and_stops_the_rest() {
        let opts = scripted_options(grid(&[(0.7, vec![0.0, 0.5, 3.0, 1.0])]));
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
        let opts = scripted_options(grid(&[(0.7, vec![0.0, 3.0])]));
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
        let mut opts = scripted_options(grid(&[(0.7, vec![0.0, 0.5, 3.0])]));
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
    fn the_affordable_rule_starts_a_guided_attempt_only_when_the_budget_carries_it() {
        let started_after_first_ended = |rule| {
            let mut opts = scripted_options(grid(&[(0.7, vec![1.0, 3.0])]));
            opts.concurrency = 2;
            opts.start_rule = rule;
            opts.budget.max_tokens = Some(prior_guided_cost(opts.decode.signal_max_tokens) + 3_000);
            let events = std::sync::Mutex::new(Vec::new());
            let out = solve(
                &add_one_task(),
                engine(),
                FakeRunner::new(|_| false),
                &opts,
                &|e| events.lock().unwrap().push(e),
            )
            .unwrap();
            assert_eq!(out.attempts.len(), 2, "both run either way");
            let events = events.into_inner().unwrap();
            let second_started = events
                .iter()
                .position(|e| matches!(e, ProgressEvent::AttemptStarted { index: 1, .. }))
                .unwrap();
            // The first attempt's last refresh marks the end of its work.
            let first_last_refresh = events
                .iter()
                .rposition(|e| matches!(e, ProgressEvent::Refresh { index: 0, .. }))
                .unwrap();
            second_started > first_last_refresh
        };
        assert!(!started_after_first_ended(crate::StartRule::Always));
        // 9,000 tokens carry one guided attempt at the default 6,000, not
        // two; once the first has finished at its (small) real cost, the
        // second is affordable.
        assert!(started_after_first_ended(crate::StartRule::Affordable));
    }

    #[test]
    fn the_caller_can_cancel_mid_attempt() {
        let opts = scripted_options(grid(&[(0.7, vec![3.0, 1.0])]));
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
        let mut opts = scripted_options(grid(&[(1.2, vec![0.5, 3.0]), (0.9, vec![1.0])]));
        opts.selection = crate::options::Selection::ScheduleOrder;
        // A token budget is shared by the attempts that run at once, so
        // where it runs out depends on their timing: the comparison across
        // concurrency holds only without one.
        opts.budget = Budget::default();
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
            &scripted_options(g),
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
        let opts = scripted_options(grid(&[(0.7, vec![3.0])]));
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
    fn the_reference_grid_at_concurrency_eight_needs_42_sequences() {
        let options = SolveOptions {
            grid: Grid::reference(),
            concurrency: 8,
            ..SolveOptions::default()
        };
        // Eight guided attempts with s = 3 (U, C and 3 forks each) and the
        // heads of both prompt styles: more than the 32 the CLI allowed.
        assert_eq!(sequences_needed(&options), 8 * (2 + 3) + 2);
        let mut top_up = options.clone();
        top_up.decode.top_up = true;
        assert_eq!(sequences_needed(&top_up), 8 * (2 + 6) + 2);
        // The default grid: greedy first, then two guided attempts.
        assert_eq!(sequences_needed(&SolveOptions::default()), 2 * (2 + 3) + 2);
    }

    #[test]
    fn a_solve_fits_in_exactly_the_sequences_it_needs() {
        let opts = scripted_options(grid(&[(0.7, vec![3.0])]));
        let needed = sequences_needed(&opts);
        assert_eq!(needed, 1 + 2 + 2, "one head, U, C and s = 2 forks");
        let fits = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_max_seqs(needed));
        let out = solve(&add_one_task(), fits, adds_one_runner(), &opts, &|_| {}).unwrap();
        assert!(out.passed);
        let short =
            Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_max_seqs(needed - 1));
        let err = solve(&add_one_task(), short, adds_one_runner(), &opts, &|_| {}).unwrap_err();
        assert!(err.to_string().contains("sequence slots"), "{err}");
    }

    #[test]
    fn outcome_round_trips_through_json_and_explains() {
        let opts = scripted_options(grid(&[(0.7, vec![3.0])]));
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
        let opts = scripted_options(grid(&[(0.7, vec![3.0])]));
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
