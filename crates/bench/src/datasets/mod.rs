//! Benchmark datasets: the vendored files turned into tasks with a clean
//! split between what a solver may see and what scores it.
//!
//! A [`Dataset`] is a list of [`BenchTask`]s. Each holds a [`VisibleTask`]
//! (the problem, the entry point and the visible tests; its `hidden` field is
//! always empty) and one or more [`Suite`]s of hidden tests. The first suite
//! is the dataset's own score; further suites score the same selected
//! program on related test sets (HumanEval's tasks on HumanEval-ET, MBPP's on
//! the partial MBPP-ET, ...), each counted only over the tasks that have it.
//!
//! Datasets are named `NAME[:SPLIT]` (see [`list`]) or `jsonl:PATH` for a
//! user's own file.

mod doctest;
mod embedded;
mod humaneval;
mod lpw;
mod mbpp;
pub mod plus;
mod registry;
mod schema;
mod selection;
mod user;

use std::path::PathBuf;

use egcfg_task::{Task, TestCase};
use serde::de::DeserializeOwned;

pub use doctest::{parse_examples, DocExamples};
pub use registry::{list, DatasetListing, SplitCount};
pub use selection::Selection;
pub use user::parse_jsonl;

use crate::solver::VisibleTask;

/// A named set of hidden tests for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// The score this suite feeds, e.g. `humaneval-et` or `mbpp/base`.
    pub name: String,
    /// The tests; a task passes the suite when every test passes.
    pub tests: Vec<TestCase>,
    /// Per-test timeout these tests need, when more than the run's default
    /// (EvalPlus chunks hold slow inputs).
    pub timeout: Option<std::time::Duration>,
}

/// One benchmark task: what the solver may see, and what scores it.
#[derive(Debug, Clone)]
pub struct BenchTask {
    /// The problem with its visible tests only.
    pub visible: VisibleTask,
    /// Hidden test suites; the first is the dataset's own score.
    pub suites: Vec<Suite>,
}

impl BenchTask {
    /// Builds a task from its visible part and its suites (the task's own
    /// `hidden` field is discarded: hidden tests live only in suites).
    pub fn new(task: Task, suites: Vec<Suite>) -> BenchTask {
        BenchTask {
            visible: VisibleTask::new(task),
            suites,
        }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.visible.id
    }
}

/// A loaded dataset (or one split of it).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The canonical dataset name, e.g. `mbpp` or `jsonl:tasks.jsonl`.
    pub name: String,
    /// The split, or `all`.
    pub split: String,
    /// What identifies the data's exact content: the sha256 of the file.
    pub version: String,
    /// Tasks in a fixed order (the file's, by numeric id where it has one).
    pub tasks: Vec<BenchTask>,
    /// Caveats a reader of any score on this dataset must see.
    pub notes: Vec<String>,
}

/// A dataset as named on the command line: `NAME[:SPLIT]` or `jsonl:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSpec {
    /// A vendored dataset, with an optional split.
    Builtin {
        /// The name or an alias.
        name: String,
        /// The split; `None` takes the dataset's default.
        split: Option<String>,
    },
    /// A user's JSON Lines file in MBPP's or HumanEval's schema.
    Jsonl(PathBuf),
}

impl std::str::FromStr for DatasetSpec {
    type Err = DatasetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("jsonl:") {
            if path.is_empty() {
                return Err(DatasetError::Unknown {
                    name: s.to_string(),
                });
            }
            return Ok(DatasetSpec::Jsonl(PathBuf::from(path)));
        }
        let (name, split) = match s.split_once(':') {
            Some((name, split)) => (name, Some(split.to_string())),
            None => (s, None),
        };
        Ok(DatasetSpec::Builtin {
            name: name.to_string(),
            split,
        })
    }
}

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// No dataset has this name.
    #[error("unknown dataset `{name}`; choose one of the registered datasets, or use jsonl:PATH for your own file")]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The dataset has no such split.
    #[error("dataset `{dataset}` has no split `{split}`; its splits are: {known}")]
    UnknownSplit {
        /// The dataset.
        dataset: String,
        /// The split given.
        split: String,
        /// The splits it has, comma-separated.
        known: String,
    },
    /// A file could not be read or decompressed.
    #[error("cannot read {source_name}: {error}")]
    Read {
        /// The file.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A line of a JSON Lines file is not a valid record.
    #[error("{source_name}, line {line}: {message}")]
    Malformed {
        /// The file.
        source_name: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A selected task id is not in the dataset.
    #[error("dataset {dataset} has no task {id}; ids look like {example}")]
    UnknownTask {
        /// The dataset.
        dataset: String,
        /// The id.
        id: String,
        /// An id it does have.
        example: String,
    },
    /// Expected outputs of an EvalPlus dataset could not be computed.
    #[error("expected outputs for {dataset}: {message}")]
    Oracle {
        /// The dataset.
        dataset: String,
        /// What went wrong.
        message: String,
    },
}

/// Parses every non-empty line of JSON Lines text as a `T`, naming the line
/// of the first malformed record.
fn parse_records<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
) -> Result<Vec<(usize, T)>, DatasetError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line)
                .map(|record| (index + 1, record))
                .map_err(|e| DatasetError::Malformed {
                    source_name: source_name.to_string(),
                    line: index + 1,
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Asserts as tests.
fn asserts(codes: &[String]) -> Vec<TestCase> {
    codes
        .iter()
        .map(|code| TestCase::Assert {
            code: code.trim_end().to_string(),
        })
        .collect()
}

/// A `check(candidate)` script run against the entry point.
fn check_script(test: &str, entry_point: &str) -> TestCase {
    TestCase::Script {
        code: format!("{}\n\ncheck({entry_point})\n", test.trim_end()),
    }
}

/// Loads the selected tasks of a dataset.
///
/// EvalPlus datasets (`humaneval+`, `mbpp+`) need expected outputs: they
/// are computed once through `oracle` (only for the selected tasks) and
/// cached (see [`plus`]). With an oracle, HumanEval and MBPP-family tasks
/// also get the `humaneval+` / `mbpp+` suite where EvalPlus has the task,
/// so the same selected programs are scored on the stronger tests.
pub fn load(
    spec: &DatasetSpec,
    selection: &Selection,
    oracle: Option<&mut plus::OutputOracle<'_>>,
) -> Result<Dataset, DatasetError> {
    match spec {
        DatasetSpec::Jsonl(path) => {
            let mut dataset = user::load(path)?;
            dataset.select(selection)?;
            Ok(dataset)
        }
        DatasetSpec::Builtin { name, split } => {
            registry::load(name, split.as_deref(), selection, oracle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            "mbpp:validation".parse::<DatasetSpec>().unwrap(),
            DatasetSpec::Builtin {
                name: "mbpp".into(),
                split: Some("validation".into())
            }
        );
        assert_eq!(
            "jsonl:/tmp/a:b.jsonl".parse::<DatasetSpec>().unwrap(),
            DatasetSpec::Jsonl("/tmp/a:b.jsonl".into())
        );
        assert!("jsonl:".parse::<DatasetSpec>().is_err());
    }

    #[test]
    fn malformed_lines_are_named() {
        let err = parse_records::<schema::MbppRecord>("\n{\"task_id\": 1}\n", "x.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.jsonl, line 2") && err.contains("text"),
            "{err}"
        );
    }
}
