//! Scores computed from recorded results, each with the task count it is
//! computed over.
//!
//! * [`strict_pass_at_1`]: the selected program (chosen on visible tests
//!   only) against the hidden suite.
//! * [`any_of_n`]: the reference-style score: a task counts if any of its N
//!   attempts passes; N is reported with it (mean and max).
//! * [`pass_at_k`]: the unbiased estimator over tasks with at least k samples.
//! * [`compare`]: a method against its baseline on the intersection of their
//!   task sets, with RSR and the tasks fixed and broken.
//! * [`Paired`]: two runs on the same tasks, told apart by the tasks only
//!   one of them passes, with the exact sign test on those.
//! * [`cost`]: tokens, executions and wall time per task.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::TaskResult;

/// `passed` of `total` tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rate {
    /// Tasks that passed.
    pub passed: usize,
    /// Tasks counted.
    pub total: usize,
}

impl Rate {
    /// The rate in percent; 0 when no task is counted.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.passed as f64 / self.total as f64
        }
    }

    /// The 95% Wilson score interval of the rate, in percent; none when no
    /// task is counted. Wilson's rather than the normal approximation
    /// because benchmark rates sit near 0 or 100% on a few dozen tasks,
    /// where the latter leaves [0, 100] or collapses to a point. It says
    /// how far one rate could move on other tasks like these; two runs on
    /// the same tasks are compared with [`Paired`], not by overlap.
    pub fn wilson_95(&self) -> Option<(f64, f64)> {
        if self.total == 0 {
            return None;
        }
        const Z: f64 = 1.959_963_984_540_054;
        let n = self.total as f64;
        let p = self.passed as f64 / n;
        let z2n = Z * Z / n;
        let centre = (p + z2n / 2.0) / (1.0 + z2n);
        let half = Z * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt() / (1.0 + z2n);
        Some((
            100.0 * (centre - half).max(0.0),
            100.0 * (centre + half).min(1.0),
        ))
    }

    /// [`Rate::wilson_95`] as text: `49–94%`, or `-` with no task.
    pub fn wilson_95_text(&self) -> String {
        self.wilson_95()
            .map_or_else(|| "-".into(), |(lo, hi)| format!("{lo:.0}–{hi:.0}%"))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}% ({}/{})", self.percent(), self.passed, self.total)
    }
}

/// Strict pass@1 on `suite`: over the tasks that have the suite.
pub fn strict_pass_at_1(results: &[TaskResult], suite: &str) -> Rate {
    let scores: Vec<bool> = results
        .iter()
        .filter_map(|r| r.score(suite).map(|s| s.passed))
        .collect();
    Rate {
        passed: scores.iter().filter(|&&p| p).count(),
        total: scores.len(),
    }
}

/// The reference-style score and the N it was computed with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnyOfN {
    /// Tasks where any attempt passed.
    pub rate: Rate,
    /// Mean attempts per task.
    pub mean_attempts: f64,
    /// Most attempts on one task.
    pub max_attempts: usize,
}

/// Any-of-N on `suite`, over the tasks whose attempts were scored on it.
pub fn any_of_n(results: &[TaskResult], suite: &str) -> Option<AnyOfN> {
    let per_task: Vec<&Vec<bool>> = results
        .iter()
        .filter_map(|r| r.score(suite)?.attempts_passed.as_ref())
        .collect();
    if per_task.is_empty() {
        return None;
    }
    let attempts: usize = per_task.iter().map(|a| a.len()).sum();
    Some(AnyOfN {
        rate: Rate {
            passed: per_task.iter().filter(|a| a.iter().any(|&p| p)).count(),
            total: per_task.len(),
        },
        mean_attempts: attempts as f64 / per_task.len() as f64,
        max_attempts: per_task.iter().map(|a| a.len()).max().unwrap_or(0),
    })
}

