//! Plain generation: a prompt in, text out, token by token.
//!
//! This is the baseline EG-CFG is compared with (`egcfg generate`): render
//! the prompt with the model's chat template (or use it raw), then sample one
//! token at a time until an end-of-generation token, a stop string or the
//! token limit, streaming the text as it is produced. A served model, which
//! gives no logits, writes a line per request instead
//! ([`Engine::continue_sequence`]); line `i` is sampled with seed
//! `sampling.seed + i`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::sampler::{Sampler, SamplerConfig};
use crate::text::TokenDecoder;
use crate::{ChatMessage, ContinueRequest, Engine, EngineError, Role, SeqInput, Sequence, Token};

/// What the model continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A conversation, rendered with the model's chat template and ending
    /// with the opening of the assistant's turn.
    Chat(Vec<ChatMessage>),
    /// Text the model continues as is (no template, special-token markers
    /// are spelled out rather than parsed).
    Raw(String),
}

impl Prompt {
    /// A one-message conversation from the user.
    pub fn user(text: impl Into<String>) -> Self {
        Prompt::Chat(vec![ChatMessage {
            role: Role::User,
            content: text.into(),
        }])
    }
}

/// When to stop and how to choose tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Generation stops before the first occurrence of any of these.
    pub stop: Vec<String>,
    /// Token choice; greedy by default, which makes the baseline
    /// deterministic.
    pub sampling: SamplerConfig,
}

impl Default for GenerateOptions {
    /// Up to 512 greedy tokens, no stop strings.
    fn default() -> Self {
        Self {
            max_tokens: 512,
            stop: Vec::new(),
            sampling: SamplerConfig::GREEDY,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfText,
    /// A stop string appeared (it is not part of the text).
    StopString(String),
    /// `max_tokens` were generated.
    MaxTokens,
    /// The sequence reached the context window.
    ContextFull,
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text, without a stop string or end token.
    pub text: String,
    /// Tokens in the rendered prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (including a final end token).
    pub generated_tokens: usize,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

/// Generate a continuation of `prompt`, calling `on_text` with each piece of
/// text as soon as it is final (text that might begin a stop string is held
/// back until it is known not to).
pub fn generate(
    engine: &dyn Engine,
    prompt: &Prompt,
    options: &GenerateOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, EngineError> {
    let prompt_tokens = match prompt {
        Prompt::Chat(messages) => {
            let rendered = engine.apply_chat_template(messages, true)?;
            engine.tokenize(&rendered, true)?
        }
        Prompt::Raw(text) => engine.tokenize(text, false)?,
    };
    if prompt_tokens.is_empty() {
        return Err(EngineError::InvalidRequest(
            "the prompt is empty".to_owned(),
        ));
    }
    let n_ctx = engine.info().n_ctx;

    let seq = Sequence::new(engine)?;
    let mut next = NextTokens::new(engine, options);
    let mut decoder = TokenDecoder::new(engine);
    let mut stops = StopFilter::new(&options.stop);
    let mut input = prompt_tokens.clone();
    let mut generated = 0;

    let stop_reason = loop {
        if generated == options.max_tokens {
            break StopReason::MaxTokens;
        }
        // The next decode appends the last sampled token. (A prompt that is
        // too long on its own fails in the first decode with ContextFull.)
        if generated > 0 && prompt_tokens.len() + generated > n_ctx {
            break StopReason::ContextFull;
        }
        let Some(token) = next.after(&seq, &mut input, options.max_tokens - generated)? else {
            break StopReason::ContextFull;
        };
        generated += 1;
        if engine.info().eos_tokens.contains(&token) {
            break StopReason::EndOfText;
        }
        let piece = decoder.push(token)?;
        if let Some(stop) = stops.push(&piece, on_text) {
            break StopReason::StopString(stop);
        }
        input.push(token);
    };
    if !matches!(stop_reason, StopReason::StopString(_)) {
        stops.finish(&decoder.finish(), on_text);
    }
    Ok(Generation {
        text: stops.into_text(),
        prompt_tokens: prompt_tokens.len(),
        generated_tokens: generated,
        stop_reason,
    })
}

/// Where the next token comes from: sampled from the logits of one decode,
/// or taken from a line a served model wrote.
enum NextTokens<'e> {
    Local {
        engine: &'e dyn Engine,
        // Boxed: a sampler's state dwarfs the served variant.
        sampler: Box<Sampler>,
    },
    Served {
        engine: &'e dyn Engine,
        sampling: SamplerConfig,
        lines: u64,
        line: VecDeque<Token>,
    },
}

impl<'e> NextTokens<'e> {
    fn new(engine: &'e dyn Engine, options: &GenerateOptions) -> Self {
        match engine.top_k_limit() {
            None => NextTokens::Local {
                engine,
                sampler: Box::new(Sampler::new(options.sampling)),
            },
            Some(_) => NextTokens::Served {
                engine,
                sampling: options.sampling,
                lines: 0,
                line: VecDeque::new(),
            },
        }
    }

    /// The token after `seq` once it takes `input` (which is emptied), of
    /// at most `room` more; `None` when a server had no room left to write.
    fn after(
        &mut self,
        seq: &Sequence<'_>,
        input: &mut Vec<Token>,
        room: usize,
    ) -> Result<Option<Token>, EngineError> {
        match self {
            NextTokens::Local { engine, sampler } => {
                let logits = engine.decode(&[SeqInput {
                    seq: seq.id(),
                    tokens: std::mem::take(input),
                }])?;
                Ok(Some(sampler.sample(&logits[0])))
            }
            NextTokens::Served {
                engine,
                sampling,
                lines,
                line,
            } => {
                if line.is_empty() {
                    let request = ContinueRequest {
                        max_tokens: room,
                        max_lines: 1,
                        sampling: SamplerConfig {
                            seed: sampling.seed.wrapping_add(*lines),
                            ..*sampling
                        },
                        n: 1,
                        logprobs: 0,
                    };
                    *lines += 1;
                    let written = engine.continue_sequence(seq.id(), input, &request)?;
                    input.clear();
                    line.extend(written.into_iter().flat_map(|c| c.tokens));
                }
                Ok(line.pop_front())
            }
        }
    }
}

/// Finds stop strings in streamed text and withholds text that might be the
/// start of one.
struct StopFilter<'s> {
    stops: &'s [String],
    /// All text accepted so far (emitted and held back).
    text: String,
    /// Bytes of `text` already passed to the callback.
    emitted: usize,
}

impl<'s> StopFilter<'s> {
    fn new(stops: &'s [String]) -> Self {
        Self {
            stops,
            text: String::new(),
            emitted: 0,
        }
    }

    /// Add `piece`; emit what is safe. Returns the stop string if one now
    /// appears, after emitting the text before it.
    fn push(&mut self, piece: &str, on_text: &mut dyn FnMut(&str)) -> Option<String> {
        // A stop string can only start where it would still overlap new text.
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let search_from = floor_char_boundary(&self.text, self.emitted.saturating_sub(longest));
        self.text.push_str(piece);
        let hit = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                self.text[search_from..]
                    .find(s.as_str())
                    .map(|at| (search_from + at, s))
            })
            .min_by_key(|&(at, s)| (at, std::cmp::Reverse(s.len())));
        if let Some((at, stop)) = hit {
            let stop = stop.clone();
            self.text.truncate(at);
            self.emit_up_to(self.text.len(), on_text);
            return Some(stop);
        }
        let safe = self.text.len() - self.held_back();
        self.emit_up_to(safe, on_text);
        None
    }

