//! Turning logits into token choices: greedy, temperature, top-k and top-p
//! (nucleus) sampling, seeded and reproducible.
//!
//! A [`Sampler`] owns a ChaCha random stream started from [`SamplerConfig::
//! seed`], so the same seed and the same logits give the same tokens on every
//! machine. Ties are broken towards the lower token id wherever order
//! matters, which keeps greedy decoding and nucleus truncation deterministic
//! too.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Token;

/// How a [`Sampler`] chooses tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// Softmax temperature; `0` (or less) means greedy (always the argmax).
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose probability mass
    /// reaches `top_p`; `1` keeps everything.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; `0` keeps everything.
    pub top_k: usize,
    /// Seed of the random stream.
    pub seed: u64,
}

impl SamplerConfig {
    /// Always pick the most likely token.
    pub const GREEDY: SamplerConfig = SamplerConfig {
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        seed: 0,
    };

    /// Temperature and nucleus sampling, as EG-CFG draws its candidates.
    pub fn nucleus(temperature: f32, top_p: f32, seed: u64) -> Self {
        Self {
            temperature,
            top_p,
            top_k: 0,
            seed,
        }
    }

    /// Whether this configuration never draws random numbers.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

impl Default for SamplerConfig {
    /// Greedy.
    fn default() -> Self {
        Self::GREEDY
    }
}

/// Chooses tokens from logits, reproducibly for a given seed.
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplerConfig,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler with its own random stream seeded from `config.seed`.
    pub fn new(config: SamplerConfig) -> Self {
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
        }
    }

    /// A greedy sampler.
    pub fn greedy() -> Self {
        Self::new(SamplerConfig::GREEDY)
    }

    /// The configuration this sampler was made with.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Choose the next token from full-vocabulary logits.
    ///
    /// # Panics
    /// If `logits` is empty.
    pub fn sample(&mut self, logits: &[f32]) -> Token {
        if self.config.is_greedy() {
            return argmax(logits);
        }
        let candidates = truncated_distribution(logits, &self.config);
        let total: f64 = candidates.iter().map(|&(_, p)| p).sum();
        let mut point = self.rng.gen::<f64>() * total;
        for &(token, p) in &candidates {
            if point < p {
                return token;
            }
            point -= p;
        }
        // Rounding left `point` at the very end of the mass.
        candidates.last().expect("at least one candidate").0
    }
}

/// The most likely token (lowest id among equal maxima; NaN never wins).
///
/// # Panics
/// If `logits` is empty.
pub fn argmax(logits: &[f32]) -> Token {
    assert!(!logits.is_empty(), "argmax of empty logits");
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] || (logits[best].is_nan() && !x.is_nan()) {
            best = i;
        }
    }
    best as Token
}

/// Log-probabilities `log softmax(logits / temperature)`, computed in f64.
pub fn log_softmax(logits: &[f32], temperature: f32) -> Vec<f64> {
    let t = f64::from(temperature.max(f32::MIN_POSITIVE));
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64 / t;
    let log_sum = logits
        .iter()
        .map(|&x| (f64::from(x) / t - max).exp())
        .sum::<f64>()
        .ln();
    logits
        .iter()
        .map(|&x| f64::from(x) / t - max - log_sum)
        .collect()
}

