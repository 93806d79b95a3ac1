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
//! between steps, against the tokens the whole task spent so far. Each
//! answer records the spent count at the check that let it start and at the
//! check that let its last step run ([`BudgetWindow`]): a run with a smaller
//! budget `B` performs exactly the same steps up to the first check that
//! finds `B` spent, so a large run's windows say which of its answers a
//! smaller run would have finished, cut or never started. Nothing derives
//! smaller runs from them yet (each budget of a curve is run for real); an
//! EG-CFG solve could not be derived so, since its attempts run on threads
//! whose timing decides where a shared budget cuts them, and its candidate
//! batches are sized by the budget left.

use std::collections::BTreeMap;
use std::time::Instant;

use egcfg_engine::sampler::{argmax, Sampler, SamplerConfig};
use egcfg_engine::text::Utf8Stream;
use egcfg_engine::{Engine, EngineError, Logits, SeqInput, Sequence, Token, Usage};
use egcfg_task::Task;

use crate::attempt_env::runnable_program;
use crate::budget::Control;
use crate::code_text::{ends_with_closing_fence, last_code_block};
use crate::config::{AttemptSpec, PromptStyle};
use crate::cost::{AttemptCost, Trajectory};
use crate::error::MethodError;
use crate::guidance::{softmax, top_probs};
use crate::head::Head;
use crate::options::{Selection, SolveOptions};
use crate::pool::Finished;
use crate::profile::{Phase, PhaseTime, Stopwatch};
use crate::progress::ProgressEvent;
use crate::record::{AttemptRecord, AttemptStop, BudgetWindow, TokenRecord};
use crate::runner::CodeRunner;

/// What the answers of one task share.
pub(crate) struct Draw<'s, 'e> {
    /// The model.
    pub(crate) engine: &'e dyn Engine,
    /// The sandbox.
    pub(crate) runner: &'s dyn CodeRunner,
    /// The task.
    pub(crate) task: &'s Task,
    /// The answers to draw, in schedule order.
    pub(crate) schedule: &'s [AttemptSpec],
    /// The prompt of every style the schedule uses.
    pub(crate) heads: &'s BTreeMap<PromptStyle, Head<'e>>,
    /// The solve's options (`concurrency` answers are live at once).
    pub(crate) options: &'s SolveOptions,
    /// Budgets and cancellation.
    pub(crate) control: &'s Control,
    /// Where progress events go.
    pub(crate) progress: &'s (dyn Fn(ProgressEvent) + Sync),
    /// The entry call appended to script tasks' programs.
    pub(crate) script_call: Option<String>,
}

/// One answer while it is drawn.
struct Live<'e> {
    spec: AttemptSpec,
    seq: Sequence<'e>,
    sampler: Sampler,
    /// Tokens the next step decodes on `seq`.
    pending: Vec<Token>,
    /// Whether `pending` is the response marker (a prefill).
    prefill: bool,
    /// Head and marker tokens, for the reference estimate.
    prompt_tokens: usize,
    utf8: Utf8Stream,
    /// The forced response prefix plus the decoded text.
    text: String,
    tokens: Vec<TokenRecord>,
    cost: AttemptCost,
    started: Instant,
    window: BudgetWindow,
}

