//! When an attempt rebuilds its signal (docs/method.md §3, §7).
//!
//! Guidance starts once the reply opens the target function (`def NAME(`):
//! before that there is no code to run candidates of. From then on the
//! signal is rebuilt right away, and after that at every `k`-th new line of
//! the code: a line is the unit the candidates complete and the traces
//! describe. Lines are counted as newlines in the decoded *text*, not in
//! tokens, since one token may hold several newlines.
//!
//! A refresh whose candidates leave no trace entry gives an empty signal:
//! that line is decoded without guidance, and the refresh is tried again at
//! the next new line whatever `k` says, so that one unlucky sample does not
//! leave `k` lines unguided.

use crate::code_text::{
    code_after_last_opening_fence, count_newlines, last_line, starts_target_def,
};

/// Where the signal stands while guidance is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Not built since guidance turned on.
    NotBuilt,
    /// The last refresh produced no entry: no guidance until the next line.
    Empty,
    /// C holds a non-empty signal.
    Active,
}

/// What the schedule says about the step about to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Rebuild the signal for this line of the code.
    Refresh {
        /// Newlines in the code so far.
        line: usize,
    },
    /// The signal is empty: the step is decoded without guidance.
    Unguided,
    /// Keep the signal in force (or decode plainly before guidance starts).
    Nothing,
}

/// The refresh schedule of one attempt.
#[derive(Debug, Clone)]
pub(crate) struct RefreshSchedule {
    /// Whether the attempt guides at all (γ > 0).
    guiding: bool,
    /// Refresh at every `interval`-th new line (the agent's `k`).
    interval: usize,
    /// Guidance has started: the reply opened the target function.
    started: bool,
    signal: Signal,
    /// The most newlines the code has had.
    seen_lines: usize,
}

impl RefreshSchedule {
    /// The schedule of an attempt that guides when `guiding` and refreshes
    /// at every `interval`-th new line.
    pub(crate) fn new(guiding: bool, interval: usize) -> Self {
        RefreshSchedule {
            guiding,
            interval,
            started: false,
            signal: Signal::NotBuilt,
            seen_lines: 0,
        }
    }

    /// What to do before choosing the next token, given the reply so far and
    /// the name of the target function.
    pub(crate) fn before_step(&mut self, reply: &str, entry_point: &str) -> Due {
        if !self.guiding {
            return Due::Nothing;
        }
        if !self.started && starts_target_def(last_line(reply), entry_point) {
            self.started = true;
            self.signal = Signal::NotBuilt;
        }
        if !self.started {
            return Due::Nothing;
        }
        let line = count_newlines(code_after_last_opening_fence(reply));
        let new_line = line > self.seen_lines;
        self.seen_lines = self.seen_lines.max(line);
        let due = match self.signal {
            Signal::NotBuilt => true,
            Signal::Empty => new_line,
            Signal::Active => new_line && line.is_multiple_of(self.interval),
        };
        if due {
            Due::Refresh { line }
        } else if self.signal == Signal::Empty {
            Due::Unguided
        } else {
            Due::Nothing
        }
    }

    /// Records the outcome of a refresh: whether it put a non-empty signal
    /// in force.
    pub(crate) fn refreshed(&mut self, signal_in_force: bool) {
        self.signal = if signal_in_force {
            Signal::Active
        } else {
            Signal::Empty
        };
    }

    /// Whether the next token is chosen with guidance: guidance has started
    /// and a non-empty signal is in force.
    pub(crate) fn guides(&self) -> bool {
        self.started && self.signal == Signal::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Due` of each reply in turn, refreshes all producing `signal`.
    fn run(schedule: &mut RefreshSchedule, replies: &[&str], signal: bool) -> Vec<Due> {
        replies
            .iter()
            .map(|reply| {
                let due = schedule.before_step(reply, "f");
                if matches!(due, Due::Refresh { .. }) {
                    schedule.refreshed(signal);
                }
                due
            })
            .collect()
    }

    const REPLIES: [&str; 6] = [
        "```python\n",
        "```python\ndef f(",
        "```python\ndef f(x):\n",
        "```python\ndef f(x):\n    y = x\n",
        "```python\ndef f(x):\n    y = x\n    z = y",
        "```python\ndef f(x):\n    y = x\n    z = y\n",
    ];

    #[test]
    fn guidance_starts_at_the_target_def_and_refreshes_every_kth_line() {
        let mut every_second = RefreshSchedule::new(true, 2);
        let due = run(&mut every_second, &REPLIES, true);
        assert_eq!(
            due,
            vec![
                Due::Nothing,
                Due::Refresh { line: 0 },
                Due::Nothing,
                Due::Refresh { line: 2 },
                Due::Nothing,
                Due::Nothing,
            ]
        );
        assert!(every_second.guides());
    }

    #[test]
    fn an_empty_signal_is_retried_at_the_next_new_line() {
        let mut schedule = RefreshSchedule::new(true, 3);
        let due = run(&mut schedule, &REPLIES, false);
        assert_eq!(
            due,
            vec![
                Due::Nothing,
                Due::Refresh { line: 0 },
                Due::Refresh { line: 1 },
                Due::Refresh { line: 2 },
                Due::Unguided,
                Due::Refresh { line: 3 },
            ]
        );
        assert!(!schedule.guides());
    }

    #[test]
    fn an_unguided_attempt_never_refreshes() {
        let mut schedule = RefreshSchedule::new(false, 1);
        assert!(run(&mut schedule, &REPLIES, true)
            .iter()
            .all(|d| *d == Due::Nothing));
        assert!(!schedule.guides());
    }
}
