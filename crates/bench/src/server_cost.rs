//! What a served model's requests cost a run (issue 13): requests, prompt
//! tokens (and the prefix cache's share), generated tokens and requests per
//! generated token, over the tasks and over the attempts of each guidance
//! strength γ, each with the count it is summed over.
//!
//! A local model asks no server anything: its runs have no such figures.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::solver::ServerUsage;
use crate::store::TaskResult;

/// Usage summed over some tasks, or over some attempts of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageSum {
    /// Tasks it covers.
    pub tasks: usize,
    /// Attempts it covers (`None` for task totals, which also hold the
    /// requests made outside any attempt).
    pub attempts: Option<usize>,
    /// The summed usage.
    pub usage: ServerUsage,
}

/// A run's server costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerCost {
    /// Every task's total.
    pub tasks: UsageSum,
    /// The attempts of each γ, by increasing γ. Empty when the solver does
    /// not tell its attempts' requests apart (answers decoded in shared
    /// requests).
    pub by_gamma: Vec<(f32, UsageSum)>,
}

/// The server costs of `results`, or `None` when no task asked a server
/// for anything (a local model, or results recorded before they were
/// kept).
pub fn server_cost(results: &[TaskResult]) -> Option<ServerCost> {
    let total = results.iter().fold(ServerUsage::default(), |t, r| {
        t.plus(&r.solution.cost.usage)
    });
    if total.is_zero() {
        return None;
    }
    let tasks = UsageSum {
        tasks: results
            .iter()
            .filter(|r| !r.solution.cost.usage.is_zero())
            .count(),
        attempts: None,
        usage: total,
    };
    let attributed = results
        .iter()
        .flat_map(|r| &r.solution.attempts)
        .any(|a| !a.usage.is_zero());
    if !attributed {
        return Some(ServerCost {
            tasks,
            by_gamma: Vec::new(),
        });
    }
    // γ is keyed by its bits: the same γ is the same float in every attempt.
    let mut by_gamma: BTreeMap<u32, (f32, UsageSum)> = BTreeMap::new();
    for result in results {
        let mut seen = Vec::new();
        for attempt in &result.solution.attempts {
            let Some(gamma) = attempt.gamma else { continue };
            let (_, sum) = by_gamma.entry(gamma.to_bits()).or_insert((
                gamma,
                UsageSum {
                    tasks: 0,
                    attempts: Some(0),
                    usage: ServerUsage::default(),
                },
            ));
            if !seen.contains(&gamma.to_bits()) {
                seen.push(gamma.to_bits());
                sum.tasks += 1;
            }
            sum.attempts = sum.attempts.map(|n| n + 1);
            sum.usage = sum.usage.plus(&attempt.usage);
        }
    }
    let mut by_gamma: Vec<(f32, UsageSum)> = by_gamma.into_values().collect();
    by_gamma.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(ServerCost { tasks, by_gamma })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::{Attempt, Cost, Solution};

    fn usage(requests: u64, generated_tokens: u64) -> ServerUsage {
        ServerUsage {
            requests,
            prompt_tokens: 10 * requests,
            cached_prompt_tokens: 5 * requests,
            generated_tokens,
        }
    }

    fn attempt(gamma: f32, usage: ServerUsage) -> Attempt {
        Attempt {
            label: format!("g{gamma}"),
            program: String::new(),
            visible_passed: 0,
            visible_total: 1,
            gamma: Some(gamma),
            wall_s: Some(1.0),
            usage,
        }
    }

    fn task(total: ServerUsage, attempts: Vec<Attempt>) -> TaskResult {
        TaskResult {
            task_id: "t".into(),
            solution: Solution {
                program: String::new(),
                attempts,
                cost: Cost {
                    usage: total,
                    ..Cost::default()
                },
                records: serde_json::Value::Null,
                profile: None,
            },
            wall_ms: 1.0,
            scores: Vec::new(),
        }
    }

    #[test]
    fn tasks_and_each_gamma_sum_their_own_requests() {
        let results = [
            task(
                usage(12, 60),
                vec![attempt(0.0, usage(3, 30)), attempt(1.0, usage(8, 20))],
            ),
            task(
                usage(30, 100),
                vec![
                    attempt(1.0, usage(10, 40)),
                    attempt(1.0, usage(4, 20)),
                    attempt(3.0, usage(15, 40)),
                ],
            ),
        ];
        let cost = server_cost(&results).unwrap();
        assert_eq!(cost.tasks.tasks, 2);
        assert_eq!(cost.tasks.usage, usage(42, 160));
        let gammas: Vec<f32> = cost.by_gamma.iter().map(|(g, _)| *g).collect();
        assert_eq!(gammas, [0.0, 1.0, 3.0]);
        let (_, one) = &cost.by_gamma[1];
        assert_eq!((one.tasks, one.attempts), (2, Some(3)));
        assert_eq!(one.usage, usage(22, 80));
        assert_eq!(one.usage.requests_per_generated_token(), Some(22.0 / 80.0));
        assert_eq!(one.usage.cached_share(), Some(0.5));
    }

    #[test]
    fn a_local_run_has_none_and_unattributed_requests_have_no_gamma_rows() {
        let local = [task(
            ServerUsage::default(),
            vec![attempt(1.0, ServerUsage::default())],
        )];
        assert_eq!(server_cost(&local), None);
        let shared = [task(
            usage(7, 70),
            vec![attempt(0.0, ServerUsage::default())],
        )];
        let cost = server_cost(&shared).unwrap();
        assert_eq!(cost.tasks.usage, usage(7, 70));
        assert!(cost.by_gamma.is_empty());
    }
}