/// Draws the answers of `draw.schedule` until one passes every visible test
/// (as the selection rule says), the schedule ends, or a budget is spent.
pub(crate) fn draw_all(draw: &Draw<'_, '_>) -> Finished {
    let width = draw.options.concurrency.max(1);
    let control = draw.control;
    let mut finished = Finished {
        attempts: Vec::new(),
        failures: Vec::new(),
        // On the calling thread: the solve's clock reads it.
        usage: Usage::default(),
    };
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut next = 0;
    loop {
        let spent = control.tokens();
        let (stopped, going): (Vec<_>, Vec<_>) = live
            .into_iter()
            .partition(|l| control.stop_cause(l.spec.index).is_some());
        live = going;
        for mut answer in stopped {
            let cause = control
                .stop_cause(answer.spec.index)
                .expect("partitioned on it");
            answer.window.last_step_at = spent;
            let done = finish(draw, answer, AttemptStop::Cancelled { cause }, None);
            finished.attempts.push(done);
        }
        while live.len() < width {
            let Some(&spec) = draw.schedule.get(next) else {
                break;
            };
            if control.stop_cause(spec.index).is_some() {
                break;
            }
            next += 1;
            match start(draw, spec, spent) {
                Ok(answer) => live.push(answer),
                Err(e) => finished.failures.push(e),
            }
        }
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
                end_all_on_error(draw, live, error, spent, &mut finished);
                break;
            }
        };
        control.charge(inputs.iter().map(|i| i.tokens.len() as u64).sum());
        let step = step_started.elapsed();
        let mut going = Vec::with_capacity(live.len());
        for (mut answer, logits) in live.into_iter().zip(logits) {
            answer.account(step);
            answer.window.last_step_at = spent;
            match answer.next_token(draw, &logits) {
                Ok(None) => going.push(answer),
                Ok(Some(stop)) => {
                    let done = finish(draw, answer, stop, None);
                    finished.attempts.push(done);
                }
                Err(e) => {
                    let done = finish(draw, answer, AttemptStop::Failed, Some(e));
                    finished.attempts.push(done);
                }
            }
        }
        live = going;
    }
    finished
}

/// Starts answer `spec`: forks its style's head (prefilling the head on
/// first use) and queues its response marker, at a check that found
/// `spent` tokens spent.
fn start<'e>(draw: &Draw<'_, 'e>, spec: AttemptSpec, spent: u64) -> Result<Live<'e>, MethodError> {
    let prompt = draw.heads[&spec.config.style].prefilled(draw.control)?;
    let seq = prompt.head.fork()?;
    (draw.progress)(ProgressEvent::AttemptStarted {
        index: spec.index,
        name: spec.name(),
    });
    let top_p = spec.answer_top_p.unwrap_or(1.0);
    Ok(Live {
        spec,
        seq,
        sampler: Sampler::new(SamplerConfig::nucleus(
            spec.config.temperature,
            top_p,
            spec.seed,
        )),
        pending: prompt.marker_tokens.clone(),
        prefill: true,
        prompt_tokens: prompt.head_len + prompt.marker_tokens.len(),
        utf8: Utf8Stream::new(),
        text: prompt.parts.response_prefix.clone(),
        tokens: Vec::new(),
        cost: AttemptCost::default(),
        started: Instant::now(),
        window: BudgetWindow {
            started_at: spent,
            last_step_at: spent,
        },
    })
}

impl Live<'_> {
    /// Books this answer's part in a batched step that took `step` (the
    /// whole step: every answer in it waited for all of it).
    fn account(&mut self, step: PhaseTime) {
        let n = self.pending.len() as u64;
        if self.prefill {
            self.cost.prefill_tokens += n;
            self.cost.profile.charge(Phase::HeadPrefill, step);
            self.prefill = false;
        } else {
            self.cost.decode_tokens += n;
            self.cost.profile.charge(Phase::GuidedDecode, step);
        }
    }

    /// Draws the next token from `logits`; `Some` with the reason when the
    /// answer ends here, else the token is queued for the next step.
    fn next_token(
        &mut self,
        draw: &Draw<'_, '_>,
        logits: &Logits,
    ) -> Result<Option<AttemptStop>, EngineError> {
        let engine = draw.engine;
        let token = self.sampler.sample(logits);
        let record_top = draw.options.decode.record_top;
        let bytes = engine.token_bytes(token)?;
        self.tokens.push(TokenRecord {
            step: self.tokens.len(),
            token,
            piece: String::from_utf8_lossy(&bytes).into_owned(),
            guided: false,
            argmax_p: Some(argmax(logits)),
            top_p: if record_top > 0 {
                top_probs(&softmax(logits), record_top)
            } else {
                Vec::new()
            },
            top_pc: Vec::new(),
            top_guided: Vec::new(),
        });
        // The same stop rules as an EG-CFG attempt's answer. The context
        // needs no check of its own: the solve refused any prompt that
        // cannot hold `max_new_tokens` more.
        if engine.info().eos_tokens.contains(&token) {
            return Ok(Some(AttemptStop::Eos));
        }
        let completed = self.utf8.push(&bytes);
        self.text.push_str(&completed);
        if ends_with_closing_fence(&self.text) {
            return Ok(Some(AttemptStop::Fence));
        }
        if self.tokens.len() >= draw.options.decode.max_new_tokens {
            return Ok(Some(AttemptStop::TokenLimit));
        }
        self.pending = vec![token];
        Ok(None)
    }
}

