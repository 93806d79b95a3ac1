//! The engine contract shared by every backend.

use std::sync::Arc;

use crate::sampler::{Sampler, SamplerConfig};

/// A token id in the model's vocabulary.
pub type Token = i32;

/// Full-vocabulary raw (pre-softmax) logits for one position.
pub type Logits = Arc<[f32]>;

/// A live token sequence inside an engine. Ids are never reused while the
/// sequence is alive; using a freed id is an [`EngineError::UnknownSequence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(pub u64);

/// Tokens to append to one sequence in a [`Engine::decode`] call.
#[derive(Debug, Clone)]
pub struct SeqInput {
    /// The sequence to extend.
    pub seq: SeqId,
    /// Tokens appended at the sequence's current end; must not be empty.
    pub tokens: Vec<Token>,
}

/// Who is speaking in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the whole conversation.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation rendered through the model's chat template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// Static facts about the loaded model that decoders need.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// A human-readable name (the GGUF's `general.name`, or the file name).
    pub name: String,
    /// Number of entries in every logits vector.
    pub n_vocab: usize,
    /// Maximum number of tokens one sequence may hold.
    pub n_ctx: usize,
    /// Tokens that end generation (end-of-turn and end-of-text).
    pub eos_tokens: Vec<Token>,
    /// The chat template stored in the GGUF, if any.
    pub chat_template: Option<String>,
}

/// One entry of a next-token top-k list: a token and its log-probability
/// under the model's full next-token distribution (softmax over the whole
/// vocabulary, before any sampling setting).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    /// The token.
    pub token: Token,
    /// Its natural-log probability.
    pub logprob: f32,
}

/// What a decode tells about one sequence's next token: full logits from a
/// local model, the top-k log-probabilities from a served one.
#[derive(Debug, Clone, PartialEq)]
pub enum NextToken {
    /// Raw logits over the whole vocabulary.
    Logits(Logits),
    /// The most likely tokens, most likely first
    /// ([`Engine::decode_top_k`]).
    TopK(Arc<[TokenLogprob]>),
}

/// How [`Engine::continue_sequence`] extends a sequence.
#[derive(Debug, Clone)]
pub struct ContinueRequest {
    /// At most this many new tokens per sample.
    pub max_tokens: usize,
    /// End a sample with (and including) the token that brings the
    /// newlines of its bytes to `max_lines` (0: no line limit); 1 asks for
    /// one line of code.
    pub max_lines: usize,
    /// Greedy (temperature 0) or sampled; sample `i` of `n` is seeded with
    /// `sampling.seed + i`.
    pub sampling: SamplerConfig,
    /// Number of independent samples.
    pub n: usize,
    /// With each generated token, also return the top `logprobs` entries of
    /// the distribution it was drawn from (0: none). A decoder that
    /// proposes a line under one stream reads them as that stream's
    /// next-token lists.
    pub logprobs: usize,
}

impl ContinueRequest {
    /// Whether a sample whose tokens so far hold `newlines` newlines has
    /// the lines asked for.
    pub fn has_its_lines(&self, newlines: usize) -> bool {
        self.max_lines > 0 && newlines >= self.max_lines
    }
}

/// The newlines in a token's bytes.
pub fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Why a continuation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContinueStop {
    /// Its last token completes the lines asked for
    /// ([`ContinueRequest::max_lines`]).
    Newline,
    /// It reached [`ContinueRequest::max_tokens`].
    MaxTokens,
    /// The model chose an end-of-generation token (the last token).
    Eos,
}

/// One continuation from [`Engine::continue_sequence`].
#[derive(Debug, Clone, PartialEq)]
pub struct Continuation {
    /// The new tokens, the stopping token included.
    pub tokens: Vec<Token>,
    /// Why it ended.
    pub stop: ContinueStop,
    /// When [`ContinueRequest::logprobs`] asked for them and the backend
    /// could tell them for every token: for each token, the most likely
    /// tokens of the distribution it was drawn from, most likely first.
    /// Otherwise empty, and a caller that needs them asks
    /// [`Engine::score_tokens`].
    pub top: Vec<Arc<[TokenLogprob]>>,
}

