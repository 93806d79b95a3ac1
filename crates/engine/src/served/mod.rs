//! A model behind one or more inference servers, as an [`Engine`].
//!
//! Three kinds of server are spoken to, each in its own module behind
//! [`protocol::Protocol`]: llama.cpp's `llama-server`, vLLM and other
//! OpenAI-compatible servers (`openai`), and SGLang (`sglang`). The kind is
//! given or detected ([`ServerKind`]). Sequences live here, on the client,
//! as token-id vectors: a fork is a clone, a truncation a cut, and every
//! request sends the whole sequence as ids (the server's prefix cache makes
//! that cheap), so the server never re-tokenises text the decoder chose.
//! The tokenizer, detokenizer and chat template are the server's own.
//!
//! Several servers of the same model share the load ([`pool`]): each
//! request goes to one of them, a thread's work to the one it was pinned to
//! by [`Engine::start_work`]. What the requests cost is counted per calling
//! thread ([`Engine::thread_usage`]).
//!
//! A server returns only the top-k log-probabilities of the next token, so
//! [`Engine::decode`] is refused with [`EngineError::Unsupported`];
//! decoders use [`Engine::decode_top_k`], [`Engine::continue_sequence`]
//! (one request per line) and [`Engine::score_tokens`] (one request per
//! line where the server scores prompt tokens), and [`Engine::top_k_limit`]
//! tells them so.

mod answer;
mod client;
mod llama_server;
mod meter;
mod openai;
mod pool;
mod protocol;
mod sglang;
mod slots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use client::ClientConfig;
pub use protocol::ServerKind;

use crate::api::{newlines, Continuation, ContinueRequest, ContinueStop, TokenLogprob, Usage};
use crate::{ChatMessage, Engine, EngineError, Logits, ModelInfo, SeqId, SeqInput, Token};
use client::Client;
use meter::Meter;
use pool::{Pool, Server};
use protocol::Protocol;

/// How to reach a served model.
#[derive(Debug, Clone)]
pub struct ServedConfig {
    /// The servers' base URLs, e.g. `http://127.0.0.1:8080`: at least one,
    /// all serving the same model.
    pub endpoints: Vec<String>,
    /// The kind of server, or `None` to detect it.
    pub kind: Option<ServerKind>,
    /// Timeouts, retries and the API key.
    pub client: ClientConfig,
    /// The `k` of every top-k request, lowered to what the servers give
    /// (vLLM's `--max-logprobs`). More costs a little time per token.
    pub top_k: usize,
}

impl ServedConfig {
    /// The defaults for the server at `endpoint`, its kind detected.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ServedConfig::several([endpoint])
    }

    /// The defaults for the servers at `endpoints`, their kind detected.
    pub fn several(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ServedConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            kind: None,
            client: ClientConfig::default(),
            top_k: DEFAULT_TOP_K,
        }
    }
}

/// Whether `endpoint` is a URL a server can be reached at: the scheme
/// `http` or `https`, and a host. Anything else would fail only at the
/// first request, with the HTTP client's terse words.
fn is_http_url(endpoint: &str) -> bool {
    endpoint.parse::<ureq::http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
    })
}

/// The `k` of top-k requests unless configured: enough that the guided
/// choice between the two streams is rarely decided by mass outside both
/// lists, cheap for the server.
pub const DEFAULT_TOP_K: usize = 64;

/// Text whose tokenization every server of one engine must agree on.
const PROBE: &str = "def f(x):\n    return x  # é ✓\n";

