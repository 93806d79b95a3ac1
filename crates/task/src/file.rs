//! Reading a task from a user's JSON or TOML file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{function_name_from_assert, Task, TestCase};

/// Why a task file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TaskFileError {
    /// The file could not be read.
    #[error("cannot read task file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON/TOML for the task schema.
    #[error("task file {path} is malformed: {message}. See examples/ for the schema")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        message: String,
    },
    /// The content parsed but cannot make a task.
    #[error("task file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
}

/// Tests as written in a task file: an assert line, or a stdin/stdout pair.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileTest {
    Assert(String),
    Stdio { stdin: String, stdout: String },
}

impl From<FileTest> for TestCase {
    fn from(t: FileTest) -> Self {
        match t {
            FileTest::Assert(code) => TestCase::Assert { code },
            FileTest::Stdio { stdin, stdout } => TestCase::Stdio { stdin, stdout },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    id: Option<String>,
    prompt: String,
    entry_point: Option<String>,
    tests: Vec<FileTest>,
    #[serde(default)]
    hidden_tests: Vec<FileTest>,
    setup: Option<String>,
}

impl Task {
    /// Load a task from a `.json` or `.toml` file.
    ///
    /// The schema: `prompt` (string), `tests` (visible tests: assert strings
    /// or `{stdin, stdout}` tables), and optionally `id` (defaults to the
    /// file stem), `entry_point` (defaults to the function the first visible
    /// assert calls), `hidden_tests` and `setup`.
    pub fn from_file(path: &Path) -> Result<Task, TaskFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TaskFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let malformed = |message: String| TaskFileError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        let file: TaskFile = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text).map_err(|e| malformed(e.to_string()))?,
            Some("json") => serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?,
            _ => {
                return Err(TaskFileError::Invalid {
                    path: path.to_path_buf(),
                    message: "unknown extension; name the file *.json or *.toml".into(),
                })
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "task".into());
        Task::from_parts(file, stem).map_err(|message| TaskFileError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    fn from_parts(file: TaskFile, default_id: String) -> Result<Task, String> {
        let visible: Vec<TestCase> = file.tests.into_iter().map(Into::into).collect();
        if visible.is_empty() {
            return Err("`tests` is empty; give at least one visible test".into());
        }
        let entry_point = match file.entry_point {
            Some(name) => name,
            None => visible
                .iter()
                .find_map(|t| match t {
                    TestCase::Assert { code } => function_name_from_assert(code),
                    _ => None,
                })
                .ok_or("cannot derive `entry_point` from the visible tests; set it explicitly")?,
        };
        Ok(Task {
            id: file.id.unwrap_or(default_id),
            prompt: file.prompt,
            entry_point,
            visible,
            hidden: file.hidden_tests.into_iter().map(Into::into).collect(),
            setup: file.setup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn toml_task_derives_entry_point() {
        let (_d, p) = write(
            "occ.toml",
            "prompt = \"Remove first and last occurrence\"\ntests = [\"assert remove_Occ('hello','l') == 'heo'\"]\n",
        );
        let task = Task::from_file(&p).unwrap();
        assert_eq!(task.id, "occ");
        assert_eq!(task.entry_point, "remove_Occ");
        assert!(task.hidden.is_empty());
    }

    #[test]
    fn json_stdio_task_needs_entry_point() {
        let (_d, p) = write(
            "io.json",
            r#"{"prompt": "echo", "tests": [{"stdin": "1\n", "stdout": "1\n"}]}"#,
        );
        let err = Task::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("entry_point"), "{err}");
    }

    #[test]
    fn malformed_file_names_the_file() {
        let (_d, p) = write("bad.toml", "prompt = [1\n");
        let err = Task::from_file(&p).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("malformed"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let (_d, p) = write(
            "x.toml",
            "prompt = \"p\"\ntests = [\"assert f(1) == 1\"]\ntest_list = []\n",
        );
        assert!(Task::from_file(&p).is_err());
    }
}
