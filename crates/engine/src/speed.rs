//! How fast the engine runs: the speed measurement behind
//! `egcfg bench engine` (not to be confused with the benchmark datasets of
//! the `egcfg-bench` harness).
//!
//! It measures what EG-CFG spends its time on, through the same [`Engine`]
//! calls the decoder makes:
//!
//! * **prefill**: one decode of a `prompt_tokens`-long prompt;
//! * **decode at batch b**: `b` sequences forked from that prompt, each
//!   advanced by one greedy token per step, all `b` in one decode call, with
//!   every sequence's full-vocabulary logits copied out each step (the rate
//!   is aggregate: tokens of all sequences per second);
//! * **fork**: one fork of the prompt's sequence (mean over several).
//!
//! Every run is warmed up first, so one-time buffer allocation is not timed.
//! Run it on an otherwise idle machine: the figures are wall-clock rates.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sampler::argmax;
use crate::{Engine, EngineError, SeqInput, Sequence, Token};

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Length of the prefilled prompt.
    pub prompt_tokens: usize,
    /// Timed decode steps per batch size.
    pub decode_steps: usize,
    /// Batch sizes (sequences decoded together).
    pub batch_sizes: Vec<usize>,
    /// Forks timed (the report gives their mean).
    pub forks: usize,
}

impl Default for BenchOptions {
    /// A 512-token prompt, 32 steps at batch 1, 2, 4 and 8, 16 forks.
    fn default() -> Self {
        Self {
            prompt_tokens: 512,
            decode_steps: 32,
            batch_sizes: vec![1, 2, 4, 8],
            forks: 16,
        }
    }
}

/// A measured rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Tokens evaluated.
    pub tokens: usize,
    /// Wall-clock seconds they took.
    pub seconds: f64,
}

impl Throughput {
    /// Tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

/// Decode throughput at one batch size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeRate {
    /// Sequences decoded together.
    pub batch: usize,
    /// Aggregate rate over all of them.
    pub throughput: Throughput,
}

/// The results of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The model's name.
    pub model: String,
    /// Prefill of the prompt.
    pub prefill: Throughput,
    /// Decode rates, one per batch size, in the order asked.
    pub decode: Vec<DecodeRate>,
    /// Mean wall-clock time of one fork of the prompt's sequence.
    pub fork: Duration,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "engine benchmark: {}", self.model)?;
        writeln!(
            f,
            "  prefill  {:>5} tokens  {:>8.1} tok/s",
            self.prefill.tokens,
            self.prefill.tokens_per_second()
        )?;
        for rate in &self.decode {
            writeln!(
                f,
                "  decode   batch {:>3}     {:>8.1} tok/s  ({} tokens in {:.2} s)",
                rate.batch,
                rate.throughput.tokens_per_second(),
                rate.throughput.tokens,
                rate.throughput.seconds
            )?;
        }
        write!(f, "  fork     {:>8.1} µs", self.fork.as_secs_f64() * 1e6)
    }
}

/// Measure `engine` as `options` describe.
///
/// Needs `max(batch_sizes) + 2` free sequence slots and room in the cache for
/// the prompt plus `decode_steps + 1` tokens per decoded sequence.
pub fn run(engine: &dyn Engine, options: &BenchOptions) -> Result<BenchReport, EngineError> {
    if options.prompt_tokens == 0 || options.decode_steps == 0 {
        return Err(EngineError::InvalidRequest(
            "the benchmark needs a prompt and at least one decode step".to_owned(),
        ));
    }
    let prompt = bench_prompt(engine, options.prompt_tokens)?;

    // Warm up compute buffers with a short prefill, then time the real one.
    let warm = Sequence::new(engine)?;
    engine.decode(&[input(&warm, prompt[..prompt.len().min(16)].to_vec())])?;
    drop(warm);

    let prefix = Sequence::new(engine)?;
    let start = Instant::now();
    let logits = engine.decode(&[input(&prefix, prompt.clone())])?;
    let prefill = Throughput {
        tokens: prompt.len(),
        seconds: start.elapsed().as_secs_f64(),
    };
    let first = argmax(&logits[0]);

    let mut decode = Vec::with_capacity(options.batch_sizes.len());
    for &batch in &options.batch_sizes {
        let forks = (0..batch)
            .map(|_| prefix.fork())
            .collect::<Result<Vec<_>, _>>()?;
        let mut next: Vec<Token> = vec![first; batch];
        // One untimed step at this batch shape.
        next = step(engine, &forks, &next)?;
        let start = Instant::now();
        for _ in 0..options.decode_steps {
            next = step(engine, &forks, &next)?;
        }
        decode.push(DecodeRate {
            batch,
            throughput: Throughput {
                tokens: batch * options.decode_steps,
                seconds: start.elapsed().as_secs_f64(),
            },
        });
    }

    let forks = options.forks.max(1);
    let mut fork_time = Duration::ZERO;
    for _ in 0..forks {
        let start = Instant::now();
        let fork = prefix.fork()?;
        fork_time += start.elapsed();
        drop(fork);
    }

    Ok(BenchReport {
        model: engine.info().name.clone(),
        prefill,
        decode,
        fork: fork_time / forks as u32,
    })
}

/// Advance every sequence by its token; returns each one's greedy next token.
fn step(
    engine: &dyn Engine,
    sequences: &[Sequence<'_>],
    tokens: &[Token],
) -> Result<Vec<Token>, EngineError> {
    let inputs: Vec<SeqInput> = sequences
        .iter()
        .zip(tokens)
        .map(|(seq, &t)| input(seq, vec![t]))
        .collect();
    let logits = engine.decode(&inputs)?;
    Ok(logits.iter().map(|l| argmax(l)).collect())
}

fn input(seq: &Sequence<'_>, tokens: Vec<Token>) -> SeqInput {
    SeqInput {
        seq: seq.id(),
        tokens,
    }
}

/// The Python source the benchmark prompt repeats (public so that
/// `examples/llama_direct.rs` measures llama.cpp on the very same tokens).
pub const PROMPT_UNIT: &str = "def moving_average(values, window):\n    \"\"\"Mean of each run of `window` consecutive values.\"\"\"\n    if window <= 0:\n        raise ValueError(\"window must be positive\")\n    totals = [0]\n    for value in values:\n        totals.append(totals[-1] + value)\n    return [(totals[i + window] - totals[i]) / window for i in range(len(values) - window + 1)]\n\n";

/// Exactly `n` tokens of [`PROMPT_UNIT`] repeated.
fn bench_prompt(engine: &dyn Engine, n: usize) -> Result<Vec<Token>, EngineError> {
    let unit = engine.tokenize(PROMPT_UNIT, false)?;
    if unit.is_empty() {
        return Err(EngineError::Text(
            "the benchmark prompt tokenized to nothing".to_owned(),
        ));
    }
    Ok(unit.iter().copied().cycle().take(n).collect())
}
