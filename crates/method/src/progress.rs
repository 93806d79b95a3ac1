//! Progress events of a solve, for a terminal display: what the attempts
//! are doing while they run, reported from their threads.

use serde::{Deserialize, Serialize};

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

impl ProgressEvent {
    /// The event with its schedule index moved `by` places later: the
    /// event of a stage whose attempts follow `by` others in the solve's
    /// schedule ([`crate::sample_then_egcfg()`]).
    pub fn shifted(mut self, by: usize) -> ProgressEvent {
        let (ProgressEvent::AttemptStarted { index, .. }
        | ProgressEvent::Refresh { index, .. }
        | ProgressEvent::AttemptFinished { index, .. }) = &mut self;
        *index += by;
        self
    }
}
