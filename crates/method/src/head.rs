//! The prompt heads of a task (docs/method.md §2, §7): the part of each
//! prompt style that every attempt of that style shares, prefilled once.
//!
//! A prompt is `head ++ marker`: the head holds the instructions and the
//! task, the marker opens the answer. Every attempt forks the head's
//! sequence instead of prefilling it again, and the conditional stream
//! splices its signal between head and marker, so the head is the one part
//! of the prompt that is computed once per task and style.

use std::sync::OnceLock;

use egcfg_engine::{Engine, EngineError, SeqInput, Sequence, Token};
use egcfg_task::Task;

use crate::budget::Control;
use crate::config::PromptStyle;
use crate::error::MethodError;
use crate::options::SolveOptions;
use crate::profile::{PhaseTime, Stopwatch};
use crate::prompt::{build_prompt, PromptParts};

/// A task's prompt in one style, with its head already in the engine.
#[derive(Debug)]
pub struct StylePrompt<'e> {
    /// The rendered text parts.
    pub parts: PromptParts,
    /// The prefilled head, which every stream of every attempt forks.
    pub head: Sequence<'e>,
    /// Tokens in the head.
    pub head_len: usize,
    /// The marker's tokens.
    pub marker_tokens: Vec<Token>,
    /// The time the head's prefill took, on the thread that ran it.
    pub prefill_time: PhaseTime,
}

/// The prompt of one style: rendered and tokenized up front (so a prompt
/// that cannot work fails the solve at once), its head prefilled by the
/// first attempt that needs it (so a style the schedule never reaches costs
/// nothing).
pub(crate) struct Head<'e> {
    engine: &'e dyn Engine,
    parts: PromptParts,
    head: Vec<Token>,
    marker: Vec<Token>,
    cell: OnceLock<Result<StylePrompt<'e>, String>>,
}

impl<'e> Head<'e> {
    /// Renders and tokenizes the prompt of `style` for `task`.
    pub(crate) fn render(
        engine: &'e dyn Engine,
        task: &Task,
        style: PromptStyle,
        options: &SolveOptions,
    ) -> Result<Self, MethodError> {
        let parts = build_prompt(engine, task, style, options.decode.force_fence)?;
        let head = engine.tokenize(&parts.head, true)?;
        let marker = engine.tokenize(&parts.marker, true)?;
        Ok(Head {
            engine,
            parts,
            head,
            marker,
            cell: OnceLock::new(),
        })
    }

    /// Tokens of the prompt itself (head and marker).
    pub(crate) fn prompt_tokens(&self) -> usize {
        self.head.len() + self.marker.len()
    }

    /// The prompt with its head in the engine, prefilling it on first use
    /// and charging it to `control`'s budget.
    pub(crate) fn prefilled(&self, control: &Control) -> Result<&StylePrompt<'e>, MethodError> {
        let cell = self.cell.get_or_init(|| {
            let prefill = || -> Result<StylePrompt<'e>, EngineError> {
                let started = Stopwatch::start();
                let head = Sequence::new(self.engine)?;
                self.engine.decode_next(&[SeqInput {
                    seq: head.id(),
                    tokens: self.head.clone(),
                }])?;
                control.charge(self.head.len() as u64);
                Ok(StylePrompt {
                    parts: self.parts.clone(),
                    head,
                    head_len: self.head.len(),
                    marker_tokens: self.marker.clone(),
                    prefill_time: started.elapsed(),
                })
            };
            prefill().map_err(|e| e.to_string())
        });
        match cell {
            Ok(prompt) => Ok(prompt),
            Err(message) => Err(MethodError::HeadPrefill(message.clone())),
        }
    }

    /// Head tokens actually prefilled (0 when no attempt needed this style).
    pub(crate) fn prefilled_tokens(&self) -> u64 {
        match self.cell.get() {
            Some(Ok(_)) => self.head.len() as u64,
            _ => 0,
        }
    }

    /// The time the head's prefill took (zero when it never ran).
    pub(crate) fn prefill_time(&self) -> PhaseTime {
        match self.cell.get() {
            Some(Ok(prompt)) => prompt.prefill_time,
            _ => PhaseTime::default(),
        }
    }
}

/// llama.cpp sizes its KV cache in blocks of this many cells.
const CACHE_BLOCK: usize = 256;

/// Refuses a context that cannot hold the longest prompt of the schedule
/// with its answer, before any work. Every style is measured first, so the
/// context suggested is one that all of them fit: rounded up to a whole
/// cache block, it also leaves room for the signal and the candidates.
pub(crate) fn check_context<'h, 'e: 'h>(
    engine: &dyn Engine,
    heads: impl Iterator<Item = &'h Head<'e>>,
    options: &SolveOptions,
) -> Result<(), MethodError> {
    let n_ctx = engine.info().n_ctx;
    let needed = heads.map(Head::prompt_tokens).max().unwrap_or(0);
    // One more than the answer: the signal's cap keeps a token spare too.
    let needed_total = needed + options.decode.max_new_tokens + 1;
    if needed_total <= n_ctx {
        return Ok(());
    }
    Err(MethodError::PromptTooLong {
        needed,
        answer: options.decode.max_new_tokens,
        n_ctx,
        suggested_ctx: needed_total.div_ceil(CACHE_BLOCK) * CACHE_BLOCK,
    })
}
