//! Reading a task from a user's JSON or TOML file.

use std::path::Path;

use serde::Deserialize;

use crate::{function_name_from_assert, Task, TestCase};

/// Why a task file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TaskFileError {
    /// The file could not be read.
    #[error("cannot read task file {origin}: {cause}")]
    Read {
        /// The file, or `<stdin>`.
        origin: String,
        /// The I/O error (shown in the message, so it is no `source`: a
        /// cause printed by the message and again by the error chain reads
        /// as two errors).
        cause: std::io::Error,
    },
    /// The file is not valid JSON/TOML for the task schema.
    #[error("task file {origin} is malformed: {message}. See examples/tasks/ for the schema")]
    Malformed {
        /// The file, or `<stdin>`.
        origin: String,
        /// What the parser reported.
        message: String,
    },
    /// The content parsed but cannot make a task.
    #[error("task file {origin}: {message}")]
    Invalid {
        /// The file, or `<stdin>`.
        origin: String,
        /// What is missing or wrong.
        message: String,
    },
}

/// The two syntaxes a task can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFormat {
    /// A JSON object.
    Json,
    /// A TOML document.
    Toml,
}

impl TaskFormat {
    /// The format a file's extension names, if any.
    pub fn of_path(path: &Path) -> Option<TaskFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Some(TaskFormat::Toml),
            Some("json") => Some(TaskFormat::Json),
            _ => None,
        }
    }

    /// The format of text with no file name (standard input): a JSON
    /// object starts with `{`, which no TOML document can.
    pub fn sniff(text: &str) -> TaskFormat {
        if text.trim_start().starts_with('{') {
            TaskFormat::Json
        } else {
            TaskFormat::Toml
        }
    }
}

/// What a test in a task file may look like, said once for every error
/// that meets something else.
const TEST_SHAPES: &str = "each test is an assert line such as \"assert f(1) == 2\", \
or a table with the strings `stdin` and `stdout`";

/// Tests as written in a task file: an assert line, or a stdin/stdout pair.
#[derive(Debug)]
enum FileTest {
    Assert(String),
    Stdio { stdin: String, stdout: String },
}

impl<'de> Deserialize<'de> for FileTest {
    /// Accepts the two shapes and explains them when neither matches
    /// (serde's own message for this names internal types).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stdio {
            stdin: String,
            stdout: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Assert(String),
            Stdio(Stdio),
            Other(serde::de::IgnoredAny),
        }
        match Shape::deserialize(d)? {
            Shape::Assert(code) => Ok(FileTest::Assert(code)),
            Shape::Stdio(Stdio { stdin, stdout }) => Ok(FileTest::Stdio { stdin, stdout }),
            Shape::Other(_) => Err(serde::de::Error::custom(format!(
                "a test has an unknown shape: {TEST_SHAPES}"
            ))),
        }
    }
}

impl FileTest {
    /// The test, or why it cannot be one: a line that is no `assert`
    /// statement would run as an expression whose value nobody checks, so
    /// it would always pass.
    fn into_test(self, field: &str, index: usize) -> Result<TestCase, String> {
        match self {
            FileTest::Assert(code) if is_assert_statement(&code) => Ok(TestCase::Assert { code }),
            FileTest::Assert(code) => Err(format!(
                "{field}[{index}] `{}` is not an assert statement, so it could never fail; {}",
                code.trim(),
                how_to_assert(code.trim())
            )),
            FileTest::Stdio { stdin, stdout } => Ok(TestCase::Stdio { stdin, stdout }),
        }
    }
}

/// What to write instead of `code`, a test that is no assert statement. An
/// expression becomes a test by putting `assert` before it; a statement
/// such as an import or an assignment cannot, and belongs in `setup`.
fn how_to_assert(code: &str) -> String {
    const STATEMENT_KEYWORDS: [&str; 16] = [
        "import", "from", "def", "class", "for", "while", "if", "with", "try", "return", "del",
        "pass", "raise", "global", "nonlocal", "async",
    ];
    let first_word = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default();
    let is_statement = STATEMENT_KEYWORDS.contains(&first_word)
        || code.contains(';')
        || code.contains('\n')
        || has_assignment(code);
    if is_statement {
        "a test is one assert statement such as `assert f(1) == 2`; \
         put imports and helper code in `setup`"
            .to_string()
    } else {
        format!("write it as `assert {code}`")
    }
}

