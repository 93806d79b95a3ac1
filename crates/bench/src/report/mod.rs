//! `egcfg report`: what a results database says, as a markdown table and
//! as one self-contained HTML page.
//!
//! Runs are grouped by (dataset, split, model). Within a group the run of
//! method `baseline` (the first one, if several configs exist) is the
//! reference for RSR and for the per-task fixed/broken lists; comparisons
//! are always on the tasks both runs finished.

mod curve;
mod html;
mod markdown;
mod phases;
mod requests;
mod svg;

pub use curve::{Curve, CurvePoint, AGAINST_SAMPLE_NOTE, DERIVED_NOTE, INTERVAL_NOTE};
pub use html::{escape, html, EXPLORER_PORT, HTML_TITLE};
pub use markdown::markdown;

use serde::Serialize;

use crate::metrics::{self, AnyOfN, Comparison, CostSummary, PassAtK, Rate};
use crate::profile::RunProfile;
use crate::server_cost::{server_cost, ServerCost};
use crate::store::{RunInfo, Store, StoreError, TaskResult, UnrunnableTask};

/// The method name whose runs are the baseline of their group.
pub const BASELINE_METHOD: &str = "baseline";

/// The k values reported for pass@k (each only when some task has k samples).
const PASS_AT_K: [usize; 3] = [1, 5, 10];

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One group per (dataset, split, model), in order of first run.
    pub groups: Vec<Group>,
    /// Config hashes of the runs the reader asked to leave out, which no
    /// table, comparison or curve counts (said at the top of the report).
    pub left_out: Vec<String>,
}

/// The note that says which runs a report leaves out, if any.
pub fn left_out_note(report: &Report) -> Option<String> {
    (!report.left_out.is_empty()).then(|| {
        format!(
            "Left out of this report, as asked: the runs with config hash {}. Nothing below counts them, the budget curve's shared tasks included.",
            report.left_out.join(", ")
        )
    })
}

/// The note that names the companion suites scoring none of a group's
/// tasks, if any.
pub fn unscored_note(group: &Group) -> Option<String> {
    (!group.unscored_suites.is_empty()).then(|| {
        format!(
            "None of these tasks is in {}; no score comes from there.",
            group.unscored_suites.join(" or ")
        )
    })
}

/// The runs of one dataset split on one model.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The dataset.
    pub dataset: String,
    /// The split.
    pub split: String,
    /// The model.
    pub model: String,
    /// The dataset's caveats, from the registry.
    pub note: Option<&'static str>,
    /// The dataset's companion suites that score none of the group's tasks
    /// (MBPP+ holds none of Mbpp/511–550, say), named so that their absence
    /// from the tables is not taken for an omission.
    pub unscored_suites: Vec<&'static str>,
    /// Suites left out because they gave every task of the group the same
    /// verdict and test counts as an earlier suite, as (left out, kept):
    /// MBPP's `mbpp/base` is `mbpp` itself outside the 11 test tasks with
    /// challenge tests, and two tables of the same rows say nothing twice.
    pub twin_suites: Vec<(String, String)>,
    /// Runs, by id.
    pub runs: Vec<RunReport>,
    /// Index into `runs` of the baseline, if the group has one.
    pub baseline: Option<usize>,
    /// Strict pass@1 against cost of every run, on the tasks all finished.
    pub curve: Option<Curve>,
}

/// One run's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run.
    pub info: RunInfo,
    /// Its finished tasks.
    pub results: Vec<TaskResult>,
    /// Its tasks that could not run at all (not in any score), with why.
    pub unrunnable: Vec<UnrunnableTask>,
    /// Scores per suite, the primary suite first.
    pub suites: Vec<SuiteReport>,
    /// Cost per task.
    pub cost: CostSummary,
    /// Where the time went, summed over the tasks that recorded it.
    pub profile: Option<RunProfile>,
    /// What a model server was asked for, when the run's model was served.
    pub server_cost: Option<ServerCost>,
}