/// A served model (see the module documentation).
pub struct ServedEngine {
    pool: Arc<Pool>,
    meter: Arc<Meter>,
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
    /// Connects to every server in `config.endpoints`, finds or checks its
    /// kind, and reads the model's facts; fails with a clear error naming
    /// the server when nothing answers there, the answer is not of a known
    /// kind, or the servers do not serve the same model.
    pub fn connect(config: ServedConfig) -> Result<Self, EngineError> {
        if config.top_k == 0 {
            return Err(EngineError::InvalidConfig(
                "the top-k of a served model must be at least 1".into(),
            ));
        }
        if config.endpoints.is_empty() {
            return Err(EngineError::InvalidConfig(
                "a served model needs at least one endpoint".into(),
            ));
        }
        if let Some(bad) = config.endpoints.iter().find(|e| !is_http_url(e)) {
            return Err(EngineError::InvalidConfig(format!(
                "endpoint `{bad}` is not an http:// or https:// URL with a host; \
                 give one such as http://127.0.0.1:8080"
            )));
        }
        let meter = Arc::new(Meter::default());
        let mut servers: Vec<Server> = Vec::with_capacity(config.endpoints.len());
        let mut info: Option<ModelInfo> = None;
        let mut top_k = config.top_k;
        for endpoint in &config.endpoints {
            let client = Client::new(endpoint, config.client.clone(), meter.clone());
            let kind = match config.kind {
                Some(kind) => kind,
                None => ServerKind::detect(&client)?,
            };
            let connected = Protocol::connect(kind, &client, config.top_k)?;
            let (facts, cap, slots) = (connected.info, connected.top_k, connected.slots);
            let server = Server::new(client, connected.protocol, slots);
            tracing::info!(endpoint, %kind, model = %facts.name, n_ctx = facts.n_ctx, top_k = cap, slots, "connected");
            top_k = top_k.min(cap);
            match &mut info {
                None => info = Some(facts),
                Some(first) => {
                    same_model(&servers[0], first, &server, &facts)?;
                    first.n_ctx = first.n_ctx.min(facts.n_ctx);
                }
            }
            servers.push(server);
        }
        Ok(ServedEngine {
            pool: Pool::new(servers),
            meter,
            info: info.expect("at least one endpoint"),
            top_k,
            sequences: Mutex::new(Sequences::default()),
            token_bytes: Mutex::new(HashMap::new()),
        })
    }

    /// The servers' base URLs.
    pub fn endpoints(&self) -> Vec<&str> {
        self.pool
            .servers()
            .iter()
            .map(|server| server.client.endpoint())
            .collect()
    }

