//! Running a local causal language model on the CPU, for decoders that need
//! more than "generate some text".
//!
//! EG-CFG keeps several token sequences alive at once over one shared prompt:
//! an unconditional stream, a conditional stream with execution traces
//! spliced in, and a handful of sampled candidate continuations. This crate
//! gives those decoders one small vocabulary of operations over *sequences*:
//!
//! * create an empty sequence, [`Engine::fork`] one (the fork shares the
//!   parent's KV cache, nothing is recomputed), [`Engine::truncate`] it back
//!   to a position, and [`Engine::free`] it. Callers hold sequences as
//!   [`Sequence`] handles, which free themselves when dropped, so no error
//!   path leaks cache cells;
//! * [`Engine::decode`]: append tokens to any number of sequences, each at its
//!   own position, in a single forward pass, and get every sequence's full
//!   next-token logits back.
//!
//! The trait [`Engine`] is what callers program against. [`LlamaEngine`] is
//! the real implementation over llama.cpp: the llama.cpp context cannot leave
//! the thread that made it, so it lives on one engine thread and every caller
//! (any number of threads, one per agent) sends requests over a channel. The
//! engine thread merges the requests that are waiting into one decode call,
//! which is continuous batching. It is the `llama` feature (on by default):
//! without it the crate builds in seconds, for decoders tested against a
//! fake engine.
//!
//! Tokens come back as raw logits; turning them into choices is the job of
//! [`sampler`], and turning token ids back into text, including characters
//! split across tokens, is the job of [`text::TokenDecoder`].
//!
//! Two more modules build on the trait alone, so they work with any engine:
//! [`generate`] is plain prompt-to-text generation (the baseline EG-CFG is
//! compared with), and [`speed`] measures prefill, batched decode and fork
//! speed (`egcfg bench engine`).
//!
//! ```no_run
//! use egcfg_engine::{generate, EngineConfig, LlamaEngine};
//!
//! let engine = LlamaEngine::load("model.gguf".as_ref(), EngineConfig::default())?;
//! let prompt = generate::Prompt::user("Write a Python function that reverses a list.");
//! let options = generate::GenerateOptions::default();
//! let result = generate::generate(&engine, &prompt, &options, &mut |piece| print!("{piece}"))?;
//! eprintln!("\n{} tokens, stopped by {:?}", result.generated_tokens, result.stop_reason);
//! # Ok::<(), egcfg_engine::EngineError>(())
//! ```

#![deny(missing_docs)]

mod api;
pub mod generate;
#[cfg(feature = "llama")]
mod llama;
pub mod sampler;
mod sequence;
#[cfg(feature = "served")]
pub mod served;
pub mod speed;
pub mod text;

pub use api::newlines;
pub use api::{
    top_k_logprobs, ChatMessage, Continuation, ContinueRequest, ContinueStop, Engine, EngineError,
    Logits, ModelInfo, NextToken, Role, SeqId, SeqInput, Token, TokenLogprob, Usage,
};
#[cfg(feature = "llama")]
pub use llama::{EngineConfig, EngineStats, LlamaEngine, ThreadPolicy};
pub use sequence::Sequence;
#[cfg(feature = "served")]
pub use served::{ServedConfig, ServedEngine, ServerKind};
