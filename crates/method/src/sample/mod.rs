//! The `sample` method: best-of-N sampling filtered by the visible tests,
//! the equal-budget baseline of docs/method.md §11 (4).
//!
//! It answers the question EG-CFG's lift raises: how much of it comes from
//! the execution traces, and how much from trying several programs and
//! keeping one that passes the visible tests? So it runs under the same
//! rules as [`crate::solve()`]: the same per-task forward-token budget
//! (heads, prefills and decodes all count), the same prompt heads (both
//! styles, each prefilled once and forked by every answer), and the same
//! selection ([`crate::outcome`]: the first answer in schedule order that
//! passes every visible test, else the one passing most, ties to the
//! earliest). Only the way answers are made differs: each is drawn whole
//! from the model at a temperature and nucleus mass of the seeded schedule
//! ([`schedule`]), without traces or guidance, and the answers decode
//! side by side in one batch ([`batch`]), or, on a served model, come
//! whole from the server a request per answer or per group of answers
//! ([`requests`]). Every answer is kept as an
//! [`AttemptRecord`](crate::AttemptRecord), like an EG-CFG attempt, so the
//! explorer and the reports show them alike.

mod answer;
mod batch;
pub mod derive;
mod requests;
pub mod schedule;

use std::collections::BTreeMap;
use std::sync::Arc;

use egcfg_engine::Engine;
use egcfg_task::Task;

use crate::budget::Control;
use crate::config::{AttemptSpec, PromptStyle};
use crate::error::MethodError;
use crate::head::{check_context, Head};
use crate::options::SolveOptions;
use crate::outcome::{SolveClock, SolveOutcome};
use crate::pool::Finished;
use crate::progress::ProgressEvent;
use crate::record::BudgetCheck;
use crate::runner::CodeRunner;
use crate::solve::{attempts_or_error, check_entry_point, render_heads, styles_count};
use crate::visible_tests::script_call;

use self::schedule::sample_schedule;

/// What the answers of one task share.
pub(crate) struct Draw<'s, 'e> {
    /// The model.
    pub(crate) engine: &'e dyn Engine,
    /// The sandbox.
    pub(crate) runner: &'s dyn CodeRunner,
    /// The task.
    pub(crate) task: &'s Task,
    /// The answers to draw, in schedule order.
    pub(crate) schedule: &'s [AttemptSpec],
    /// The prompt of every style the schedule uses.
    pub(crate) heads: &'s BTreeMap<PromptStyle, Head<'e>>,
    /// The solve's options (`concurrency` answers are live at once).
    pub(crate) options: &'s SolveOptions,
    /// Budgets and cancellation.
    pub(crate) control: &'s Control,
    /// Where progress events go.
    pub(crate) progress: &'s (dyn Fn(ProgressEvent) + Sync),
    /// The entry call appended to script tasks' programs.
    pub(crate) script_call: Option<String>,
    /// The solve's clock, which budget checks read.
    pub(crate) clock: &'s SolveClock,
}

/// Solve `task` by drawing answers of the seeded schedule until one passes
/// every visible test or the budget (`options.budget`) is spent; up to
/// `options.concurrency` answers decode at once. `options.grid` is not used.
///
/// Errors as [`crate::solve()`]: only when the task or prompt is unusable,
/// or when no answer could be drawn at all.
pub fn sample(
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
    let schedule = sample_schedule(&task.id, options.retry, options.budget.max_attempts);
    let control = Control::new(&options.budget, options.cancel.clone());
    let heads = render_heads(engine, task, &schedule, options)?;
    check_context(engine, heads.values(), options)?;
    let draw = Draw {
        engine,
        runner,
        task,
        schedule: &schedule,
        heads: &heads,
        options,
        control: &control,
        progress,
        script_call: script_call(task),
        clock: &clock,
    };
    let (finished, step_checks) = draw_answers(&draw);
    let head_tokens: u64 = heads.values().map(Head::prefilled_tokens).sum();
    drop(heads);
    // Every answer decodes on this thread, in batched steps whose requests
    // serve several answers at once: the clock's reading holds them all,
    // and no answer's share can be told apart, so answers keep none.
    let workers = finished.usage;
    let attempts = attempts_or_error(finished)?;
    let cost = clock.finish(engine, head_tokens, &attempts, workers);
    let mut outcome = SolveOutcome::choose_from(&task.id, attempts, cost);
    outcome.step_checks = step_checks;
    Ok(outcome)
}

