//! HumanEval and HumanEval-ET.

use std::collections::HashMap;

use egcfg_task::Task;

use super::embedded::{DataFile, HUMANEVAL, HUMANEVAL_ET};
use super::schema::HumanEvalRecord;
use super::{asserts, check_script, parse_examples, parse_records, BenchTask, DatasetError, Suite};

/// Reads an embedded file's records.
pub(super) fn records<T: serde::de::DeserializeOwned>(
    file: &DataFile,
) -> Result<Vec<T>, DatasetError> {
    let text = file.text().map_err(|error| DatasetError::Read {
        source_name: file.path.to_string(),
        error,
    })?;
    Ok(parse_records(&text, file.path)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// The visible part of a HumanEval-style task: the prompt as the problem,
/// its docstring examples as visible tests, and the prompt itself as setup,
/// so the imports and helper functions it defines exist when a candidate
/// (a complete program) runs.
pub(super) fn visible_task(task_id: &str, prompt: &str, entry_point: &str) -> Task {
    let examples = parse_examples(prompt, entry_point);
    for (source, reason) in &examples.skipped {
        tracing::debug!(task = task_id, example = %source, reason, "docstring example skipped");
    }
    Task {
        id: task_id.to_string(),
        prompt: prompt.to_string(),
        entry_point: entry_point.to_string(),
        visible: asserts(&examples.asserts),
        hidden: Vec::new(),
        setup: Some(prompt.to_string()),
    }
}

/// HumanEval's 164 tasks with two suites: the official `check` (`humaneval`)
/// and the extended asserts (`humaneval-et`). With `et_first` the ET suite
/// is the primary score (the `humaneval-et` dataset).
pub(super) fn load(et_first: bool) -> Result<Vec<BenchTask>, DatasetError> {
    let et: HashMap<String, Vec<String>> = records::<HumanEvalRecord>(&HUMANEVAL_ET)?
        .into_iter()
        .map(|r| (r.task_id, r.test_case_list))
        .collect();
    records::<HumanEvalRecord>(&HUMANEVAL)?
        .into_iter()
        .map(|r| {
            let official = Suite {
                name: "humaneval".into(),
                tests: vec![check_script(&r.test, &r.entry_point)],
                timeout: None,
            };
            let extended = Suite {
                name: "humaneval-et".into(),
                tests: asserts(et.get(&r.task_id).ok_or_else(|| DatasetError::Malformed {
                    source_name: HUMANEVAL_ET.path.into(),
                    line: 0,
                    message: format!("no record for {}", r.task_id),
                })?),
                timeout: None,
            };
            let suites = if et_first {
                vec![extended, official]
            } else {
                vec![official, extended]
            };
            Ok(BenchTask::new(
                visible_task(&r.task_id, &r.prompt, &r.entry_point),
                suites,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use egcfg_task::TestCase;

    fn code(t: &TestCase) -> &str {
        match t {
            TestCase::Assert { code } | TestCase::Script { code } => code,
            TestCase::Stdio { .. } => panic!("no stdio tests in HumanEval"),
        }
    }

    #[test]
    fn humaneval_loads_with_both_suites() {
        let tasks = load(false).unwrap();
        assert_eq!(tasks.len(), 164);
        assert_eq!(tasks[10].id(), "HumanEval/10", "HumanEval order, not ET's");
        for t in &tasks {
            assert!(t.visible.hidden.is_empty());
            assert_eq!(t.suites[0].name, "humaneval");
            assert!(code(&t.suites[0].tests[0])
                .ends_with(&format!("check({})\n", t.visible.entry_point)));
            assert!((12..=143).contains(&t.suites[1].tests.len()), "{}", t.id());
        }
        let et_total: usize = tasks.iter().map(|t| t.suites[1].tests.len()).sum();
        assert_eq!(et_total, 17_628);
        let et = load(true).unwrap();
        assert_eq!(et[0].suites[0].name, "humaneval-et");
    }

    #[test]
    fn docstring_examples_of_real_prompts() {
        let tasks = load(false).unwrap();
        let visible =
            |n: usize| -> Vec<&str> { tasks[n].visible.visible.iter().map(code).collect() };
        assert_eq!(
            visible(0),
            vec![
                "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False",
                "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True"
            ]
        );
        assert_eq!(visible(12)[0], "assert longest([]) is None");
        assert_eq!(visible(32)[0], "assert round(find_zero([1, 2]), 2) == -0.5");
        assert_eq!(
            visible(51)[1],
            "assert remove_vowels(\"abcdef\\nghijklm\") == 'bcdf\\nghjklm'"
        );
        assert_eq!(visible(108)[0], "assert count_nums([]) == 0");
        assert_eq!(
            visible(116)[2],
            "assert sort_array([1, 0, 2, 3, 4]) == [0, 1, 2, 3, 4]"
        );
        assert!(
            visible(113)[1].starts_with("assert odd_count(['3',\"11111111\"]) == [\"the number")
        );
        assert!(visible(38).is_empty(), "HumanEval/38 has no examples");
        let with_examples = tasks
            .iter()
            .filter(|t| !t.visible.visible.is_empty())
            .count();
        assert_eq!(
            with_examples, 76,
            "the MANIFEST counts 76 prompts with >>> examples"
        );
        assert_eq!(
            tasks[32].visible.setup.as_deref(),
            Some(tasks[32].visible.prompt.as_str())
        );
    }
}