/// One suite's scores in one run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The suite.
    pub suite: String,
    /// Strict pass@1.
    pub strict: Rate,
    /// Any-of-N, when attempts were scored.
    pub any_of_n: Option<AnyOfN>,
    /// pass@k estimates that exist.
    pub pass_at_k: Vec<PassAtK>,
    /// Against the group's baseline (absent for the baseline itself).
    pub vs_baseline: Option<Comparison>,
}

/// The suites of `results` in order of first appearance.
fn suites_of<'a>(results: impl IntoIterator<Item = &'a TaskResult>) -> Vec<String> {
    let mut suites: Vec<String> = Vec::new();
    for s in results.into_iter().flat_map(|r| &r.scores) {
        if !suites.contains(&s.suite) {
            suites.push(s.suite.clone());
        }
    }
    suites
}

/// The scores of every suite of `results`, in order of first appearance.
fn suite_reports(results: &[TaskResult]) -> Vec<SuiteReport> {
    suites_of(results)
        .into_iter()
        .map(|suite| SuiteReport {
            strict: metrics::strict_pass_at_1(results, &suite),
            any_of_n: metrics::any_of_n(results, &suite),
            pass_at_k: PASS_AT_K
                .iter()
                .filter_map(|&k| metrics::pass_at_k(results, &suite, k))
                .collect(),
            vs_baseline: None,
            suite,
        })
        .collect()
}

/// The suites of `runs` (`suites`, in order of first appearance) that
/// score every task exactly as an earlier suite does (present on the same tasks, with the same verdicts, test counts
/// and attempt verdicts), each with the earlier suite it repeats.
fn twin_suites(runs: &[RunReport], suites: &[String]) -> Vec<(String, String)> {
    let results: Vec<&TaskResult> = runs.iter().flat_map(|r| &r.results).collect();
    let outcome = |r: &TaskResult, suite: &str| {
        r.score(suite).map(|s| {
            (
                s.passed,
                s.tests_passed,
                s.tests_total,
                s.attempts_passed.clone(),
            )
        })
    };
    let mut twins: Vec<(String, String)> = Vec::new();
    for (i, later) in suites.iter().enumerate() {
        let kept = suites[..i]
            .iter()
            .filter(|earlier| !twins.iter().any(|(twin, _)| twin == *earlier))
            .find(|earlier| {
                results
                    .iter()
                    .all(|r| outcome(r, earlier) == outcome(r, later))
            });
        if let Some(kept) = kept {
            twins.push((later.clone(), kept.clone()));
        }
    }
    twins
}

/// The note that names the suites left out as twins of others, if any.
pub fn twin_note(group: &Group) -> Option<String> {
    let twins: Vec<String> = group
        .twin_suites
        .iter()
        .map(|(twin, kept)| {
            format!("{twin} scored every task here exactly as {kept} did: its rows would repeat {kept}'s and are left out.")
        })
        .collect();
    (!twins.is_empty()).then(|| twins.join(" "))
}

/// Reads every run of `store` and computes its numbers.
///
/// The solvers' records are left unread (each result's are `null`): no
/// table or page of a report shows them (`egcfg explore` does, task by
/// task), and they are most of a database's bytes (138 of the 142 MB of a
/// 1.5B train curve).
pub fn build(store: &Store) -> Result<Report, StoreError> {
    build_leaving_out(store, &[])
}

