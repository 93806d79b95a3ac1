//! Classifier-free guidance between the unconditional distribution `P` and
//! the conditional (trace-informed) distribution `P_c` (docs/method.md §8).
//!
//! `P_guided ∝ P · ((P_c + ε) / (P + ε))^γ`, computed in log space over the
//! full vocabulary as `log P + γ (log(P_c + ε) − log(P + ε))`; the decoder
//! takes its argmax. γ = 0 is `P`, γ = 1 is `P_c`, γ > 1 extrapolates away
//! from the unconditional model.
//!
//! A served model gives only the top-k log-probabilities of each stream's
//! next token; [`guided_choice_top_k`] applies the same formula to the union
//! of the two lists, with the mass the lists leave out handled explicitly.

use serde::{Deserialize, Serialize};

use egcfg_engine::sampler::argmax;
use egcfg_engine::{Token, TokenLogprob};

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

/// What one guided step decided from two top-k lists, and the lists.
#[derive(Debug, Clone)]
pub struct TopKChoice {
    /// The chosen token: always one listed in `P`'s or `P_c`'s top-k.
    pub token: Token,
    /// `P`'s list as the server returned it (empty when γ = 1).
    pub p: Vec<TokenProb>,
    /// `P_c`'s list as the server returned it (empty when γ = 0).
    pub p_c: Vec<TokenProb>,
    /// The guided distribution over the union of both lists, normalised over
    /// that union, most likely first.
    pub guided: Vec<TokenProb>,
}

/// Guidance from the top-k lists of `P` and `P_c` (each sorted most likely
/// first, as [`egcfg_engine::Engine::decode_top_k`] returns them).
///
/// **The rule for missing mass.** A list of the `k` most likely tokens says
/// two things about every token it leaves out: its probability is at most
/// the smallest listed one, and at most the mass the list leaves over
/// (`1 − Σ listed`). A token of the union that is missing from one list is
/// given that list's bound `min(smallest listed, 1 − Σ listed)`: the most it
/// can have, never more, and zero when the list holds all the mass (the rest
/// is computed from the log-probabilities, and counts as zero below their
/// float rounding). Then the
/// formula of [`guided_scores`] runs over the union, and the choice is its
/// argmax (ties to the lower id). Tokens outside both lists are never
/// chosen: nothing is known of them but the same bounds, and choosing one
/// blind is what the reference's endpoint mode gets wrong (method.md §8 G1).
///
/// For γ in [0, 1] the score grows with both probabilities, so the bound is
/// optimistic for a missing token; for γ > 1, where `P` enters with a
/// negative weight, it is pessimistic for a token `P` misses (it scores at
/// most what the full vocabulary would give it). With both lists holding the
/// whole vocabulary the result equals
/// [`guided_choice`]'s. γ = 0 is `P`'s first entry and γ = 1 `P_c`'s, with
/// no bound needed.
pub fn guided_choice_top_k(p: &[TokenLogprob], p_c: &[TokenLogprob], gamma: f32) -> TopKChoice {
    let as_probs = |list: &[TokenLogprob]| -> Vec<TokenProb> {
        list.iter()
            .map(|e| TokenProb {
                token: e.token,
                prob: e.logprob.exp(),
            })
            .collect()
    };
    // γ = 0 is P alone and γ = 1 is P_c alone: the other list plays no part.
    let used_p: &[TokenLogprob] = if gamma == 1.0 { &[] } else { p };
    let used_pc: &[TokenLogprob] = if gamma == 0.0 { &[] } else { p_c };
    let mut union: Vec<Token> = used_p.iter().chain(used_pc).map(|e| e.token).collect();
    union.sort_unstable();
    union.dedup();
    let scores: Vec<f32> = {
        let p_of = probability_with_bound(used_p);
        let pc_of = probability_with_bound(used_pc);
        union
            .iter()
            .map(|&t| {
                if gamma == 0.0 {
                    p_of(t).ln()
                } else if gamma == 1.0 {
                    pc_of(t).ln()
                } else {
                    let (pu, pc) = (p_of(t), pc_of(t));
                    pu.ln() + gamma * ((pc + EPSILON).ln() - (pu + EPSILON).ln())
                }
            })
            .collect()
    };
    // `union` is sorted by id, so the first maximum is the lowest id.
    let token = union[argmax(&scores) as usize];
    let mut guided: Vec<TokenProb> = top_guided(&scores, scores.len())
        .into_iter()
        .map(|e| TokenProb {
            token: union[e.token as usize],
            prob: e.prob,
        })
        .collect();
    guided.sort_by(|a, b| b.prob.total_cmp(&a.prob).then(a.token.cmp(&b.token)));
    TopKChoice {
        token,
        p: as_probs(used_p),
        p_c: as_probs(used_pc),
        guided,
    }
}

