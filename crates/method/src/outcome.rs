//! What a solve returns: the chosen program, every attempt's record, and
//! the totals of what it cost; and the rule that chooses the answer.

use std::time::Instant;

use egcfg_engine::{Engine, Usage};
use serde::{Deserialize, Serialize};

use crate::cost::usage_sum;
use crate::profile::{process_cpu_s, PhaseProfile};
use crate::record::{AttemptRecord, BudgetCheck};
use crate::runner::TestVerdict;

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
    /// Forward tokens of the attempts that produced no program (cut short
    /// by a budget, by another attempt's pass, by the caller, or by an
    /// error; [`crate::AttemptStop::produced_program`]): what bought
    /// nothing the selection could use. 0 in records written before it was
    /// kept.
    #[serde(default)]
    pub no_program_tokens: u64,
    /// Wall and CPU time per phase: the attempts' summed (they overlap in
    /// time, so the walls may add up to more than `wall_s`), plus the
    /// shared heads' prefill ([`crate::profile`]).
    #[serde(default)]
    pub profile: PhaseProfile,
    /// CPU seconds of the whole process during the solve, every thread
    /// (the engine's included, the sandbox's processes not).
    #[serde(default)]
    pub process_cpu_s: f64,
    /// What the model's server spent on the whole solve: every attempt's
    /// [`crate::AttemptCost::usage`], plus the requests made outside any
    /// attempt (tokenizing and rendering the prompts, prefilling the shared
    /// heads). Zero for a local model and in records written before it
    /// was kept.
    #[serde(default)]
    pub usage: Usage,
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
    /// The budget checks of a lock-step solve (the `sample` method on a
    /// local model), one before each of its steps and one at its end:
    /// what a smaller budget would have cut is read from them
    /// ([`crate::sample::derive`]). Empty for other solves and in records
    /// written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_checks: Vec<BudgetCheck>,
}

/// The clocks a solve reads on its calling thread when it starts, and
/// again at its end to take its totals: the wall, the process's CPU and
/// the engine's usage. Every method's solve takes its totals here, so none
/// can leave one out.
pub(crate) struct SolveClock {
    started: Instant,
    cpu_s: f64,
    usage: Usage,
}

impl SolveClock {
    /// Seconds since the solve started.
    pub(crate) fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Reads the clocks now, on the solve's calling thread.
    pub(crate) fn start(engine: &dyn Engine) -> Self {
        SolveClock {
            started: Instant::now(),
            cpu_s: process_cpu_s(),
            usage: engine.thread_usage(),
        }
    }

    /// The totals of a solve whose `attempts` ran, which prefilled
    /// `head_prefill_tokens` for its shared heads, and whose worker threads
    /// (other than the calling one) spent `workers` on the engine.
    pub(crate) fn finish(
        &self,
        engine: &dyn Engine,
        head_prefill_tokens: u64,
        attempts: &[AttemptRecord],
        workers: Usage,
    ) -> SolveCost {
        let mut cost = SolveCost::add_up(
            head_prefill_tokens,
            attempts,
            self.started.elapsed().as_secs_f64(),
        );
        cost.usage = usage_sum([&engine.thread_usage().since(&self.usage), &workers]);
        cost.process_cpu_s = process_cpu_s() - self.cpu_s;
        cost
    }
}

impl SolveCost {
    /// The totals of `attempts`, plus `head_prefill_tokens` for the shared
    /// heads, over a solve that took `wall_s` seconds.
    pub(crate) fn add_up(
        head_prefill_tokens: u64,
        attempts: &[AttemptRecord],
        wall_s: f64,
    ) -> Self {
        let forward_tokens = head_prefill_tokens
            + attempts
                .iter()
                .map(|a| a.cost.forward_tokens())
                .sum::<u64>();
        let mut profile = PhaseProfile::sum(attempts.iter().map(|a| &a.cost.profile));
        profile.forward_tokens = forward_tokens;
        SolveCost {
            attempts_run: attempts.len(),
            head_prefill_tokens,
            forward_tokens,
            reference_forward_tokens: attempts
                .iter()
                .map(|a| a.cost.reference.forward_tokens())
                .sum(),
            executions: attempts.iter().map(|a| a.cost.executions).sum(),
            wall_s,
            no_program_tokens: attempts
                .iter()
                .filter(|a| !a.stop.produced_program())
                .map(|a| a.cost.forward_tokens())
                .sum(),
            profile,
            process_cpu_s: 0.0,
            usage: Usage::default(),
        }
    }

    /// The share of all forward tokens spent on attempts that produced no
    /// program (0 when nothing was spent).
    pub fn no_program_share(&self) -> f64 {
        if self.forward_tokens == 0 {
            0.0
        } else {
            self.no_program_tokens as f64 / self.forward_tokens as f64
        }
    }
}

impl SolveOutcome {
    /// The outcome of task `task_id` whose `attempts` (in schedule order)
    /// cost `cost`: the answer is the one [`choose`] picks.
    pub(crate) fn choose_from(
        task_id: &str,
        attempts: Vec<AttemptRecord>,
        cost: SolveCost,
    ) -> Self {
        let winner = choose(&attempts);
        let chosen = winner.map(|i| &attempts[i]);
        SolveOutcome {
            task_id: task_id.to_string(),
            code: chosen.map(|a| a.code.clone()).unwrap_or_default(),
            passed: chosen.is_some_and(AttemptRecord::passed_all),
            visible: chosen.map(|a| a.visible.clone()).unwrap_or_default(),
            winner,
            winner_name: chosen.map(|a| a.name.clone()),
            attempts,
            cost,
            step_checks: Vec::new(),
        }
    }
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
