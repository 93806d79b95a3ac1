//! `jsonl:PATH`: a user's own tasks in MBPP's or HumanEval's schema.

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
/// hidden = `check`). Both score into the suite `jsonl`.
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
    let mut seen = std::collections::HashSet::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |message: String| DatasetError::Malformed {
            source_name: source_name.clone(),
            line: index + 1,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| malformed(format!("not JSON ({e})")))?;
        let task = if value.get("text").is_some() && value.get("test_list").is_some() {
            let record: MbppRecord = serde_json::from_value(value)
                .map_err(|e| malformed(format!("{e}; {SCHEMA_HELP}")))?;
            let id = match &record.task_id {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if record.test_list.is_empty() {
                return Err(malformed(
                    "test_list is empty; give at least one assert".into(),
                ));
            }
            let (task, mut suites) =
                mbpp_task(id, &record, &source_name).map_err(|e| malformed(e.to_string()))?;
            suites.truncate(1);
            suites[0].name = "jsonl".into();
            BenchTask::new(task, suites)
        } else if value.get("prompt").is_some() && value.get("test").is_some() {
            let record: HumanEvalRecord = serde_json::from_value(value)
                .map_err(|e| malformed(format!("{e}; {SCHEMA_HELP}")))?;
            let suite = Suite {
                name: "jsonl".into(),
                tests: vec![check_script(&record.test, &record.entry_point)],
                timeout: None,
            };
            BenchTask::new(
                visible_task(&record.task_id, &record.prompt, &record.entry_point),
                vec![suite],
            )
        } else {
            return Err(malformed(SCHEMA_HELP.to_string()));
        };
        if !seen.insert(task.id().to_string()) {
            return Err(malformed(format!("task_id {} repeats", task.id())));
        }
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(DatasetError::Malformed {
            source_name,
            line: 0,
            message: format!("no tasks; {SCHEMA_HELP}"),
        });
    }
    Ok(Dataset {
        name: format!("jsonl:{source_name}"),
        split: "all".into(),
        version: hex::encode(Sha256::digest(bytes)),
        tasks,
        notes: Vec::new(),
    })
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
    fn errors_name_the_line() {
        let (_d, p) = write("{\"task_id\": 1, \"text\": \"t\", \"test_list\": [\"assert f(1) == 1\"]}\n{\"task_id\": 2, \"text\": \"t\"}\n");
        let err = load(&p).unwrap_err().to_string();
        assert!(
            err.contains("mine.jsonl, line 2") && err.contains("MBPP's schema"),
            "{err}"
        );
        let (_d, p) = write(
            "{\"task_id\": 1, \"text\": \"t\", \"test_list\": [\"assert f(1) == 1\"]}\n{oops\n",
        );
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("line 2: not JSON"), "{err}");
        let (_d, p) =
            write("{\"task_id\": 1, \"text\": \"t\", \"test_list\": [\"assert x == 1\"]}\n");
        let err = load(&p).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("entry_point"),
            "{err}"
        );
    }
}
