//! The two token streams of an attempt (docs/method.md §1, §7).
//!
//! * **U**, the unconditional stream: `head ++ marker ++ gen`, a fork of the
//!   task's prefilled head, so the head is never computed twice;
//! * **C**, the conditional stream: `head ++ signal ++ marker ++ gen`. At a
//!   refresh C is cut back only to the first token where its new content
//!   differs from what it holds (the longest common prefix), and only the
//!   rest is prefilled: a block that kept its opening and first entries
//!   costs nothing for them, and a block equal to the last one costs only
//!   the generated ids C has not seen (none while every step was guided).
//!   The model's input is exactly that of a full re-prefill. The generated
//!   ids are spliced in as ids, never re-tokenised text, so both streams
//!   hold the very tokens that were chosen.
//!
//! With full logits (a local model) both streams take every chosen token in
//! one batched decode, so a guided step costs one forward pass of two
//! sequences, and each stream knows its next token's distribution. An
//! engine that gives only top-k lists (a served model) writes whole lines
//! instead ([`crate::line`]): the streams then only *hold* tokens, nothing
//! is asked of their next token, and the server computes what they hold
//! with the next request that names them. The sequences are engine
//! handles: they are freed however the attempt ends.

use std::sync::Arc;

use egcfg_engine::{Engine, EngineError, NextToken, SeqInput, Sequence, Token, TokenLogprob};

use crate::error::MethodError;
use crate::head::StylePrompt;
use crate::meter::Meter;

/// The conditional stream and what the engine told of its next token.
pub(crate) struct Conditional<'e> {
    /// The sequence.
    pub(crate) seq: Sequence<'e>,
    /// Its next-token logits (`P_c`); `None` when the engine writes lines.
    pub(crate) next: Option<NextToken>,
    /// Its prompt: head, signal and marker tokens.
    pub(crate) prompt_len: usize,
    /// What it holds after the head: signal, marker and the generated ids
    /// it has taken, so a refresh knows how much of it still holds.
    after_head: Vec<Token>,
}