/// As [`build`], without the runs whose config hash is in `left_out`: a
/// run on fewer tasks than the others would shrink the budget curve's
/// shared tasks to its own, and a reader comparing some settings of a
/// database needs the others out of the way.
pub fn build_leaving_out(store: &Store, left_out: &[String]) -> Result<Report, StoreError> {
    let mut groups: Vec<Group> = Vec::new();
    let runs = store.runs()?;
    for info in runs
        .into_iter()
        .filter(|info| !left_out.contains(&info.config_hash))
    {
        let results = store.result_summaries(info.id)?;
        let cost = metrics::cost(&results);
        let profile = RunProfile::of(
            results
                .iter()
                .map(|r| (r.wall_ms, r.solution.profile.as_ref())),
        );
        let run = RunReport {
            unrunnable: store.unrunnable(info.id)?,
            profile,
            server_cost: server_cost(&results),
            info,
            results,
            // Scored once the group is known (its twin suites left out).
            suites: Vec::new(),
            cost,
        };
        let k = &run.info.key;
        let at = groups
            .iter()
            .position(|g| g.dataset == k.dataset && g.split == k.split && g.model == k.model);
        let group = match at {
            Some(i) => &mut groups[i],
            None => {
                let listing = crate::datasets::list()
                    .into_iter()
                    .find(|l| l.name == k.dataset);
                groups.push(Group {
                    dataset: k.dataset.clone(),
                    split: k.split.clone(),
                    model: k.model.clone(),
                    note: listing.as_ref().map(|l| l.note),
                    unscored_suites: listing.map_or_else(Vec::new, |l| l.companion_suites),
                    twin_suites: Vec::new(),
                    runs: Vec::new(),
                    baseline: None,
                    curve: None,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        if group.baseline.is_none() && k.method == BASELINE_METHOD {
            group.baseline = Some(group.runs.len());
        }
        group.runs.push(run);
    }
    for group in &mut groups {
        // What was scored, before twins are left out: a companion suite
        // left out as a twin still scored its tasks.
        let scored = suites_of(group.runs.iter().flat_map(|r| &r.results));
        group
            .unscored_suites
            .retain(|name| !scored.iter().any(|s| s == name));
        group.twin_suites = twin_suites(&group.runs, &scored);
        for run in &mut group.runs {
            for result in &mut run.results {
                result
                    .scores
                    .retain(|s| !group.twin_suites.iter().any(|(twin, _)| *twin == s.suite));
            }
            run.suites = suite_reports(&run.results);
        }
        group.curve = curve::curve(group);
        let Some(b) = group.baseline else { continue };
        let base = group.runs[b].results.clone();
        for (i, run) in group.runs.iter_mut().enumerate() {
            if i == b {
                continue;
            }
            for suite in &mut run.suites {
                suite.vs_baseline = Some(metrics::compare(&run.results, &base, &suite.suite));
            }
        }
    }
    Ok(Report {
        groups,
        left_out: left_out.to_vec(),
    })
}

/// An anchor id for a task's recorded generation in one run.
pub(crate) fn record_anchor(run: i64, task_id: &str) -> String {
    let slug: String = task_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("r{run}-{slug}")
}

/// `12.3` or `-` for a missing value.
/// `42.0% (n=3)`, or `-` when unknown.
pub(crate) fn fmt_share(value: Option<(f64, usize)>) -> String {
    value.map_or("-".into(), |(share, n)| {
        format!("{:.1}% (n={n})", 100.0 * share)
    })
}

pub(crate) fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// A compact count: 1234 → `1.2k`.
pub(crate) fn fmt_count(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::solver::{Attempt, Cost, ServerUsage, Solution};
    use crate::store::{RunKey, SuiteScore};

    fn result(id: &str, passed: bool, tokens: u64) -> TaskResult {
        TaskResult {
            task_id: id.into(),
            solution: Solution {
                program: format!("def f():\n    return {}  # <b>&\n", passed),
                attempts: vec![Attempt {
                    label: "greedy".into(),
                    program: "def f(): pass".into(),
                    visible_passed: 1,
                    visible_total: 3,
                    gamma: None,
                    wall_s: None,
                    usage: ServerUsage::default(),
                }],
                cost: Cost {
                    prefill_tokens: tokens,
                    decode_tokens: 10,
                    executions: 2,
                    no_program_tokens: None,
                    usage: ServerUsage::default(),
                },
                records: serde_json::json!({"note": "<script>x</script>"}),
                profile: None,
            },
            wall_ms: 1500.0,
            scores: vec![SuiteScore {
                suite: "mbpp".into(),
                passed,
                tests_passed: passed as usize,
                tests_total: 1,
                detail: String::new(),
                attempts_passed: Some(vec![passed]),
            }],
        }
    }

    /// A store with a baseline and an EG-CFG run on mbpp:validation; the
    /// method fixes Mbpp/512 and breaks Mbpp/513; Mbpp/514 only in EG-CFG,
    /// whose tasks alone have a time profile.
    pub(crate) fn sample_store() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let key = |method: &str| RunKey {
            dataset: "mbpp".into(),
            split: "validation".into(),
            method: method.into(),
            model: "qwen".into(),
            config: serde_json::json!({}),
        };
        let base = store.open_run(&key("baseline"), "v").unwrap();
        let eg = store.open_run(&key("egcfg"), "v").unwrap();
        for (id, b, e) in [
            ("Mbpp/511", true, true),
            ("Mbpp/512", false, true),
            ("Mbpp/513", true, false),
        ] {
            store.record(base, &result(id, b, 100)).unwrap();
            store.record(eg, &profiled(result(id, e, 1000))).unwrap();
        }
        store
            .record(eg, &profiled(result("Mbpp/514", true, 1000)))
            .unwrap();
        store
    }

    /// A store with one run on a served model: two tasks of 15 requests
    /// each (120 generated tokens in all), whose attempts made 4 (γ = 0)
    /// and 16 (γ = 1) of them.
    pub(crate) fn served_store() -> Store {
        let usage = |requests: u64, generated_tokens: u64| ServerUsage {
            requests,
            prompt_tokens: 100 * requests,
            cached_prompt_tokens: 40 * requests,
            generated_tokens,
        };
        let attempt = |gamma: f32, usage: ServerUsage| Attempt {
            label: format!("γ={gamma}"),
            program: "def f(): pass".into(),
            visible_passed: 0,
            visible_total: 1,
            gamma: Some(gamma),
            wall_s: Some(2.0),
            usage,
        };
        let mut store = Store::open_in_memory().unwrap();
        let run = store
            .open_run(
                &RunKey {
                    dataset: "mbpp".into(),
                    split: "validation".into(),
                    method: "egcfg".into(),
                    model: "served".into(),
                    config: serde_json::json!({}),
                },
                "v",
            )
            .unwrap();
        let attempts = [
            vec![attempt(0.0, usage(4, 10)), attempt(1.0, usage(9, 40))],
            vec![attempt(1.0, usage(7, 40))],
        ];
        for (i, attempts) in attempts.into_iter().enumerate() {
            let mut served = result(&format!("Mbpp/51{i}"), true, 100);
            served.solution.attempts = attempts;
            served.solution.cost.usage = usage(15, 60);
            store.record(run, &served).unwrap();
        }
        store
    }

    fn profiled(mut result: TaskResult) -> TaskResult {
        result.solution.profile = Some(crate::profile::tests::sample_profile());
        result
    }

    #[test]
    fn groups_runs_and_compares_on_shared_tasks() {
        let report = build(&sample_store()).unwrap();
        assert_eq!(report.groups.len(), 1);
        let g = &report.groups[0];
        assert_eq!(g.baseline, Some(0));
        assert!(g.note.is_some_and(|n| n.contains("3 asserts")));
        let eg = &g.runs[1].suites[0];
        assert_eq!(
            eg.strict,
            Rate {
                passed: 3,
                total: 4
            }
        );
        let cmp = eg.vs_baseline.as_ref().unwrap();
        assert_eq!(
            (cmp.method, cmp.base),
            (
                Rate {
                    passed: 2,
                    total: 3
                },
                Rate {
                    passed: 2,
                    total: 3
                }
            )
        );
        assert_eq!(cmp.fixed, vec!["Mbpp/512"]);
        assert_eq!(cmp.broken, vec!["Mbpp/513"]);
        assert!(g.runs[0].suites[0].vs_baseline.is_none());
    }

    #[test]
    fn the_records_are_left_unread() {
        let report = build(&sample_store()).unwrap();
        let results = report.groups[0].runs.iter().flat_map(|r| &r.results);
        assert!(results.clone().count() > 0);
        assert!(results.into_iter().all(|r| r.solution.records.is_null()));
    }

    /// `store` with every result given a second suite, `mbpp/base`, that
    /// repeats its `mbpp` score, except on `differing` (if any).
    fn with_base_suite(differing: Option<&str>) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let source = sample_store();
        for info in source.runs().unwrap() {
            let run = store.open_run(&info.key, "v").unwrap();
            for mut r in source.results(info.id).unwrap() {
                let mut base = r.scores[0].clone();
                base.suite = "mbpp/base".into();
                if differing == Some(r.task_id.as_str()) {
                    base.tests_total += 1;
                }
                r.scores.push(base);
                store.record(run, &r).unwrap();
            }
        }
        store
    }

    #[test]
    fn a_suite_that_repeats_another_on_every_task_is_left_out_and_named() {
        let report = build(&with_base_suite(None)).unwrap();
        let g = &report.groups[0];
        assert_eq!(
            g.twin_suites,
            [("mbpp/base".to_string(), "mbpp".to_string())]
        );
        assert!(g.runs.iter().all(|r| r.suites.len() == 1));
        let curve = g.curve.as_ref().unwrap();
        assert!(curve.points.iter().all(|p| p.suite == "mbpp"));
        let text = markdown(&report);
        assert!(!text.contains("| mbpp/base |"), "{text}");
        assert!(
            text.contains(
                "mbpp/base scored every task here exactly as mbpp did: its rows would repeat mbpp's and are left out."
            ),
            "{text}"
        );

        // A companion suite left out as a twin still scored its tasks.
        let mut store = Store::open_in_memory().unwrap();
        let source = sample_store();
        for info in source.runs().unwrap() {
            let run = store.open_run(&info.key, "v").unwrap();
            for mut r in source.results(info.id).unwrap() {
                let plus = SuiteScore {
                    suite: "mbpp+".into(),
                    ..r.scores[0].clone()
                };
                r.scores.push(plus);
                store.record(run, &r).unwrap();
            }
        }
        let report = build(&store).unwrap();
        let g = &report.groups[0];
        assert_eq!(g.twin_suites, [("mbpp+".to_string(), "mbpp".to_string())]);
        assert_eq!(g.unscored_suites, ["mbpp-et-partial"]);

        // One task told apart is enough to keep both.
        let report = build(&with_base_suite(Some("Mbpp/514"))).unwrap();
        let g = &report.groups[0];
        assert!(g.twin_suites.is_empty());
        assert_eq!(g.runs[1].suites.len(), 2);
        assert!(twin_note(g).is_none());
    }

    #[test]
    fn companion_suites_no_run_scored_are_named() {
        let report = build(&sample_store()).unwrap();
        let g = &report.groups[0];
        assert_eq!(g.unscored_suites, ["mbpp-et-partial", "mbpp+"]);
        assert_eq!(
            unscored_note(g).unwrap(),
            "None of these tasks is in mbpp-et-partial or mbpp+; no score comes from there."
        );

        // One task scored on MBPP+ in one run is enough to drop it.
        let mut store = sample_store();
        let run = store.runs().unwrap()[1].id;
        let mut plus = result("Mbpp/515", true, 1000);
        plus.scores.push(SuiteScore {
            suite: "mbpp+".into(),
            ..plus.scores[0].clone()
        });
        store.record(run, &plus).unwrap();
        let report = build(&store).unwrap();
        assert_eq!(report.groups[0].unscored_suites, ["mbpp-et-partial"]);
    }
}
