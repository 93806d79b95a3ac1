//! The `sample-then-egcfg` method: best-of-N sampling first, under a share
//! of the task's token budget, then EG-CFG's guided attempts with the rest,
//! only when no sampled answer passed every visible test.
//!
//! On the budget curve (docs/tuning.md §5) plain sampling passes more
//! tasks per token than guided attempts, yet guided attempts may solve a
//! task sampling does not (one in 25 on the default model's train curve,
//! where sampling still led). This method spends the budget in that order: the cheap answers first
//! ([`crate::sample()`], its seeded schedule and batch unchanged), then
//! the grid's attempts ([`crate::solve()`]'s pool) on what sampling left
//! unsolved. Both stages share one set of prompt heads, prefilled once,
//! and one selection over all their answers ([`crate::outcome`]: the
//! sampled answers come first in schedule order, so a task sampling
//! solves ends at once). The grid's greedy attempts (γ = 0) of a prompt
//! style whose greedy answer the sampling stage already wrote are left
//! out: they would decode the same program again.
//!
//! The sampling stage may spend `sample_share` of the token budget and
//! start that share of the attempt cap; the guided stage gets what the
//! whole budget and cap have left after it. Without a token budget or an
//! attempt cap, that limit does not end the sampling stage (with neither,
//! it draws [`crate::sample::schedule::MAX_SAMPLES`] answers first).

use std::sync::Arc;
use std::time::Duration;

use egcfg_engine::Engine;
use egcfg_task::Task;

use crate::admission::{prior_guided_cost, Admission};
use crate::budget::{Budget, Control};
use crate::config::AttemptSpec;
use crate::error::MethodError;
use crate::head::check_context;
use crate::options::SolveOptions;
use crate::outcome::{SolveClock, SolveOutcome};
use crate::pool::{run_all, Workload};
use crate::progress::ProgressEvent;
use crate::record::AttemptRecord;
use crate::runner::CodeRunner;
use crate::sample::schedule::sample_schedule;
use crate::sample::{draw_answers, Draw};
use crate::solve::{
    attempts_peak, check_entry_point, conclude, grid_schedule, render_heads, styles_count,
};
use crate::visible_tests::{script_call, traced_tests};

/// Solve `task` by sampling under `options.sample_share` of the token
/// budget and of the attempt cap, then, if no answer passed every visible
/// test, running the agents of `options.grid` with the budget left.
///
/// Errors as [`crate::solve()`]: only when the task or prompt is unusable,
/// or when no attempt could run at all.
pub fn sample_then_egcfg(
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
    let samples = sample_schedule(&task.id, options.retry, sampling_attempts(options));
    let grid = grid_schedule(&task.id, options);
    let tests = traced_tests(task, runner)?;
    // One head per prompt style of either stage, rendered and checked
    // before any work, as every solve does.
    let both: Vec<AttemptSpec> = samples.iter().chain(&grid).cloned().collect();
    let heads = render_heads(engine, task, &both, options)?;
    check_context(engine, heads.values(), options)?;

    let sampling = Control::new(
        &Budget {
            max_tokens: sampling_tokens(options),
            ..options.budget
        },
        options.cancel.clone(),
    );
    let (mut finished, _) = draw_answers(&Draw {
        engine,
        runner,
        task,
        schedule: &samples,
        heads: &heads,
        options,
        control: &sampling,
        progress,
        script_call: script_call(task),
        clock: &clock,
    });
    // A broken sandbox or server would fail the guided stage too: the
    // solve is redone instead (`attempts_or_error`).
    if !finished.solved() && !finished.infrastructure_failed() && !options.cancel.is_cancelled() {
        let sampled: Vec<&AttemptRecord> = finished.attempts.iter().map(|(a, _)| a).collect();
        let guided = guided_schedule(grid, &sampled, options.budget.max_attempts);
        // The whole budget, less what sampling spent; the wall budget
        // counts from the solve's start.
        let guiding = Control::new(
            &Budget {
                max_wall: (options.budget.max_wall)
                    .map(|wall| wall.saturating_sub(Duration::from_secs_f64(clock.elapsed_s()))),
                ..options.budget
            },
            options.cancel.clone(),
        );
        guiding.charge(sampling.tokens());
        // Progress names the guided attempts by their place in the whole
        // schedule, as their records do (`Finished::then`).
        let first = finished.attempts.len();
        let progress = |event: ProgressEvent| progress(event.shifted(first));
        finished = finished.then(run_all(&Workload {
            engine,
            runner,
            task,
            schedule: &guided,
            heads: &heads,
            tests: &tests,
            options,
            control: &guiding,
            admission: &Admission::new(
                options.start_rule,
                prior_guided_cost(options.decode.signal_max_tokens),
            ),
            progress: &progress,
            script_call: script_call(task),
        }));
    }
    conclude(task, engine, &clock, heads, finished)
}

