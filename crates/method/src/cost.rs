//! What an attempt cost, and what the reference implementation would have
//! spent on the same trajectory.
//!
//! # egcfg's own cost
//! Forward tokens are counted where they are decoded: *prefill* (the
//! response marker on the unconditional stream, and signal + marker +
//! generated ids on the conditional stream at every refresh), *decode*
//! (one token per stream per step; two when the step is guided) and
//! *candidate* tokens (the sampled forks). The shared head is prefilled once
//! per task and prompt style, and is counted in the task's total, not per
//! attempt.
//!
//! A served model's cost is what its server was asked for: requests, prompt
//! tokens (and how many of them its prefix cache served) and generated
//! tokens ([`Usage`]), read from the engine around the attempt on the
//! attempt's own thread (`pool`). A local model has none.
//!
//! # The reference's cost on the same trajectory (an estimate)
//! The reference's local mode keeps a KV cache for the unconditional stream
//! only. On the trajectory this attempt actually took, with
//! `P_u` = unconditional prompt tokens, `N` = token choices made (the final
//! EOS included), `L_c(i)` = conditional prompt tokens in force at guided
//! step `i` (head + signal + marker), `g_i` = tokens generated before step
//! `i`, and `g_r` = tokens generated at refresh `r`:
//!
//! * unconditional: `P_u + N − 1` (prefill once, then one token per step);
//! * conditional: `Σ_guided (L_c(i) + g_i)`: the whole conditional context
//!   is recomputed for every guided token (L2);
//! * candidates: `Σ_r s · (P_u + g_r)` prefill (the sampler copies the
//!   context `s` times) plus `Σ_r s · min(512, max(1, N − g_r))` decode,
//!   because its local candidates ignore the horizon and run to the end of
//!   the function (L1); the length of the rest of *this* trajectory stands
//!   in for the length of a whole-function sample;
//! * refreshes `r` are ours, plus one extra per step taken while the signal
//!   was empty, since the reference resamples on every such token (E4);
//! * executions: per refresh, (unique candidates + 1) × traced tests: the
//!   reference also traces the bare prefix at every refresh (T4).
//!
//! Both are serialised with every attempt record and printed by
//! [`crate::explain`].

use egcfg_engine::Usage;
use serde::{Deserialize, Serialize};

use crate::profile::PhaseProfile;

/// Wall time of an attempt, in seconds; its phases are in
/// [`AttemptCost::profile`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// The whole attempt.
    pub total_s: f64,
}

/// Counts and times of one attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptCost {
    /// Tokens decoded in multi-token prefill calls.
    pub prefill_tokens: u64,
    /// Tokens decoded one per stream per step.
    pub decode_tokens: u64,
    /// Tokens decoded while sampling candidates.
    pub candidate_tokens: u64,
    /// Traced executions actually run (memoised repeats excluded).
    pub executions: u64,
    /// Programs sent to `prepare`.
    pub prepared: u64,
    /// Wall time.
    pub times: PhaseTimes,
    /// Wall and CPU time per phase (empty in records written before it).
    #[serde(default)]
    pub profile: PhaseProfile,
    /// The reference's estimated cost on the same trajectory.
    pub reference: ReferenceCost,
    /// What the model's server spent on the attempt's requests (all zero
    /// for a local model, and in records written before it was kept).
    #[serde(default)]
    pub usage: Usage,
}

impl AttemptCost {
    /// All forward tokens of the attempt.
    pub fn forward_tokens(&self) -> u64 {
        self.prefill_tokens + self.decode_tokens + self.candidate_tokens
    }
}

/// The field-by-field sum of `usages`.
pub fn usage_sum<'u>(usages: impl IntoIterator<Item = &'u Usage>) -> Usage {
    usages.into_iter().fold(Usage::default(), |total, u| Usage {
        requests: total.requests + u.requests,
        prompt_tokens: total.prompt_tokens + u.prompt_tokens,
        cached_prompt_tokens: total.cached_prompt_tokens + u.cached_prompt_tokens,
        generated_tokens: total.generated_tokens + u.generated_tokens,
    })
}

/// The reference implementation's estimated cost (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceCost {
    /// Unconditional stream tokens.
    pub unconditional: u64,
    /// Conditional recomputation tokens.
    pub conditional: u64,
    /// Candidate prefill tokens.
    pub candidate_prefill: u64,
    /// Candidate decode tokens.
    pub candidate_decode: u64,
    /// Refreshes, including the per-token resampling on an empty signal.
    pub refreshes: u64,
    /// Traced executions.
    pub executions: u64,
}

impl ReferenceCost {
    /// All forward tokens.
    pub fn forward_tokens(&self) -> u64 {
        self.unconditional + self.conditional + self.candidate_prefill + self.candidate_decode
    }
}

/// What the estimate needs to know about a trajectory.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    /// Unconditional prompt tokens (head + marker).
    pub prompt_tokens: u64,
    /// Candidates per refresh.
    pub s: u64,
    /// Token choices made.
    pub steps: u64,
    /// `L_c(i) + g_i` of every guided step.
    pub guided_contexts: Vec<u64>,
    /// `(g_r, unique candidates, traced tests)` of every refresh.
    pub refreshes: Vec<(u64, u64, u64)>,
    /// `(g, traced tests)` of every step taken while the signal was empty.
    pub empty_signal_steps: Vec<(u64, u64)>,
}

impl Trajectory {
    /// Apply the estimate in the module docs.
    pub fn reference_cost(&self) -> ReferenceCost {
        let n = self.steps;
        let mut cost = ReferenceCost {
            unconditional: self.prompt_tokens + n.saturating_sub(1),
            conditional: self.guided_contexts.iter().sum(),
            ..ReferenceCost::default()
        };
        let refresh_points = self.refreshes.iter().copied().chain(
            self.empty_signal_steps
                .iter()
                .map(|&(g, tests)| (g, self.s, tests)),
        );
        for (g, unique, tests) in refresh_points {
            cost.refreshes += 1;
            cost.candidate_prefill += self.s * (self.prompt_tokens + g);
            cost.candidate_decode += self.s * n.saturating_sub(g).clamp(1, 512);
            cost.executions += (unique + 1) * tests;
        }
        cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_against_hand_computed_values() {
        let t = Trajectory {
            prompt_tokens: 100,
            s: 3,
            steps: 20,
            guided_contexts: vec![300, 301, 302],
            refreshes: vec![(5, 2, 3), (10, 1, 3)],
            empty_signal_steps: vec![(12, 3)],
        };
        let c = t.reference_cost();
        assert_eq!(c.unconditional, 119);
        assert_eq!(c.conditional, 903);
        assert_eq!(c.refreshes, 3);
        assert_eq!(c.candidate_prefill, 3 * 105 + 3 * 110 + 3 * 112);
        assert_eq!(c.candidate_decode, 3 * 15 + 3 * 10 + 3 * 8);
        assert_eq!(c.executions, 3 * 3 + 2 * 3 + 4 * 3);
        assert_eq!(c.forward_tokens(), 119 + 903 + 981 + 99);
    }
}