/// What a backend spent answering requests: the cost of a served model,
/// which a local one does not have (all zero there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Prompt tokens the requests carried.
    pub prompt_tokens: u64,
    /// Of those, the tokens the server said it took from its prefix cache
    /// instead of computing them (0 where it does not say).
    pub cached_prompt_tokens: u64,
    /// Tokens the server generated (every sample of an `n`-sample request).
    pub generated_tokens: u64,
}

impl Usage {
    /// What was spent between `earlier` and `self`, two readings of the
    /// same counter.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            requests: self.requests - earlier.requests,
            prompt_tokens: self.prompt_tokens - earlier.prompt_tokens,
            cached_prompt_tokens: self.cached_prompt_tokens - earlier.cached_prompt_tokens,
            generated_tokens: self.generated_tokens - earlier.generated_tokens,
        }
    }
}

/// Everything that can go wrong talking to an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file could not be loaded.
    #[error("cannot load model {path}: {reason}. Check that the file is a complete GGUF model (re-fetch it with `egcfg model fetch`)")]
    Load {
        /// The file that was tried.
        path: String,
        /// What llama.cpp reported.
        reason: String,
    },
    /// The engine's settings are out of range (no file was read).
    #[error("invalid engine settings: {0}")]
    InvalidConfig(String),
    /// A sequence would grow beyond the context window, or a decode would
    /// need more cells of the KV cache that all sequences share than exist.
    /// Nothing was changed; freeing sequences or truncating makes room.
    #[error("{seq:?} needs {needed} tokens of context but only {n_ctx} fit; shorten the prompt, free finished sequences or use a larger context")]
    ContextFull {
        /// The sequence that overflowed (for a full shared cache, the first
        /// sequence of the refused request).
        seq: SeqId,
        /// Tokens the sequence would hold, or cache cells the request would
        /// bring into use.
        needed: usize,
        /// The per-sequence limit ([`ModelInfo::n_ctx`]) or the cache size.
        n_ctx: usize,
    },
    /// The id does not name a live sequence.
    #[error("unknown or freed sequence {0:?}")]
    UnknownSequence(SeqId),
    /// Too many sequences are alive at once.
    #[error("all {0} sequence slots are in use; free finished sequences first")]
    NoFreeSlot(usize),
    /// The request itself was malformed (empty token list, bad position...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The forward pass failed inside the backend.
    #[error("decode failed: {0}")]
    Decode(String),
    /// The engine thread is gone (it panicked or was shut down).
    #[error("the engine thread has stopped")]
    Stopped,
    /// Tokenizing or rendering text failed.
    #[error("text processing failed: {0}")]
    Text(String),
    /// The backend cannot do what was asked (a served model has no
    /// full-vocabulary logits, only top-k log-probabilities).
    #[error("unsupported by this backend: {0}")]
    Unsupported(String),
    /// A model server failed: unreachable, too slow, or an answer that
    /// is not what its API promises. This is the infrastructure failing,
    /// not the task.
    #[error("model server {endpoint}: {reason}")]
    Server {
        /// The server's base URL.
        endpoint: String,
        /// What went wrong, and what to check.
        reason: String,
    },
}

/// A causal language model with cheap, forkable sequences.
///
/// Implementations are shared between threads; every method may be called
/// concurrently, and concurrent [`Engine::decode`] calls may be served by one
/// batched forward pass.
pub trait Engine: Send + Sync {
    /// Facts about the loaded model.
    fn info(&self) -> &ModelInfo;

    /// Text to token ids (no BOS or EOS is added). `parse_special` turns
    /// markers such as `<|im_start|>` into their special ids instead of
    /// spelling them out.
    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError>;

    /// The raw bytes one token stands for (may be part of a UTF-8 character).
    fn token_bytes(&self, token: Token) -> Result<Vec<u8>, EngineError>;

    /// The bytes of each of `tokens` where the engine knows them without
    /// asking anyone (a local vocabulary; the pieces a served model's
    /// answers spelled out), else `None`: for callers that only estimate
    /// and would rather not send a request per token.
    fn known_token_bytes(&self, tokens: &[Token]) -> Option<Vec<Vec<u8>>> {
        tokens.iter().map(|&t| self.token_bytes(t).ok()).collect()
    }

