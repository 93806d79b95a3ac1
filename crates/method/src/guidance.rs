//! Classifier-free guidance between the unconditional distribution `P` and
//! the conditional (trace-informed) distribution `P_c` (docs/method.md §8).
//!
//! `P_guided ∝ P · ((P_c + ε) / (P + ε))^γ`, computed in log space over the
//! full vocabulary as `log P + γ (log(P_c + ε) − log(P + ε))`; the decoder
//! takes its argmax. γ = 0 is `P`, γ = 1 is `P_c`, γ > 1 extrapolates away
//! from the unconditional model.

use serde::{Deserialize, Serialize};

use egcfg_engine::sampler::argmax;
use egcfg_engine::Token;

/// The ε of the guidance ratio, as in the paper.
pub const EPSILON: f32 = 1e-8;

/// The probability given to entries outside the top-k when masking.
pub const MASKED_PROBABILITY: f32 = 1e-10;

/// Softmax of raw logits in float32 (max-subtracted for stability).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = probs.iter().sum();
    for p in &mut probs {
        *p /= sum;
    }
    probs
}

/// Keep the `k` most likely entries of `probs` and set every other entry to
/// [`MASKED_PROBABILITY`], without renormalising (the reference's
/// `top_probs`). `k == 0` or `k >= len` leaves `probs` untouched. Ties at the
/// boundary keep the lower token id.
pub fn mask_top_k(probs: &mut [f32], k: usize) {
    if k == 0 || k >= probs.len() {
        return;
    }
    let keep = top_indices(probs, k);
    let mut kept = vec![false; probs.len()];
    for i in keep {
        kept[i] = true;
    }
    for (p, keep) in probs.iter_mut().zip(kept) {
        if !keep {
            *p = MASKED_PROBABILITY;
        }
    }
}

/// The guided log-score of every token (unnormalised):
/// `log P + γ (log(P_c + ε) − log(P + ε))`.
pub fn guided_scores(p: &[f32], p_c: &[f32], gamma: f32) -> Vec<f32> {
    p.iter()
        .zip(p_c)
        .map(|(&pu, &pc)| pu.ln() + gamma * ((pc + EPSILON).ln() - (pu + EPSILON).ln()))
        .collect()
}

/// Indices of the `n` largest values, largest first, ties to the lower index.
pub fn top_indices(values: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let n = n.min(values.len());
    let by_value_desc = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
    if n < idx.len() {
        idx.select_nth_unstable_by(n, by_value_desc);
        idx.truncate(n);
    }
    idx.sort_by(by_value_desc);
    idx
}

/// One entry of a recorded top-n list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenProb {
    /// The token.
    pub token: Token,
    /// Its probability under the distribution the list describes.
    pub prob: f32,
}

/// The `n` most likely tokens of a probability vector.
pub fn top_probs(probs: &[f32], n: usize) -> Vec<TokenProb> {
    top_indices(probs, n)
        .into_iter()
        .map(|i| TokenProb {
            token: i as Token,
            prob: probs[i],
        })
        .collect()
}

/// The `n` most likely tokens under the normalised guided distribution.
pub fn top_guided(scores: &[f32], n: usize) -> Vec<TokenProb> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_z = max + scores.iter().map(|&s| (s - max).exp()).sum::<f32>().ln();
    top_indices(scores, n)
        .into_iter()
        .map(|i| TokenProb {
            token: i as Token,
            prob: (scores[i] - log_z).exp(),
        })
        .collect()
}

/// What one guided step decided, with the distributions behind it.
#[derive(Debug, Clone)]
pub struct GuidedChoice {
    /// The chosen token.
    pub token: Token,
    /// `P` after masking (empty when γ = 1 skipped it).
    pub p: Vec<f32>,
    /// `P_c` after masking.
    pub p_c: Vec<f32>,
    /// The guided log-scores (equal to `log P_c` when γ = 1).
    pub scores: Vec<f32>,
}

