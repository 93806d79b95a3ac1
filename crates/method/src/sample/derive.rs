//! What a `sample` solve would have given at a smaller token budget, worked
//! out from the records of the same solve at a larger one, so that a budget
//! curve costs little more than its largest point.
//!
//! [`super::batch`] draws every answer in lock-step on one thread and
//! checks the budget only before each step, against the tokens the whole
//! task has spent; the solve keeps each of those checks
//! ([`SolveOutcome::step_checks`]) and each answer its place among them
//! ([`BudgetWindow`]). A run at a smaller budget `B` takes exactly the same
//! steps as the large run up to the first check that finds `B` spent (the
//! *end check*), and stops there: every answer still live is recorded as
//! cut, and none starts. So, answer by answer:
//!
//! * one whose last step ran at a check below `B` (or that was stopped at
//!   such a check, having lost the race) ends exactly as in the large run;
//! * one started at a check that found `B` spent never starts;
//! * every other one is cut at the end check with the tokens it had drawn
//!   by then: by the budget, or, where an answer that finished in the
//!   smaller run passed every visible test and the selection rule stops
//!   this one, as having lost the race (the cause the solve's control
//!   would give first).
//!
//! The chosen program follows by the solve's own rule
//! ([`SolveOutcome::choose_from`]), and the forward tokens by adding up the
//! heads and answers of the smaller run. Its wall time is the large run's
//! clock at the end check: the same work, measured once. It leaves out the
//! smaller run's own wind-down after that check (recording the cut answers
//! and freeing their sequences; no model or sandbox work).
//!
//! Not derivable, so left at zero in the derived outcome wherever the
//! smaller run stops before the large one ended: the times and phase
//! profile of each answer the smaller budget cuts (their share of steps
//! shared with other answers is not kept), the solve's phase walls, and its
//! CPU time. [`DerivedSolve::cut`] names the answers concerned. Where the
//! smaller budget never runs out in the large run, the two runs are one,
//! and the derived outcome is the large one as recorded.
//!
//! Where the smaller run would not be a prefix of the large one, or the
//! records cannot say what it did, the derivation refuses with a
//! [`DeriveError`] rather than guess.

use egcfg_engine::text::Utf8Stream;
use egcfg_engine::Engine;
use egcfg_task::Task;

use crate::attempt_env::runnable_program;
use crate::budget::CancelCause;
use crate::code_text::last_code_block;
use crate::cost::{AttemptCost, Trajectory};
use crate::options::{Selection, SolveOptions};
use crate::outcome::{SolveCost, SolveOutcome};
use crate::profile::PhaseProfile;
use crate::prompt::OPENING_FENCE;
use crate::record::{AttemptRecord, AttemptStop, BudgetWindow};
use crate::visible_tests::script_call;

/// A `sample` solve's outcome at a smaller budget, derived from a larger
/// run's records.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedSolve {
    /// What the solve would have returned. Where the smaller run stops
    /// before the large one ended, `cost.wall_s` is the large run's clock
    /// at the check where it stops, and the solve's phase walls and CPU
    /// time are not derivable and are zero; elsewhere it is the large
    /// outcome as recorded.
    pub outcome: SolveOutcome,
    /// Indices into `outcome.attempts` of the answers the smaller budget
    /// cut short: their tokens, text and forward tokens are exact, their
    /// times and phase profile are not derivable and are zero.
    pub cut: Vec<usize>,
}

/// Why a smaller budget's outcome cannot be derived from a run's records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// The budget is larger than the recorded run's: it could go further.
    #[error("a budget of {budget} tokens is larger than the recorded run's {from}")]
    LargerBudget {
        /// The budget asked for.
        budget: u64,
        /// The recorded run's.
        from: u64,
    },
    /// The records keep no budget checks.
    #[error("the records keep no budget checks (a served model's solve, or one recorded before they were kept)")]
    NoChecks,
    /// The budget runs out between the starts of one round, just after a
    /// head prefill: the smaller run's last step would decode fewer answers
    /// than the large run's, which a model need not compute alike.
    #[error("the budget runs out while answer {index} starts (its prompt head's prefill crosses it), so the smaller run's last step differs from the recorded one")]
    EndsInAStart {
        /// The answer whose start crosses the budget.
        index: usize,
    },
    /// An answer was stopped by the clock or the caller before the budget
    /// ran out: timing, which a rerun need not repeat.
    #[error("answer {index} was stopped by the {cause} before the budget ran out")]
    StoppedByTiming {
        /// The answer.
        index: usize,
        /// `time budget` or `caller`.
        cause: &'static str,
    },
    /// A cut answer's tokens do not rebuild its text on the model given:
    /// the records were written by another model.
    #[error("answer {index}'s tokens do not rebuild its text on this model: {detail}")]
    OtherModel {
        /// The answer.
        index: usize,
        /// What did not match.
        detail: String,
    },
}

