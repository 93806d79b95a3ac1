//! The two token streams of an attempt (docs/method.md §1, §7).
//!
//! * **U**, the unconditional stream: `head ++ marker ++ gen`, a fork of the
//!   task's prefilled head, so the head is never computed twice;
//! * **C**, the conditional stream: `head ++ signal ++ marker ++ gen`. At a
//!   refresh C is cut back to the head and only the new signal, the marker
//!   and the generated ids are prefilled; the generated ids are spliced in
//!   as ids, never re-tokenised text, so both streams hold the very tokens
//!   that were chosen.
//!
//! Both streams take every chosen token in one batched decode, so a guided
//! step costs one forward pass of two sequences. The sequences are engine
//! handles: they are freed however the attempt ends.

use egcfg_engine::{Engine, NextToken, SeqInput, Sequence, Token};

use crate::error::MethodError;
use crate::head::StylePrompt;
use crate::meter::Meter;

/// The conditional stream and what the engine told of its next token.
pub(crate) struct Conditional<'e> {
    /// The sequence.
    pub(crate) seq: Sequence<'e>,
    /// Its next-token logits or top-k list (`P_c`).
    pub(crate) next: NextToken,
    /// Its prompt: head, signal and marker tokens.
    pub(crate) prompt_len: usize,
}

/// U always, C once a signal was built.
pub(crate) struct Streams<'e> {
    engine: &'e dyn Engine,
    prompt: &'e StylePrompt<'e>,
    unconditional: Sequence<'e>,
    /// U's next-token logits or top-k list (`P`).
    p_next: NextToken,
    conditional: Option<Conditional<'e>>,
}

impl<'e> Streams<'e> {
    /// Opens U: forks the head and prefills the marker. `None` when the
    /// budget cannot pay for the marker.
    pub(crate) fn open(
        engine: &'e dyn Engine,
        prompt: &'e StylePrompt<'e>,
        meter: &mut Meter<'_>,
    ) -> Result<Option<Self>, MethodError> {
        let unconditional = prompt.head.fork()?;
        let marker = prompt.marker_tokens.clone();
        let prefill = || decode_one(engine, &unconditional, marker);
        let Some(p_next) = meter.prefill(prompt.marker_tokens.len(), prefill)? else {
            return Ok(None);
        };
        Ok(Some(Streams {
            engine,
            prompt,
            unconditional,
            p_next,
            conditional: None,
        }))
    }

    /// U and what the engine told of its next token.
    pub(crate) fn unconditional(&self) -> (&Sequence<'e>, &NextToken) {
        (&self.unconditional, &self.p_next)
    }

    /// C, if a signal was ever built.
    pub(crate) fn conditional(&self) -> Option<&Conditional<'e>> {
        self.conditional.as_ref()
    }

    /// Rebuilds C around a new signal: the previous C is cut back to the
    /// head (or the head is forked the first time), then `signal ++ marker
    /// ++ generated` is prefilled. `false` when the budget cannot pay for
    /// it: C is then dropped, and the next refresh forks the head again.
    pub(crate) fn condition_on(
        &mut self,
        signal: Vec<Token>,
        generated: &[Token],
        meter: &mut Meter<'_>,
    ) -> Result<bool, MethodError> {
        let prompt = self.prompt;
        let seq = match self.conditional.take() {
            Some(c) => {
                c.seq.truncate(prompt.head_len)?;
                c.seq
            }
            None => prompt.head.fork()?,
        };
        let prompt_len = prompt.head_len + signal.len() + prompt.marker_tokens.len();
        let mut tokens = signal;
        tokens.extend_from_slice(&prompt.marker_tokens);
        tokens.extend_from_slice(generated);
        let n = tokens.len();
        let Some(next) = meter.prefill(n, || decode_one(self.engine, &seq, tokens))? else {
            return Ok(false);
        };
        self.conditional = Some(Conditional {
            seq,
            next,
            prompt_len,
        });
        Ok(true)
    }

    /// Whether both streams still fit `n_ctx` once `generated` tokens are
    /// in; C counts only when it is decoded (`guided`).
    pub(crate) fn fit(&self, generated: usize, guided: bool, n_ctx: usize) -> bool {
        let prompt = self.prompt;
        let u_len = prompt.head_len + prompt.marker_tokens.len() + generated;
        let c_len = match (&self.conditional, guided) {
            (Some(c), true) => c.prompt_len + generated,
            _ => 0,
        };
        u_len.max(c_len) <= n_ctx
    }

    /// Appends `token` to U, and to C when the step is `guided`, in one
    /// batched decode, and keeps what the engine tells of their next tokens.
    pub(crate) fn advance(
        &mut self,
        token: Token,
        guided: bool,
        meter: &mut Meter<'_>,
    ) -> Result<(), MethodError> {
        let inputs = self.inputs(token, guided);
        let mut next = meter
            .step(inputs.len(), || self.engine.decode_next(&inputs))?
            .into_iter();
        self.p_next = next.next().expect("one answer per input");
        if let (Some(c), Some(n)) = (self.conditional.as_mut(), next.next()) {
            c.next = n;
        }
        Ok(())
    }

    /// Appends `token` like [`Streams::advance`] when the next token is
    /// already known (the rest of a line a served model wrote in one
    /// request): what the streams hold of their next tokens goes stale, and
    /// the caller must not read it before a refresh or a new line request.
    pub(crate) fn append_known(
        &mut self,
        token: Token,
        guided: bool,
        meter: &mut Meter<'_>,
    ) -> Result<(), MethodError> {
        let inputs = self.inputs(token, guided);
        meter.step(inputs.len(), || self.engine.append(&inputs))
    }

    /// Asks again what U's next token is, after [`Streams::append_known`]
    /// left it stale: U's last token (of `generated`, else of the marker) is
    /// taken back and decoded again.
    pub(crate) fn renew_unconditional(
        &mut self,
        generated: &[Token],
        meter: &mut Meter<'_>,
    ) -> Result<(), MethodError> {
        let last = *generated
            .last()
            .or(self.prompt.marker_tokens.last())
            .expect("U holds the marker");
        let u = &self.unconditional;
        u.truncate(u.len()? - 1)?;
        self.p_next = meter.step(1, || decode_one(self.engine, u, vec![last]))?;
        Ok(())
    }

    /// `token` for U, and for C when the step is `guided`.
    fn inputs(&self, token: Token, guided: bool) -> Vec<SeqInput> {
        let mut inputs = vec![SeqInput {
            seq: self.unconditional.id(),
            tokens: vec![token],
        }];
        if let (Some(c), true) = (&self.conditional, guided) {
            inputs.push(SeqInput {
                seq: c.seq.id(),
                tokens: vec![token],
            });
        }
        inputs
    }
}

/// Decodes `tokens` into `seq` alone and returns what the engine tells of
/// its next token.
fn decode_one(
    engine: &dyn Engine,
    seq: &Sequence<'_>,
    tokens: Vec<Token>,
) -> Result<NextToken, egcfg_engine::EngineError> {
    let mut rows = engine.decode_next(&[SeqInput {
        seq: seq.id(),
        tokens,
    }])?;
    Ok(rows.remove(0))
}
