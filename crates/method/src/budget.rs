//! Per-task budgets and cooperative cancellation.
//!
//! Every attempt of a task polls one shared [`Control`] before each decode
//! step and each sampling step, and charges it for every forward token. An
//! attempt stops when the task is solved by an attempt it must yield to,
//! when the token or wall-time budget is spent, or when the caller cancels.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A flag the caller sets to stop a solve (for example on Ctrl-C).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, unset token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask everything watching this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Limits on the work spent on one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Most attempts to start (in schedule order).
    pub max_attempts: Option<usize>,
    /// Most forward tokens (prefill, decode and candidates) over all attempts.
    pub max_tokens: Option<u64>,
    /// Most wall time for the whole task.
    pub max_wall: Option<Duration>,
}

/// Why an attempt was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    /// An attempt that takes precedence already passed every visible test.
    Solved,
    /// The task's token budget is spent.
    TokenBudget,
    /// The task's wall-time budget is spent.
    TimeBudget,
    /// The caller cancelled.
    Caller,
}

/// Shared state of one task's attempts.
#[derive(Debug)]
pub struct Control {
    cancel: CancelToken,
    max_tokens: Option<u64>,
    deadline: Option<Instant>,
    tokens: AtomicU64,
    /// Attempts with a schedule index above this are cancelled.
    cutoff: AtomicUsize,
    /// Every attempt is cancelled.
    all_solved: AtomicBool,
    /// A reservation was cut short: the token budget cannot pay for the
    /// next step, even if some tokens are left.
    exhausted: AtomicBool,
}

impl Control {
    /// Start the clock on a task's budget.
    pub fn new(budget: &Budget, cancel: CancelToken) -> Self {
        Control {
            cancel,
            max_tokens: budget.max_tokens,
            deadline: budget.max_wall.map(|d| Instant::now() + d),
            tokens: AtomicU64::new(0),
            cutoff: AtomicUsize::new(usize::MAX),
            all_solved: AtomicBool::new(false),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Reserves up to `want` forward tokens out of what the budget has
    /// left, before they are spent, and returns how many it reserved (all
    /// of `want` without a token budget): this is how a prefill or a
    /// candidate batch is kept from overshooting the budget.
    pub fn reserve(&self, want: u64) -> u64 {
        let Some(max) = self.max_tokens else {
            self.charge(want);
            return want;
        };
        let mut spent = self.tokens.load(Ordering::SeqCst);
        loop {
            let granted = want.min(max.saturating_sub(spent));
            match self.tokens.compare_exchange(
                spent,
                spent + granted,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return granted,
                Err(now) => spent = now,
            }
        }
    }

    /// Marks the token budget spent although some tokens are left: they
    /// cannot pay for the next step, so every attempt stops at its next
    /// check.
    pub fn exhaust(&self) {
        self.exhausted.store(true, Ordering::SeqCst);
    }

    /// Gives back reserved tokens that were not spent.
    pub fn refund(&self, n: u64) {
        self.tokens.fetch_sub(n, Ordering::SeqCst);
    }

    /// Count `n` forward tokens against the budget.
    pub fn charge(&self, n: u64) {
        self.tokens.fetch_add(n, Ordering::SeqCst);
    }

    /// The token budget, if there is one.
    pub fn max_tokens(&self) -> Option<u64> {
        self.max_tokens
    }

    /// Forward tokens charged so far.
    pub fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::SeqCst)
    }

    /// Cancel every attempt scheduled after `index`.
    pub fn cut_after(&self, index: usize) {
        self.cutoff.fetch_min(index, Ordering::SeqCst);
    }

    /// Cancel every attempt still running or not yet started.
    pub fn cut_all(&self) {
        self.all_solved.store(true, Ordering::SeqCst);
    }

    /// Why attempt `index` must stop now, if it must.
    pub fn stop_cause(&self, index: usize) -> Option<CancelCause> {
        if self.cancel.is_cancelled() {
            Some(CancelCause::Caller)
        } else if self.all_solved.load(Ordering::SeqCst)
            || index > self.cutoff.load(Ordering::SeqCst)
        {
            Some(CancelCause::Solved)
        } else if self.exhausted.load(Ordering::SeqCst)
            || self.max_tokens.is_some_and(|m| self.tokens() >= m)
        {
            Some(CancelCause::TokenBudget)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(CancelCause::TimeBudget)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_pass_the_budget() {
        let budget = Budget {
            max_tokens: Some(100),
            ..Budget::default()
        };
        let control = Control::new(&budget, CancelToken::new());
        assert_eq!(control.reserve(60), 60);
        assert_eq!(control.reserve(60), 40, "only what is left");
        assert_eq!(control.tokens(), 100);
        control.refund(30);
        assert_eq!(control.tokens(), 70);
        assert_eq!(control.stop_cause(0), None);
        control.exhaust();
        assert_eq!(control.stop_cause(0), Some(CancelCause::TokenBudget));

        let unlimited = Control::new(&Budget::default(), CancelToken::new());
        assert_eq!(unlimited.reserve(1 << 40), 1 << 40);
    }

    #[test]
    fn causes_in_priority_order() {
        let budget = Budget {
            max_tokens: Some(10),
            ..Budget::default()
        };
        let cancel = CancelToken::new();
        let control = Control::new(&budget, cancel.clone());
        assert_eq!(control.stop_cause(5), None);
        control.cut_after(3);
        assert_eq!(control.stop_cause(3), None);
        assert_eq!(control.stop_cause(4), Some(CancelCause::Solved));
        control.cut_after(7);
        assert_eq!(
            control.stop_cause(4),
            Some(CancelCause::Solved),
            "cutoff only moves down"
        );
        control.charge(10);
        assert_eq!(control.stop_cause(0), Some(CancelCause::TokenBudget));
        cancel.cancel();
        assert_eq!(control.stop_cause(0), Some(CancelCause::Caller));
    }

    #[test]
    fn cut_all_stops_every_index() {
        let control = Control::new(&Budget::default(), CancelToken::new());
        control.cut_all();
        assert_eq!(control.stop_cause(0), Some(CancelCause::Solved));
    }

    #[test]
    fn time_budget() {
        let budget = Budget {
            max_wall: Some(Duration::ZERO),
            ..Budget::default()
        };
        let control = Control::new(&budget, CancelToken::new());
        assert_eq!(control.stop_cause(0), Some(CancelCause::TimeBudget));
    }
}
