//! Drawing the sampled answers of a task side by side, in one batch.
//!
//! Up to `concurrency` answers are live at once. Each step decodes every
//! live answer's pending tokens in one [`Engine::decode`] call (a new
//! answer's pending tokens are its response marker, prefilled on a fork of
//! its style's head; an older answer's are its last token), then draws each
//! answer's next token from its own seeded sampler. An answer that ends is
//! checked on the visible tests at once, and the next answer of the
//! schedule takes its place in the following step.
//!
//! Everything runs on the calling thread in lock-step, so a run is fixed by
//! its schedule and the model's logits; and the budget is checked only
//! between steps, against the tokens the whole task spent so far. The solve
//! keeps every step's check ([`BudgetCheck`]: tokens spent, seconds
//! elapsed), and each answer the check that let it start, the one that let
//! its last step run and the index of its first step's ([`BudgetWindow`]):
//! a run with a smaller budget `B` performs exactly the same steps up to the
//! first check that finds `B` spent, so a large run's checks say which of
//! its answers a smaller run would have finished, cut or never started, and
//! what it would have spent ([`super::derive`]). An EG-CFG solve could not
//! be derived so, since its attempts run on threads whose timing decides
//! where a shared budget cuts them, and its candidate batches are sized by
//! the budget left.
//!
//! [`BudgetWindow`]: crate::record::BudgetWindow

use egcfg_engine::sampler::{argmax, Sampler, SamplerConfig};
use egcfg_engine::{EngineError, Logits, SeqInput, Sequence, Token};

use crate::config::AttemptSpec;
use crate::error::MethodError;
use crate::guidance::{softmax, top_probs};
use crate::pool::Finished;
use crate::profile::{Phase, PhaseTime, Stopwatch};
use crate::record::{AttemptStop, BudgetCheck};

use super::answer::{finish_ended, retire_and_refill, share_error, Answer, Drawing};
use super::Draw;

/// One answer while it is drawn.
struct Live<'e> {
    answer: Answer,
    seq: Sequence<'e>,
    sampler: Sampler,
    /// Tokens the next step decodes on `seq`.
    pending: Vec<Token>,
    /// Whether `pending` is the response marker (a prefill).
    prefill: bool,
}

/// Draws the answers of `draw.schedule` until one passes every visible test
/// (as the selection rule says), the schedule ends, or a budget is spent;
/// returns them with the budget check made before each step and at the end.
pub(crate) fn draw_all(draw: &Draw<'_, '_>) -> (Finished, Vec<BudgetCheck>) {
    let control = draw.control;
    // Usage stays empty here: the solve's clock reads the calling thread.
    let mut finished = Finished::default();
    let mut checks = Vec::new();
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut next = 0;
    loop {
        let spent = control.tokens();
        let step = checks.len();
        checks.push(BudgetCheck {
            spent,
            elapsed_s: draw.clock.elapsed_s(),
        });
        let start = |spec, at| start(draw, spec, at, step);
        retire_and_refill(draw, &mut live, &mut next, spent, &mut finished, start);
        if live.is_empty() {
            break;
        }
        let inputs: Vec<SeqInput> = live
            .iter()
            .map(|l| SeqInput {
                seq: l.seq.id(),
                tokens: l.pending.clone(),
            })
            .collect();
        let step_started = Stopwatch::start();
        let logits = match draw.engine.decode(&inputs) {
            Ok(logits) => logits,
            Err(error) => {
                let ends = share_error(error, live.len());
                for (live, ended) in live.into_iter().zip(ends) {
                    let mut answer = live.into_answer();
                    answer.window.last_step_at = spent;
                    finished.attempts.push(finish_ended(draw, answer, ended));
                }
                break;
            }
        };
        control.charge(inputs.iter().map(|i| i.tokens.len() as u64).sum());
        let step = step_started.elapsed();
        let mut going = Vec::with_capacity(live.len());
        for (mut live, logits) in live.into_iter().zip(logits) {
            live.account(step);
            live.answer.window.last_step_at = spent;
            match live.next_token(draw, &logits).transpose() {
                None => going.push(live),
                Some(ended) => {
                    let done = finish_ended(draw, live.into_answer(), ended);
                    finished.attempts.push(done);
                }
            }
        }
        live = going;
    }
    (finished, checks)
}

/// Starts answer `spec`: forks its style's head (prefilling the head on
/// first use) and queues its response marker, at a check that found
/// `spent` tokens spent, before step `step`.
fn start<'e>(
    draw: &Draw<'_, 'e>,
    spec: AttemptSpec,
    spent: u64,
    step: usize,
) -> Result<Live<'e>, MethodError> {
    let prompt = draw.heads[&spec.config.style].prefilled(draw.control)?;
    let seq = prompt.head.fork()?;
    let top_p = spec.answer_top_p.unwrap_or(1.0);
    let mut answer = Answer::start(draw, spec, prompt, spent);
    answer.window.first_step = Some(step);
    // Nothing else charges the budget on this thread in between.
    answer.window.head_tokens = draw.control.tokens() - spent;
    Ok(Live {
        answer,
        seq,
        sampler: Sampler::new(SamplerConfig::nucleus(
            spec.config.temperature,
            top_p,
            spec.seed,
        )),
        pending: prompt.marker_tokens.clone(),
        prefill: true,
    })
}

impl Live<'_> {
    /// Books this answer's part in a batched step that took `step` (the
    /// whole step: every answer in it waited for all of it).
    fn account(&mut self, step: PhaseTime) {
        let n = self.pending.len() as u64;
        let cost = &mut self.answer.cost;
        if self.prefill {
            cost.prefill_tokens += n;
            cost.profile.charge(Phase::HeadPrefill, step);
            self.prefill = false;
        } else {
            cost.decode_tokens += n;
            cost.profile.charge(Phase::AnswerDecode, step);
        }
    }

    /// Draws the next token from `logits`; `Some` with the reason when the
    /// answer ends here, else the token is queued for the next step.
    fn next_token(
        &mut self,
        draw: &Draw<'_, '_>,
        logits: &Logits,
    ) -> Result<Option<AttemptStop>, EngineError> {
        let token = self.sampler.sample(logits);
        let record_top = draw.options.decode.record_top;
        let top_p = if record_top > 0 {
            top_probs(&softmax(logits), record_top)
        } else {
            Vec::new()
        };
        let stop = self.answer.take(draw, token, Some(argmax(logits)), top_p)?;
        self.pending = vec![token];
        Ok(stop)
    }
}

impl Drawing for Live<'_> {
    fn answer(&self) -> &Answer {
        &self.answer
    }

    /// The answer; dropping the rest frees its sequence.
    fn into_answer(self) -> Answer {
        self.answer
    }
}
