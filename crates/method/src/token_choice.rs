//! Choosing the next token of the answer (docs/method.md §8), and recording
//! why it was chosen.
//!
//! The answer is decoded greedily: from `P` alone while no signal is in
//! force, otherwise from the guided combination of `P` and `P_c`
//! ([`crate::guidance`]). Sampling belongs to the candidates only; a greedy
//! answer keeps an attempt reproducible and lets the traces, not chance,
//! move it.

use egcfg_engine::sampler::argmax;
use egcfg_engine::{top_k_logprobs, NextToken, Token, TokenLogprob};

use crate::guidance::{
    guided_choice, guided_choice_top_k, softmax, top_guided, top_probs, TokenProb,
};
use crate::record::TokenRecord;

/// How tokens are chosen in an attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenChooser {
    /// Guidance strength γ.
    pub(crate) gamma: f32,
    /// Keep only the top-k of `P` and `P_c` before guidance (0 = off).
    pub(crate) top_k: usize,
    /// Entries of each recorded top-token list.
    pub(crate) record_top: usize,
}

impl TokenChooser {
    /// The token at `step`, chosen from `p` (U's next token) alone or,
    /// given `c` (C's), with guidance; its record has no piece yet. Full
    /// logits use the whole vocabulary; top-k lists (a served model) use
    /// [`guided_choice_top_k`], and the record keeps the lists as returned.
    pub(crate) fn choose(&self, step: usize, p: &NextToken, c: Option<&NextToken>) -> TokenRecord {
        match (p, c) {
            (NextToken::Logits(p), None) => self.choose_from_logits(step, p, None),
            (NextToken::Logits(p), Some(NextToken::Logits(c))) => {
                self.choose_from_logits(step, p, Some(c))
            }
            _ => {
                let as_list = |next: &NextToken| match next {
                    NextToken::TopK(list) => list.to_vec(),
                    NextToken::Logits(logits) => top_k_logprobs(logits, self.record_top.max(1)),
                };
                self.choose_from_top_k(step, &as_list(p), c.map(as_list).as_deref())
            }
        }
    }

    /// The record of `token`, which an engine wrote as the argmax of `P`
    /// (an unguided line), with `P`'s top list where it told it.
    pub(crate) fn unguided(
        &self,
        step: usize,
        token: Token,
        p: Option<&[TokenLogprob]>,
    ) -> TokenRecord {
        TokenRecord {
            step,
            token,
            piece: String::new(),
            guided: false,
            argmax_p: Some(token),
            top_p: self.listed(p.unwrap_or_default()),
            top_pc: Vec::new(),
            top_guided: Vec::new(),
        }
    }

    /// The record of `token`, which an engine wrote as the argmax of `P_c`
    /// and which guidance at γ = 1 takes as it is, without asking `P`.
    pub(crate) fn proposed(
        &self,
        step: usize,
        token: Token,
        p_c: Option<&[TokenLogprob]>,
    ) -> TokenRecord {
        let top_pc = self.listed(p_c.unwrap_or_default());
        TokenRecord {
            step,
            token,
            piece: String::new(),
            guided: true,
            argmax_p: None,
            top_p: Vec::new(),
            // At γ = 1 the guided distribution is P_c.
            top_guided: top_pc.clone(),
            top_pc,
        }
    }

    /// The first `record_top` entries of a top-k list, as probabilities.
    fn listed(&self, list: &[TokenLogprob]) -> Vec<TokenProb> {
        list.iter()
            .take(self.record_top)
            .map(|e| TokenProb {
                token: e.token,
                prob: e.logprob.exp(),
            })
            .collect()
    }

    fn choose_from_top_k(
        &self,
        step: usize,
        p: &[TokenLogprob],
        c: Option<&[TokenLogprob]>,
    ) -> TokenRecord {
        let argmax_p = p.first().map_or(0, |e| e.token);
        match c {
            Some(c) => {
                let choice = guided_choice_top_k(p, c, self.gamma);
                let keep = |mut list: Vec<TokenProb>| {
                    list.truncate(self.record_top);
                    list
                };
                TokenRecord {
                    step,
                    token: choice.token,
                    piece: String::new(),
                    guided: true,
                    argmax_p: Some(argmax_p),
                    top_p: keep(choice.p),
                    top_pc: keep(choice.p_c),
                    top_guided: keep(choice.guided),
                }
            }
            None => TokenRecord {
                step,
                token: argmax_p,
                piece: String::new(),
                guided: false,
                argmax_p: Some(argmax_p),
                top_p: self.listed(p),
                top_pc: Vec::new(),
                top_guided: Vec::new(),
            },
        }
    }

    fn choose_from_logits(
        &self,
        step: usize,
        p_logits: &[f32],
        c_logits: Option<&[f32]>,
    ) -> TokenRecord {
        let record_top = self.record_top;
        match c_logits {
            Some(c_logits) => {
                let choice = guided_choice(p_logits, c_logits, self.gamma, self.top_k);
                TokenRecord {
                    step,
                    token: choice.token,
                    piece: String::new(),
                    guided: true,
                    argmax_p: Some(argmax(p_logits)),
                    top_p: top_probs(&choice.p, record_top),
                    top_pc: top_probs(&choice.p_c, record_top),
                    top_guided: top_guided(&choice.scores, record_top),
                }
            }
            None => {
                let token = argmax(p_logits);
                // The softmax over the whole vocabulary is only worth its
                // cost when the record keeps it.
                let top_p = if record_top > 0 {
                    top_probs(&softmax(p_logits), record_top)
                } else {
                    Vec::new()
                };
                TokenRecord {
                    step,
                    token,
                    piece: String::new(),
                    guided: false,
                    argmax_p: Some(token),
                    top_p,
                    top_pc: Vec::new(),
                    top_guided: Vec::new(),
                }
            }
        }
    }
}