/// The sampling stage's token budget: its share of the task's, none
/// without one.
fn sampling_tokens(options: &SolveOptions) -> Option<u64> {
    let share = f64::from(options.sample_share.clamp(0.0, 1.0));
    (options.budget.max_tokens).map(|total| (total as f64 * share).round() as u64)
}

/// The sampling stage's attempt cap: its share of the task's (at least
/// one answer), none without one.
fn sampling_attempts(options: &SolveOptions) -> Option<usize> {
    let share = f64::from(options.sample_share.clamp(0.0, 1.0));
    (options.budget.max_attempts).map(|cap| ((cap as f64 * share).round() as usize).max(1))
}

/// The grid's attempts the guided stage runs, given the answers the
/// sampling stage wrote: without the greedy attempts (γ = 0) of a prompt
/// style whose greedy answer is already among them, and within what the
/// attempt cap has left.
fn guided_schedule(
    grid: Vec<AttemptSpec>,
    sampled: &[&AttemptRecord],
    max_attempts: Option<usize>,
) -> Vec<AttemptSpec> {
    let written_greedily = |spec: &AttemptSpec| {
        sampled.iter().any(|a| {
            a.spec.config.temperature == 0.0
                && a.spec.config.style == spec.config.style
                && a.stop.produced_program()
        })
    };
    let mut guided: Vec<AttemptSpec> = grid
        .into_iter()
        .filter(|spec| !(spec.gamma == 0.0 && written_greedily(spec)))
        .collect();
    if let Some(max) = max_attempts {
        guided.truncate(max.saturating_sub(sampled.len()));
    }
    for (index, spec) in guided.iter_mut().enumerate() {
        spec.index = index;
    }
    guided
}