/// Whether `code` holds, outside brackets, an `=` that is no comparison
/// (`==`, `!=`, `<=`, `>=`) and no walrus (`:=`): an assignment, which no
/// `assert` can take. Inside brackets an `=` names a keyword argument.
fn has_assignment(code: &str) -> bool {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'=' if depth == 0 => {
                let before = i.checked_sub(1).map(|j| bytes[j]);
                let comparison = matches!(before, Some(b'=' | b'!' | b'<' | b'>' | b':'))
                    || bytes.get(i + 1) == Some(&b'=');
                if !comparison {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether `code` starts with Python's `assert` keyword (its syntax is
/// checked by the sandbox before a solve spends anything on it).
fn is_assert_statement(code: &str) -> bool {
    code.trim_start()
        .strip_prefix("assert")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_whitespace() || c == '('))
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
        let origin = path.display().to_string();
        if path.is_dir() {
            return Err(TaskFileError::Invalid {
                origin,
                message: "this is a directory; give the path of a task file (*.toml or *.json)"
                    .into(),
            });
        }
        let Some(format) = TaskFormat::of_path(path) else {
            return Err(TaskFileError::Invalid {
                origin,
                message: "unknown extension; name the file *.json or *.toml".into(),
            });
        };
        let text = std::fs::read_to_string(path).map_err(|cause| TaskFileError::Read {
            origin: origin.clone(),
            cause,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "task".into());
        Task::from_text(&text, format, &origin, stem)
    }

    /// Parse a task from `text` written in `format`; `origin` names where
    /// it came from in errors, and `default_id` is its id when the text
    /// sets none.
    pub fn from_text(
        text: &str,
        format: TaskFormat,
        origin: &str,
        default_id: String,
    ) -> Result<Task, TaskFileError> {
        if text.trim().is_empty() {
            return Err(TaskFileError::Invalid {
                origin: origin.to_owned(),
                message: "it is empty; a task gives at least `prompt` and `tests` \
                          (see examples/tasks/)"
                    .into(),
            });
        }
        // TOML's messages end in a newline after their source excerpt.
        let malformed = |message: String| TaskFileError::Malformed {
            origin: origin.to_owned(),
            message: message.trim_end().to_owned(),
        };
        let file: TaskFile = match format {
            TaskFormat::Toml => toml::from_str(text).map_err(|e| malformed(e.to_string()))?,
            TaskFormat::Json => serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?,
        };
        Task::from_parts(file, default_id).map_err(|message| TaskFileError::Invalid {
            origin: origin.to_owned(),
            message,
        })
    }

    fn from_parts(file: TaskFile, default_id: String) -> Result<Task, String> {
        let tests_of = |tests: Vec<FileTest>, field: &str| -> Result<Vec<TestCase>, String> {
            tests
                .into_iter()
                .enumerate()
                .map(|(index, test)| test.into_test(field, index))
                .collect()
        };
        let visible = tests_of(file.tests, "tests")?;
        let hidden = tests_of(file.hidden_tests, "hidden_tests")?;
        if visible.is_empty() {
            return Err("`tests` is empty; give at least one visible test".into());
        }
        if file.prompt.trim().is_empty() {
            return Err("`prompt` is empty; say what the function should do".into());
        }
        let entry_point = match file.entry_point {
            Some(name) => name,
            None => visible
                .iter()
                .find_map(|t| match t {
                    TestCase::Assert { code } => function_name_from_assert(code),
                    _ => None,
                })
                .ok_or(
                    "cannot derive `entry_point`: no visible test is an assert that calls a \
                     function; set `entry_point` to the name of the function the program defines",
                )?,
        };
        if !is_identifier(&entry_point) {
            return Err(format!(
                "`entry_point` `{entry_point}` is not a Python function name"
            ));
        }
        Ok(Task {
            id: file.id.unwrap_or(default_id),
            prompt: file.prompt,
            entry_point,
            visible,
            hidden,
            setup: file.setup,
        })
    }
}

/// Whether `name` is a plain Python identifier (ASCII letters, digits and
/// underscores, not starting with a digit), as a function to call must be.
fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
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
    fn a_test_of_another_shape_is_explained_without_internal_names() {
        let (_d, p) = write("odd.toml", "prompt = \"p\"\ntests = [3]\n");
        let err = Task::from_file(&p).unwrap_err().to_string();
        assert!(
            err.contains("assert line") && err.contains("stdin"),
            "{err}"
        );
        assert!(
            !err.contains("FileTest") && !err.contains("untagged"),
            "{err}"
        );
    }

    #[test]
    fn a_test_without_assert_is_refused() {
        let visible = "prompt = \"p\"\ntests = [\"double(2) == 5\"]\n";
        let hidden = "prompt = \"p\"\ntests = [\"assert double(1) == 2\"]\nhidden_tests = [\"double(2) == 5\"]\n";
        for (field, text) in [("tests[0]", visible), ("hidden_tests[0]", hidden)] {
            let (_d, p) = write("t.toml", text);
            let err = Task::from_file(&p).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains("write it as `assert double(2) == 5`"),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn a_statement_is_not_offered_assert_before_it() {
        for code in ["import os; assert f(1) == 2", "x = f(1)", "from m import f"] {
            let text = format!("prompt = \"p\"\ntests = [\"assert f(1) == 2\", {code:?}]\n");
            let (_d, p) = write("t.toml", &text);
            let err = Task::from_file(&p).unwrap_err().to_string();
            assert!(
                err.contains("tests[1]") && err.contains("`setup`") && !err.contains("write it as"),
                "{code}: {err}"
            );
        }
        for code in ["f(1) != 2", "f(x=1) >= 2"] {
            assert_eq!(how_to_assert(code), format!("write it as `assert {code}`"));
        }
    }

    #[test]
    fn empty_text_is_called_empty() {
        for text in ["", " \n\t\n"] {
            let err = Task::from_text(text, TaskFormat::sniff(text), "<stdin>", "t".into())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("task file <stdin>: it is empty;"), "{err}");
        }
        let err = Task::from_text("prompt = 1", TaskFormat::Toml, "<stdin>", "t".into())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("\n. See"), "{err}");
    }

    #[test]
    fn a_directory_is_not_read_as_a_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.toml");
        std::fs::create_dir(&path).unwrap();
        let err = Task::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn a_missing_file_names_its_cause_once() {
        let err = Task::from_file(Path::new("/nonexistent/task.toml")).unwrap_err();
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(err.to_string().matches("os error 2").count(), 1, "{err}");
    }

    #[test]
    fn text_from_standard_input_is_sniffed() {
        let json = r#"{"prompt": "p", "tests": ["assert f(1) == 1"]}"#;
        let toml = "prompt = \"p\"\ntests = [\"assert f(1) == 1\"]\n";
        for text in [json, toml] {
            let task =
                Task::from_text(text, TaskFormat::sniff(text), "<stdin>", "stdin".into()).unwrap();
            assert_eq!(
                (task.id.as_str(), task.entry_point.as_str()),
                ("stdin", "f")
            );
        }
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
