//! Seeded temperature + nucleus (top-p) sampling for candidate continuations.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use egcfg_engine::Token;

use crate::guidance::argmax;

/// Draw one token from `softmax(logits / temperature)` restricted to the
/// smallest set of most likely tokens whose mass reaches `top_p`.
///
/// A temperature of 0 (or below) is greedy. Ordering inside the nucleus is
/// by probability then token id, so a seed fixes the draw.
pub fn sample_token(logits: &[f32], temperature: f32, top_p: f32, rng: &mut ChaCha8Rng) -> Token {
    if temperature <= 0.0 {
        return argmax(logits) as Token;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut weighted: Vec<(usize, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, ((l - max) / temperature).exp()))
        .filter(|&(_, w)| w > 0.0)
        .collect();
    weighted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f32 = weighted.iter().map(|w| w.1).sum();
    let mut kept = 0;
    let mut mass = 0.0;
    for &(_, w) in &weighted {
        kept += 1;
        mass += w / total;
        if mass >= top_p {
            break;
        }
    }
    weighted.truncate(kept.max(1));
    let nucleus: f32 = weighted.iter().map(|w| w.1).sum();
    let mut draw = rng.gen::<f32>() * nucleus;
    for &(i, w) in &weighted {
        if draw < w {
            return i as Token;
        }
        draw -= w;
    }
    weighted[weighted.len() - 1].0 as Token
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zero_temperature_is_greedy() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(sample_token(&[0.0, 2.0, 1.0], 0.0, 0.95, &mut rng), 1);
    }

    #[test]
    fn top_p_excludes_the_tail() {
        // Probabilities ≈ (0.665, 0.245, 0.090): top_p 0.8 keeps tokens 0, 1.
        let logits = [2.0f32, 1.0, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws: Vec<Token> = (0..500)
            .map(|_| sample_token(&logits, 1.0, 0.8, &mut rng))
            .collect();
        assert!(!draws.contains(&2));
        assert!(draws.contains(&0) && draws.contains(&1));
    }

    #[test]
    fn same_seed_same_draws() {
        let logits = [0.5f32, 0.4, 0.3, 0.2];
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| sample_token(&logits, 1.0, 0.95, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
