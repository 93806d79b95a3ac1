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
    /// The unconditional argmax (what plain greedy decoding would pick).
    pub argmax_p: Token,
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
