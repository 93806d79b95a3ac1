//! Where the explorer's data comes from: a results database written by
//! `egcfg bench` (or `egcfg evaluate`), or one `egcfg solve --record` file.
//!
//! Both are read again on every request, read-only: a run that `egcfg
//! bench` is still writing shows each task as soon as it is committed, and
//! nothing the explorer does can change the file.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use egcfg_bench::{
    Attempt, Cost, RunId, RunInfo, RunKey, ServerUsage, Solution, Store, TaskResult,
};
use egcfg_method::SolveOutcome;

use crate::ExploreError;

/// The file the explorer shows.
#[derive(Debug, Clone)]
pub enum Source {
    /// A results database.
    Database(PathBuf),
    /// The record of one solve (`egcfg solve --record`).
    Record(PathBuf),
}

/// The id the one run of a record file gets.
const RECORD_RUN: RunId = RunId(1);

impl Source {
    /// Recognises `path`: an SQLite file is a database (which must be
    /// egcfg's), anything else must be a solve record.
    pub fn open(path: &Path) -> Result<Source, ExploreError> {
        const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
        // Only the head is read: a curve's database runs to hundreds of MB.
        let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
        std::fs::File::open(path)
            .and_then(|file| file.take(SQLITE_MAGIC.len() as u64).read_to_end(&mut head))
            .map_err(|error| ExploreError::Read {
                path: path.display().to_string(),
                error,
            })?;
        let source = if head == SQLITE_MAGIC {
            Source::Database(path.to_path_buf())
        } else {
            Source::Record(path.to_path_buf())
        };
        // Refuse a wrong file now, not on the first page.
        source.runs()?;
        Ok(source)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Source::Database(path) | Source::Record(path) => path,
        }
    }

    /// Every run, by id.
    pub fn runs(&self) -> Result<Vec<RunInfo>, ExploreError> {
        match self {
            Source::Database(path) => Ok(Store::open_read_only(path)?.runs()?),
            Source::Record(path) => {
                let outcome = self.record()?;
                Ok(vec![RunInfo {
                    id: RECORD_RUN,
                    key: RunKey {
                        dataset: "solve record".into(),
                        split: file_name(path),
                        method: "egcfg".into(),
                        model: "-".into(),
                        config: serde_json::Value::Null,
                    },
                    config_hash: "-".into(),
                    dataset_version: "-".into(),
                    created_at: 0,
                    tasks_done: usize::from(!outcome.task_id.is_empty()),
                }])
            }
        }
    }

    /// A run's tasks without their records (cheap), in the order they
    /// finished.
    pub fn tasks(&self, run: RunId) -> Result<Vec<TaskResult>, ExploreError> {
        match self {
            Source::Database(path) => Ok(Store::open_read_only(path)?.result_summaries(run)?),
            Source::Record(_) => Ok(self.record_result(run)?.into_iter().collect()),
        }
    }

    /// One task of a run, with its records.
    pub fn task(&self, run: RunId, task_id: &str) -> Result<Option<TaskResult>, ExploreError> {
        match self {
            Source::Database(path) => Ok(Store::open_read_only(path)?.result(run, task_id)?),
            Source::Record(_) => Ok(self
                .record_result(run)?
                .filter(|result| result.task_id == task_id)),
        }
    }

    /// Every run, the position of `run` among them, and its result for
    /// `task_id`: what a page about one task of one run starts from; `None`
    /// when there is no such run or task.
    pub fn run_and_task(
        &self,
        run: RunId,
        task_id: &str,
    ) -> Result<Option<(Vec<RunInfo>, usize, TaskResult)>, ExploreError> {
        let runs = self.runs()?;
        let Some(index) = runs.iter().position(|r| r.id == run) else {
            return Ok(None);
        };
        Ok(self.task(run, task_id)?.map(|result| (runs, index, result)))
    }

    /// When the file last changed (the database or its write-ahead log):
    /// a run that is being written changes it with every finished task.
    pub fn last_change(&self) -> Option<SystemTime> {
        let path = self.path();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        [path.to_path_buf(), PathBuf::from(wal)]
            .iter()
            .filter_map(|p| p.metadata().and_then(|m| m.modified()).ok())
            .max()
    }

    /// The record file's JSON.
    fn record_json(&self) -> Result<serde_json::Value, ExploreError> {
        let path = self.path();
        let text = std::fs::read_to_string(path).map_err(|error| ExploreError::Read {
            path: path.display().to_string(),
            error,
        })?;
        serde_json::from_str(&text).map_err(|e| self.not_a_record(e))
    }

    /// The error for a record file whose JSON did not read as a record.
    fn not_a_record(&self, error: serde_json::Error) -> ExploreError {
        ExploreError::NotARecord {
            path: self.path().display().to_string(),
            message: error.to_string(),
        }
    }

    fn record(&self) -> Result<SolveOutcome, ExploreError> {
        serde_json::from_value(self.record_json()?).map_err(|e| self.not_a_record(e))
    }

    /// The record file as the one task of its run.
    fn record_result(&self, run: RunId) -> Result<Option<TaskResult>, ExploreError> {
        if run != RECORD_RUN {
            return Ok(None);
        }
        let records = self.record_json()?;
        let outcome: SolveOutcome =
            serde_json::from_value(records.clone()).map_err(|e| self.not_a_record(e))?;
        Ok(Some(TaskResult {
            task_id: outcome.task_id.clone(),
            solution: Solution {
                program: outcome.code.clone(),
                attempts: outcome
                    .attempts
                    .iter()
                    .map(|a| Attempt {
                        label: a.name.clone(),
                        program: a.code.clone(),
                        visible_passed: a.passed_count(),
                        visible_total: a.visible.len(),
                        gamma: Some(a.spec.gamma),
                        wall_s: Some(a.cost.times.total_s),
                        usage: ServerUsage::default(),
                    })
                    .collect(),
                cost: outcome
                    .attempts
                    .iter()
                    .fold(Cost::default(), |total, a| Cost {
                        prefill_tokens: total.prefill_tokens + a.cost.prefill_tokens,
                        decode_tokens: total.decode_tokens
                            + a.cost.decode_tokens
                            + a.cost.candidate_tokens,
                        executions: total.executions + a.cost.executions,
                        no_program_tokens: Some(outcome.cost.no_program_tokens),
                        usage: ServerUsage::default(),
                    }),
                records,
                profile: None,
            },
            wall_ms: outcome.cost.wall_s * 1000.0,
            // A solve record holds no hidden-test scores.
            scores: Vec::new(),
        }))
    }
}

/// A task's generation, read from its records: the solve outcome with every
/// decision, and the text of the token ids they name.
pub struct Generation {
    /// The solve, when the records hold one (samples scored by `egcfg
    /// evaluate` have none).
    pub outcome: Option<SolveOutcome>,
    /// Token id to text, as the solver recorded it.
    pub pieces: HashMap<i32, String>,
}

impl Generation {
    /// Reads the records of a task; records of another shape (or of an
    /// older egcfg) give no outcome rather than an error, so the task's
    /// scores and programs still show.
    pub fn of(result: &TaskResult) -> Generation {
        let records = &result.solution.records;
        let outcome = serde_json::from_value(records.clone()).ok();
        let pieces = records
            .get("token_pieces")
            .and_then(|p| p.as_object())
            .map(|map| {
                map.iter()
                    .filter_map(|(id, text)| Some((id.parse().ok()?, text.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Generation { outcome, pieces }
    }

    /// The text of `token`, or its id where the records do not spell it.
    pub fn piece(&self, token: i32) -> String {
        self.pieces
            .get(&token)
            .cloned()
            .unwrap_or_else(|| format!("<{token}>"))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
