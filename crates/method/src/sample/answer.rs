//! One sampled answer, however it is drawn (decoded step by step on a
//! local model, [`super::batch`], or written by a server in requests,
//! [`super::requests`]): the text and tokens it has, the stop rules it
//! ends by, and its record once it ends.

use std::time::Instant;

use egcfg_engine::text::Utf8Stream;
use egcfg_engine::{EngineError, Token};

use crate::attempt_env::runnable_program;
use crate::code_text::{ends_with_closing_fence, last_code_block};
use crate::config::AttemptSpec;
use crate::cost::{AttemptCost, Trajectory};
use crate::error::MethodError;
use crate::guidance::TokenProb;
use crate::head::StylePrompt;
use crate::options::Selection;
use crate::profile::{Phase, Stopwatch};
use crate::progress::ProgressEvent;
use crate::record::{AttemptRecord, AttemptStop, BudgetWindow, TokenRecord};

use crate::pool::Finished;

use super::Draw;

/// What an answer has written so far and what it cost.
pub(super) struct Answer {
    pub(super) spec: AttemptSpec,
    /// Head and marker tokens, for the reference estimate.
    prompt_tokens: usize,
    utf8: Utf8Stream,
    /// The forced response prefix plus the decoded text.
    text: String,
    pub(super) tokens: Vec<TokenRecord>,
    pub(super) cost: AttemptCost,
    started: Instant,
    pub(super) window: BudgetWindow,
}

impl Answer {
    /// Starts answer `spec` on `prompt`, at a check that found `spent`
    /// tokens spent.
    pub(super) fn start(
        draw: &Draw<'_, '_>,
        spec: AttemptSpec,
        prompt: &StylePrompt<'_>,
        spent: u64,
    ) -> Self {
        (draw.progress)(ProgressEvent::AttemptStarted {
            index: spec.index,
            name: spec.name(),
        });
        Answer {
            spec,
            prompt_tokens: prompt.head_len + prompt.marker_tokens.len(),
            utf8: Utf8Stream::new(),
            text: prompt.parts.response_prefix.clone(),
            tokens: Vec::new(),
            cost: AttemptCost::default(),
            started: Instant::now(),
            window: BudgetWindow {
                started_at: spent,
                last_step_at: spent,
                first_step: None,
                head_tokens: 0,
            },
        }
    }

    /// Takes the next token, drawn where the unconditional argmax was
    /// `argmax_p` (`None` where the engine did not tell it) and the most
    /// likely tokens were `top_p`; `Some` with the reason when the answer
    /// ends with it.
    pub(super) fn take(
        &mut self,
        draw: &Draw<'_, '_>,
        token: Token,
        argmax_p: Option<Token>,
        top_p: Vec<TokenProb>,
    ) -> Result<Option<AttemptStop>, EngineError> {
        let engine = draw.engine;
        let bytes = engine.token_bytes(token)?;
        self.tokens.push(TokenRecord {
            step: self.tokens.len(),
            token,
            piece: String::from_utf8_lossy(&bytes).into_owned(),
            guided: false,
            argmax_p,
            top_p,
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
        Ok(None)
    }
}

/// How each of `n` answers ends when one engine call failed them all: a
/// full context or shared cache ends each answer where it is (`Ok`: still
/// checked, as for an EG-CFG attempt); any other error ends them all with
/// it, the first answer carrying the engine's own error and the others
/// naming it.
pub(super) fn share_error(error: EngineError, n: usize) -> Vec<Result<AttemptStop, EngineError>> {
    if matches!(error, EngineError::ContextFull { .. }) {
        return (0..n).map(|_| Ok(AttemptStop::ContextFull)).collect();
    }
    let message = error.to_string();
    let mut error = Some(error);
    (0..n)
        .map(|_| {
            Err(error
                .take()
                .unwrap_or_else(|| EngineError::Decode(message.clone())))
        })
        .collect()
}

/// [`finish`] for an answer that ends with `ended`: a stop, or the engine
/// error that failed it.
pub(super) fn finish_ended(
    draw: &Draw<'_, '_>,
    answer: Answer,
    ended: Result<AttemptStop, EngineError>,
) -> (AttemptRecord, Option<MethodError>) {
    match ended {
        Ok(stop) => finish(draw, answer, stop, None),
        Err(e) => finish(draw, answer, AttemptStop::Failed, Some(e)),
    }
}

/// The record of an answer that ended with `stop`: its program is checked
/// on the visible tests unless it was cut short or failed, and one that
/// passes them all cancels what the selection rule makes pointless. The
/// caller frees the answer's engine sequence first, so its cache cells go
/// back before the sandbox runs.
pub(super) fn finish(
    draw: &Draw<'_, '_>,
    answer: Answer,
    stop: AttemptStop,
    engine_error: Option<EngineError>,
) -> (AttemptRecord, Option<MethodError>) {
    let Answer {
        spec,
        prompt_tokens,
        text,
        tokens,
        mut cost,
        started,
        window,
        ..
    } = answer;
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

/// An answer while it is drawn, whichever way draws it (a local batch or a
/// server's requests).
pub(super) trait Drawing: Sized {
    /// The answer so far.
    fn answer(&self) -> &Answer;
    /// The answer, once drawing it ends.
    fn into_answer(self) -> Answer;
}

/// The start of a round, the same for both ways of drawing: each live
/// answer the control stopped is recorded as cancelled (with `spent` as its
/// last step), then answers of the schedule from `next` on are started with
/// `start` (given the tokens spent at the check that let each start) until
/// `width` are live or the control says to start no more.
pub(super) fn retire_and_refill<L: Drawing>(
    draw: &Draw<'_, '_>,
    live: &mut Vec<L>,
    next: &mut usize,
    spent: u64,
    finished: &mut Finished,
    mut start: impl FnMut(AttemptSpec, u64) -> Result<L, MethodError>,
) {
    let control = draw.control;
    let (stopped, going): (Vec<L>, Vec<L>) = std::mem::take(live)
        .into_iter()
        .partition(|l| control.stop_cause(l.answer().spec.index).is_some());
    *live = going;
    for stopped in stopped {
        let mut answer = stopped.into_answer();
        let cause = control
            .stop_cause(answer.spec.index)
            .expect("partitioned on it");
        answer.window.last_step_at = spent;
        let done = finish(draw, answer, AttemptStop::Cancelled { cause }, None);
        finished.attempts.push(done);
    }
    let width = draw.options.concurrency.max(1);
    while live.len() < width {
        let Some(&spec) = draw.schedule.get(*next) else {
            break;
        };
        // A head prefilled by an answer started just before counts here:
        // this check, not the round's first, is the one that let it start.
        let spent = control.tokens();
        if control.stop_cause(spec.index).is_some() {
            break;
        }
        *next += 1;
        match start(spec, spent) {
            Ok(answer) => live.push(answer),
            Err(e) => finished.failures.push(e),
        }
    }
}