/// The candidates left after temperature, top-k and top-p, most likely first
/// (ties by lower id), with their unnormalised probabilities.
fn truncated_distribution(logits: &[f32], config: &SamplerConfig) -> Vec<(Token, f64)> {
    let t = f64::from(config.temperature);
    let max = f64::from(logits[argmax(logits) as usize]);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&x| {
            let w = ((f64::from(x) - max) / t).exp();
            if w.is_nan() {
                0.0
            } else {
                w
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let keep_k = if config.top_k == 0 {
        logits.len()
    } else {
        config.top_k.min(logits.len())
    };
    let mass = f64::from(config.top_p.clamp(0.0, 1.0)) * total;

    // Sort only as much of the vocabulary as the nucleus needs: take the top
    // `k` by partial selection, and widen `k` until the kept mass suffices.
    let order = |a: &(Token, f64), b: &(Token, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let all: Vec<(Token, f64)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (i as Token, w))
        .collect();
    let mut k = keep_k.min(64);
    loop {
        let mut top = all.clone();
        if k < top.len() {
            top.select_nth_unstable_by(k - 1, order);
            top.truncate(k);
        }
        top.sort_unstable_by(order);
        let mut kept = 0.0;
        let mut cut = top.len();
        for (i, &(_, w)) in top.iter().enumerate() {
            kept += w;
            if kept >= mass {
                cut = i + 1;
                break;
            }
        }
        if kept >= mass || k >= keep_k {
            top.truncate(cut.max(1));
            return top;
        }
        k = (k * 4).min(keep_k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(config: SamplerConfig, logits: &[f32], n: usize) -> Vec<Token> {
        let mut sampler = Sampler::new(config);
        (0..n).map(|_| sampler.sample(logits)).collect()
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 1);
        assert_eq!(Sampler::greedy().sample(&[0.5, 0.1, 3.0]), 2);
        let zero_temperature = SamplerConfig::nucleus(0.0, 0.95, 7);
        assert_eq!(draws(zero_temperature, &[0.5, 0.1, 3.0], 3), vec![2, 2, 2]);
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens() {
        let logits: Vec<f32> = (0..500).map(|i| ((i * 37 % 101) as f32) / 20.0).collect();
        let config = SamplerConfig::nucleus(0.8, 0.95, 42);
        let first = draws(config, &logits, 200);
        assert_eq!(first, draws(config, &logits, 200));
        let other_seed = SamplerConfig { seed: 43, ..config };
        assert_ne!(first, draws(other_seed, &logits, 200));
        // Not degenerate: several different tokens were drawn.
        let mut distinct = first.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 5,
            "only {} distinct tokens",
            distinct.len()
        );
    }

    #[test]
    fn frequencies_follow_the_softmax() {
        // Probabilities 0.5, 0.25, 0.25 at temperature 1.
        let logits = [2f32.ln(), 0.0, 0.0];
        let n = 20_000;
        let picks = draws(SamplerConfig::nucleus(1.0, 1.0, 1), &logits, n);
        let share = |t: Token| picks.iter().filter(|&&p| p == t).count() as f64 / n as f64;
        assert!(
            (share(0) - 0.5).abs() < 0.02,
            "share of token 0: {}",
            share(0)
        );
        assert!((share(1) - 0.25).abs() < 0.02);
        assert!((share(2) - 0.25).abs() < 0.02);
    }

    #[test]
    fn top_p_and_top_k_cut_the_tail() {
        // Probabilities about 0.64, 0.24, 0.09, 0.03.
        let logits = [3.0, 2.0, 1.0, 0.0];
        let nucleus = draws(SamplerConfig::nucleus(1.0, 0.8, 3), &logits, 2000);
        assert!(
            nucleus.iter().all(|&t| t <= 1),
            "top-p 0.8 keeps tokens 0 and 1"
        );
        assert!(nucleus.contains(&1));
        let top_k = SamplerConfig {
            top_k: 3,
            ..SamplerConfig::nucleus(1.0, 1.0, 3)
        };
        let picks = draws(top_k, &logits, 4000);
        assert!(!picks.contains(&3));
        assert!(picks.contains(&2));
    }

    #[test]
    fn nucleus_search_widens_past_the_first_block() {
        // A flat distribution over 1000 tokens: top-p 0.5 needs 500 of them.
        let logits = vec![0.0f32; 1000];
        let kept = truncated_distribution(&logits, &SamplerConfig::nucleus(1.0, 0.5, 0));
        assert_eq!(kept.len(), 500);
        assert_eq!(kept[0].0, 0);
        assert_eq!(kept[499].0, 499);
    }

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0], 1.0);
        let total: f64 = lp.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(lp[2] > lp[1] && lp[1] > lp[0]);
    }
}
