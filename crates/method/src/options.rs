//! Options of the decoder and of a task's solve.

use serde::{Deserialize, Serialize};

use crate::admission::StartRule;
use crate::budget::{Budget, CancelToken};
use crate::config::Grid;
use crate::signal::SignalLayout;
use egcfg_executor::render::{RenderLimits, TraceFormat};

/// How one attempt decodes. The signal budgets (trace events, signal
/// tokens) are sized for a CPU: every refresh prefills the signal block
/// again from its first changed token, so its cap sets the cost of a guided
/// line (docs/tuning.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecodeOptions {
    /// New-token cap of the answer (the paper's 512; ×3 for CodeContests).
    pub max_new_tokens: usize,
    /// Token cap of one candidate continuation.
    pub candidate_max_tokens: usize,
    /// Keep only the top-k of `P` and `P_c` before guidance (0 = off).
    pub top_k: usize,
    /// How traces are rendered (the changed-state format by default).
    pub trace_format: TraceFormat,
    /// Caps on each rendered trace. Fewer events per trace let more
    /// (candidate, test) entries into the capped block.
    pub render_limits: RenderLimits,
    /// Token cap of the signal block (every refresh re-prefills what
    /// changed in it). 320 by default: on mbpp:validation 511–540 it cost
    /// 241 forward tokens per guided line against 667 at 1,024, and a
    /// median 32.5 s per task against 56.7 s, for strict pass@1 equal in
    /// one sitting and one task lower in another (docs/speed.md).
    pub signal_max_tokens: usize,
    /// How the block lays out its runs. Left out of the serialised options
    /// while it is the default, so the configurations (and bench run keys)
    /// written before it existed keep their hash.
    #[serde(skip_serializing_if = "is_default")]
    pub signal_layout: SignalLayout,
    /// When not one whole run fits the block's cap, show the first run with
    /// its trace cut to the lines that fit ([`crate::signal::cut_to_fit`])
    /// instead of no signal, which leaves the line unguided (at the
    /// 320-token cap, 40–47% of refreshes on mbpp:train; docs/tuning.md §5).
    /// Off by default until the train curve has measured it; left out of
    /// the serialised options while off, so earlier run keys keep their
    /// hash.
    #[serde(skip_serializing_if = "is_default")]
    pub cut_to_fit: bool,
    /// Stop early when candidates keep collapsing to one finished program.
    pub early_stop: bool,
    /// Sample a second round (2s at 1.2 t) when fewer than s candidates are
    /// unique, as the reference's endpoint mode does.
    pub top_up: bool,
    /// Open the reply with a python fence.
    pub force_fence: bool,
    /// Entries of each recorded top-token list (0 = record no lists).
    pub record_top: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_new_tokens: 512,
            candidate_max_tokens: 512,
            top_k: 0,
            trace_format: TraceFormat::ChangedState,
            render_limits: RenderLimits {
                max_events: 16,
                max_value_chars: 80,
            },
            signal_max_tokens: 320,
            signal_layout: SignalLayout::PerRun,
            cut_to_fit: false,
            early_stop: false,
            top_up: false,
            force_fence: true,
            record_top: 3,
        }
    }
}

/// Whether `value` is its type's default (for `skip_serializing_if`).
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Which passing attempt a solve returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The first attempt to pass every visible test stops all others.
    #[default]
    FirstToPass,
    /// A passing attempt stops only those after it in schedule order; the
    /// earliest passing attempt in schedule order wins (the strict rule of
    /// docs/method.md §11, reproducible whatever the thread timing).
    ScheduleOrder,
}

/// How a task is solved.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// The agent configurations.
    pub grid: Grid,
    /// Decoding options shared by every attempt.
    pub decode: DecodeOptions,
    /// Per-task limits.
    pub budget: Budget,
    /// Attempts run at once (each on its own thread, sharing the engine).
    pub concurrency: usize,
    /// Run index mixed into every seed (0 for the first run).
    pub retry: u32,
    /// Which passing attempt wins.
    pub selection: Selection,
    /// When an attempt may start ([`crate::admission`]).
    pub start_rule: StartRule,
    /// The share of the token budget the sampling stage of
    /// [`crate::sample_then_egcfg()`] may spend before its guided stage
    /// (0 to 1; other methods do not read it).
    pub sample_share: f32,
    /// Set to stop the solve from outside.
    pub cancel: CancelToken,
}

/// The default per-task budget in forward tokens (prefill, decode and
/// candidates over all attempts): the greedy attempt and about one finished
/// guided attempt, a minute or two on two CPU cores. A token budget rather
/// than a time budget, so that results do not depend on the machine or its
/// load.
pub const DEFAULT_TASK_TOKENS: u64 = 12_000;

/// The default [`SolveOptions::sample_share`]: half the budget samples,
/// half guides. On the train curve sampling gains nothing beyond its first
/// ~3,000 tokens per task (docs/tuning.md §5), so at the default budget
/// half of it leaves sampling its gains and the guided attempts the rest.
pub const DEFAULT_SAMPLE_SHARE: f32 = 0.5;

impl Default for SolveOptions {
    /// The default grid and decoding options, [`DEFAULT_TASK_TOKENS`] per
    /// task, two attempts at once.
    fn default() -> Self {
        SolveOptions {
            grid: Grid::default(),
            decode: DecodeOptions::default(),
            budget: Budget {
                max_tokens: Some(DEFAULT_TASK_TOKENS),
                ..Budget::default()
            },
            concurrency: 2,
            retry: 0,
            selection: Selection::default(),
            start_rule: StartRule::default(),
            sample_share: DEFAULT_SAMPLE_SHARE,
            cancel: CancelToken::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_added_later_stay_out_of_the_serialised_defaults() {
        // Bench run keys hash these options: a field written only when it
        // is set keeps the keys of the runs recorded before it existed.
        let defaults = serde_json::to_value(DecodeOptions::default()).unwrap();
        for later in ["signal_layout", "cut_to_fit"] {
            assert!(defaults.get(later).is_none(), "{later}: {defaults}");
        }
        let cut = DecodeOptions {
            cut_to_fit: true,
            ..DecodeOptions::default()
        };
        let cut = serde_json::to_value(cut).unwrap();
        assert_eq!(cut["cut_to_fit"], true);
        let back: DecodeOptions = serde_json::from_value(cut).unwrap();
        assert!(back.cut_to_fit);
    }
}
