//! The budget curve of a group (issue 14): strict pass@1 against forward
//! tokens and wall time per task, for every run of the group (greedy
//! baseline, sample and EG-CFG at each budget), counted on the same tasks:
//! those every run of the group finished, so that no point gains or loses
//! by its task set. Every suite the runs were scored on gets its own points
//! (for MBPP: the prompt's asserts, MBPP+ and the MBPP-ET subset).
//!
//! A run derived from a larger run's records (`--method sample` runs only
//! the largest budget of a curve) is a point like the others, marked with
//! the run it was derived from.
//!
//! Every point with a budget is also set beside sampling at the same budget
//! on the same tasks ([`Paired`]): the equal-budget question of issue 14,
//! asked task by task, with the chance that the split is luck.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::metrics::{self, Paired, Rate};
use crate::store::TaskResult;

use super::{suites_of, Group, RunReport};

/// The points of one group's curve.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// Tasks every run of the group finished: the only ones counted.
    pub tasks: usize,
    /// One point per run and suite, by suite, method, then budget.
    pub points: Vec<CurvePoint>,
}

/// One run's place on the curve, on one suite.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// The suite.
    pub suite: String,
    /// The run's method.
    pub method: String,
    /// The run's config hash.
    pub config_hash: String,
    /// The hash of the run's config without its token budget (nor the run
    /// it was derived from): the runs of one setting at several budgets
    /// share it and make one line of the curve.
    pub setting: String,
    /// Its per-task token budget (`None`: none recorded, or no limit).
    pub budget: Option<u64>,
    /// Strict pass@1 on the shared tasks.
    pub strict: Rate,
    /// Mean forward tokens per shared task.
    pub tokens: f64,
    /// Mean wall seconds per shared task.
    pub wall_s: f64,
    /// For a run derived from a larger run's records rather than run, the
    /// config hash of that run.
    pub derived_from: Option<String>,
    /// This run against sampling at the same budget, task by task on the
    /// shared tasks of this suite; `None` for sampling's own points, runs
    /// without a budget, and budgets where the group has no sample run or
    /// more than one (several settings of sampling: none is *the* baseline).
    pub against_sample: Option<Paired>,
}

/// The method whose runs are the equal-budget baseline of the other points.
const SAMPLE_METHOD: &str = "sample";

/// The note that explains derived points, for tables that mark them.
pub const DERIVED_NOTE: &str = "A derived run was not run: it was worked out task by task from the records of the larger run named (`--method sample` answers run in lock-step, so a smaller budget's run is a prefix of the larger one's). Its attempts, programs, scores and tokens are exactly a real run's; its wall is the larger run's clock at the check where this budget stops it.";

/// What the 95% CI column of a curve means, and what it does not.
pub const INTERVAL_NOTE: &str = "95% CI: the Wilson score interval of the rate on its own, how far it could move on other tasks like these. Two lines on the same tasks are compared by the tasks only one of them passes (vs sample), not by whether their intervals overlap.";

/// The note that explains the column of [`CurvePoint::against_sample`].
pub const AGAINST_SAMPLE_NOTE: &str = "Against sample at the same budget: +tasks this line passes and sample fails / -tasks sample passes and this line fails, on the same tasks, and the exact two-sided sign test on those (the chance of a split at least as lopsided were neither better).";

/// The curve of `group`, when it has two runs or more with tasks in
/// common.
pub fn curve(group: &Group) -> Option<Curve> {
    if group.runs.len() < 2 {
        return None;
    }
    let shared = group
        .runs
        .iter()
        .map(|run| {
            run.results
                .iter()
                .map(|r| r.task_id.clone())
                .collect::<BTreeSet<String>>()
        })
        .reduce(|a, b| a.intersection(&b).cloned().collect())?;
    if shared.is_empty() {
        return None;
    }
    let runs: Vec<(&RunReport, Vec<TaskResult>)> = group
        .runs
        .iter()
        .map(|run| {
            let results = run
                .results
                .iter()
                .filter(|r| shared.contains(&r.task_id))
                .cloned()
                .collect();
            (run, results)
        })
        .collect();
    let mut points = Vec::new();
    for (run, results) in &runs {
        let budget = budget_of(run);
        let sample_at_budget = sample_at(&runs, run, budget);
        let cost = metrics::cost(results);
        for suite in suites_of(results) {
            let against_sample = sample_at_budget
                .map(|sample| Paired::of(&metrics::compare(results, sample, &suite)));
            points.push(CurvePoint {
                strict: metrics::strict_pass_at_1(results, &suite),
                suite,
                method: run.info.key.method.clone(),
                config_hash: run.info.config_hash.clone(),
                setting: setting_of(run),
                budget,
                tokens: cost.tokens.mean,
                wall_s: cost.wall_s.mean,
                derived_from: derived_from(run),
                against_sample,
            });
        }
    }
    points.sort_by(|a, b| {
        (&a.suite, &a.method, &a.setting, a.budget, &a.config_hash).cmp(&(
            &b.suite,
            &b.method,
            &b.setting,
            b.budget,
            &b.config_hash,
        ))
    });
    Some(Curve {
        tasks: shared.len(),
        points,
    })
}