/// A token's probability under a top-k list: listed, or the list's bound
/// for tokens it leaves out (see [`guided_choice_top_k`]).
fn probability_with_bound(list: &[TokenLogprob]) -> impl Fn(Token) -> f32 + '_ {
    let smallest = list
        .iter()
        .map(|e| e.logprob.exp())
        .fold(f32::INFINITY, f32::min);
    // The mass left over, `1 − Σ listed`, from the log-probabilities: summed
    // as plain floats, a list whose first entry holds nearly all the mass
    // rounds it to 0, and a token the list misses would count as impossible.
    let logs: Vec<f64> = list.iter().map(|e| f64::from(e.logprob)).collect();
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_listed = max + logs.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
    let rest = -log_listed.exp_m1();
    // Below the rounding of the f32 log-probabilities the rest is noise: a
    // list that holds all the mass leaves nothing over.
    let rounding: f64 =
        logs.iter().map(|l| l.exp() * l.abs()).sum::<f64>() * 4.0 * f64::from(f32::EPSILON);
    let rest = if rest > rounding { rest as f32 } else { 0.0 };
    let bound = smallest.min(rest);
    move |token| {
        list.iter()
            .find(|e| e.token == token)
            .map_or(bound, |e| e.logprob.exp())
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

    /// Raw logits over `n` tokens shaped like a language model's: a few
    /// likely tokens and a long tail (seeded).
    fn lm_like_logits(rng: &mut impl rand::Rng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let u: f32 = rng.gen_range(0.0..1.0);
                // Heavy upper tail: most logits near 0, a few up to ~12.
                -4.0 * (1.0 - u).ln() - 6.0
            })
            .collect()
    }

    fn listed(logits: &[f32], k: usize) -> Vec<TokenLogprob> {
        egcfg_engine::top_k_logprobs(logits, k)
    }

    #[test]
    fn top_k_with_the_whole_vocabulary_equals_the_full_result() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let u = lm_like_logits(&mut rng, 64);
            let c = lm_like_logits(&mut rng, 64);
            for gamma in [0.0, 0.5, 1.0, 3.0] {
                let full = guided_choice(&u, &c, gamma, 0).token;
                let top = guided_choice_top_k(&listed(&u, 64), &listed(&c, 64), gamma);
                assert_eq!(top.token, full, "γ = {gamma}");
            }
        }
    }

    #[test]
    fn top_k_agrees_with_the_full_vocabulary_and_never_leaves_the_lists() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (n, k, trials) = (2000, 20, 400);
        for gamma in [0.0f32, 0.5, 1.0, 3.0] {
            let mut agree = 0;
            for _ in 0..trials {
                let u = lm_like_logits(&mut rng, n);
                // The conditional stream: the same model, nudged by a signal.
                let c: Vec<f32> = u.iter().map(|&l| l + rng.gen_range(-2.0..2.0)).collect();
                let (lu, lc) = (listed(&u, k), listed(&c, k));
                let top = guided_choice_top_k(&lu, &lc, gamma);
                assert!(
                    lu.iter().chain(&lc).any(|e| e.token == top.token),
                    "γ = {gamma}: chose a token outside both lists"
                );
                agree += usize::from(top.token == guided_choice(&u, &c, gamma, 0).token);
            }
            // γ = 0 and 1 are exact; between, the bound decides only when
            // a missing token's mass matters. Measured: 400/400 for every γ
            // here, so any drop is a change of behaviour.
            assert_eq!(agree, trials, "γ = {gamma}: {agree}/{trials} agree");
        }
    }

    #[test]
    fn a_token_missing_from_one_list_gets_that_lists_bound() {
        // P lists tokens 0 (0.5) and 1 (0.3): rest 0.2, smallest 0.3, so a
        // token P misses counts as 0.2. P_c lists 2 (0.6) and 1 (0.35): rest
        // 0.05, so token 0 counts as 0.05 under P_c.
        let p = [lp(0, 0.5), lp(1, 0.3)];
        let pc = [lp(2, 0.6), lp(1, 0.35)];
        // γ = 0.5: token 0: ln .5 + .5 ln(.05/.5) = -1.845; token 1:
        // ln .3 + .5 ln(.35/.3) = -1.127; token 2: ln .2 + .5 ln(.6/.2) = -1.060.
        let half = guided_choice_top_k(&p, &pc, 0.5);
        assert_eq!(half.token, 2);
        let g: Vec<Token> = half.guided.iter().map(|e| e.token).collect();
        assert_eq!(g, vec![2, 1, 0]);
        let total: f32 = half.guided.iter().map(|e| e.prob).sum();
        assert!(close(total, 1.0));
        assert_eq!(guided_choice_top_k(&p, &pc, 0.0).token, 0);
        assert_eq!(guided_choice_top_k(&p, &pc, 1.0).token, 2);
        // A list holding all the mass leaves nothing for missing tokens:
        // token 2 has P = 0 and can never win, however strong γ.
        let full_p = [lp(0, 0.7), lp(1, 0.3)];
        assert_eq!(guided_choice_top_k(&full_p, &pc, 3.0).token, 1);
    }

    fn lp(token: Token, prob: f32) -> TokenLogprob {
        TokenLogprob {
            token,
            logprob: prob.ln(),
        }
    }
}