/// Draws the answers of `draw.schedule` until one passes every visible
/// test, the schedule ends, or a budget is spent; returns them with the
/// budget checks of a lock-step draw.
pub(crate) fn draw_answers(draw: &Draw<'_, '_>) -> (Finished, Vec<BudgetCheck>) {
    // A served model gives no logits to decode from step by step: it
    // writes whole answers in requests.
    // Only the local batch runs in lock-step, so only it keeps the
    // budget checks a smaller budget's run is derived from.
    match draw.engine.top_k_limit() {
        None => batch::draw_all(draw),
        Some(_) => (requests::draw_all(draw), Vec::new()),
    }
}

/// The most engine sequences [`sample`] keeps alive at once: the head of
/// each prompt style its schedule uses and `concurrency` answers.
pub fn sample_sequences_needed(options: &SolveOptions) -> usize {
    styles_count(&sample_schedule("", 0, options.budget.max_attempts)) + options.concurrency.max(1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::budget::{Budget, CancelCause};
    use crate::record::AttemptStop;
    use crate::testing::*;

    fn style_minded(strength: f32) -> Arc<ScriptedEngine> {
        Arc::new(style_minded_engine(strength))
    }

    /// The tokens of both prompt heads of the add-one task on `engine`.
    pub(super) fn heads_of_add_one(engine: &ScriptedEngine) -> u64 {
        [PromptStyle::Instruct, PromptStyle::LongCode]
            .iter()
            .map(|s| {
                let head = crate::prompt::build_prompt(engine, &add_one_task(), *s, true)
                    .unwrap()
                    .head;
                engine.tokenize(&head, true).unwrap().len() as u64
            })
            .sum()
    }

    pub(super) fn options(width: usize, max_tokens: Option<u64>) -> SolveOptions {
        SolveOptions {
            concurrency: width,
            budget: Budget {
                max_tokens,
                ..Budget::default()
            },
            ..SolveOptions::default()
        }
    }

    #[test]
    fn answers_decode_together_and_the_first_to_pass_in_schedule_order_wins() {
        let engine = style_minded(40.0);
        let out = sample(
            &add_one_task(),
            engine.clone(),
            adds_one_runner(),
            &options(2, None),
            &|_| {},
        )
        .unwrap();
        // Answer 0 is greedy on the instruct prompt (wrong), answer 1 the
        // first long-code one (right); they run side by side.
        assert_eq!(out.attempts.len(), 2);
        assert_eq!(out.attempts[0].spec.config.style, PromptStyle::Instruct);
        assert_eq!(out.attempts[0].spec.config.temperature, 0.0);
        assert_eq!(out.attempts[1].spec.config.style, PromptStyle::LongCode);
        assert_eq!(out.winner, Some(1));
        assert!(out.passed);
        assert_eq!(out.code, "def add_one(x):\n    y = x + 1\n    return y");
        assert!(out.attempts.iter().all(|a| a.stop == AttemptStop::Fence));
        // Every step is one decode call of both answers.
        let calls = engine.calls();
        let both = calls.iter().filter(|c| c.len() == 2).count();
        assert!(both >= WRONG.len() / 2, "{both} two-answer steps");
        assert!(calls.iter().all(|c| c.len() <= 2));
        assert_eq!(engine.live(), 0, "every sequence is freed");
        // Requests serve both answers at once: the task keeps them all,
        // the answers none.
        assert_eq!(out.cost.usage, engine.total_usage());
        assert_eq!(out.cost.usage.prompt_tokens, out.cost.forward_tokens);
        assert!(out.attempts.iter().all(|a| a.cost.usage.requests == 0));
        // The process's CPU over the solve, as an EG-CFG solve keeps it.
        assert!(out.cost.process_cpu_s > 0.0);
        assert_costs_add_up(&out);
    }

    #[test]
    fn the_token_budget_ends_the_draw_and_records_the_answers_it_cut() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, WRONG)));
        let never = FakeRunner::new(|_| false);
        // Room for a few answers of about 50 tokens beyond both heads.
        let budget = heads_of_add_one(engine.as_ref()) + 200;
        let out = sample(
            &add_one_task(),
            engine.clone(),
            never,
            &options(3, Some(budget)),
            &|_| {},
        )
        .unwrap();
        assert!(
            out.attempts.len() > 3,
            "answers kept coming while the budget lasted"
        );
        let last = out.attempts.last().unwrap();
        assert_eq!(
            last.stop,
            AttemptStop::Cancelled {
                cause: CancelCause::TokenBudget
            }
        );
        assert!(last.visible.is_empty(), "a cut answer is not checked");
        assert_eq!(last.stop.kind(), "token_budget");
        assert!(!last.stop.produced_program());
        // The cut answers' tokens are the ones that bought no program.
        let cut: u64 = out
            .attempts
            .iter()
            .filter(|a| matches!(a.stop, AttemptStop::Cancelled { .. }))
            .map(|a| a.cost.forward_tokens())
            .sum();
        assert!(cut > 0);
        assert_eq!(out.cost.no_program_tokens, cut);
        assert!(out.cost.no_program_share() > 0.0 && out.cost.no_program_share() < 1.0);
        // The budget is checked between steps: one step of three answers
        // (or the marker prefills of new ones) at most goes past it.
        let marker = engine
            .tokenize("<|im_end|>\n<|im_start|>assistant\n```python\n", true)
            .unwrap()
            .len() as u64;
        assert!(out.cost.forward_tokens >= budget);
        assert!(
            out.cost.forward_tokens <= budget + 3 * marker,
            "{}",
            out.cost.forward_tokens
        );
        // Both heads were prefilled: both prompt styles took part.
        let styles: BTreeSet<PromptStyle> =
            out.attempts.iter().map(|a| a.spec.config.style).collect();
        assert_eq!(styles.len(), 2);
        assert_eq!(engine.live(), 0);
    }

    #[test]
    fn a_seed_fixes_the_answers_and_another_seed_changes_them() {
        let run = |retry| {
            let mut opts = options(2, None);
            opts.retry = retry;
            opts.budget.max_attempts = Some(6);
            let out = sample(
                &add_one_task(),
                style_minded(6.0),
                FakeRunner::new(|_| false),
                &opts,
                &|_| {},
            )
            .unwrap();
            out.attempts
                .iter()
                .map(|a| (a.name.clone(), a.reply.clone()))
                .collect::<Vec<_>>()
        };
        let first = run(0);
        assert_eq!(first.len(), 6);
        assert_eq!(first, run(0));
        assert_ne!(first, run(1));
        let replies: BTreeSet<&String> = first.iter().map(|(_, r)| r).collect();
        assert!(replies.len() > 2, "weak preferences make varied answers");
    }

    #[test]
    fn sequences_needed_counts_both_heads_and_the_live_answers() {
        assert_eq!(sample_sequences_needed(&options(4, None)), 2 + 4);
        let mut one = options(1, None);
        one.budget.max_attempts = Some(1);
        assert_eq!(sample_sequences_needed(&one), 1 + 1);
        let fits = Arc::new(ScriptedEngine::new(two_minds(WRONG, WRONG)).with_max_seqs(2 + 4));
        let mut opts = options(4, None);
        opts.budget.max_attempts = Some(8);
        let out = sample(
            &add_one_task(),
            fits,
            FakeRunner::new(|_| false),
            &opts,
            &|_| {},
        )
        .unwrap();
        assert_eq!(out.attempts.len(), 8);
    }
}