/// The outcome the `sample` solve recorded in `large` (of `task`, run with
/// `options` on `engine`'s model) would have had with a token budget of
/// `budget`. The engine only turns the tokens of cut answers back into
/// text, as the solve did (records keep a lossy piece per token).
pub fn derive_at_budget(
    large: &SolveOutcome,
    task: &Task,
    engine: &dyn Engine,
    options: &SolveOptions,
    budget: u64,
) -> Result<DerivedSolve, DeriveError> {
    if let Some(from) = options.budget.max_tokens.filter(|&from| budget > from) {
        return Err(DeriveError::LargerBudget { budget, from });
    }
    let checks = &large.step_checks;
    if checks.is_empty() {
        return Err(DeriveError::NoChecks);
    }
    // The check where the smaller run ends; without one, it never found
    // `budget` spent and did all the large run did.
    let Some(end) = checks.iter().position(|c| c.spent >= budget) else {
        return Ok(DerivedSolve {
            outcome: large.clone(),
            cut: Vec::new(),
        });
    };
    let mut ended = Vec::new();
    let mut running = Vec::new();
    let mut head_tokens = 0;
    for answer in &large.attempts {
        let index = answer.spec.index;
        let window = answer.budget_window.ok_or(DeriveError::NoChecks)?;
        let first_step = window.first_step.ok_or(DeriveError::NoChecks)?;
        if window.started_at >= budget {
            if checks[first_step].spent < budget {
                return Err(DeriveError::EndsInAStart { index });
            }
            continue;
        }
        head_tokens += window.head_tokens;
        if window.last_step_at >= budget {
            running.push((answer, end - first_step));
            continue;
        }
        if let AttemptStop::Cancelled {
            cause: cause @ (CancelCause::TimeBudget | CancelCause::Caller),
        } = answer.stop
        {
            let cause = match cause {
                CancelCause::TimeBudget => "time budget",
                _ => "caller",
            };
            return Err(DeriveError::StoppedByTiming { index, cause });
        }
        ended.push(answer.clone());
    }
    // What the solve's control holds at the end check: the passes of the
    // answers that ended before it.
    let passed: Vec<usize> = ended
        .iter()
        .filter(|a| a.passed_all())
        .map(|a| a.spec.index)
        .collect();
    let lost_race = |index: usize| match options.selection {
        Selection::FirstToPass => !passed.is_empty(),
        Selection::ScheduleOrder => passed.iter().any(|&p| index > p),
    };
    let prefix = if options.decode.force_fence {
        OPENING_FENCE
    } else {
        ""
    };
    let call = script_call(task);
    let mut attempts = ended;
    for (answer, steps) in running {
        let cause = if lost_race(answer.spec.index) {
            CancelCause::Solved
        } else {
            CancelCause::TokenBudget
        };
        let mut cut = cut_short(answer, steps, engine, prefix, call.as_deref())?;
        cut.stop = AttemptStop::Cancelled { cause };
        cut.budget_window = Some(BudgetWindow {
            last_step_at: checks[end].spent,
            ..answer.budget_window.expect("checked above")
        });
        attempts.push(cut);
    }
    attempts.sort_by_key(|a| a.spec.index);
    let cut = attempts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.budget_window.is_some_and(|w| w.last_step_at >= budget))
        .map(|(i, _)| i)
        .collect();
    let mut cost = SolveCost::add_up(head_tokens, &attempts, checks[end].elapsed_s);
    cost.profile = PhaseProfile {
        forward_tokens: cost.forward_tokens,
        ..PhaseProfile::default()
    };
    let mut outcome = SolveOutcome::choose_from(&large.task_id, attempts, cost);
    outcome.step_checks = checks[..=end].to_vec();
    Ok(DerivedSolve { outcome, cut })
}

