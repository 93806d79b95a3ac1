//! Which attempts may start: a schedule that spends the budget on
//! programs (issue 14, item 4).
//!
//! Under [`StartRule::Always`] (the default) every attempt of the schedule
//! starts as soon as a worker is free, while budget is left; attempts that
//! run side by side share the budget, and an attempt the rest of the
//! budget cannot carry to its end is cut before it writes its program,
//! its tokens bought nothing.
//!
//! [`StartRule::Affordable`] starts a guided attempt (γ > 0) only when the
//! tokens left can pay for it *and* for every guided attempt already
//! running, each at the expected cost of a guided attempt: the mean of the
//! guided attempts of this task that finished their program so far, else
//! [`prior_guided_cost`] of the signal cap. Running attempts are counted at
//! their whole expected cost, which is conservative: they have spent part
//! of it. A greedy attempt (γ = 0) costs a few hundred tokens and always
//! starts. A guided attempt that cannot be afforded while others run waits
//! for them to end (so guided attempts run one after another when the
//! budget is short); one that cannot be afforded with none running is
//! skipped for good and leaves no record.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::budget::Control;
use crate::config::AttemptSpec;
use crate::record::AttemptRecord;

/// The expected forward tokens of a guided attempt before any has finished
/// in a task, for a signal block of at most `signal_max_tokens`: three
/// times the cap. Most guided lines refresh the signal and the block fills
/// its cap, so a finished attempt's cost follows the cap: the default
/// guided attempts (s = 3, d = 2, k = 1) that finished their function on
/// mbpp:validation 511–540 spent a median of 3.1 times a 320-token cap (46
/// attempts) and 2.6 times a 1,024-token one (34 attempts, the budget having
/// cut 12 others; docs/speed.md).
pub fn prior_guided_cost(signal_max_tokens: usize) -> u64 {
    3 * signal_max_tokens as u64
}

/// When an attempt of the schedule may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartRule {
    /// Whenever a worker is free and budget is left.
    #[default]
    Always,
    /// A guided attempt only when the budget left can carry it and the
    /// guided attempts already running to their end at their expected cost.
    Affordable,
}

/// The start rule of one solve, with what it has learnt so far.
#[derive(Debug)]
pub(crate) struct Admission {
    rule: StartRule,
    /// The expected cost of a guided attempt until one has finished.
    prior_cost: u64,
    state: Mutex<State>,
    /// Signalled whenever an attempt ends.
    ended: Condvar,
}

/// How often a waiting attempt looks at the budget and the cancellation
/// flags, which change without a signal.
const RECHECK: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct State {
    /// Guided attempts running now.
    running_guided: u64,
    /// Forward tokens of the guided attempts that finished their program.
    finished_costs: Vec<u64>,
}

/// A started attempt, to be handed back with its record when it ends.
#[must_use]
pub(crate) struct Started {
    guided: bool,
}

impl Admission {
    /// The rule `rule`, for a solve that has run nothing yet and expects a
    /// guided attempt to cost `prior_cost` forward tokens.
    pub(crate) fn new(rule: StartRule, prior_cost: u64) -> Self {
        Admission {
            rule,
            prior_cost,
            state: Mutex::new(State::default()),
            ended: Condvar::new(),
        }
    }

    /// Whether `spec` may start, given what `control` has spent: at once,
    /// after the running guided attempts it waits for, or (`None`) never.
    pub(crate) fn start(&self, spec: &AttemptSpec, control: &Control) -> Option<Started> {
        let guided = spec.gamma > 0.0;
        let mut state = self.state.lock().expect("no panic holding the lock");
        if guided && self.rule == StartRule::Affordable {
            if let Some(max) = control.max_tokens() {
                loop {
                    if control.stop_cause(spec.index).is_some() {
                        return None;
                    }
                    let needed = state.expected_cost(self.prior_cost) * (state.running_guided + 1);
                    if max.saturating_sub(control.tokens()) >= needed {
                        break;
                    }
                    if state.running_guided == 0 {
                        return None;
                    }
                    state = self
                        .ended
                        .wait_timeout(state, RECHECK)
                        .expect("no panic holding the lock")
                        .0;
                }
            }
        }
        if guided {
            state.running_guided += 1;
        }
        Some(Started { guided })
    }

    /// Notes that the attempt `started` ended with `record`.
    pub(crate) fn ended(&self, started: Started, record: &AttemptRecord) {
        if !started.guided {
            return;
        }
        let mut state = self.state.lock().expect("no panic holding the lock");
        state.running_guided -= 1;
        if record.stop.produced_program() {
            state.finished_costs.push(record.cost.forward_tokens());
        }
        self.ended.notify_all();
    }
}

impl Admission {
    /// Notes that the attempt `started` could not run after all.
    pub(crate) fn ended_unrun(&self, started: Started) {
        if started.guided {
            let mut state = self.state.lock().expect("no panic holding the lock");
            state.running_guided -= 1;
            self.ended.notify_all();
        }
    }
}

impl State {
    fn expected_cost(&self, prior: u64) -> u64 {
        if self.finished_costs.is_empty() {
            prior
        } else {
            self.finished_costs.iter().sum::<u64>() / self.finished_costs.len() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Budget, CancelToken};
    use crate::config::Grid;

    fn specs() -> Vec<AttemptSpec> {
        // Greedy, then two guided attempts.
        Grid::default().schedule("t", 0)
    }

    fn control(max: u64) -> Control {
        Control::new(
            &Budget {
                max_tokens: Some(max),
                ..Budget::default()
            },
            CancelToken::new(),
        )
    }

    #[test]
    fn always_starts_everything() {
        let admission = Admission::new(StartRule::Always, 6_000);
        let control = control(100);
        for spec in specs() {
            assert!(admission.start(&spec, &control).is_some());
        }
    }

    #[test]
    fn a_guided_attempt_starts_only_when_it_and_those_running_can_finish() {
        let admission = Admission::new(StartRule::Affordable, 6_000);
        let control = control(11_000);
        let s = specs();
        assert!(admission.start(&s[0], &control).is_some(), "greedy always");
        let first = admission.start(&s[1], &control).expect("11k carry one");
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| admission.start(&s[2], &control).is_some());
            std::thread::sleep(RECHECK * 3);
            assert!(!waiting.is_finished(), "11k cannot carry two at 6k each");
            control.charge(1_000);
            let record = crate::testing::finished_record(s[1], 4_000);
            admission.ended(first, &record);
            // A guided attempt is now expected to cost 4,000; 10,000 are left.
            assert!(waiting.join().unwrap());
        });
        let short = Admission::new(StartRule::Affordable, 6_000);
        assert!(
            short.start(&s[1], &super::tests::control(5_000)).is_none(),
            "never affordable: skipped"
        );
        let unbounded = Control::new(&Budget::default(), CancelToken::new());
        assert!(
            admission.start(&s[2], &unbounded).is_some(),
            "no budget, no limit"
        );
    }
}
