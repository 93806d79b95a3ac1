//! [`LlamaEngine`]: the [`Engine`] over llama.cpp (through `llama-cpp-2`).
//!
//! The model (weights and vocabulary) is shared, read-only, by every thread:
//! tokenizing, detokenizing and chat templates run on the caller's thread.
//! The llama.cpp context (KV cache and compute buffers) may be used by one
//! thread only, so it lives on a dedicated engine thread (see [`worker`]) and
//! every sequence operation is a request to that thread.

mod backend;
mod gguf_header;
mod sequences;
mod threads;
mod worker;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use crate::{ChatMessage, Engine, EngineError, Logits, ModelInfo, Role, SeqId, SeqInput, Token};
use backend::{backend, capture_errors};
pub use threads::ThreadPolicy;
use worker::{Counters, DecodeJob, Request};

/// How to set up a [`LlamaEngine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Cells in the KV cache shared by all sequences (llama.cpp rounds it up
    /// to a multiple of 256). One sequence holds at most this many tokens, and
    /// never more than the model's training context.
    pub n_ctx: usize,
    /// CPU threads for the forward pass.
    pub n_threads: usize,
    /// Most sequences alive at once (1..=256).
    pub n_seq_max: usize,
    /// Most tokens per `llama_decode` call; larger merged batches are split.
    pub n_batch: usize,
    /// Tokens per compute micro-batch inside one decode call.
    pub n_ubatch: usize,
}

impl Default for EngineConfig {
    /// 8192 cells, every available core, 32 sequences, batches of 2048
    /// tokens computed 512 at a time.
    fn default() -> Self {
        Self {
            n_ctx: 8192,
            n_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            n_seq_max: 32,
            n_batch: 2048,
            n_ubatch: 512,
        }
    }
}

impl EngineConfig {
    fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.n_ctx >= 1 && self.n_ctx <= 1 << 24,
                "n_ctx must be between 1 and 16777216",
            ),
            (self.n_threads >= 1, "n_threads must be at least 1"),
            (
                (1..=256).contains(&self.n_seq_max),
                "n_seq_max must be between 1 and 256",
            ),
            (
                self.n_batch >= 1 && self.n_batch <= 1 << 20,
                "n_batch must be between 1 and 1048576",
            ),
            (self.n_ubatch >= 1, "n_ubatch must be at least 1"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err((*message).to_owned()),
            None => Ok(()),
        }
    }
}

/// Totals since the engine started, for benchmarks and for checking that
/// concurrent callers were batched together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// [`Engine::decode`] calls received.
    pub decode_requests: u64,
    /// Merged batches run (one per engine-thread wake-up with work).
    pub rounds: u64,
    /// `llama_decode` calls made (more than `rounds` when a batch is split).
    pub llama_decodes: u64,
    /// Tokens evaluated.
    pub tokens: u64,
}

/// A GGUF model served by llama.cpp on the CPU.
///
/// Cheap to share: wrap it in an `Arc` (or borrow it) and call it from any
/// number of threads; concurrent decodes are merged into one forward pass.
/// Dropping it stops the engine thread and frees the model.
pub struct LlamaEngine {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    requests: Option<Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl LlamaEngine {
    /// Load the GGUF model at `path` and start its engine thread.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] when `config` is out of range (checked
    /// first); [`EngineError::Load`] when the file is missing, not a GGUF
    /// model, cut off or otherwise unreadable by llama.cpp.
    pub fn load(path: &Path, config: EngineConfig) -> Result<LlamaEngine, EngineError> {
        let load_error = |reason: String| EngineError::Load {
            path: path.display().to_string(),
            reason,
        };
        config.validate().map_err(EngineError::InvalidConfig)?;
        gguf_header::check(path).map_err(load_error)?;

        let backend = backend()?;
        let (model, errors) = capture_errors(|| {
            LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        });
        let model = Arc::new(model.map_err(|err| {
            let detail = if errors.is_empty() {
                err.to_string()
            } else {
                errors
            };
            load_error(format!("llama.cpp could not read it: {detail}"))
        })?);

        let n_ctx_train = model.n_ctx_train() as usize;
        let max_seq_len = config.n_ctx.min(n_ctx_train.max(1));
        let counters = Arc::new(Counters::default());
        let (requests, inbox) = crossbeam_channel::unbounded();
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let worker = {
            let model = Arc::clone(&model);
            let counters = Arc::clone(&counters);
            let config = config.clone();
            std::thread::Builder::new()
                .name("egcfg-engine".to_owned())
                .spawn(move || worker::run(model, config, max_seq_len, inbox, started_tx, counters))
                .map_err(|err| load_error(format!("cannot start the engine thread: {err}")))?
        };
        let started = started_rx
            .recv()
            .map_err(|_| EngineError::Stopped)
            .and_then(|s| s);
        let started = match started {
            Ok(started) => started,
            Err(err) => {
                let _ = worker.join();
                return Err(match err {
                    EngineError::Load { reason, .. } => load_error(reason),
                    other => other,
                });
            }
        };

        let info = model_info(&model, path, max_seq_len.min(started.cache_cells));
        tracing::debug!(
            model = %info.name,
            n_vocab = info.n_vocab,
            n_ctx = info.n_ctx,
            cache_cells = started.cache_cells,
            threads = config.n_threads,
            "model loaded"
        );
        Ok(LlamaEngine {
            info,
            model,
            requests: Some(requests),
            worker: Some(worker),
            counters,
        })
    }