/// The unbiased pass@k of one task with `n` samples of which `c` pass:
/// 1 - C(n-c, k) / C(n, k), computed as a stable product.
pub fn pass_at_k_one(n: usize, c: usize, k: usize) -> f64 {
    assert!(
        k >= 1 && k <= n && c <= n,
        "pass@k needs 1 <= k <= n and c <= n"
    );
    if n - c < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

/// pass@k on `suite`, averaged over the tasks with at least `k` scored
/// samples; `None` when no task has that many.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PassAtK {
    /// The k.
    pub k: usize,
    /// The estimate, in percent.
    pub percent: f64,
    /// Tasks it is averaged over.
    pub tasks: usize,
}

/// pass@k (see [`PassAtK`]).
pub fn pass_at_k(results: &[TaskResult], suite: &str, k: usize) -> Option<PassAtK> {
    let values: Vec<f64> = results
        .iter()
        .filter_map(|r| r.score(suite)?.attempts_passed.as_ref())
        .filter(|a| a.len() >= k)
        .map(|a| pass_at_k_one(a.len(), a.iter().filter(|&&p| p).count(), k))
        .collect();
    (!values.is_empty()).then(|| PassAtK {
        k,
        percent: 100.0 * values.iter().sum::<f64>() / values.len() as f64,
        tasks: values.len(),
    })
}

/// Relative success rate: (acc - base) / (100 - base), in percent; `None`
/// when the baseline already solves everything.
pub fn rsr(method: Rate, base: Rate) -> Option<f64> {
    let base_pct = base.percent();
    (base.total > 0 && base_pct < 100.0)
        .then(|| 100.0 * (method.percent() - base_pct) / (100.0 - base_pct))
}

/// A method against its baseline on the tasks both have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The suite compared.
    pub suite: String,
    /// The method's strict pass@1 on the shared tasks.
    pub method: Rate,
    /// The baseline's strict pass@1 on the same tasks.
    pub base: Rate,
    /// RSR in percent.
    pub rsr: Option<f64>,
    /// Tasks the method passes and the baseline fails, in id order.
    pub fixed: Vec<String>,
    /// Tasks the baseline passes and the method fails, in id order.
    pub broken: Vec<String>,
}

/// Compares `method` with `base` on `suite` over their shared tasks only.
pub fn compare(method: &[TaskResult], base: &[TaskResult], suite: &str) -> Comparison {
    let outcomes = |results: &[TaskResult]| -> BTreeMap<String, bool> {
        results
            .iter()
            .filter_map(|r| r.score(suite).map(|s| (r.task_id.clone(), s.passed)))
            .collect()
    };
    let (m, b) = (outcomes(method), outcomes(base));
    let shared: Vec<(&String, bool, bool)> = m
        .iter()
        .filter_map(|(id, &mp)| b.get(id).map(|&bp| (id, mp, bp)))
        .collect();
    let rate = |pick: fn(&(&String, bool, bool)) -> bool| Rate {
        passed: shared.iter().filter(|t| pick(t)).count(),
        total: shared.len(),
    };
    let (method_rate, base_rate) = (rate(|t| t.1), rate(|t| t.2));
    Comparison {
        suite: suite.to_string(),
        method: method_rate,
        base: base_rate,
        rsr: rsr(method_rate, base_rate),
        fixed: shared
            .iter()
            .filter(|t| t.1 && !t.2)
            .map(|t| t.0.clone())
            .collect(),
        broken: shared
            .iter()
            .filter(|t| !t.1 && t.2)
            .map(|t| t.0.clone())
            .collect(),
    }
}

/// Two runs on the same tasks, told apart by their discordant tasks (those
/// one run passes and the other fails), with the exact two-sided sign test
/// on them (McNemar's exact test): the chance of a split at least as
/// lopsided if neither run were the better. On a few dozen tasks a gap of
/// two or three tasks is within chance, and a reader choosing between
/// methods should see that beside the rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Paired {
    /// Tasks the first run passes and the second fails.
    pub wins: usize,
    /// Tasks the second run passes and the first fails.
    pub losses: usize,
    /// The exact two-sided p-value of `wins` against `losses`.
    pub p_value: f64,
}