    /// Render a conversation with the model's own chat template, optionally
    /// ending with the opening of the assistant's turn.
    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_assistant_start: bool,
    ) -> Result<String, EngineError>;

    /// A new, empty sequence. Callers hold it as a [`crate::Sequence`]
    /// ([`crate::Sequence::new`]), which frees it on drop.
    fn new_sequence(&self) -> Result<SeqId, EngineError>;

    /// A new sequence holding the same tokens as `seq`, sharing its cache.
    /// Callers fork through [`crate::Sequence::fork`].
    fn fork(&self, seq: SeqId) -> Result<SeqId, EngineError>;

    /// Number of tokens `seq` currently holds.
    fn len(&self, seq: SeqId) -> Result<usize, EngineError>;

    /// Drop everything after the first `len` tokens of `seq`.
    fn truncate(&self, seq: SeqId, len: usize) -> Result<(), EngineError>;

    /// Release `seq` and its cache cells. Freeing an unknown id is a no-op.
    /// A [`crate::Sequence`] calls this when it drops; callers that hold
    /// handles never call it themselves.
    fn free(&self, seq: SeqId);

    /// Append tokens to several sequences in one forward pass and return,
    /// in input order, each sequence's logits after its last new token.
    fn decode(&self, inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError>;

    /// Appends tokens to several sequences when nothing about their next
    /// tokens is wanted: a served model only extends its client-side
    /// sequences (the server sees them with the next request); the default
    /// decodes and drops the logits.
    fn append(&self, inputs: &[SeqInput]) -> Result<(), EngineError> {
        self.decode(inputs).map(drop)
    }

    /// The largest `k` [`Engine::decode_top_k`] honours, or `None` when
    /// [`Engine::decode`] gives full-vocabulary logits (a local model).
    /// Decoders that see `Some` must work from top-k lists alone.
    fn top_k_limit(&self) -> Option<usize> {
        None
    }

    /// Like [`Engine::decode`], but returns only the `k` most likely next
    /// tokens of each sequence with their log-probabilities, most likely
    /// first (ties to the lower id). This is all a served model returns.
    fn decode_top_k(
        &self,
        inputs: &[SeqInput],
        k: usize,
    ) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
        Ok(self
            .decode(inputs)?
            .iter()
            .map(|logits| top_k_logprobs(logits, k))
            .collect())
    }

    /// [`Engine::decode`] where the backend has full logits, otherwise
    /// [`Engine::decode_top_k`] with its largest `k`: what decoders that
    /// work with either kind of backend call.
    fn decode_next(&self, inputs: &[SeqInput]) -> Result<Vec<NextToken>, EngineError> {
        Ok(match self.top_k_limit() {
            None => self
                .decode(inputs)?
                .into_iter()
                .map(NextToken::Logits)
                .collect(),
            Some(k) => self
                .decode_top_k(inputs, k)?
                .into_iter()
                .map(|list| NextToken::TopK(list.into()))
                .collect(),
        })
    }

    /// Appends `append` to `seq` (which keeps it), then generates `n`
    /// continuations from there, each stopping at a newline, EOS or the
    /// token cap. `seq` itself does not take the continuations.
    ///
    /// This lets a served model write a whole line in one request; the
    /// default runs the same loop over [`Engine::decode`] on forks of `seq`
    /// and needs `append` non-empty (the logits at `seq`'s end are only
    /// known by decoding into it).
    fn continue_sequence(
        &self,
        seq: SeqId,
        append: &[Token],
        request: &ContinueRequest,
    ) -> Result<Vec<Continuation>, EngineError> {
        let parent_logits = self
            .decode(&[SeqInput {
                seq,
                tokens: append.to_vec(),
            }])?
            .remove(0);
        (0..request.n)
            .map(|i| continue_one(self, seq, &parent_logits, request, i as u64))
            .collect()
    }

    /// Starts an independent piece of work (an attempt) on the calling
    /// thread. A backend that spreads requests over several servers sends
    /// the thread's requests from here on to one server, the least loaded
    /// now, so that the attempt's streams share that server's prefix cache
    /// while attempts spread out. The default does nothing.
    fn start_work(&self) {}

    /// What this engine has spent on requests made from the calling thread
    /// since it was created. An attempt reads it at its start and at its end
    /// (each attempt runs on one thread). Zero for a local model.
    fn thread_usage(&self) -> Usage {
        Usage::default()
    }

    /// Whether [`Engine::score_tokens`] costs one request or forward pass
    /// for the whole list (a server that returns prompt log-probabilities),
    /// rather than one per token. Decoders skip scoring they can do
    /// without when it is not.
    fn scores_in_one_pass(&self) -> bool {
        false
    }

    /// What `seq` says of its next token after each of `tokens`, as if
    /// they were appended one by one: entry `i` is the top-`k` list after
    /// `seq ++ tokens[..=i]`, most likely first. `seq` itself is unchanged.
    ///
    /// This verifies a line proposed under one stream against another. The
    /// default decodes the tokens one by one on a fork of `seq`; a server
    /// with prompt log-probabilities answers in one request
    /// ([`Engine::scores_in_one_pass`]).
    fn score_tokens(
        &self,
        seq: SeqId,
        tokens: &[Token],
        k: usize,
    ) -> Result<Vec<Arc<[TokenLogprob]>>, EngineError> {
        let fork = self.fork(seq)?;
        let result = tokens
            .iter()
            .map(|&token| {
                let input = SeqInput {
                    seq: fork,
                    tokens: vec![token],
                };
                Ok(self.decode_top_k(&[input], k)?.remove(0).into())
            })
            .collect();
        self.free(fork);
        result
    }
}

