//! `jsonl:PATH`: a user's own tasks in MBPP's or HumanEval's schema.

use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::humaneval::visible_task;
use super::mbpp::mbpp_task;
use super::schema::{HumanEvalRecord, MbppRecord};
use super::{check_script, BenchTask, Dataset, DatasetError, Suite};

const SCHEMA_HELP: &str = "each line must be a JSON object in MBPP's schema \
(task_id, text, test_list, optional challenge_test_list, test_setup_code, entry_point) \
or HumanEval's (task_id, prompt, entry_point, test)";

/// Loads a user's JSON Lines file. Each line is detected on its own: an
/// object with `text` and `test_list` is MBPP-style (visible = `test_list`,
/// hidden = `test_list` + `challenge_test_list`); one with `prompt`, `test`
/// and `entry_point` is HumanEval-style (visible = the docstring examples,
/// hidden = `check`). Both score into the suite `jsonl`. A line that holds
/// no usable task (not JSON, of neither schema, without tests, or repeating
/// an earlier id) is skipped and named in the dataset's notes, so one bad
/// task never stops a run; a file without one usable task is refused.
pub(super) fn load(path: &Path) -> Result<Dataset, DatasetError> {
    let source_name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| DatasetError::Read {
        source_name: source_name.clone(),
        error,
    })?;
    parse_jsonl(&source_name, &bytes)
}

/// Parses the bytes of a user's JSON Lines dataset, as [`load`] reads
/// them from a file; `source_name` names it in errors and in the dataset's
/// name. Never panics, whatever the bytes (the fuzz target `user_dataset`
/// and `tests/fuzz_smoke.rs` hold it to that).
pub fn parse_jsonl(source_name: &str, bytes: &[u8]) -> Result<Dataset, DatasetError> {
    let source_name = source_name.to_owned();
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| DatasetError::Malformed {
        source_name: source_name.clone(),
        line: 0,
        message: format!("not UTF-8 ({e})"),
    })?;
    let mut tasks = Vec::new();
    // Each task's id and the line it came from, to name a repeated one.
    let mut first_line = HashMap::new();
    // A bad line costs only its own task: it is named and the rest run.
    let mut skipped = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_number = index + 1;
        match parse_line(line, &source_name) {
            Ok(task) => match first_line.entry(task.id().to_string()) {
                Entry::Occupied(first) => skipped.push((
                    line_number,
                    format!(
                        "task_id {} repeats line {}'s, whose task is kept",
                        task.id(),
                        first.get()
                    ),
                )),
                Entry::Vacant(slot) => {
                    slot.insert(line_number);
                    tasks.push(task);
                }
            },
            Err(message) => skipped.push((line_number, message)),
        }
    }
    if tasks.is_empty() {
        let (line, message) = match skipped.first() {
            Some((line, message)) => {
                let others = match skipped.len() - 1 {
                    0 => String::new(),
                    n => format!(", nor do {n} other line(s)"),
                };
                (
                    *line,
                    format!("{message}; this line holds no usable task{others}"),
                )
            }
            None => (0, format!("no tasks; {SCHEMA_HELP}")),
        };
        return Err(DatasetError::Malformed {
            source_name,
            line,
            message,
        });
    }
    let notes = skipped
        .into_iter()
        .map(|(line, message)| format!("{source_name}, line {line}: skipped, {message}"))
        .collect();
    Ok(Dataset {
        name: format!("jsonl:{source_name}"),
        split: "all".into(),
        version: hex::encode(Sha256::digest(bytes)),
        tasks,
        notes,
    })
}