impl Paired {
    /// The paired view of `comparison`: its fixed tasks are the wins, its
    /// broken ones the losses.
    pub fn of(comparison: &Comparison) -> Paired {
        let (wins, losses) = (comparison.fixed.len(), comparison.broken.len());
        Paired {
            wins,
            losses,
            p_value: sign_test_p(wins, losses),
        }
    }
}

impl std::fmt::Display for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{}/-{}, ", self.wins, self.losses)?;
        // Three decimals keep the table narrow; a p-value they would round
        // to zero is said as the bound it is.
        if self.p_value < 0.0005 {
            write!(f, "p < 0.001")
        } else {
            write!(f, "p {:.3}", self.p_value)
        }
    }
}

/// The exact two-sided sign test: with `wins + losses` discordant tasks,
/// each a fair coin if the two runs were equally good, the probability of a
/// split at least as far from even as the one seen. 1 when there is no
/// discordant task.
pub fn sign_test_p(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    let fewer = wins.min(losses);
    // P(X <= fewer) for X ~ Binomial(n, 1/2), summed in log space so that
    // no term underflows whatever the task count.
    let mut log_term = -(n as f64) * std::f64::consts::LN_2;
    let mut tail = 0.0;
    for i in 0..=fewer {
        tail += log_term.exp();
        log_term += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    (2.0 * tail).min(1.0)
}

/// Mean, median and maximum of one per-task quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Maximum.
    pub max: f64,
    /// Total over all tasks.
    pub total: f64,
}

impl Spread {
    /// The spread of `values`; all zero when empty.
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread {
                mean: 0.0,
                median: 0.0,
                max: 0.0,
                total: 0.0,
            };
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let total: f64 = sorted.iter().sum();
        Spread {
            mean: total / n as f64,
            median,
            max: sorted[n - 1],
            total,
        }
    }
}

/// Cost per task of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CostSummary {
    /// Tasks counted.
    pub tasks: usize,
    /// Prefill plus decode tokens.
    pub tokens: Spread,
    /// Prefill tokens.
    pub prefill_tokens: Spread,
    /// Decode tokens.
    pub decode_tokens: Spread,
    /// Sandboxed executions.
    pub executions: Spread,
    /// Wall time in seconds.
    pub wall_s: Spread,
    /// Attempts run.
    pub attempts: Spread,
    /// The share of the tokens spent on attempts that produced no program,
    /// over the tasks whose solver says (`None` when none does), and how
    /// many tasks that is.
    pub no_program_share: Option<(f64, usize)>,
}

/// The cost summary of `results`.
pub fn cost(results: &[TaskResult]) -> CostSummary {
    let of =
        |f: &dyn Fn(&TaskResult) -> f64| Spread::of(&results.iter().map(f).collect::<Vec<_>>());
    CostSummary {
        tasks: results.len(),
        tokens: of(&|r| (r.solution.cost.prefill_tokens + r.solution.cost.decode_tokens) as f64),
        prefill_tokens: of(&|r| r.solution.cost.prefill_tokens as f64),
        decode_tokens: of(&|r| r.solution.cost.decode_tokens as f64),
        executions: of(&|r| r.solution.cost.executions as f64),
        wall_s: of(&|r| r.wall_ms / 1000.0),
        attempts: of(&|r| r.solution.attempt_programs().len() as f64),
        no_program_share: no_program_share(results),
    }
}

