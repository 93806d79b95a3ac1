//! Records of every decision an attempt made, serialisable as JSON so a
//! viewer can replay the generation (docs/method.md §13.7).

use serde::{Deserialize, Serialize};

use egcfg_engine::Token;

use crate::budget::CancelCause;
use crate::candidates::CandidateRecord;
use crate::config::AttemptSpec;
use crate::cost::AttemptCost;
use crate::guidance::TokenProb;
use crate::runner::TestVerdict;

/// One traced (candidate, test) run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Index of the unique candidate.
    pub candidate: usize,
    /// Index of the visible test.
    pub test: usize,
    /// The invocation label shown to the model.
    pub invocation: String,
    /// The executor's status.
    pub status: String,
    /// The rendered trace.
    pub text: String,
}

/// A second probe of the early-stop rule, sampled from the conditional stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The probe's candidates.
    pub candidates: Vec<CandidateRecord>,
    /// Its unique executable programs.
    pub unique: Vec<String>,
}

/// One rebuild of the signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// Tokens generated when the refresh happened.
    pub step: usize,
    /// Newlines in the code so far (the line the refresh belongs to).
    pub line: usize,
    /// The code so far, which every candidate continues.
    pub prefix: String,
    /// Every sampled candidate and what became of it.
    pub candidates: Vec<CandidateRecord>,
    /// The unique executable programs, in order.
    pub unique: Vec<String>,
    /// Their traces, by candidate then test.
    pub traces: Vec<TraceRecord>,
    /// The signal text, if any entry made it in.
    pub signal: Option<String>,
    /// Tokens of the signal.
    pub signal_tokens: usize,
    /// Entries left out by the token cap.
    pub entries_dropped: usize,
    /// The early-stop probe, when one ran.
    pub probe: Option<ProbeRecord>,
}

/// One generated token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its position in the generated ids.
    pub step: usize,
    /// The token.
    pub token: Token,
    /// Its text (lossy when it holds part of a character).
    pub piece: String,
    /// Whether guidance chose it.
    pub guided: bool,
    /// The unconditional argmax (what plain greedy decoding would pick);
    /// `None` where `P` was never asked for (a served model writing a
    /// γ = 1 line, whose tokens are `P_c`'s choices whatever `P` says).
    pub argmax_p: Option<Token>,
    /// The most likely tokens under `P` (empty when γ = 1 skipped `P`).
    pub top_p: Vec<TokenProb>,
    /// The most likely tokens under `P_c` (guided steps only).
    pub top_pc: Vec<TokenProb>,
    /// The most likely tokens under the guided distribution.
    pub top_guided: Vec<TokenProb>,
}

/// Why an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum AttemptStop {
    /// The code block was closed.
    Fence,
    /// An end-of-sequence token.
    Eos,
    /// The new-token cap.
    TokenLimit,
    /// The context window is full.
    ContextFull,
    /// The early-stop rule returned a pending program.
    EarlyStop,
    /// Stopped from outside.
    Cancelled {
        /// Why.
        cause: CancelCause,
    },
    /// An engine or sandbox error ended it (the record's `error` says
    /// which); records written before this reason existed say `eos`.
    Failed,
}

impl AttemptStop {
    /// Whether the attempt ended with a program of its own making, which is
    /// then checked on the visible tests: it ended by its own rule (fence,
    /// end of sequence, a cap, early stop), not cut short from outside nor
    /// by an error. The tokens of an attempt without one bought nothing the
    /// selection could use.
    pub fn produced_program(self) -> bool {
        !matches!(self, AttemptStop::Cancelled { .. } | AttemptStop::Failed)
    }

    /// A short, stable name of the reason, for tables: `finished` for an
    /// answer that ended by its own rule, `lost_race` when another attempt
    /// solved the task first, `token_budget` / `time_budget` when a budget
    /// ran out, `cancelled` by the caller, `failed` on an error.
    pub fn kind(self) -> &'static str {
        match self {
            AttemptStop::Cancelled { cause } => match cause {
                CancelCause::Solved => "lost_race",
                CancelCause::TokenBudget => "token_budget",
                CancelCause::TimeBudget => "time_budget",
                CancelCause::Caller => "cancelled",
            },
            AttemptStop::Failed => "failed",
            _ => "finished",
        }
    }
}

/// Where an attempt sat in its task's token budget: the forward tokens the
/// whole task had spent at the budget check that let it start, and at the
/// check that let its last step run (or, for an attempt stopped from
/// outside, the check that stopped it). Kept where attempts run in
/// lock-step (the `sample` method), where a run with a smaller budget `B`
/// would have done exactly the same up to the first check that found `B`
/// spent: an attempt with `last_step_at < B` ends the same way there, one
/// with `started_at >= B` never starts, and the rest are cut by the budget
/// ([`crate::sample::derive`] works the smaller run out from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetWindow {
    /// Task tokens spent at the check that let the attempt start (in
    /// records written before [`BudgetWindow::first_step`] was kept: at the
    /// step check before it, which can be lower by a head prefilled in
    /// between).
    pub started_at: u64,
    /// Task tokens spent at the check that let its last step run.
    pub last_step_at: u64,
    /// Which of the solve's [`crate::SolveOutcome::step_checks`] came
    /// before the attempt's first step (its steps follow one per check
    /// from there); `None` where the solve kept no step checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step: Option<usize>,
    /// Tokens of the prompt head its start prefilled: its style's head
    /// where it was the first answer of that style, else 0 (and 0 where
    /// `first_step` is `None`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub head_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One budget check of a lock-step solve, made before each of its steps
/// and once more at its end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// Forward tokens the task had spent.
    pub spent: u64,
    /// Seconds since the solve started, on the clock of its `wall_s`.
    pub elapsed_s: f64,
}

/// Everything about one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// What ran.
    pub spec: AttemptSpec,
    /// `spec.name()`, for readers.
    pub name: String,
    /// The reply text (response prefix + decoded tokens).
    pub reply: String,
    /// The answer: the last python block, or the early-stop program.
    pub code: String,
    /// Why it ended.
    pub stop: AttemptStop,
    /// The signal refreshes.
    pub refreshes: Vec<RefreshRecord>,
    /// Every generated token.
    pub tokens: Vec<TokenRecord>,
    /// Visible-test results of `code` (empty if it was never checked).
    pub visible: Vec<TestVerdict>,
    /// Costs.
    pub cost: AttemptCost,
    /// The error that ended the attempt, if any (the record is partial).
    pub error: Option<String>,
    /// Where it sat in the task's token budget, where that is known
    /// exactly (lock-step schedules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_window: Option<BudgetWindow>,
}

impl AttemptRecord {
    /// Number of visible tests `code` passed.
    pub fn passed_count(&self) -> usize {
        self.visible.iter().filter(|v| v.passed).count()
    }

    /// Whether `code` passed every visible test (and there was at least one).
    pub fn passed_all(&self) -> bool {
        !self.visible.is_empty() && self.visible.iter().all(|v| v.passed)
    }
}