/// The task on one line of a user's file, or why there is none.
fn parse_line(line: &str, source_name: &str) -> Result<BenchTask, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    if value.get("text").is_some() && value.get("test_list").is_some() {
        let record: MbppRecord =
            serde_json::from_value(value).map_err(|e| format!("{e}; {SCHEMA_HELP}"))?;
        let id = match &record.task_id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if record.test_list.is_empty() {
            return Err("test_list is empty; give at least one assert".into());
        }
        let (task, mut suites) = mbpp_task(id, &record, source_name).map_err(|e| e.to_string())?;
        suites.truncate(1);
        suites[0].name = "jsonl".into();
        Ok(BenchTask::new(task, suites))
    } else if value.get("prompt").is_some() && value.get("test").is_some() {
        let record: HumanEvalRecord =
            serde_json::from_value(value).map_err(|e| format!("{e}; {SCHEMA_HELP}"))?;
        let suite = Suite {
            name: "jsonl".into(),
            tests: vec![check_script(&record.test, &record.entry_point)],
            timeout: None,
        };
        Ok(BenchTask::new(
            visible_task(&record.task_id, &record.prompt, &record.entry_point),
            vec![suite],
        ))
    } else {
        Err(SCHEMA_HELP.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egcfg_task::TestCase;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn both_schemas_load() {
        let (_d, p) = write(concat!(
            r#"{"task_id": 7, "text": "Add.", "test_list": ["assert add(1, 2) == 3"], "challenge_test_list": ["assert add(0, 0) == 0"]}"#,
            "\n\n",
            r#"{"task_id": "h/1", "prompt": "def sq(x):\n    \"\"\"\n    >>> sq(2)\n    4\n    \"\"\"\n", "entry_point": "sq", "test": "def check(c):\n    assert c(3) == 9"}"#,
            "\n"
        ));
        let ds = load(&p).unwrap();
        assert_eq!(ds.tasks.len(), 2);
        let mbpp = &ds.tasks[0];
        assert_eq!((mbpp.id(), mbpp.visible.entry_point.as_str()), ("7", "add"));
        assert_eq!(mbpp.suites[0].tests.len(), 2);
        let he = &ds.tasks[1];
        assert_eq!(
            he.visible.visible,
            vec![TestCase::Assert {
                code: "assert sq(2) == 4".into()
            }]
        );
        assert_eq!(he.suites[0].name, "jsonl");
        assert_eq!(ds.version.len(), 64);
    }

    #[test]
    fn a_bad_line_is_skipped_and_named_while_the_rest_load() {
        let good = r#"{"task_id": 1, "text": "t", "test_list": ["assert f(1) == 1"]}"#;
        let text = [
            good,
            r#"{"task_id": 2, "text": "t"}"#,
            "{oops",
            r#"{"task_id": 3, "text": "t", "test_list": []}"#,
            r#"{"task_id": 4, "text": "t", "test_list": ["assert x == 1"]}"#,
            r#"{"task_id": 1, "text": "again", "test_list": ["assert g(1) == 1"]}"#,
            r#"{"task_id": 5, "text": "t", "test_list": ["assert h(2) == 4"]}"#,
        ]
        .join("\n");
        let (_d, p) = write(&text);
        let ds = load(&p).unwrap();
        let ids: Vec<&str> = ds.tasks.iter().map(|t| t.id()).collect();
        assert_eq!(ids, ["1", "5"]);
        assert_eq!(
            ds.tasks[0].visible.prompt, "t",
            "the first of a repeated id is kept"
        );
        let expected = [
            (2, "MBPP's schema"),
            (3, "not JSON"),
            (4, "test_list is empty"),
            (5, "entry_point"),
            (6, "task_id 1 repeats line 1's"),
        ];
        assert_eq!(ds.notes.len(), expected.len(), "{:?}", ds.notes);
        for (note, (line, says)) in ds.notes.iter().zip(expected) {
            assert!(
                note.contains(&format!("mine.jsonl, line {line}: skipped, "))
                    && note.contains(says),
                "{note}"
            );
        }
    }

    #[test]
    fn a_file_without_one_usable_task_is_refused_naming_its_first_bad_line() {
        let (_d, p) = write("\n{oops\n{\"task_id\": 2, \"text\": \"t\"}\n");
        let err = load(&p).unwrap_err().to_string();
        assert!(
            err.contains("mine.jsonl, line 2: not JSON")
                && err.contains("holds no usable task, nor do 1 other line(s)"),
            "{err}"
        );
        let (_d, p) = write("\n\n");
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("no tasks"), "{err}");
    }
}