    /// Totals since the engine started.
    pub fn stats(&self) -> EngineStats {
        let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        EngineStats {
            decode_requests: read(&self.counters.decode_requests),
            rounds: read(&self.counters.rounds),
            llama_decodes: read(&self.counters.llama_decodes),
            tokens: read(&self.counters.tokens),
        }
    }

    /// Send a request and wait for its answer.
    fn call<T>(&self, make: impl FnOnce(worker::Reply<T>) -> Request) -> Result<T, EngineError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(make(reply))?;
        answer.recv().map_err(|_| EngineError::Stopped)?
    }

    fn send(&self, request: Request) -> Result<(), EngineError> {
        let requests = self.requests.as_ref().ok_or(EngineError::Stopped)?;
        requests.send(request).map_err(|_| EngineError::Stopped)
    }

    fn check_token(&self, token: Token) -> Result<(), EngineError> {
        if (0..self.info.n_vocab as Token).contains(&token) {
            Ok(())
        } else {
            Err(EngineError::InvalidRequest(format!(
                "token {token} is outside the vocabulary (0..{})",
                self.info.n_vocab
            )))
        }
    }
}

impl Drop for LlamaEngine {
    fn drop(&mut self) {
        // Closing the channel ends the engine thread's loop.
        self.requests = None;
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                tracing::error!("the engine thread panicked");
            }
        }
    }
}

impl Engine for LlamaEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError> {
        // Never adds BOS/EOS: prompts come from chat templates or callers
        // that place special tokens themselves.
        let tokens = self
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, parse_special);
        Ok(tokens.into_iter().map(|t| t.0).collect())
    }

    fn token_bytes(&self, token: Token) -> Result<Vec<u8>, EngineError> {
        self.check_token(token)?;
        Ok(self
            .model
            .vocab()
            .token_to_piece(LlamaToken(token), true, None))
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_assistant_start: bool,
    ) -> Result<String, EngineError> {
        let template = self.info.chat_template.as_deref().ok_or_else(|| {
            EngineError::Text(format!(
                "model {} has no chat template; use raw completion instead",
                self.info.name
            ))
        })?;
        let template =
            LlamaChatTemplate::new(template).map_err(|err| EngineError::Text(err.to_string()))?;
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(role_name(m.role).to_owned(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                EngineError::Text(format!("cannot pass a message to llama.cpp: {err}"))
            })?;
        self.model
            .apply_chat_template(&template, &chat, add_assistant_start)
            .map_err(|err| {
                EngineError::Text(format!(
                    "llama.cpp cannot render the chat template of {} ({err}); \
                     its built-in renderer recognises common templates such as ChatML only",
                    self.info.name
                ))
            })
    }

    fn new_sequence(&self) -> Result<SeqId, EngineError> {
        self.call(Request::NewSequence)
    }

    fn fork(&self, seq: SeqId) -> Result<SeqId, EngineError> {
        self.call(|reply| Request::Fork(seq, reply))
    }

    fn len(&self, seq: SeqId) -> Result<usize, EngineError> {
        self.call(|reply| Request::Len(seq, reply))
    }

    fn truncate(&self, seq: SeqId, len: usize) -> Result<(), EngineError> {
        self.call(|reply| Request::Truncate(seq, len, reply))
    }

    fn free(&self, seq: SeqId) {
        // Only fails when the engine has stopped, and then nothing is held.
        let _ = self.send(Request::Free(seq));
    }

    fn decode(&self, inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::new();
        for input in inputs {
            if input.tokens.is_empty() {
                return Err(EngineError::InvalidRequest(format!(
                    "no tokens given for {:?}",
                    input.seq
                )));
            }
            if !seen.insert(input.seq) {
                return Err(EngineError::InvalidRequest(format!(
                    "{:?} appears twice in one decode call",
                    input.seq
                )));
            }
            input.tokens.iter().try_for_each(|&t| self.check_token(t))?;
        }
        self.call(|reply| {
            Request::Decode(DecodeJob {
                inputs: inputs.to_vec(),
                reply,
            })
        })
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

fn model_info(model: &LlamaModel, path: &Path, n_ctx: usize) -> ModelInfo {
    let vocab = model.vocab();
    let n_vocab = vocab.n_tokens().max(0) as usize;
    let name = model
        .meta_val_str("general.name")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| {
            path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            )
        });
    let eos_tokens = (0..n_vocab as Token)
        .filter(|&t| vocab.is_eog(LlamaToken(t)))
        .collect();
    let chat_template = model
        .chat_template(None)
        .ok()
        .and_then(|template| template.to_string().ok());
    ModelInfo {
        name,
        n_vocab,
        n_ctx,
        eos_tokens,
        chat_template,
    }
}

#[cfg(test)]
mod tests;
