//! MBPP (full), sanitized MBPP and the partial MBPP-ET.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use egcfg_task::{function_name_from_assert, Task, TestCase};

use super::embedded::{MBPP, MBPP_ET_PARTIAL, MBPP_SANITIZED};
use super::humaneval::records;
use super::schema::{MbppRecord, SanitizedRecord};
use super::{asserts, BenchTask, DatasetError, Suite};

/// The ids of an MBPP split, from the upstream README.
pub(super) fn split_ids(split: &str) -> Option<RangeInclusive<u32>> {
    Some(match split {
        "prompt" => 1..=10,
        "test" => 11..=510,
        "validation" => 511..=600,
        "train" => 601..=974,
        "all" => 1..=u32::MAX,
        _ => return None,
    })
}

/// The MBPP split names, in id order, plus `all`.
pub(super) const SPLITS: [&str; 5] = ["prompt", "test", "validation", "train", "all"];

/// The function the tests call (see [`function_name_from_assert`]): the
/// first test that names one decides.
pub(super) fn entry_point_of(tests: &[String]) -> Option<String> {
    tests.iter().find_map(|t| function_name_from_assert(t))
}

/// Tests for asserts that need `setup` run after the program (MBPP's
/// `test_setup_code` builds values from classes the candidate defines, as in
/// tasks 367 and 927): each becomes a script of the setup and the assert.
/// Without setup they stay plain asserts.
pub(super) fn tests_with_setup(codes: &[String], setup: &str) -> Vec<TestCase> {
    let setup = setup.replace("\r\n", "\n");
    if setup.trim().is_empty() {
        return asserts(codes);
    }
    codes
        .iter()
        .map(|code| TestCase::Script {
            code: format!("{}\n{}\n", setup.trim_end(), code.trim_end()),
        })
        .collect()
}

/// An MBPP-schema record as a task: `text` is the problem, `test_list` the
/// visible tests. Its suites are `mbpp` (`test_list` + `challenge_test_list`)
/// and `mbpp/base` (`test_list` only, the paper-comparable score).
pub(super) fn mbpp_task(
    id: String,
    record: &MbppRecord,
    source_name: &str,
) -> Result<(Task, Vec<Suite>), DatasetError> {
    let entry_point = record
        .entry_point
        .clone()
        .or_else(|| entry_point_of(&record.test_list))
        .ok_or_else(|| DatasetError::Malformed {
            source_name: source_name.to_string(),
            line: 0,
            message: format!(
                "task {id}: no test calls a function by name and there is no entry_point; add one"
            ),
        })?;
    let visible = tests_with_setup(&record.test_list, &record.test_setup_code);
    let mut full = record.test_list.clone();
    full.extend(record.challenge_test_list.iter().cloned());
    let suites = vec![
        Suite {
            name: "mbpp".into(),
            tests: tests_with_setup(&full, &record.test_setup_code),
            timeout: None,
        },
        Suite {
            name: "mbpp/base".into(),
            tests: visible.clone(),
            timeout: None,
        },
    ];
    let task = Task {
        id,
        prompt: record.text.clone(),
        entry_point,
        visible,
        hidden: Vec::new(),
        setup: None,
    };
    Ok((task, suites))
}

/// The MBPP task id as a number (upstream integers).
fn numeric_id(record: &MbppRecord) -> u32 {
    record.task_id.as_u64().unwrap_or(0) as u32
}

/// The name all MBPP-family datasets use for task `n`.
pub(super) fn task_name(n: u32) -> String {
    format!("Mbpp/{n}")
}

/// The name of the partial MBPP-ET suite, wherever a task gets it.
pub(super) const ET_SUITE: &str = "mbpp-et-partial";

/// The partial MBPP-ET suites by task id: its 102 asserts per task.
fn et_suites() -> Result<HashMap<u32, Suite>, DatasetError> {
    Ok(records::<MbppRecord>(&MBPP_ET_PARTIAL)?
        .into_iter()
        .map(|r| {
            let id = numeric_id(&r);
            let suite = Suite {
                name: ET_SUITE.into(),
                tests: tests_with_setup(&r.test_list, &r.test_setup_code),
                timeout: None,
            };
            (id, suite)
        })
        .collect())
}

/// Which MBPP-family file a dataset reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    /// `mbpp`: all 974 tasks.
    Full,
    /// `mbpp-sanitized`: 427 tasks, cleaned prompts.
    Sanitized,
    /// `mbpp-et-partial`: 397 tasks with 102 asserts each.
    EtPartial,
}

