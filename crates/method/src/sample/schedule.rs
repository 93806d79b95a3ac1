//! The schedule of the `sample` method: which answers are drawn, in which
//! order, at which temperature and nucleus mass, from which prompt.
//!
//! The schedule is fixed by the task id and the run's seed (`retry`) alone,
//! so two runs with the same seed draw the same answers:
//!
//! * answer 0 is the greedy answer to the instruct prompt (t = 0), the
//!   same decode as EG-CFG's first default attempt and the baseline, so
//!   both methods start from the same program and differ only in how they
//!   spend the rest of the budget;
//! * answer `i ≥ 1` uses the long-code prompt when `i` is odd and the
//!   instruct prompt when it is even, so both prompt styles take part as
//!   they do among EG-CFG's agents; its temperature is drawn from
//!   [`TEMPERATURES`] and its nucleus mass from [`TOP_PS`] by a seed derived
//!   from (task, seed, `i`), which also seeds its sampler.
//!
//! The schedule is as long as the attempt cap (`--max-attempts`, else
//! [`MAX_SAMPLES`]); the token budget normally ends it much earlier.

use sha2::{Digest, Sha256};

use crate::config::{derive_seed, AgentConfig, AttemptSpec, Horizon, PromptStyle};

/// Temperatures a sampled answer is drawn at: a small spread around the
/// usual 0.8 of code sampling, low enough that most answers stay on task.
pub const TEMPERATURES: [f32; 4] = [0.4, 0.6, 0.8, 1.0];

/// Nucleus masses a sampled answer is drawn with.
pub const TOP_PS: [f32; 2] = [0.9, 0.95];

/// The most answers one task draws when no attempt cap is given.
pub const MAX_SAMPLES: usize = 256;

/// The answers to draw for `task_id` under run seed `retry`, at most
/// `max_attempts` (else [`MAX_SAMPLES`]) of them, in schedule order.
pub fn sample_schedule(task_id: &str, retry: u32, max_attempts: Option<usize>) -> Vec<AttemptSpec> {
    let base = task_seed(task_id, retry);
    let count = max_attempts.unwrap_or(MAX_SAMPLES);
    (0..count)
        .map(|index| {
            let seed = derive_seed(base, &[index as u64]);
            let (style, temperature, top_p) = if index == 0 {
                (PromptStyle::Instruct, 0.0, 1.0)
            } else {
                let style = if index % 2 == 1 {
                    PromptStyle::LongCode
                } else {
                    PromptStyle::Instruct
                };
                let t = TEMPERATURES[(seed % TEMPERATURES.len() as u64) as usize];
                let p = TOP_PS[((seed >> 16) % TOP_PS.len() as u64) as usize];
                (style, t, p)
            };
            AttemptSpec {
                index,
                config: AgentConfig {
                    temperature,
                    // A sampled answer draws no candidates and never
                    // refreshes; these fields only keep the shape of an
                    // EG-CFG configuration.
                    candidates: 1,
                    horizon: Horizon::Lines(0),
                    refresh_interval: 1,
                    style,
                },
                gamma: 0.0,
                seed,
                answer_top_p: Some(top_p),
            }
        })
        .collect()
}

/// The seed of a task's whole schedule: the first 8 bytes of SHA-256 over
/// the method's name, the task id and the run seed.
fn task_seed(task_id: &str, retry: u32) -> u64 {
    let key = serde_json::json!(["sample", task_id, retry]);
    let digest = Sha256::digest(key.to_string().as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_first_then_both_styles_from_the_small_sets() {
        let schedule = sample_schedule("Mbpp/601", 0, Some(20));
        assert_eq!(schedule.len(), 20);
        assert_eq!(schedule[0].config.temperature, 0.0);
        assert_eq!(schedule[0].config.style, PromptStyle::Instruct);
        for spec in &schedule[1..] {
            assert!(TEMPERATURES.contains(&spec.config.temperature));
            assert!(TOP_PS.contains(&spec.answer_top_p.unwrap()));
            let long = spec.config.style == PromptStyle::LongCode;
            assert_eq!(long, spec.index % 2 == 1);
        }
        let temps: std::collections::BTreeSet<u32> = schedule
            .iter()
            .map(|s| s.config.temperature.to_bits())
            .collect();
        assert!(temps.len() > 2, "the seed spreads the temperatures");
        assert_eq!(
            schedule[3].name(),
            format!(
                "sample3_t{}p{}_lci_ln",
                schedule[3].config.temperature,
                schedule[3].answer_top_p.unwrap()
            )
        );
    }

    #[test]
    fn the_seed_alone_fixes_the_schedule() {
        assert_eq!(
            sample_schedule("a", 0, Some(8)),
            sample_schedule("a", 0, Some(8))
        );
        assert_ne!(
            sample_schedule("a", 0, Some(8)),
            sample_schedule("a", 1, Some(8))
        );
        assert_ne!(
            sample_schedule("a", 0, Some(8)),
            sample_schedule("b", 0, Some(8))
        );
        assert_eq!(sample_schedule("a", 0, None).len(), MAX_SAMPLES);
    }
}