/// The results of the one sample run at `budget` among `runs`, for a run
/// of another method with a budget.
fn sample_at<'a>(
    runs: &'a [(&RunReport, Vec<TaskResult>)],
    run: &RunReport,
    budget: Option<u64>,
) -> Option<&'a [TaskResult]> {
    if run.info.key.method == SAMPLE_METHOD || budget.is_none() {
        return None;
    }
    let mut at_budget = runs
        .iter()
        .filter(|(r, _)| r.info.key.method == SAMPLE_METHOD && budget_of(r) == budget);
    match (at_budget.next(), at_budget.next()) {
        (Some((_, results)), None) => Some(results),
        _ => None,
    }
}

/// The config hash of the run `run` was derived from, if it was.
fn derived_from(run: &RunReport) -> Option<String> {
    run.info.key.config["derived_from"]["config_hash"]
        .as_str()
        .map(str::to_owned)
}

/// The hash of `run`'s config less its token budget and the run it was
/// derived from.
fn setting_of(run: &RunReport) -> String {
    let mut key = run.info.key.clone();
    if let Some(config) = key.config.as_object_mut() {
        config.remove("derived_from");
        if let Some(budget) = config.get_mut("budget").and_then(|b| b.as_object_mut()) {
            budget.remove("max_tokens");
        }
    }
    key.config_hash()
}

impl Curve {
    /// The name of `point`'s line: its method, and its setting where the
    /// method has more than one on the curve.
    pub fn line_name(&self, point: &CurvePoint) -> String {
        let several = self
            .points
            .iter()
            .any(|p| p.method == point.method && p.setting != point.setting);
        if several {
            format!("{} {}", point.method, point.setting)
        } else {
            point.method.clone()
        }
    }
}

/// The token budget in a run's config (`budget.max_tokens`), if any.
fn budget_of(run: &RunReport) -> Option<u64> {
    run.info.key.config["budget"]["max_tokens"].as_u64()
}

#[cfg(test)]
mod tests {
    use super::super::{build, build_leaving_out};
    use crate::metrics::tests::result;
    use crate::store::{RunKey, Store};

    fn key(method: &str, budget: Option<u64>) -> RunKey {
        RunKey {
            dataset: "mbpp".into(),
            split: "train".into(),
            method: method.into(),
            model: "m".into(),
            config: serde_json::json!({ "budget": { "max_tokens": budget } }),
        }
    }

    fn derived(mut key: RunKey, from: &str) -> RunKey {
        key.config["derived_from"] = serde_json::json!({ "config_hash": from });
        key
    }