/// Choose the guided token from raw unconditional and conditional logits.
///
/// `top_k` masks both distributions first (0 = off). γ = 1 uses `P_c` alone,
/// as the method specifies, and ignores the unconditional logits.
pub fn guided_choice(
    uncond_logits: &[f32],
    cond_logits: &[f32],
    gamma: f32,
    top_k: usize,
) -> GuidedChoice {
    let mut p_c = softmax(cond_logits);
    mask_top_k(&mut p_c, top_k);
    if gamma == 1.0 {
        let scores: Vec<f32> = p_c.iter().map(|p| p.ln()).collect();
        let token = argmax(&scores);
        return GuidedChoice {
            token,
            p: Vec::new(),
            p_c,
            scores,
        };
    }
    let mut p = softmax(uncond_logits);
    mask_top_k(&mut p, top_k);
    let scores = guided_scores(&p, &p_c, gamma);
    let token = argmax(&scores);
    GuidedChoice {
        token,
        p,
        p_c,
        scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn softmax_matches_hand_values() {
        let p = softmax(&[0.0, (2.0f32).ln(), (5.0f32).ln()]);
        assert!(close(p[0], 0.125) && close(p[1], 0.25) && close(p[2], 0.625));
    }

    #[test]
    fn formula_against_hand_computed_values() {
        // P = (0.5, 0.3, 0.2), P_c = (0.1, 0.3, 0.6).
        let p = [0.5f32, 0.3, 0.2];
        let pc = [0.1f32, 0.3, 0.6];
        let s = guided_scores(&p, &pc, 2.0);
        // log P + 2 (log P_c − log P): token 0: ln .5 + 2 ln .2 = -3.912,
        // token 1: ln .3 = -1.204, token 2: ln .2 + 2 ln 3 = 0.588.
        assert!((s[0] - (-3.9120)).abs() < 1e-3);
        assert!((s[1] - (-1.2040)).abs() < 1e-3);
        assert!((s[2] - 0.5878).abs() < 1e-3);
        // γ = 0.5 still picks token 0 vs 2? ln .5 + .5 ln .2 = -1.498,
        // ln .2 + .5 ln 3 = -1.060 -> token 2.
        let half = guided_scores(&p, &pc, 0.5);
        assert_eq!(argmax(&half), 2);
        // γ = 0.2: ln .5 + .2 ln .2 = -1.015; ln .2 + .2 ln 3 = -1.390 -> 0.
        assert_eq!(argmax(&guided_scores(&p, &pc, 0.2)), 0);
    }

    #[test]
    fn gamma_special_cases() {
        let u = [3.0f32, 1.0, 0.0, -1.0];
        let c = [0.0f32, 0.0, 4.0, 0.0];
        assert_eq!(guided_choice(&u, &c, 0.0, 0).token, 0, "γ=0 is argmax P");
        let one = guided_choice(&u, &c, 1.0, 0);
        assert_eq!(one.token, 2, "γ=1 is argmax P_c");
        assert!(one.p.is_empty(), "γ=1 never looks at P");
        // γ = 3 extrapolates: token 2 gains 3·(log P_c − log P) most.
        assert_eq!(guided_choice(&u, &c, 3.0, 0).token, 2);
    }

    #[test]
    fn extrapolation_can_prefer_a_token_neither_ranks_first() {
        // P prefers 0, P_c prefers 0 too, but token 1 gains most from the
        // condition; with γ = 4 it wins.
        let p = [0.6f32, 0.1, 0.3];
        let pc = [0.5f32, 0.4, 0.1];
        assert_eq!(argmax(&guided_scores(&p, &pc, 1.0)), 0);
        assert_eq!(argmax(&guided_scores(&p, &pc, 4.0)), 1);
    }

    #[test]
    fn mask_keeps_top_k_without_renormalising() {
        let mut p = vec![0.1f32, 0.4, 0.2, 0.3];
        mask_top_k(&mut p, 2);
        assert_eq!(p, vec![MASKED_PROBABILITY, 0.4, MASKED_PROBABILITY, 0.3]);
        let mut same = vec![0.5f32, 0.5];
        mask_top_k(&mut same, 0);
        assert_eq!(same, vec![0.5, 0.5]);
        let mut tie = vec![0.25f32, 0.25, 0.25, 0.25];
        mask_top_k(&mut tie, 1);
        assert_eq!(tie[0], 0.25);
        assert_eq!(tie[1], MASKED_PROBABILITY);
    }

    #[test]
    fn mask_changes_the_guided_choice() {
        // Unmasked, γ = 2 boosts token 2 (P_c/P = 0.3/0.05). With k = 2,
        // token 2 is outside P's top 2 and (tie, higher id) outside P_c's,
        // so it drops to 1e-10 in both; of the rest, token 0 scores
        // ln .6 + 2 ln(.4/.6) = -1.322 against ln .35 + 2 ln(.3/.35) = -1.358.
        let u = [(0.6f32).ln(), (0.35f32).ln(), (0.05f32).ln()];
        let c = [(0.4f32).ln(), (0.3f32).ln(), (0.3f32).ln()];
        assert_eq!(guided_choice(&u, &c, 2.0, 0).token, 2);
        assert_eq!(guided_choice(&u, &c, 2.0, 2).token, 0);
    }

    #[test]
    fn top_indices_ties_go_to_the_lower_id() {
        assert_eq!(top_indices(&[0.1, 0.5, 0.5, 0.2], 3), vec![1, 2, 3]);
    }

    #[test]
    fn guided_top_list_is_normalised() {
        let top = top_guided(&[(0.2f32).ln(), (0.6f32).ln(), (0.2f32).ln()], 2);
        assert_eq!(top[0].token, 1);
        assert!(close(top[0].prob, 0.6));
        assert_eq!(top[1].token, 0);
    }
}
