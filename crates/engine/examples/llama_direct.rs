//! llama.cpp measured without egcfg's engine in between.
//!
//! `egcfg bench engine` measures prefill, batched decode and forks through
//! the [`Engine`](egcfg_engine::Engine) trait: requests travel over a channel
//! to the engine thread, which merges them into llama.cpp batches. This
//! example makes the same llama.cpp calls on the same prompt directly on one
//! thread, with the same context settings and the same logits copied out, so
//! that the two reports side by side show what the engine layer costs and
//! what the CPU itself allows. It decodes under the engine's
//! [`ThreadPolicy`] (all threads while the machine has room, one while it is
//! contended), so that both sides get the same choice of threads.
//!
//! ```sh
//! cargo run --release -p egcfg-engine --example llama_direct -- MODEL.gguf [THREADS]
//! ```

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use egcfg_engine::speed::{BenchOptions, BenchReport, DecodeRate, Throughput, PROMPT_UNIT};
use egcfg_engine::{EngineConfig, ThreadPolicy};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: llama_direct MODEL.gguf [THREADS]")?;
    let defaults = EngineConfig::default();
    let threads: i32 = match args.next() {
        Some(t) => t.parse()?,
        None => defaults.n_threads.try_into()?,
    };
    let options = BenchOptions::default();
    let max_batch = options.batch_sizes.iter().copied().max().unwrap_or(1);

    let backend = LlamaBackend::init()?;
    let model = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default())?;
    // The settings `LlamaEngine` uses; sequence 0 is the prompt, 1..=max_batch
    // its forks.
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(4096))
        .with_n_batch(defaults.n_batch as u32)
        .with_n_ubatch(defaults.n_ubatch as u32)
        .with_n_seq_max(max_batch as u32 + 1)
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut context = model.new_context(&backend, params)?;
    let mut batch = LlamaBatch::new(defaults.n_batch, 1);
    let mut policy = ThreadPolicy::new(threads.try_into()?);

    let unit = model.vocab().tokenize(PROMPT_UNIT.as_bytes(), false, false);
    let prompt: Vec<LlamaToken> = unit
        .iter()
        .copied()
        .cycle()
        .take(options.prompt_tokens)
        .collect();

    // Warm up on a short prefix, then time the whole prompt.
    decode(
        &mut context,
        &mut batch,
        &mut policy,
        &[(0, 0, &prompt[..16])],
    )?;
    context.clear_kv_cache_seq(Some(0), None, None)?;
    let start = Instant::now();
    let mut next = decode(&mut context, &mut batch, &mut policy, &[(0, 0, &prompt)])?[0];
    let prefill = Throughput {
        tokens: prompt.len(),
        seconds: start.elapsed().as_secs_f64(),
    };

    let mut rates = Vec::new();
    for &b in &options.batch_sizes {
        let seqs: Vec<i32> = (1..=b as i32).collect();
        for &seq in &seqs {
            context.copy_kv_cache_seq(0, seq, None, None)?;
        }
        let mut tokens = vec![next; b];
        let mut timed = Duration::ZERO;
        // One untimed step at this batch shape, then the timed ones.
        for step in 0..=options.decode_steps {
            let pos = (prompt.len() + step) as i32;
            let inputs: Vec<(i32, i32, &[LlamaToken])> = seqs
                .iter()
                .zip(&tokens)
                .map(|(&seq, token)| (seq, pos, std::slice::from_ref(token)))
                .collect();
            let start = Instant::now();
            let chosen = decode(&mut context, &mut batch, &mut policy, &inputs)?;
            if step > 0 {
                timed += start.elapsed();
            }
            tokens = chosen;
        }
        next = tokens[0];
        rates.push(DecodeRate {
            batch: b,
            throughput: Throughput {
                tokens: b * options.decode_steps,
                seconds: timed.as_secs_f64(),
            },
        });
        for &seq in &seqs {
            context.clear_kv_cache_seq(Some(seq as u32), None, None)?;
        }
    }

    let forks = options.forks.max(1);
    let mut fork_time = Duration::ZERO;
    for _ in 0..forks {
        let start = Instant::now();
        context.copy_kv_cache_seq(0, 1, None, None)?;
        fork_time += start.elapsed();
        context.clear_kv_cache_seq(Some(1), None, None)?;
    }

    let report = BenchReport {
        model: format!("{path} (llama.cpp called directly, {threads} threads)"),
        prefill,
        decode: rates,
        fork: fork_time / forks as u32,
    };
    println!("{report}");
    Ok(())
}

/// Append each `(sequence, first position, tokens)` in one decode, copy out
/// every sequence's last logits as the engine does, and return each one's
/// greedy next token.
fn decode(
    context: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    threads: &mut ThreadPolicy,
    inputs: &[(i32, i32, &[LlamaToken])],
) -> Result<Vec<LlamaToken>, Error> {
    batch.clear();
    let mut last = Vec::with_capacity(inputs.len());
    for &(seq, start, tokens) in inputs {
        for (k, &token) in tokens.iter().enumerate() {
            let is_last = k + 1 == tokens.len();
            if is_last {
                last.push(batch.n_tokens());
            }
            batch.add(token, start + k as i32, &[seq], is_last)?;
        }
    }
    threads.before_decode();
    context.decode(batch)?;
    Ok(last
        .into_iter()
        .map(|index| {
            let logits: Vec<f32> = context.get_logits_ith(index).to_vec();
            LlamaToken(egcfg_engine::sampler::argmax(&logits))
        })
        .collect())
}