/// U always, C once a signal was built.
pub(crate) struct Streams<'e> {
    engine: &'e dyn Engine,
    prompt: &'e StylePrompt<'e>,
    /// The engine writes lines: the streams hold tokens and ask nothing.
    by_line: bool,
    unconditional: Sequence<'e>,
    /// U's next-token logits (`P`); `None` when the engine writes lines.
    p_next: Option<NextToken>,
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
        let by_line = engine.top_k_limit().is_some();
        let unconditional = prompt.head.fork()?;
        let marker = prompt.marker_tokens.clone();
        let prefill = || take(engine, by_line, &unconditional, marker);
        let Some(p_next) = meter.prefill(prompt.marker_tokens.len(), prefill)? else {
            return Ok(None);
        };
        Ok(Some(Streams {
            engine,
            prompt,
            by_line,
            unconditional,
            p_next,
            conditional: None,
        }))
    }

    /// Whether the engine writes whole lines ([`crate::line`]) rather than
    /// telling each next token's logits.
    pub(crate) fn by_line(&self) -> bool {
        self.by_line
    }

    /// U and what the engine told of its next token.
    pub(crate) fn unconditional(&self) -> (&Sequence<'e>, Option<&NextToken>) {
        (&self.unconditional, self.p_next.as_ref())
    }

    /// C, if a signal was ever built.
    pub(crate) fn conditional(&self) -> Option<&Conditional<'e>> {
        self.conditional.as_ref()
    }

    /// Rebuilds C around a new signal, so that it holds `head ++ signal ++
    /// marker ++ generated`. The previous C is cut back to the first token
    /// that differs (or the head is forked the first time) and only the
    /// rest is prefilled; when nothing differs, C is kept as it is.
    /// `false` when the budget cannot pay for the prefill: C is then
    /// dropped, and the next refresh forks the head again.
    pub(crate) fn condition_on(
        &mut self,
        signal: Vec<Token>,
        generated: &[Token],
        meter: &mut Meter<'_>,
    ) -> Result<bool, MethodError> {
        let prompt = self.prompt;
        let prompt_len = prompt.head_len + signal.len() + prompt.marker_tokens.len();
        let mut after_head = signal;
        after_head.extend_from_slice(&prompt.marker_tokens);
        after_head.extend_from_slice(generated);
        let (seq, kept) = match self.conditional.take() {
            Some(c) if c.after_head == after_head => {
                self.conditional = Some(Conditional { prompt_len, ..c });
                return Ok(true);
            }
            Some(c) => {
                let mut kept = common_prefix_len(&c.after_head, &after_head);
                if !self.by_line {
                    // At least the last token is decoded again: its logits
                    // are the ones guidance needs.
                    kept = kept.min(after_head.len().saturating_sub(1));
                }
                c.seq.truncate(prompt.head_len + kept)?;
                (c.seq, kept)
            }
            None => (prompt.head.fork()?, 0),
        };
        let tokens = after_head[kept..].to_vec();
        let n = tokens.len();
        let prefill = || take(self.engine, self.by_line, &seq, tokens);
        let Some(next) = meter.prefill(n, prefill)? else {
            return Ok(false);
        };
        self.conditional = Some(Conditional {
            seq,
            next,
            prompt_len,
            after_head,
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

    /// Appends the chosen `token` to U, and to C when the step is `guided`:
    /// in one batched decode that tells their next tokens, or, when the
    /// engine writes lines, only held until the next request.
    pub(crate) fn advance(
        &mut self,
        token: Token,
        guided: bool,
        meter: &mut Meter<'_>,
    ) -> Result<(), MethodError> {
        let inputs = self.inputs(token, guided);
        if self.by_line {
            meter.step(inputs.len(), || self.engine.append(&inputs))?;
            if let (Some(c), true) = (self.conditional.as_mut(), guided) {
                c.after_head.push(token);
            }
            return Ok(());
        }
        let mut next = meter
            .step(inputs.len(), || self.engine.decode_next(&inputs))?
            .into_iter();
        self.p_next = next.next();
        if let (Some(c), Some(n)) = (self.conditional.as_mut(), next.next()) {
            c.next = Some(n);
            c.after_head.push(token);
        }
        Ok(())
    }

    /// U's next-token lists after each of `tokens` were it to take them,
    /// the first being the one before `tokens[0]`
    /// ([`Engine::score_tokens`]); `generated` is what U holds after the
    /// marker.
    pub(crate) fn score_unconditional(
        &self,
        generated: &[Token],
        tokens: &[Token],
        k: usize,
    ) -> Result<Vec<Arc<[TokenLogprob]>>, EngineError> {
        let last = *generated
            .last()
            .or(self.prompt.marker_tokens.last())
            .expect("U holds the marker");
        score_before(self.engine, &self.unconditional, last, tokens, k)
    }

    /// [`Streams::score_unconditional`] for C, which must exist.
    pub(crate) fn score_conditional(
        &self,
        tokens: &[Token],
        k: usize,
    ) -> Result<Vec<Arc<[TokenLogprob]>>, EngineError> {
        let c = self.conditional.as_ref().expect("C exists");
        let last = *c.after_head.last().expect("C holds the marker");
        score_before(self.engine, &c.seq, last, tokens, k)
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

/// How many leading tokens `a` and `b` share.
fn common_prefix_len(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Puts `tokens` into `seq`: decoded, returning what the engine tells of
/// the next token, or, when the engine writes lines (`by_line`), only held.
fn take(
    engine: &dyn Engine,
    by_line: bool,
    seq: &Sequence<'_>,
    tokens: Vec<Token>,
) -> Result<Option<NextToken>, EngineError> {
    let input = [SeqInput {
        seq: seq.id(),
        tokens,
    }];
    if by_line {
        engine.append(&input)?;
        return Ok(None);
    }
    Ok(engine.decode_next(&input)?.pop())
}

/// The top-`k` lists of `seq`'s next token before each of `tokens`: `seq`'s
/// last token (`last`) is scored again on a fork cut before it, since only
/// that tells what follows it.
fn score_before(
    engine: &dyn Engine,
    seq: &Sequence<'_>,
    last: Token,
    tokens: &[Token],
    k: usize,
) -> Result<Vec<Arc<[TokenLogprob]>>, EngineError> {
    let Some((_, before_last)) = tokens.split_last() else {
        return Ok(Vec::new());
    };
    let fork = seq.fork()?;
    fork.truncate(fork.len()? - 1)?;
    let mut feed = vec![last];
    feed.extend_from_slice(before_last);
    engine.score_tokens(fork.id(), &feed, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Budget, CancelToken, Control};
    use crate::config::PromptStyle;
    use crate::head::Head;
    use crate::options::SolveOptions;
    use crate::testing::{add_one_task, ScriptedEngine};

    /// The tokens of `text`, as a signal is tokenized.
    fn ids(engine: &ScriptedEngine, text: &str) -> Vec<Token> {
        engine.tokenize(text, false).unwrap()
    }

    /// Runs `body` with U opened on the add-one task's head.
    fn with_streams(
        engine: &ScriptedEngine,
        body: impl FnOnce(&mut Streams<'_>, &mut Meter<'_>, &StylePrompt<'_>),
    ) {
        let options = SolveOptions::default();
        let head = Head::render(engine, &add_one_task(), PromptStyle::Instruct, &options).unwrap();
        let control = Control::new(&Budget::default(), CancelToken::new());
        let prompt = head.prefilled(&control).unwrap();
        let mut meter = Meter::new(&control, 0, 1);
        let mut streams = Streams::open(engine, prompt, &mut meter).unwrap().unwrap();
        body(&mut streams, &mut meter, prompt);
    }

    /// What C holds after the head, read from the engine's last decode of it.
    fn c_content(engine: &ScriptedEngine, streams: &Streams<'_>) -> Vec<Token> {
        let id = streams.conditional().unwrap().seq.id();
        let calls = engine.calls();
        let last = calls
            .iter()
            .flatten()
            .rev()
            .find(|i| i.seq == id)
            .expect("C was decoded");
        last.full.clone()
    }

    #[test]
    fn a_refresh_prefills_only_what_differs_from_the_previous_block() {
        let engine = ScriptedEngine::new(|_| None);
        with_streams(&engine, |streams, meter, prompt| {
            let gen = ids(&engine, "def f(x):\n    return");
            let first = ids(&engine, "\nTraces\nProgram A: x=1\n");
            let second = ids(&engine, "\nTraces\nProgram B: x=2\n");
            assert!(streams.condition_on(first, &gen[..4], meter).unwrap());
            for &t in &gen[4..] {
                streams.advance(t, true, meter).unwrap();
            }
            let calls_before = engine.calls().len();
            assert!(streams.condition_on(second.clone(), &gen, meter).unwrap());
            let calls = engine.calls();
            let refill = &calls[calls_before..];
            assert_eq!(refill.len(), 1, "one prefill");
            // "\nTraces\nProgram " is kept; "B: x=2\n", the marker and the
            // generated ids are decoded again.
            let shared = ids(&engine, "\nTraces\nProgram ").len();
            let expect_new = second.len() - shared + prompt.marker_tokens.len() + gen.len();
            assert_eq!(refill[0][0].appended.len(), expect_new);
            // The model sees exactly what a full re-prefill would give it.
            let mut full = engine.calls()[0][0].full.clone();
            assert_eq!(full.len(), prompt.head_len, "the first decode is the head");
            full.extend(&second);
            full.extend(&prompt.marker_tokens);
            full.extend(&gen);
            assert_eq!(c_content(&engine, streams), full);
            assert_eq!(
                streams.conditional().unwrap().prompt_len,
                full.len() - gen.len()
            );
        });
    }

    #[test]
    fn the_same_block_again_costs_nothing_when_c_saw_every_token() {
        let engine = ScriptedEngine::new(|_| None);
        with_streams(&engine, |streams, meter, _| {
            let gen = ids(&engine, "def f(x):\n");
            let signal = ids(&engine, "\nTraces\nx=1\n");
            assert!(streams
                .condition_on(signal.clone(), &gen[..3], meter)
                .unwrap());
            for &t in &gen[3..] {
                streams.advance(t, true, meter).unwrap();
            }
            let logits = streams.conditional().unwrap().next.clone();
            let calls_before = engine.calls().len();
            assert!(streams.condition_on(signal.clone(), &gen, meter).unwrap());
            assert_eq!(engine.calls().len(), calls_before, "nothing decoded");
            assert_eq!(streams.conditional().unwrap().next, logits);
            // Steps C did not take (unguided) are all that is decoded.
            streams.advance(b'y' as Token, false, meter).unwrap();
            let mut longer = gen.clone();
            longer.push(b'y' as Token);
            let calls_before = engine.calls().len();
            assert!(streams.condition_on(signal, &longer, meter).unwrap());
            let calls = engine.calls();
            assert_eq!(calls.len(), calls_before + 1);
            assert_eq!(calls[calls_before][0].appended, vec![b'y' as Token]);
        });
    }

    #[test]
    fn an_engine_that_writes_lines_is_asked_nothing_and_c_keeps_the_common_prefix() {
        let engine = ScriptedEngine::new(|_| None).with_top_k_only(5);
        with_streams(&engine, |streams, meter, prompt| {
            let asked = || engine.requests.load(std::sync::atomic::Ordering::SeqCst);
            let asked_for_the_head = asked();
            assert!(streams.by_line());
            assert!(streams.unconditional().1.is_none());
            let gen = ids(&engine, "def f(x):\n    return");
            let first = ids(&engine, "\nTraces\nProgram A: x=1\n");
            let second = ids(&engine, "\nTraces\nProgram B: x=2\n");
            assert!(streams.condition_on(first, &gen[..4], meter).unwrap());
            for &t in &gen[4..] {
                streams.advance(t, true, meter).unwrap();
            }
            let before = engine.calls().len();
            // The same block with every token already taken: nothing.
            let c_before = c_content(&engine, streams);
            let first_again = ids(&engine, "\nTraces\nProgram A: x=1\n");
            assert!(streams.condition_on(first_again, &gen, meter).unwrap());
            assert_eq!(engine.calls().len(), before, "nothing appended");
            // A new block: only what follows the common prefix is appended,
            // the last shared token is not taken again.
            assert!(streams.condition_on(second.clone(), &gen, meter).unwrap());
            let calls = engine.calls();
            assert_eq!(calls.len(), before + 1);
            let shared = ids(&engine, "\nTraces\nProgram ").len();
            let expect_new = second.len() - shared + prompt.marker_tokens.len() + gen.len();
            assert_eq!(calls[before][0].appended.len(), expect_new);
            assert_ne!(c_content(&engine, streams), c_before);
            assert!(streams.conditional().unwrap().next.is_none());
            // Not one request for a next-token list was made.
            assert_eq!(asked(), asked_for_the_head);
        });
    }
}
