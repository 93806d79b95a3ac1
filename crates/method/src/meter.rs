//! The meter of one attempt: every forward token it decodes is paid for
//! here, against the task's shared token budget, and counted with its wall
//! time in the attempt's [`AttemptCost`]; the trajectory the reference's cost
//! is estimated on ([`crate::cost`]) is kept here too.
//!
//! Time is kept per phase, on the wall and the thread's CPU clock, in the
//! attempt's [`crate::profile::PhaseProfile`] ([`crate::profile`] says what each phase
//! holds).
//!
//! Keeping the three books (budget, cost, time) in one place is what lets
//! the decoding loop read as the algorithm: it says *what* it decodes, the
//! meter says what that costs.

use std::time::Instant;

use egcfg_engine::EngineError;

use crate::budget::Control;
use crate::candidates::SampleCost;
use crate::cost::{AttemptCost, Trajectory};
use crate::error::MethodError;
use crate::profile::{guided_lines, Phase, Stopwatch};
use crate::record::TokenRecord;

/// Budget, cost and time books of one attempt.
pub(crate) struct Meter<'a> {
    control: &'a Control,
    cost: AttemptCost,
    trajectory: Trajectory,
    /// Prefills count as the head's while the streams are being opened.
    opening: bool,
}

impl<'a> Meter<'a> {
    /// A meter charging `control`'s budget, for an attempt whose
    /// unconditional prompt is `prompt_tokens` long and which samples
    /// `candidates` per refresh (both for the reference estimate).
    pub(crate) fn new(control: &'a Control, prompt_tokens: usize, candidates: usize) -> Self {
        Meter {
            control,
            cost: AttemptCost::default(),
            trajectory: Trajectory {
                prompt_tokens: prompt_tokens as u64,
                s: candidates as u64,
                ..Trajectory::default()
            },
            opening: false,
        }
    }

    /// Runs `decode`, a prefill of `n` tokens, if the budget can pay for all
    /// of them: they are reserved before the forward pass (so no prefill
    /// overshoots the budget) and refunded if it fails. `None`, with nothing
    /// decoded, when the budget cannot pay; the budget is then marked
    /// spent, so every attempt stops at its next check.
    pub(crate) fn prefill<T>(
        &mut self,
        n: usize,
        decode: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<Option<T>, MethodError> {
        let started = Stopwatch::start();
        let n = n as u64;
        let granted = self.control.reserve(n);
        if granted < n {
            self.control.refund(granted);
            self.control.exhaust();
            return Ok(None);
        }
        let out = decode().inspect_err(|_| self.control.refund(n))?;
        self.cost.prefill_tokens += n;
        let phase = if self.opening {
            Phase::HeadPrefill
        } else {
            Phase::SignalPrefill
        };
        self.cost.profile.charge(phase, started.elapsed());
        Ok(Some(out))
    }

    /// Runs `open`, which opens the attempt's streams: its prefills are the
    /// prompt's (head prefill), not a signal's.
    pub(crate) fn opening<T>(&mut self, open: impl FnOnce(&mut Self) -> T) -> T {
        self.opening = true;
        let out = open(self);
        self.opening = false;
        out
    }

    /// Runs `decode`, one single-token step of `n` streams, and charges it
    /// afterwards: a step is never refused, so a budget is overshot by at
    /// most one step.
    pub(crate) fn step<T>(
        &mut self,
        n: usize,
        decode: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, MethodError> {
        let started = Stopwatch::start();
        let out = decode()?;
        let n = n as u64;
        self.cost.decode_tokens += n;
        self.control.charge(n);
        self.cost
            .profile
            .charge(Phase::AnswerDecode, started.elapsed());
        Ok(out)
    }

    /// Charges `n` forward tokens a server computed for a proposed line and
    /// that were then thrown away (the tail after a rejected token), like
    /// decode steps.
    pub(crate) fn discarded(&mut self, n: usize) {
        let n = n as u64;
        self.cost.decode_tokens += n;
        self.control.charge(n);
    }

    /// Runs `choose`, the choice of the next token, as part of the decode.
    pub(crate) fn choice<T>(&mut self, choose: impl FnOnce() -> T) -> T {
        let started = Stopwatch::start();
        let out = choose();
        self.cost
            .profile
            .charge(Phase::AnswerDecode, started.elapsed());
        out
    }

    /// Runs `sample`, a batch of `n` candidates of up to `wanted` tokens
    /// each, after reserving the whole batch from the budget (the sampler
    /// charges nothing while it runs). `sample` gets the per-candidate token
    /// cap the reservation pays for; unused tokens are refunded afterwards.
    /// When not one token per candidate can be paid, nothing is sampled and
    /// the result is empty.
    pub(crate) fn sample<T: Default>(
        &mut self,
        n: usize,
        wanted: usize,
        sample: impl FnOnce(usize) -> Result<(T, SampleCost), MethodError>,
    ) -> Result<T, MethodError> {
        let control = self.control;
        let granted = control.reserve((n * wanted) as u64);
        let max_tokens = usize::try_from(granted).unwrap_or(usize::MAX) / n.max(1);
        if max_tokens == 0 {
            control.refund(granted);
            if wanted > 0 {
                control.exhaust();
            }
            return Ok(T::default());
        }
        let started = Stopwatch::start();
        let (samples, cost) = sample(max_tokens).inspect_err(|_| control.refund(granted))?;
        match granted.checked_sub(cost.decoded) {
            Some(unused) => control.refund(unused),
            None => control.charge(cost.decoded - granted),
        }
        self.cost.candidate_tokens += cost.decoded;
        self.cost.profile.charge(Phase::Sampling, started.elapsed());
        Ok(samples)
    }

    /// Adds the time since `started` to the sandbox's share.
    pub(crate) fn sandbox_time(&mut self, started: Stopwatch) {
        self.cost.profile.charge(Phase::Sandbox, started.elapsed());
    }

    /// Counts programs sent to the sandbox to be prepared.
    pub(crate) fn prepared(&mut self, programs: usize) {
        self.cost.prepared += programs as u64;
    }

    /// Counts traced executions actually run.
    pub(crate) fn executed(&mut self, runs: usize) {
        self.cost.executions += runs as u64;
    }

    /// Notes a token choice; `guided_context` is the conditional stream's
    /// length when the choice was guided.
    pub(crate) fn token_chosen(&mut self, guided_context: Option<usize>) {
        if let Some(context) = guided_context {
            self.trajectory.guided_contexts.push(context as u64);
        }
        self.trajectory.steps += 1;
    }

    /// Notes a refresh after `generated` tokens that kept `unique`
    /// candidates, traced on `tests` tests.
    pub(crate) fn refreshed(&mut self, generated: usize, unique: usize, tests: usize) {
        self.trajectory
            .refreshes
            .push((generated as u64, unique as u64, tests as u64));
    }

    /// Notes a step taken without guidance because the signal was empty
    /// (the reference resamples at every such step).
    pub(crate) fn unguided_step(&mut self, generated: usize, tests: usize) {
        self.trajectory
            .empty_signal_steps
            .push((generated as u64, tests as u64));
    }

    /// The attempt's cost, with the reference estimate, after `started`,
    /// having chosen `tokens`.
    pub(crate) fn finish(mut self, started: Instant, tokens: &[TokenRecord]) -> AttemptCost {
        self.cost.reference = self.trajectory.reference_cost();
        self.cost.times.total_s = started.elapsed().as_secs_f64();
        self.cost.profile.guided_lines = guided_lines(tokens);
        self.cost.profile.forward_tokens = self.cost.forward_tokens();
        self.cost
    }
}