/// The most engine sequences [`sample_then_egcfg`] keeps alive at once:
/// the heads of both stages' prompt styles, which live through both, and
/// the larger of the two stages' own (the stages run one after the
/// other): `concurrency` answers, or the grid's hungriest attempts.
pub fn sample_then_egcfg_sequences_needed(options: &SolveOptions) -> usize {
    let samples = sample_schedule("", 0, options.budget.max_attempts);
    let grid = grid_schedule("", options);
    let both: Vec<AttemptSpec> = samples.into_iter().chain(grid.iter().cloned()).collect();
    styles_count(&both)
        + options
            .concurrency
            .max(1)
            .max(attempts_peak(&grid, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Grid, PromptStyle};
    use crate::record::AttemptStop;
    use crate::testing::*;

    /// Scripted options for a guided grid of the instruct style at γ 0
    /// then 1, under a token budget of which sampling may spend `share`.
    fn options(max_tokens: Option<u64>, share: f32) -> SolveOptions {
        let mut options = single_options(config(1, 2), vec![0.0, 1.0]);
        options.budget.max_tokens = max_tokens;
        options.sample_share = share;
        options
    }

    fn is_sampled(attempt: &AttemptRecord) -> bool {
        attempt.spec.answer_top_p.is_some()
    }

    #[test]
    fn a_task_sampling_solves_ends_without_a_guided_attempt() {
        // Sampling's second answer (long-code prompt) is right.
        let engine = Arc::new(style_minded_engine(40.0));
        let mut opts = options(Some(20_000), 0.5);
        opts.concurrency = 2;
        let out = sample_then_egcfg(
            &add_one_task(),
            engine.clone(),
            adds_one_runner(),
            &opts,
            &|_| {},
        )
        .unwrap();
        assert!(out.passed);
        assert_eq!(out.winner, Some(1));
        assert!(out.attempts.iter().all(is_sampled), "no guided attempt ran");
        assert_costs_add_up(&out);
        assert_eq!(engine.live(), 0, "every sequence is freed");
    }

    #[test]
    fn what_sampling_leaves_unsolved_goes_to_the_guided_attempts_with_the_budget_left() {
        // Without traces the model writes the wrong program, with them the
        // right one: only a guided attempt can pass.
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        // Both heads take about 2,800 scripted tokens (a byte each), an
        // answer about 60, a guided attempt about 1,400.
        let budget = 10_000;
        let started = std::sync::Mutex::new(Vec::new());
        let out = sample_then_egcfg(
            &add_one_task(),
            engine.clone(),
            adds_one_runner(),
            &options(Some(budget), 0.35),
            &|event| {
                if let ProgressEvent::AttemptStarted { index, .. } = event {
                    started.lock().unwrap().push(index);
                }
            },
        )
        .unwrap();
        assert!(out.passed, "{:?}", out.winner_name);
        let sampled: Vec<&AttemptRecord> = out.attempts.iter().filter(|a| is_sampled(a)).collect();
        let guided: Vec<&AttemptRecord> = out.attempts.iter().filter(|a| !is_sampled(a)).collect();
        // Sampling drew answers until its share of the budget was spent:
        // its last answer was cut by it.
        assert!(sampled.len() > 2, "{} answers", sampled.len());
        assert_eq!(
            sampled.last().unwrap().stop,
            AttemptStop::Cancelled {
                cause: crate::budget::CancelCause::TokenBudget
            }
        );
        let sampling_tokens = out.cost.head_prefill_tokens
            + sampled.iter().map(|a| a.cost.forward_tokens()).sum::<u64>();
        assert!(sampling_tokens >= 3_500, "{sampling_tokens}");
        assert!(sampling_tokens < 3_600, "{sampling_tokens}");
        // The grid's greedy instruct attempt is sampling's first answer:
        // only its guided attempt ran, and it won.
        assert_eq!(guided.len(), 1);
        assert_eq!(guided[0].spec.gamma, 1.0);
        assert_eq!(out.winner, Some(sampled.len()));
        // One schedule: the answers, then the guided attempts.
        let indices: Vec<usize> = out.attempts.iter().map(|a| a.spec.index).collect();
        assert_eq!(indices, (0..out.attempts.len()).collect::<Vec<_>>());
        assert_eq!(
            started.into_inner().unwrap(),
            indices,
            "progress names each attempt by its place in the schedule"
        );
        assert!(out.cost.forward_tokens <= budget);
        assert_costs_add_up(&out);
        assert_eq!(engine.live(), 0, "every sequence is freed");
    }

    #[test]
    fn the_attempt_cap_spans_both_stages() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        // Sampling starts its share of the cap, 3 of 4, and the guided
        // stage the one left.
        let mut opts = options(None, 0.75);
        opts.budget.max_attempts = Some(4);
        let out =
            sample_then_egcfg(&add_one_task(), engine, adds_one_runner(), &opts, &|_| {}).unwrap();
        assert_eq!(out.attempts.len(), 4);
        assert_eq!(out.attempts.iter().filter(|a| is_sampled(a)).count(), 3);
        assert!(out.passed);
        assert_eq!(out.winner, Some(3));
        // A cap sampling fills leaves no guided attempt.
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        opts.budget.max_attempts = Some(1);
        let out =
            sample_then_egcfg(&add_one_task(), engine, adds_one_runner(), &opts, &|_| {}).unwrap();
        assert_eq!(out.attempts.len(), 1);
        assert!(out.attempts.iter().all(is_sampled));
        assert!(!out.passed);
    }

    #[test]
    fn a_solve_fits_in_the_sequences_it_needs() {
        let mut opts = options(Some(20_000), 0.1);
        opts.concurrency = 1;
        // Both styles' heads, and a guided attempt's U, C and s = 2 forks.
        let needed = sample_then_egcfg_sequences_needed(&opts);
        assert_eq!(needed, 2 + 2 + 2);
        let fits = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_max_seqs(needed));
        let out =
            sample_then_egcfg(&add_one_task(), fits, adds_one_runner(), &opts, &|_| {}).unwrap();
        assert!(out.passed);
        // A grid of long-code attempts alone still needs the instruct
        // head, for sampling's greedy answer.
        let mut long_code = single_options(
            crate::config::AgentConfig {
                style: PromptStyle::LongCode,
                ..config(1, 2)
            },
            vec![1.0],
        );
        long_code.concurrency = 4;
        long_code.grid = Grid::single(long_code.grid.configurations()[0].0, vec![1.0]);
        assert_eq!(sample_then_egcfg_sequences_needed(&long_code), 2 + 4);
    }
}
