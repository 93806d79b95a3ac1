//! A model behind an inference server, as an [`Engine`].
//!
//! The server is llama.cpp's `llama-server`. Sequences live here, on the
//! client, as token-id vectors: a fork is a clone, a truncation a cut, and
//! every request sends the whole sequence as ids (with `cache_prompt`, so the
//! server's prefix cache makes that cheap), so the server never re-tokenises
//! text the decoder chose. The tokenizer, detokenizer and chat template are
//! the server's own (`/tokenize`, `/detokenize`, `/apply-template`), and
//! `/props` and `/v1/models` give the model's facts.
//!
//! A server returns only the top-k log-probabilities of the next token
//! (`n_probs`), so [`Engine::decode`] is refused with
//! [`EngineError::Unsupported`]; decoders use [`Engine::decode_top_k`] and
//! [`Engine::continue_sequence`] (one request per line), and
//! [`Engine::top_k_limit`] tells them so.

mod client;
mod llama_server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use client::ClientConfig;

use crate::api::{Continuation, ContinueRequest, ContinueStop, TokenLogprob};
use crate::{ChatMessage, Engine, EngineError, Logits, ModelInfo, SeqId, SeqInput, Token};
use client::Client;

/// How to reach a served model.
#[derive(Debug, Clone)]
pub struct ServedConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub endpoint: String,
    /// Timeouts, retries and the API key.
    pub client: ClientConfig,
    /// The `k` of every top-k request. llama-server returns as many as
    /// asked; more costs a little time per token.
    pub top_k: usize,
}

impl ServedConfig {
    /// The defaults for the server at `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ServedConfig {
            endpoint: endpoint.into(),
            client: ClientConfig::default(),
            top_k: DEFAULT_TOP_K,
        }
    }
}

/// The `k` of top-k requests unless configured: enough that the guided
/// choice between the two streams is rarely decided by mass outside both
/// lists, cheap for the server.
pub const DEFAULT_TOP_K: usize = 64;

/// A served model (see the module documentation).
pub struct ServedEngine {
    client: Client,
    info: ModelInfo,
    top_k: usize,
    sequences: Mutex<Sequences>,
    /// The bytes of tokens seen in answers (exact) or asked for through
    /// `/detokenize` (which spells a token that is only part of a UTF-8
    /// character as U+FFFD: the one place a served model's text can differ
    /// from a local one's).
    token_bytes: Mutex<HashMap<Token, Vec<u8>>>,
}

/// The live sequences, by id.
#[derive(Default)]
struct Sequences {
    next_id: u64,
    live: HashMap<SeqId, Vec<Token>>,
}

impl ServedEngine {
    /// Connects to the llama-server at `config.endpoint` and reads the
    /// model's facts; fails with a clear error when nothing answers there or
    /// the answer is not llama-server's.
    pub fn connect(config: ServedConfig) -> Result<Self, EngineError> {
        if config.top_k == 0 {
            return Err(EngineError::InvalidConfig(
                "the top-k of a served model must be at least 1".into(),
            ));
        }
        let client = Client::new(&config.endpoint, config.client);
        let info = llama_server::model_info(&client)?;
        tracing::info!(endpoint = client.endpoint(), model = %info.name, n_ctx = info.n_ctx, "connected to llama-server");
        Ok(ServedEngine {
            client,
            info,
            top_k: config.top_k,
            sequences: Mutex::new(Sequences::default()),
            token_bytes: Mutex::new(HashMap::new()),
        })
    }

    /// The server's base URL.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// The tokens `seq` holds.
    pub fn tokens(&self, seq: SeqId) -> Result<Vec<Token>, EngineError> {
        self.sequences()
            .live
            .get(&seq)
            .cloned()
            .ok_or(EngineError::UnknownSequence(seq))
    }

    fn sequences(&self) -> std::sync::MutexGuard<'_, Sequences> {
        self.sequences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `tokens` to `seq` and returns the whole sequence; refuses
    /// (changing nothing) when it would outgrow the context.
    fn extend(&self, seq: SeqId, tokens: &[Token]) -> Result<Vec<Token>, EngineError> {
        let mut sequences = self.sequences();
        let held = sequences
            .live
            .get_mut(&seq)
            .ok_or(EngineError::UnknownSequence(seq))?;
        let needed = held.len() + tokens.len();
        if needed > self.info.n_ctx {
            return Err(EngineError::ContextFull {
                seq,
                needed,
                n_ctx: self.info.n_ctx,
            });
        }
        held.extend_from_slice(tokens);
        Ok(held.clone())
    }

    /// Keeps the exact bytes an answer reported for its tokens.
    fn remember_bytes(&self, pieces: impl IntoIterator<Item = (Token, Vec<u8>)>) {
        let mut cache = self.token_bytes.lock().unwrap_or_else(|e| e.into_inner());
        for (token, bytes) in pieces {
            cache.entry(token).or_insert(bytes);
        }
    }
}