/// `answer` as it stood after its first `steps` steps (`steps >= 1`: it
/// started before the end check, so its first step ran), not yet checked;
/// the caller sets why it stopped. Its reply is `prefix` and the text of
/// its tokens on `engine`, built as a drawn answer builds its own; a script
/// task's program gets `call`.
fn cut_short(
    answer: &AttemptRecord,
    steps: usize,
    engine: &dyn Engine,
    prefix: &str,
    call: Option<&str>,
) -> Result<AttemptRecord, DeriveError> {
    let index = answer.spec.index;
    let other_model = |detail: String| DeriveError::OtherModel { index, detail };
    let tokens = answer.tokens[..steps].to_vec();
    let mut utf8 = Utf8Stream::new();
    let mut reply = prefix.to_string();
    for token in &tokens {
        let bytes = engine
            .token_bytes(token.token)
            .map_err(|e| other_model(e.to_string()))?;
        reply.push_str(&utf8.push(&bytes));
    }
    if !answer.reply.starts_with(&reply) {
        return Err(other_model(format!(
            "its first {steps} tokens read {reply:?}"
        )));
    }
    // Every step fed one token but the first, which fed the marker.
    let drawn = answer.tokens.len() as u64;
    let prompt_tokens = answer.cost.reference.unconditional + 1 - drawn;
    let mut cost = AttemptCost {
        prefill_tokens: answer.cost.prefill_tokens,
        decode_tokens: steps as u64 - 1,
        reference: Trajectory {
            prompt_tokens,
            steps: steps as u64,
            ..Trajectory::default()
        }
        .reference_cost(),
        ..AttemptCost::default()
    };
    cost.profile.forward_tokens = cost.forward_tokens();
    Ok(AttemptRecord {
        code: runnable_program(&last_code_block(&reply), call),
        reply,
        tokens,
        visible: Vec::new(),
        refreshes: Vec::new(),
        cost,
        error: None,
        ..answer.clone()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::options::Selection;
    use crate::sample::sample;
    use crate::sample::tests::{heads_of_add_one, options};
    use crate::testing::*;

    /// What a rerun of an answer must reproduce: all but its times.
    fn essence(a: &AttemptRecord) -> impl PartialEq + std::fmt::Debug {
        (
            a.name.clone(),
            a.stop,
            a.reply.clone(),
            a.code.clone(),
            a.tokens.clone(),
            a.visible.clone(),
            (
                a.cost.prefill_tokens,
                a.cost.decode_tokens,
                a.cost.reference,
            ),
            a.budget_window,
            a.error.clone(),
        )
    }

    /// Solves the add-one task with `options` at `budget` for real.
    fn solve_at(
        engine: &dyn Fn() -> ScriptedEngine,
        runner: &Arc<FakeRunner>,
        options: &SolveOptions,
        budget: u64,
    ) -> SolveOutcome {
        let mut options = options.clone();
        options.budget.max_tokens = Some(budget);
        sample(
            &add_one_task(),
            Arc::new(engine()),
            runner.clone(),
            &options,
            &|_| {},
        )
        .unwrap()
    }

    /// Solves once at `large_budget` beyond both heads, then at every budget where the large
    /// run's checks could tell runs apart (each check's count and one
    /// more, each start's), and asserts that each real run is what the
    /// derivation says; returns the budgets derived and those refused.
    fn derivations_match_real_runs(
        engine: &dyn Fn() -> ScriptedEngine,
        runner: Arc<FakeRunner>,
        options: &SolveOptions,
        beyond_heads: u64,
    ) -> (usize, usize) {
        let large_budget = heads_of_add_one(&engine()) + beyond_heads;
        let large = solve_at(engine, &runner, options, large_budget);
        let model = engine();
        let mut options = options.clone();
        options.budget.max_tokens = Some(large_budget);
        let starts = large
            .attempts
            .iter()
            .filter_map(|a| a.budget_window.map(|w| w.started_at));
        let budgets: BTreeSet<u64> = large
            .step_checks
            .iter()
            .map(|c| c.spent)
            .chain(starts)
            .flat_map(|n| [n, n + 1])
            .chain([1])
            .filter(|&b| b > 0 && b <= large_budget)
            .collect();
        let (mut derived, mut refused) = (0, 0);
        for budget in budgets {
            let real = solve_at(engine, &runner, &options, budget);
            let got = match derive_at_budget(&large, &add_one_task(), &model, &options, budget) {
                Ok(got) => got,
                Err(DeriveError::EndsInAStart { .. }) => {
                    // Only where a head prefill crosses the budget.
                    assert!(budget <= real.cost.head_prefill_tokens + 1, "{budget}");
                    refused += 1;
                    continue;
                }
                Err(e) => panic!("budget {budget}: {e}"),
            };
            let d = &got.outcome;
            let at = format!("budget {budget}");
            assert_eq!(d.winner, real.winner, "{at}");
            assert_eq!(d.code, real.code, "{at}");
            assert_eq!(d.passed, real.passed, "{at}");
            assert_eq!(d.visible, real.visible, "{at}");
            assert_eq!(d.attempts.len(), real.attempts.len(), "{at}");
            for (d, r) in d.attempts.iter().zip(&real.attempts) {
                assert_eq!(essence(d), essence(r), "{at}");
            }
            let (dc, rc) = (&d.cost, &real.cost);
            assert_eq!(dc.forward_tokens, rc.forward_tokens, "{at}");
            assert_eq!(dc.head_prefill_tokens, rc.head_prefill_tokens, "{at}");
            assert_eq!(dc.attempts_run, rc.attempts_run, "{at}");
            assert_eq!(dc.no_program_tokens, rc.no_program_tokens, "{at}");
            assert_eq!(
                dc.reference_forward_tokens, rc.reference_forward_tokens,
                "{at}"
            );
            let spent =
                |o: &SolveOutcome| o.step_checks.iter().map(|c| c.spent).collect::<Vec<_>>();
            assert_eq!(spent(d), spent(&real), "{at}");
            // The cut answers are the ones the real run cut by the budget
            // or stopped at its last check.
            let cut: Vec<usize> = real
                .attempts
                .iter()
                .enumerate()
                .filter(|(_, a)| {
                    matches!(a.stop, AttemptStop::Cancelled { .. })
                        && a.budget_window.unwrap().last_step_at >= budget
                })
                .map(|(i, _)| i)
                .collect();
            assert_eq!(got.cut, cut, "{at}");
            assert!(dc.wall_s <= large.cost.wall_s, "{at}");
            derived += 1;
        }
        (derived, refused)
    }

    #[test]
    fn every_smaller_budget_of_a_run_without_a_pass_is_derived_as_run() {
        let engine = || ScriptedEngine::new(two_minds(WRONG, WRONG));
        let never = FakeRunner::new(|_| false);
        let (derived, refused) =
            derivations_match_real_runs(&engine, never, &options(3, None), 400);
        assert!(derived > 100, "{derived} budgets derived");
        assert!(refused > 0, "the budgets that end inside a start are found");
    }

    #[test]
    fn budgets_around_a_pass_are_derived_as_run_under_both_selection_rules() {
        let engine = || style_minded_engine(6.0);
        for selection in [Selection::FirstToPass, Selection::ScheduleOrder] {
            let mut opts = options(2, None);
            opts.selection = selection;
            opts.budget.max_attempts = Some(12);
            let (derived, _) = derivations_match_real_runs(&engine, adds_one_runner(), &opts, 600);
            assert!(derived > 20, "{selection:?}: {derived} budgets derived");
        }
    }

    #[test]
    fn what_cannot_be_derived_is_refused() {
        let engine = || ScriptedEngine::new(two_minds(WRONG, WRONG));
        let never = FakeRunner::new(|_| false);
        let opts = options(2, Some(500));
        let large = solve_at(&engine, &never, &opts, 500);
        let task = add_one_task();
        let model = engine();
        assert_eq!(
            derive_at_budget(&large, &task, &model, &opts, 501),
            Err(DeriveError::LargerBudget {
                budget: 501,
                from: 500
            })
        );
        let mut old = large.clone();
        old.step_checks.clear();
        assert_eq!(
            derive_at_budget(&old, &task, &model, &opts, 400),
            Err(DeriveError::NoChecks)
        );
        // The run's own budget gives the run itself.
        let same = derive_at_budget(&large, &task, &model, &opts, 500)
            .unwrap()
            .outcome;
        assert_eq!(same.attempts.len(), large.attempts.len());
        assert_eq!(same.cost.forward_tokens, large.cost.forward_tokens);
    }
}