/// Loads the tasks of `variant` whose ids fall in `ids`.
pub(super) fn load(
    variant: Variant,
    ids: RangeInclusive<u32>,
) -> Result<Vec<BenchTask>, DatasetError> {
    let mut et = et_suites()?;
    let mut tasks = Vec::new();
    match variant {
        Variant::Full | Variant::EtPartial => {
            let file = if variant == Variant::Full {
                &MBPP
            } else {
                &MBPP_ET_PARTIAL
            };
            for mut record in records::<MbppRecord>(file)? {
                let n = numeric_id(&record);
                if !ids.contains(&n) {
                    continue;
                }
                let et_suite = et.remove(&n);
                if variant == Variant::EtPartial {
                    // Visible tests are MBPP's 3; the other 99 stay hidden.
                    record.test_list.truncate(3);
                }
                let (task, mut suites) = mbpp_task(task_name(n), &record, file.path)?;
                if let Some(suite) = et_suite {
                    let at = if variant == Variant::EtPartial {
                        0
                    } else {
                        suites.len()
                    };
                    suites.insert(at, suite);
                }
                tasks.push(BenchTask::new(task, suites));
            }
        }
        Variant::Sanitized => {
            for record in records::<SanitizedRecord>(&MBPP_SANITIZED)? {
                if !ids.contains(&record.task_id) {
                    continue;
                }
                let entry_point =
                    entry_point_of(&record.test_list).ok_or_else(|| DatasetError::Malformed {
                        source_name: MBPP_SANITIZED.path.into(),
                        line: 0,
                        message: format!("task {}: no test names a function", record.task_id),
                    })?;
                let imports = record.test_imports.join("\n");
                let mut suites = vec![Suite {
                    name: "mbpp-sanitized".into(),
                    tests: asserts(&record.test_list),
                    timeout: None,
                }];
                suites.extend(et.remove(&record.task_id));
                let task = Task {
                    id: task_name(record.task_id),
                    prompt: record.prompt.clone(),
                    entry_point,
                    visible: asserts(&record.test_list),
                    hidden: Vec::new(),
                    setup: (!imports.is_empty()).then_some(imports),
                };
                tasks.push(BenchTask::new(task, suites));
            }
        }
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(variant: Variant, split: &str) -> usize {
        load(variant, split_ids(split).unwrap()).unwrap().len()
    }

    #[test]
    fn split_counts_match_the_manifest() {
        let table = [
            (Variant::Full, [10, 500, 90, 374, 974]),
            (Variant::Sanitized, [7, 257, 43, 120, 427]),
            (Variant::EtPartial, [5, 235, 40, 117, 397]),
        ];
        for (variant, counts) in table {
            for (split, want) in SPLITS.iter().zip(counts) {
                assert_eq!(count(variant, split), want, "{variant:?} {split}");
            }
        }
    }

    #[test]
    fn mbpp_test_split_is_ids_11_to_510_with_three_visible_asserts() {
        let tasks = load(Variant::Full, split_ids("test").unwrap()).unwrap();
        assert_eq!(tasks.first().unwrap().id(), "Mbpp/11");
        assert_eq!(tasks.last().unwrap().id(), "Mbpp/510");
        assert!(tasks.iter().all(|t| t.visible.visible.len() == 3));
        let with_challenge: Vec<&str> = tasks
            .iter()
            .filter(|t| t.suites[0].tests.len() > 3)
            .map(|t| t.id())
            .collect();
        assert_eq!(with_challenge.len(), 11);
        assert_eq!(with_challenge[0], "Mbpp/11");
        let et: usize = tasks
            .iter()
            .filter(|t| t.suites.iter().any(|s| s.name == "mbpp-et-partial"))
            .count();
        assert_eq!(et, 235);
    }

    #[test]
    fn entry_point_behind_a_wrapper() {
        let tests =
            vec!["assert math.isclose(volume_sphere(10), 4188.79, rel_tol=0.001)".to_string()];
        assert_eq!(entry_point_of(&tests).as_deref(), Some("volume_sphere"));
        let tests = vec!["assert set(similar('a(', (3, 4))) == set((4,))".to_string()];
        assert_eq!(entry_point_of(&tests).as_deref(), Some("similar"));
        assert_eq!(entry_point_of(&["assert x == 1".to_string()]), None);
        let tests = vec!["assert sum(10,15) == 6".to_string()];
        assert_eq!(entry_point_of(&tests).as_deref(), Some("sum"));
    }

    #[test]
    fn setup_code_runs_after_the_program_inside_each_test() {
        let tasks = load(Variant::Full, 367..=367).unwrap();
        let task = &tasks[0].visible;
        assert_eq!(task.entry_point, "is_tree_balanced");
        assert_eq!(task.setup, None);
        match &task.visible[0] {
            TestCase::Script { code } => {
                assert!(code.starts_with("root = Node(1)") && !code.contains('\r'));
                assert!(code
                    .trim_end()
                    .ends_with("assert is_tree_balanced(root) == False"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn et_partial_shows_three_and_hides_all() {
        let tasks = load(Variant::EtPartial, split_ids("validation").unwrap()).unwrap();
        for t in &tasks {
            assert_eq!(t.visible.visible.len(), 3);
            assert_eq!(t.suites[0].name, "mbpp-et-partial");
            assert_eq!(t.suites[0].tests.len(), 102);
            assert_eq!(t.suites[0].tests[..3], t.visible.visible[..]);
        }
    }
}