/// Σ no-program tokens / Σ tokens over the results that know the former,
/// with their count.
fn no_program_share(results: &[TaskResult]) -> Option<(f64, usize)> {
    let known: Vec<(u64, u64)> = results
        .iter()
        .filter_map(|r| {
            let c = &r.solution.cost;
            c.no_program_tokens
                .map(|n| (n, c.prefill_tokens + c.decode_tokens))
        })
        .collect();
    if known.is_empty() {
        return None;
    }
    let wasted: u64 = known.iter().map(|k| k.0).sum();
    let total: u64 = known.iter().map(|k| k.1).sum();
    let share = if total == 0 {
        0.0
    } else {
        wasted as f64 / total as f64
    };
    Some((share, known.len()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::solver::{Cost, ServerUsage, Solution};
    use crate::store::SuiteScore;

    #[test]
    fn wilson_intervals_match_worked_values_and_stay_in_range() {
        let rate = |passed, total| Rate { passed, total };
        // 8/10: centre 0.7167, half-width 0.2267 (worked by hand).
        let (lo, hi) = rate(8, 10).wilson_95().unwrap();
        assert!(
            (lo - 49.02).abs() < 0.01 && (hi - 94.33).abs() < 0.01,
            "{lo} {hi}"
        );
        assert_eq!(rate(8, 10).wilson_95_text(), "49–94%");
        // At the edges the interval stays inside [0, 100] and is not a point.
        let (lo, hi) = rate(0, 40).wilson_95().unwrap();
        assert!(lo.abs() < 1e-9 && (hi - 8.76).abs() < 0.01, "{lo} {hi}");
        let (lo, hi) = rate(40, 40).wilson_95().unwrap();
        assert!(
            (lo - 91.24).abs() < 0.01 && (hi - 100.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert_eq!(rate(0, 0).wilson_95(), None);
        assert_eq!(rate(0, 0).wilson_95_text(), "-");
    }

    /// A result on suite `s` with the given selected outcome and attempts.
    pub(crate) fn result(
        id: &str,
        passed: bool,
        attempts: &[bool],
        tokens: u64,
        wall_ms: f64,
    ) -> TaskResult {
        TaskResult {
            task_id: id.into(),
            solution: Solution {
                program: "p".into(),
                attempts: Vec::new(),
                cost: Cost {
                    prefill_tokens: tokens,
                    decode_tokens: 0,
                    executions: 1,
                    no_program_tokens: None,
                    usage: ServerUsage::default(),
                },
                records: serde_json::Value::Null,
                profile: None,
            },
            wall_ms,
            scores: vec![SuiteScore {
                suite: "s".into(),
                passed,
                tests_passed: 0,
                tests_total: 1,
                detail: String::new(),
                attempts_passed: Some(attempts.to_vec()),
            }],
        }
    }

    #[test]
    fn strict_and_any_of_n_by_hand() {
        let rs = vec![
            result("a", true, &[true], 10, 1000.0),
            result("b", false, &[false, true, false], 20, 2000.0),
            result("c", false, &[false, false], 30, 6000.0),
            result("d", true, &[false, true], 40, 3000.0),
        ];
        assert_eq!(
            strict_pass_at_1(&rs, "s"),
            Rate {
                passed: 2,
                total: 4
            }
        );
        assert_eq!(
            strict_pass_at_1(&rs, "other"),
            Rate {
                passed: 0,
                total: 0
            }
        );
        let any = any_of_n(&rs, "s").unwrap();
        assert_eq!(
            any.rate,
            Rate {
                passed: 3,
                total: 4
            }
        );
        assert_eq!((any.mean_attempts, any.max_attempts), (2.0, 3));
        let c = cost(&rs);
        assert_eq!(
            (c.tokens.mean, c.tokens.median, c.tokens.max),
            (25.0, 25.0, 40.0)
        );
        assert_eq!((c.wall_s.total, c.wall_s.median), (12.0, 2.5));
        assert_eq!(
            Rate {
                passed: 2,
                total: 4
            }
            .to_string(),
            "50.0% (2/4)"
        );
    }

    #[test]
    fn pass_at_k_matches_the_closed_form() {
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
        assert!((pass_at_k_one(5, 2, 2) - 0.7).abs() < 1e-12);
        // n=4, c=1, k=1: 1/4.
        assert!((pass_at_k_one(4, 1, 1) - 0.25).abs() < 1e-12);
        assert_eq!(pass_at_k_one(3, 2, 2), 1.0);
        assert_eq!(pass_at_k_one(3, 0, 2), 0.0);
        let rs = vec![
            result("a", true, &[true, false, false, false], 0, 0.0),
            result("b", false, &[false], 0, 0.0),
        ];
        let p2 = pass_at_k(&rs, "s", 2).unwrap();
        // Only task a has >= 2 samples: 1 - C(3,2)/C(4,2) = 1 - 3/6.
        assert_eq!(p2.tasks, 1);
        assert!((p2.percent - 50.0).abs() < 1e-9);
        assert_eq!(pass_at_k(&rs, "s", 1).unwrap().tasks, 2);
        assert!(pass_at_k(&rs, "s", 5).is_none());
    }

    #[test]
    fn rsr_and_comparison_use_only_shared_tasks() {
        // base 60%, method 80% -> RSR = 20 / 40 = 50%.
        let r = rsr(
            Rate {
                passed: 8,
                total: 10,
            },
            Rate {
                passed: 6,
                total: 10,
            },
        )
        .unwrap();
        assert!((r - 50.0).abs() < 1e-9);
        assert_eq!(
            rsr(
                Rate {
                    passed: 1,
                    total: 2
                },
                Rate {
                    passed: 2,
                    total: 2
                }
            ),
            None
        );
        let method = vec![
            result("a", true, &[], 0, 0.0),
            result("b", true, &[], 0, 0.0),
            result("c", false, &[], 0, 0.0),
            result("only-method", true, &[], 0, 0.0),
        ];
        let base = vec![
            result("a", true, &[], 0, 0.0),
            result("b", false, &[], 0, 0.0),
            result("c", true, &[], 0, 0.0),
            result("only-base", false, &[], 0, 0.0),
        ];
        let cmp = compare(&method, &base, "s");
        assert_eq!(
            cmp.method,
            Rate {
                passed: 2,
                total: 3
            }
        );
        assert_eq!(
            cmp.base,
            Rate {
                passed: 2,
                total: 3
            }
        );
        assert_eq!(cmp.rsr, Some(0.0));
        assert_eq!(
            (cmp.fixed, cmp.broken),
            (vec!["b".to_string()], vec!["c".to_string()])
        );
    }

    #[test]
    fn the_sign_test_matches_the_binomial_tails() {
        // No discordant task, or an even split: nothing to tell.
        assert_eq!(sign_test_p(0, 0), 1.0);
        assert_eq!(sign_test_p(3, 3), 1.0);
        // 5 to 0: 2 / 2^5.
        assert!((sign_test_p(5, 0) - 0.0625).abs() < 1e-12);
        assert_eq!(sign_test_p(0, 5), sign_test_p(5, 0), "two-sided");
        // 1 to 5: 2 * (1 + 6) / 2^6.
        assert!((sign_test_p(1, 5) - 14.0 / 64.0).abs() < 1e-12);
        // A thousand tasks neither underflow nor lose the tail.
        assert!((sign_test_p(500, 500) - 1.0).abs() < 1e-12);
        assert!(sign_test_p(0, 1000) > 0.0 && sign_test_p(400, 600) < 1e-9);
        let cmp = Comparison {
            suite: "s".into(),
            method: Rate {
                passed: 1,
                total: 6,
            },
            base: Rate {
                passed: 5,
                total: 6,
            },
            rsr: None,
            fixed: vec!["a".into()],
            broken: ["b", "c", "d", "e", "f"].map(String::from).to_vec(),
        };
        assert_eq!(Paired::of(&cmp).to_string(), "+1/-5, p 0.219");
        let lopsided = Paired {
            wins: 0,
            losses: 17,
            p_value: sign_test_p(0, 17),
        };
        assert_eq!(lopsided.to_string(), "+0/-17, p < 0.001");
    }

    #[test]
    fn the_no_program_share_counts_only_tasks_that_know_it() {
        let mut a = result("a", true, &[true], 1000, 1.0);
        let mut b = result("b", false, &[false], 3000, 1.0);
        let c = result("c", false, &[false], 5000, 1.0);
        assert_eq!(cost(std::slice::from_ref(&c)).no_program_share, None);
        a.solution.cost.no_program_tokens = Some(0);
        b.solution.cost.no_program_tokens = Some(2000);
        let (share, tasks) = cost(&[a, b, c]).no_program_share.unwrap();
        assert_eq!(tasks, 2);
        assert!((share - 0.5).abs() < 1e-12, "{share}");
    }
}