    /// The kind of the servers.
    pub fn kind(&self) -> ServerKind {
        self.pool.servers()[0].protocol.kind()
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

/// Checks that `server` serves the model `first` does: the same kind of
/// server, model name, vocabulary, end-of-generation tokens and
/// tokenization of [`PROBE`].
fn same_model(
    first: &Server,
    first_info: &ModelInfo,
    server: &Server,
    info: &ModelInfo,
) -> Result<(), EngineError> {
    let differ = |what: String| EngineError::Server {
        endpoint: server.client.endpoint().to_string(),
        reason: format!(
            "{what}; every --endpoint must serve the same model from the same kind of server"
        ),
    };
    let (kind, first_kind) = (server.protocol.kind(), first.protocol.kind());
    if kind != first_kind {
        return Err(differ(format!(
            "is a server of kind {kind} but {} is of kind {first_kind}",
            first.client.endpoint()
        )));
    }
    if (&info.name, info.n_vocab, &info.eos_tokens)
        != (&first_info.name, first_info.n_vocab, &first_info.eos_tokens)
    {
        return Err(differ(format!(
            "serves {:?} (vocabulary {}, end tokens {:?}) but {} serves {:?} (vocabulary {}, end tokens {:?})",
            info.name,
            info.n_vocab,
            info.eos_tokens,
            first.client.endpoint(),
            first_info.name,
            first_info.n_vocab,
            first_info.eos_tokens
        )));
    }
    let probe = server.protocol.tokenize(&server.client, PROBE, false)?;
    let first_probe = first.protocol.tokenize(&first.client, PROBE, false)?;
    if probe != first_probe {
        return Err(differ(format!(
            "tokenizes {PROBE:?} as {probe:?} but {} as {first_probe:?}",
            first.client.endpoint()
        )));
    }
    Ok(())
}

impl Engine for ServedEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError> {
        let server = self.pool.pick();
        let tokenized = server
            .protocol
            .tokenize_spelled(&server.client, text, parse_special)?;
        // Markers parsed as special tokens may be spelled otherwise than
        // their generated form; plain text's pieces are its bytes.
        if !parse_special {
            self.remember_bytes(tokenized.spelled);
        }
        Ok(tokenized.tokens)
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
        let server = self.pool.pick();
        let bytes = server
            .protocol
            .detokenize(&server.client, &[token])?
            .into_bytes();
        self.remember_bytes([(token, bytes.clone())]);
        Ok(bytes)
    }

    fn known_token_bytes(&self, tokens: &[Token]) -> Option<Vec<Vec<u8>>> {
        let cache = self.token_bytes.lock().unwrap_or_else(|e| e.into_inner());
        tokens.iter().map(|t| cache.get(t).cloned()).collect()
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_assistant_start: bool,
    ) -> Result<String, EngineError> {
        let server = self.pool.pick();
        server
            .protocol
            .apply_template(&server.client, messages, add_assistant_start)
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
            self.endpoints().join(", "),
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
                let route = self.pool.route(&prompt);
                let server = route.server;
                let top = server
                    .protocol
                    .next_top_k(&server.client, &prompt, k, route.slot)?;
                route.finish(prompt, &[], 0);
                Ok(top)
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
            logprobs: request.logprobs.min(self.top_k),
            ..request.clone()
        };
        if request.max_tokens == 0 || request.n == 0 {
            return Ok(Vec::new());
        }
        let route = self.pool.route(&prompt);
        let server = route.server;
        let completions =
            server
                .protocol
                .complete(&server.client, &prompt, &request, route.slot)?;
        let answered_in: Vec<usize> = completions.iter().filter_map(|c| c.slot).collect();
        // Samples beyond the first that do not name their slot; the first
        // is in the route's slot, or where the server chose.
        let unnamed = completions
            .iter()
            .skip(1)
            .filter(|c| c.slot.is_none())
            .count();
        // The request's own slot holds its prompt and the answer written
        // there (the first, where the server does not say).
        let written = completions
            .iter()
            .find(|c| c.slot.is_some() && c.slot == route.slot)
            .or(completions.first())
            .map_or(&[][..], |c| &c.tokens[..]);
        route.finish([&prompt[..], written].concat(), &answered_in, unnamed);
        completions
            .into_iter()
            .map(|completion| {
                let top = completion.top.into_iter().map(Into::into).collect();
                self.remember_bytes(completion.pieces);
                self.cut(completion.tokens, completion.eos, top, &request)
            })
            .collect()
    }

    fn start_work(&self) {
        self.pool.start_work();
    }

    fn thread_usage(&self) -> Usage {
        self.meter.thread_usage()
    }

    fn scores_in_one_pass(&self) -> bool {
        self.pool.servers()[0].protocol.scores_in_one_pass()
    }

    fn score_tokens(
        &self,
        seq: SeqId,
        tokens: &[Token],
        k: usize,
    ) -> Result<Vec<Arc<[TokenLogprob]>>, EngineError> {
        let mut prompt = self.tokens(seq)?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        prompt.extend_from_slice(tokens);
        if prompt.len() > self.info.n_ctx {
            return Err(EngineError::ContextFull {
                seq,
                needed: prompt.len(),
                n_ctx: self.info.n_ctx,
            });
        }
        let route = self.pool.route(&prompt);
        let server = route.server;
        let lists = server.protocol.score(
            &server.client,
            &prompt,
            tokens.len(),
            k.min(self.top_k),
            route.slot,
        )?;
        route.finish(prompt, &[], 0);
        Ok(lists.into_iter().map(Into::into).collect())
    }
}

impl ServedEngine {
    /// A completion as a [`Continuation`]: ended at the token that
    /// completes the lines asked for (a server stops on the text, may go on
    /// within the token, and some cannot stop after several lines).
    fn cut(
        &self,
        mut tokens: Vec<Token>,
        eos: bool,
        mut top: Vec<Arc<[TokenLogprob]>>,
        request: &ContinueRequest,
    ) -> Result<Continuation, EngineError> {
        if request.max_lines > 0 {
            let mut lines = 0;
            for (i, &token) in tokens.iter().enumerate() {
                lines += newlines(&self.token_bytes(token)?);
                if request.has_its_lines(lines) {
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