    #[test]
    fn points_count_only_the_tasks_every_run_finished() {
        let mut store = Store::open_in_memory().unwrap();
        let runs = [
            (
                key("baseline", None),
                vec![("a", false, 500), ("b", true, 500)],
            ),
            (
                key("sample", Some(3000)),
                vec![("a", false, 3000), ("b", true, 1000), ("c", true, 9)],
            ),
            (
                key("sample", Some(6000)),
                vec![("a", true, 5000), ("b", true, 1000)],
            ),
            (
                derived(key("sample", Some(4000)), "abc"),
                vec![("a", false, 4000), ("b", true, 1000)],
            ),
        ];
        for (key, results) in runs {
            let run = store.open_run(&key, "v").unwrap();
            for (id, passed, tokens) in results {
                store
                    .record(run, &result(id, passed, &[passed], tokens, 2000.0))
                    .unwrap();
            }
        }
        let report = build(&store).unwrap();
        let curve = super::curve(&report.groups[0]).unwrap();
        assert_eq!(curve.tasks, 2, "task c is not in every run");
        let summary: Vec<String> = curve
            .points
            .iter()
            .map(|p| {
                let from = p.derived_from.as_deref().unwrap_or("-");
                let budget = p.budget.map_or("-".into(), |b| b.to_string());
                format!(
                    "{} {budget} {} {} {from}",
                    p.method, p.strict.passed, p.tokens
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "baseline - 1 500 -",
                "sample 3000 1 2000 -",
                "sample 4000 1 2500 abc",
                "sample 6000 2 3000 -",
            ]
        );
        assert!(curve
            .points
            .iter()
            .all(|p| p.strict.total == 2 && p.wall_s == 2.0));
    }

    #[test]
    fn points_are_set_beside_sampling_at_their_own_budget() {
        let mut store = Store::open_in_memory().unwrap();
        let outcomes = |passes: [bool; 4]| {
            ["a", "b", "c", "d"]
                .into_iter()
                .zip(passes)
                .collect::<Vec<_>>()
        };
        let runs = [
            (key("baseline", None), outcomes([true, false, false, false])),
            (
                key("sample", Some(3000)),
                outcomes([true, false, true, true]),
            ),
            (
                key("egcfg", Some(3000)),
                outcomes([true, true, false, false]),
            ),
            (key("egcfg", Some(6000)), outcomes([true, true, true, true])),
        ];
        for (key, results) in runs {
            let run = store.open_run(&key, "v").unwrap();
            for (id, passed) in results {
                store
                    .record(run, &result(id, passed, &[passed], 100, 1000.0))
                    .unwrap();
            }
        }
        let against = |store: &Store| -> Vec<String> {
            let report = build(store).unwrap();
            let curve = super::curve(&report.groups[0]).unwrap();
            curve
                .points
                .iter()
                .map(|p| {
                    let vs = p.against_sample.map_or("-".into(), |c| c.to_string());
                    format!("{} {:?} {vs}", p.method, p.budget)
                })
                .collect()
        };
        assert_eq!(
            against(&store),
            [
                "baseline None -",
                "egcfg Some(3000) +1/-2, p 1.000",
                "egcfg Some(6000) -",
                "sample Some(3000) -",
            ],
            "only a budget sampling also ran is compared"
        );
        // A second setting of sampling at 3,000 leaves no single baseline.
        let mut other = key("sample", Some(3000));
        other.config["seed"] = 7.into();
        let run = store.open_run(&other, "v").unwrap();
        for id in ["a", "b", "c", "d"] {
            store
                .record(run, &result(id, true, &[true], 100, 1000.0))
                .unwrap();
        }
        assert!(against(&store).iter().all(|line| line.ends_with(" -")));
    }

    #[test]
    fn a_run_left_out_no_longer_narrows_the_shared_tasks() {
        let mut store = Store::open_in_memory().unwrap();
        let mut short = key("egcfg", Some(3000));
        short.config["grid"] = "default".into();
        for (key, ids) in [
            (key("baseline", None), &["a", "b", "c"][..]),
            (key("sample", Some(3000)), &["a", "b", "c"][..]),
            (short.clone(), &["a"][..]),
        ] {
            let run = store.open_run(&key, "v").unwrap();
            for id in ids {
                store
                    .record(run, &result(id, true, &[true], 100, 1000.0))
                    .unwrap();
            }
        }
        let tasks = |left_out: &[String]| {
            let report = build_leaving_out(&store, left_out).unwrap();
            let runs = report.groups[0].runs.len();
            (runs, super::curve(&report.groups[0]).unwrap().tasks)
        };
        assert_eq!(tasks(&[]), (3, 1));
        assert_eq!(tasks(&[short.config_hash()]), (2, 3));
    }

    #[test]
    fn each_setting_of_a_method_is_a_line_of_its_own() {
        let mut store = Store::open_in_memory().unwrap();
        let with_grid = |budget: u64, grid: &str| {
            let mut key = key("egcfg", Some(budget));
            key.config["grid"] = grid.into();
            key
        };
        let keys = [
            key("sample", Some(6000)),
            derived(key("sample", Some(3000)), "abc"),
            with_grid(3000, "default"),
            with_grid(6000, "default"),
            with_grid(3000, "spend"),
            with_grid(6000, "spend"),
        ];
        for key in keys {
            let run = store.open_run(&key, "v").unwrap();
            store
                .record(run, &result("a", true, &[true], 100, 1000.0))
                .unwrap();
        }
        let report = build(&store).unwrap();
        let curve = super::curve(&report.groups[0]).unwrap();
        let lines: Vec<(String, Option<u64>)> = curve
            .points
            .iter()
            .map(|p| (curve.line_name(p), p.budget))
            .collect();
        let default = with_grid(0, "default");
        let spend = with_grid(0, "spend");
        let name = |key: &crate::store::RunKey| {
            let mut key = key.clone();
            key.config["budget"]
                .as_object_mut()
                .unwrap()
                .remove("max_tokens");
            format!("egcfg {}", key.config_hash())
        };
        let mut expected = vec![
            (name(&default), Some(3000)),
            (name(&default), Some(6000)),
            (name(&spend), Some(3000)),
            (name(&spend), Some(6000)),
        ];
        expected.sort();
        expected.extend([
            ("sample".to_string(), Some(3000)),
            ("sample".to_string(), Some(6000)),
        ]);
        assert_eq!(
            lines, expected,
            "the derived sample run is on the line of the run it came from"
        );
    }
}