    /// Emit everything left, plus `tail`.
    fn finish(&mut self, tail: &str, on_text: &mut dyn FnMut(&str)) {
        self.text.push_str(tail);
        self.emit_up_to(self.text.len(), on_text);
    }

    fn into_text(self) -> String {
        self.text
    }

    /// Length of the longest suffix of the text that is a proper prefix of
    /// some stop string.
    fn held_back(&self) -> usize {
        let pending = &self.text[self.emitted..];
        self.stops
            .iter()
            .flat_map(|stop| {
                (1..stop.len().min(pending.len() + 1))
                    .rev()
                    .filter(|&n| stop.is_char_boundary(n))
                    .find(|&n| pending.ends_with(&stop[..n]))
            })
            .max()
            .unwrap_or(0)
    }

    fn emit_up_to(&mut self, end: usize, on_text: &mut dyn FnMut(&str)) {
        if end > self.emitted {
            on_text(&self.text[self.emitted..end]);
            self.emitted = end;
        }
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, String, Option<String>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut filter = StopFilter::new(&stops);
        let mut emitted = Vec::new();
        let mut on_text = |s: &str| emitted.push(s.to_owned());
        let mut hit = None;
        for piece in pieces {
            hit = filter.push(piece, &mut on_text);
            if hit.is_some() {
                break;
            }
        }
        if hit.is_none() {
            filter.finish("", &mut on_text);
        }
        (emitted, filter.into_text(), hit)
    }

    #[test]
    fn stops_across_pieces_without_leaking_the_stop_string() {
        let (emitted, text, hit) = run(&["\n```"], &["x = 1", "\n`", "`", "`\nmore"]);
        assert_eq!(hit.as_deref(), Some("\n```"));
        assert_eq!(text, "x = 1");
        assert_eq!(emitted.concat(), "x = 1");
    }

    #[test]
    fn releases_held_text_that_turns_out_harmless() {
        let (emitted, text, hit) = run(&["STOP"], &["ab S", "T", "x", "é"]);
        assert_eq!(hit, None);
        assert_eq!(text, "ab STxé");
        assert_eq!(emitted, vec!["ab ", "STx", "é"]);
    }

    #[test]
    fn earliest_stop_wins() {
        let (_, text, hit) = run(&["bc", "abcd"], &["xxabcd"]);
        assert_eq!(hit.as_deref(), Some("abcd"));
        assert_eq!(text, "xx");
    }
}