/// Ends every live answer when a batched decode failed: a full shared
/// cache ends each answer where it is (still checked, as for an EG-CFG
/// attempt); any other error ends them all with it.
fn end_all_on_error(
    draw: &Draw<'_, '_>,
    live: Vec<Live<'_>>,
    error: EngineError,
    spent: u64,
    finished: &mut Finished,
) {
    let context_full = matches!(error, EngineError::ContextFull { .. });
    let message = error.to_string();
    let mut error = Some(error);
    for mut answer in live {
        answer.window.last_step_at = spent;
        let done = if context_full {
            finish(draw, answer, AttemptStop::ContextFull, None)
        } else {
            // The first answer carries the engine's own error; the others
            // name it.
            let e = error
                .take()
                .unwrap_or_else(|| EngineError::Decode(message.clone()));
            finish(draw, answer, AttemptStop::Failed, Some(e))
        };
        finished.attempts.push(done);
    }
}

/// The record of an answer that ended with `stop`: its program is checked
/// on the visible tests unless it was cut short or failed, and one that
/// passes them all cancels what the selection rule makes pointless.
fn finish(
    draw: &Draw<'_, '_>,
    answer: Live<'_>,
    stop: AttemptStop,
    engine_error: Option<EngineError>,
) -> (AttemptRecord, Option<MethodError>) {
    let Live {
        spec,
        seq,
        prompt_tokens,
        text,
        tokens,
        mut cost,
        started,
        window,
        ..
    } = answer;
    // The sequence's cache cells go back before the sandbox runs.
    drop(seq);
    let code = runnable_program(&last_code_block(&text), draw.script_call.as_deref());
    let mut error: Option<MethodError> = engine_error.map(Into::into);
    let mut visible = Vec::new();
    if stop.produced_program() && error.is_none() {
        let checked = Stopwatch::start();
        match draw
            .runner
            .check(&code, draw.task.setup.as_deref(), &draw.task.visible, None)
        {
            Ok(v) => visible = v,
            Err(e) => error = Some(e.into()),
        }
        cost.profile.charge(Phase::Sandbox, checked.elapsed());
    }
    cost.reference = Trajectory {
        prompt_tokens: prompt_tokens as u64,
        steps: tokens.len() as u64,
        ..Trajectory::default()
    }
    .reference_cost();
    cost.times.total_s = started.elapsed().as_secs_f64();
    cost.profile.forward_tokens = cost.forward_tokens();
    let stop = if error.is_some() {
        AttemptStop::Failed
    } else {
        stop
    };
    let record = AttemptRecord {
        spec,
        name: spec.name(),
        reply: text,
        code,
        stop,
        refreshes: Vec::new(),
        tokens,
        visible,
        cost,
        error: error.as_ref().map(ToString::to_string),
        budget_window: Some(window),
    };
    if record.passed_all() {
        match draw.options.selection {
            Selection::FirstToPass => draw.control.cut_all(),
            Selection::ScheduleOrder => draw.control.cut_after(spec.index),
        }
    }
    (draw.progress)(ProgressEvent::AttemptFinished {
        index: spec.index,
        name: record.name.clone(),
        passed: record.passed_count(),
        total: draw.task.visible.len(),
        forward_tokens: record.cost.forward_tokens(),
        seconds: record.cost.times.total_s,
    });
    (record, error)
}