impl Engine for ServedEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError> {
        llama_server::tokenize(&self.client, text, parse_special)
    }

    fn token_bytes(&self, token: Token) -> Result<Vec<u8>, EngineError> {
        if let Some(bytes) = self
            .token_bytes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token)
        {
            return Ok(bytes.clone());
        }
        let bytes = llama_server::detokenize(&self.client, &[token])?.into_bytes();
        self.remember_bytes([(token, bytes.clone())]);
        Ok(bytes)
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_assistant_start: bool,
    ) -> Result<String, EngineError> {
        llama_server::apply_template(&self.client, messages, add_assistant_start)
    }

    fn new_sequence(&self) -> Result<SeqId, EngineError> {
        let mut sequences = self.sequences();
        let id = SeqId(sequences.next_id);
        sequences.next_id += 1;
        sequences.live.insert(id, Vec::new());
        Ok(id)
    }

    fn fork(&self, seq: SeqId) -> Result<SeqId, EngineError> {
        let tokens = self.tokens(seq)?;
        let id = self.new_sequence()?;
        self.sequences().live.insert(id, tokens);
        Ok(id)
    }

    fn len(&self, seq: SeqId) -> Result<usize, EngineError> {
        self.sequences()
            .live
            .get(&seq)
            .map(Vec::len)
            .ok_or(EngineError::UnknownSequence(seq))
    }

    fn truncate(&self, seq: SeqId, len: usize) -> Result<(), EngineError> {
        let mut sequences = self.sequences();
        let held = sequences
            .live
            .get_mut(&seq)
            .ok_or(EngineError::UnknownSequence(seq))?;
        held.truncate(len);
        Ok(())
    }

    fn free(&self, seq: SeqId) {
        self.sequences().live.remove(&seq);
    }

    fn decode(&self, _inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError> {
        Err(EngineError::Unsupported(format!(
            "the served model at {} gives only the top {} log-probabilities of each \
             next token, not full logits; use a decoder that works from top-k lists",
            self.endpoint(),
            self.top_k
        )))
    }

    fn append(&self, inputs: &[SeqInput]) -> Result<(), EngineError> {
        for input in inputs {
            self.extend(input.seq, &input.tokens)?;
        }
        Ok(())
    }

    fn top_k_limit(&self) -> Option<usize> {
        Some(self.top_k)
    }

    fn decode_top_k(
        &self,
        inputs: &[SeqInput],
        k: usize,
    ) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
        let k = k.min(self.top_k);
        inputs
            .iter()
            .map(|input| {
                if input.tokens.is_empty() {
                    return Err(EngineError::InvalidRequest("empty token list".into()));
                }
                let prompt = self.extend(input.seq, &input.tokens)?;
                llama_server::next_top_k(&self.client, &prompt, k)
            })
            .collect()
    }

    fn continue_sequence(
        &self,
        seq: SeqId,
        append: &[Token],
        request: &ContinueRequest,
    ) -> Result<Vec<Continuation>, EngineError> {
        let prompt = self.extend(seq, append)?;
        let room = self.info.n_ctx.saturating_sub(prompt.len());
        let request = ContinueRequest {
            max_tokens: request.max_tokens.min(room),
            ..request.clone()
        };
        if request.max_tokens == 0 || request.n == 0 {
            return Ok(Vec::new());
        }
        let completions = llama_server::complete(&self.client, &prompt, &request)?;
        completions
            .into_iter()
            .map(|completion| {
                // The server leaves out tokens that end inside a UTF-8
                // character, so its lists describe every token only when
                // there are as many as tokens.
                let top = if completion.top.len() == completion.tokens.len() {
                    completion.top.into_iter().map(Into::into).collect()
                } else {
                    Vec::new()
                };
                self.remember_bytes(completion.pieces);
                self.cut(completion.tokens, completion.eos, top, &request)
            })
            .collect()
    }
}

impl ServedEngine {
    /// A completion as a [`Continuation`]: ended after its first token
    /// holding a newline when the request stops there (the server stops on
    /// the text, and may have gone on within the token).
    fn cut(
        &self,
        mut tokens: Vec<Token>,
        eos: bool,
        mut top: Vec<Arc<[TokenLogprob]>>,
        request: &ContinueRequest,
    ) -> Result<Continuation, EngineError> {
        if request.stop_at_newline {
            for (i, &token) in tokens.iter().enumerate() {
                if self.token_bytes(token)?.contains(&b'\n') {
                    tokens.truncate(i + 1);
                    top.truncate(i + 1);
                    return Ok(Continuation {
                        tokens,
                        stop: ContinueStop::Newline,
                        top,
                    });
                }
            }
        }
        let stop = if eos {
            ContinueStop::Eos
        } else {
            ContinueStop::MaxTokens
        };
        Ok(Continuation { tokens, stop, top })
    }
}

#[cfg(test)]
mod tests;