/// The `k` most likely tokens of raw `logits`, as log-probabilities, most
/// likely first, ties to the lower id.
pub fn top_k_logprobs(logits: &[f32], k: usize) -> Vec<TokenLogprob> {
    let log_probs = crate::sampler::log_softmax(logits, 1.0);
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    let by_logit_desc = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let k = k.min(ids.len());
    if k < ids.len() {
        ids.select_nth_unstable_by(k, by_logit_desc);
        ids.truncate(k);
    }
    ids.sort_by(by_logit_desc);
    ids.into_iter()
        .map(|i| TokenLogprob {
            token: i as Token,
            logprob: log_probs[i] as f32,
        })
        .collect()
}

/// One continuation of [`Engine::continue_sequence`]'s default: decodes on
/// a fork of `seq`, which is freed however it ends.
fn continue_one<E: Engine + ?Sized>(
    engine: &E,
    seq: SeqId,
    parent_logits: &Logits,
    request: &ContinueRequest,
    index: u64,
) -> Result<Continuation, EngineError> {
    let mut sampler = Sampler::new(SamplerConfig {
        seed: request.sampling.seed.wrapping_add(index),
        ..request.sampling
    });
    let fork = engine.fork(seq)?;
    let result = (|| {
        let mut logits = parent_logits.clone();
        let mut tokens = Vec::new();
        let mut top = Vec::new();
        let mut lines = 0;
        loop {
            let token = sampler.sample(&logits);
            tokens.push(token);
            if request.logprobs > 0 {
                top.push(top_k_logprobs(&logits, request.logprobs).into());
            }
            if engine.info().eos_tokens.contains(&token) {
                return Ok(Continuation {
                    tokens,
                    stop: ContinueStop::Eos,
                    top,
                });
            }
            if request.max_lines > 0 {
                lines += newlines(&engine.token_bytes(token)?);
            }
            if request.has_its_lines(lines) {
                return Ok(Continuation {
                    tokens,
                    stop: ContinueStop::Newline,
                    top,
                });
            }
            if tokens.len() >= request.max_tokens {
                return Ok(Continuation {
                    tokens,
                    stop: ContinueStop::MaxTokens,
                    top,
                });
            }
            logits = engine
                .decode(&[SeqInput {
                    seq: fork,
                    tokens: vec![token],
                }])?
                .remove(0);
        }
    })();
    engine.free(fork);
    result
}
