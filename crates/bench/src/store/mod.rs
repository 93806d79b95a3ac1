//! The results database: one SQLite file holding any number of runs.
//!
//! A *run* is keyed by (dataset, split, method, model, config hash); its
//! *results* hold one row per finished task (unique per run), each with its
//! per-suite *scores*. A task's result and scores are written in one
//! transaction as soon as the task finishes, in WAL mode: killing the
//! process at any moment loses at most the task in flight, and the unique
//! constraint makes a duplicate impossible. Starting the same run again
//! skips every task already recorded.
//!
//! Where a solver's time went on a task ([`crate::profile::TaskProfile`])
//! is kept as JSON in *profiles*, one row per result, written in the
//! result's transaction. The table was added after the first databases:
//! opening one to run adds it, and a report on one without it reads no
//! profiles.
//!
//! A task that cannot run at all (its prompt does not fit the model's
//! context) is recorded in *unrunnable* with the reason, never as a program
//! that failed: a rerun skips it too, and the report lists it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Params, Statement};
use serde::{Deserialize, Serialize};

use crate::solver::{Attempt, Cost, ServerUsage, Solution};

mod error;
mod key;

pub use error::StoreError;
pub use key::RunKey;

const SCHEMA_VERSION: i64 = 1;

/// SQLite's application id of an egcfg results database ("egcf" in ASCII),
/// so that egcfg recognises its own files and leaves everyone else's alone.
const APPLICATION_ID: i64 = 0x6567_6366;

/// Whose SQLite file a path holds.
#[derive(Debug, PartialEq)]
enum Kind {
    /// An egcfg results database.
    Egcfg,
    /// A database with no tables (a new or empty file).
    Empty,
    /// Another program's database, with its tables.
    Foreign(Vec<String>),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    dataset TEXT NOT NULL,
    split TEXT NOT NULL,
    method TEXT NOT NULL,
    model TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset_version TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (dataset, split, method, model, config_hash)
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    task_id TEXT NOT NULL,
    program TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    prefill_tokens INTEGER NOT NULL,
    decode_tokens INTEGER NOT NULL,
    executions INTEGER NOT NULL,
    wall_ms REAL NOT NULL,
    attempt_list TEXT NOT NULL,
    records TEXT NOT NULL,
    finished_at INTEGER NOT NULL,
    no_program_tokens INTEGER,
    requests INTEGER,
    prompt_tokens INTEGER,
    cached_prompt_tokens INTEGER,
    generated_tokens INTEGER,
    UNIQUE (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS scores (
    result_id INTEGER NOT NULL REFERENCES results(id),
    suite TEXT NOT NULL,
    passed INTEGER NOT NULL,
    tests_passed INTEGER NOT NULL,
    tests_total INTEGER NOT NULL,
    detail TEXT NOT NULL,
    attempts_passed TEXT,
    PRIMARY KEY (result_id, suite)
);
CREATE TABLE IF NOT EXISTS profiles (
    result_id INTEGER PRIMARY KEY REFERENCES results(id),
    profile TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unrunnable (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    task_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
";

/// The columns of `results` that hold what a model server spent on the
/// task ([`crate::ServerUsage`]), in its fields' order. NULL in results
/// recorded before they were kept, which read as zero (a local model).
const USAGE_COLUMNS: [&str; 4] = [
    "requests",
    "prompt_tokens",
    "cached_prompt_tokens",
    "generated_tokens",
];

/// The database id of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RunId(pub i64);

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// Its id.
    pub id: RunId,
    /// Its key.
    pub key: RunKey,
    /// The key's config hash.
    pub config_hash: String,
    /// The data version it ran on.
    pub dataset_version: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Tasks finished.
    pub tasks_done: usize,
}

/// The outcome of one hidden-test suite on one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteScore {
    /// The suite, e.g. `humaneval` or `mbpp-et-partial`.
    pub suite: String,
    /// Whether the selected program passed every test.
    pub passed: bool,
    /// Tests the selected program passed.
    pub tests_passed: usize,
    /// Tests in the suite.
    pub tests_total: usize,
    /// The first failure's explanation, empty on a pass.
    pub detail: String,
    /// For any-of-N: whether each attempt (in order) passed the suite;
    /// `None` when attempts were not scored.
    pub attempts_passed: Option<Vec<bool>>,
}

/// A finished task, as the runner records it and the report reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    /// The task id.
    pub task_id: String,
    /// The solver's answer.
    pub solution: Solution,
    /// Wall time of the solve, in milliseconds.
    pub wall_ms: f64,
    /// One score per suite.
    pub scores: Vec<SuiteScore>,
}

impl TaskResult {
    /// The score of `suite`, if this task has it.
    pub fn score(&self, suite: &str) -> Option<&SuiteScore> {
        self.scores.iter().find(|s| s.suite == suite)
    }
}

/// A task of a run that could not be run at all, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrunnableTask {
    /// The task id.
    pub task_id: String,
    /// Why it could not run, as the solver said.
    pub reason: String,
}

/// An open results database.
pub struct Store {
    conn: Connection,
    path: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store {
    /// Opens the results database at `path` for a run, creating it when
    /// missing (in WAL mode). An existing SQLite file that is not an egcfg
    /// results database is refused before anything in it changes.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        if path.is_dir() {
            return Err(StoreError::Directory { path: name });
        }
        if path.exists() {
            // Identify the file on a read-only connection first: egcfg adds
            // its tables and switches to WAL only in a file that is its own.
            Store::identify(path, &name)?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::sqlite(&name, source))?;
        Store::init(conn, name)
    }

    /// Opens an existing results database for reading only (reports):
    /// nothing in the file changes, and a file that is missing or not
    /// egcfg's is refused.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        if path.is_dir() {
            return Err(StoreError::Directory { path: name });
        }
        if !path.is_file() {
            return Err(StoreError::Missing { path: name });
        }
        let conn = Store::identify(path, &name)?;
        let store = Store { conn, path: name };
        if store.kind()? == Kind::Empty {
            return Err(StoreError::Foreign {
                path: store.path.clone(),
                tables: Vec::new(),
            });
        }
        store.check_schema_version()?;
        Ok(store)
    }

    /// An in-memory database (for tests and dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|source| StoreError::sqlite(":memory:", source))?;
        Store::init(conn, ":memory:".into())
    }

    /// A query-only connection to the existing file `path`, after checking
    /// that it is an egcfg results database or an empty file.
    ///
    /// The connection may write nothing (`query_only`), yet it is opened
    /// read-write: a read-only connection to a WAL database leaves its
    /// `-wal` and `-shm` files behind, while the last read-write connection
    /// to close removes them.
    fn identify(path: &Path, name: &str) -> Result<Connection, StoreError> {
        let sqlite = |source| StoreError::sqlite(name, source);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        conn.execute_batch("PRAGMA query_only = 1")
            .map_err(sqlite)?;
        let store = Store {
            conn,
            path: name.to_owned(),
        };
        if let Kind::Foreign(tables) = store.kind()? {
            return Err(StoreError::Foreign {
                path: store.path.clone(),
                tables,
            });
        }
        Ok(store.conn)
    }

    /// Whose database this is, from its application id and tables.
    fn kind(&self) -> Result<Kind, StoreError> {
        let not_a_database = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
                path: self.path.clone(),
            },
            _ => self.err(source),
        };
        let application_id: i64 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(not_a_database)?;
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .map_err(not_a_database)?;
        let tables: Vec<(String,)> = self.rows(&mut stmt, [])?;
        let tables: Vec<String> = tables.into_iter().map(|(t,)| t).collect();
        if application_id == APPLICATION_ID {
            return Ok(Kind::Egcfg);
        }
        if application_id == 0 && tables.is_empty() {
            return Ok(Kind::Empty);
        }
        // Databases written before the application id was set are known by
        // their version row.
        let versioned = application_id == 0
            && tables.iter().any(|t| t == "meta")
            && self.has_row("SELECT 1 FROM meta WHERE key = 'schema_version'")?;
        Ok(if versioned {
            Kind::Egcfg
        } else {
            Kind::Foreign(tables)
        })
    }

    fn init(conn: Connection, path: String) -> Result<Store, StoreError> {
        let store = Store { conn, path };
        store
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| store.err(e))?;
        store
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(|e| store.err(e))?;
        store
            .conn
            .execute_batch(&format!(
                "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA application_id = {APPLICATION_ID};"
            ))
            .map_err(|e| store.err(e))?;
        store.conn.execute_batch(SCHEMA).map_err(|e| store.err(e))?;
        store.add_missing_columns()?;
        store
            .conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )
            .map_err(|e| store.err(e))?;
        store.check_schema_version()?;
        Ok(store)
    }

    /// Adds the columns later egcfg versions keep to a database written
    /// before them. Only nullable columns are ever added, so every finished
    /// result stays as it was (the new value reads as unknown), and an
    /// older egcfg still reads and writes the database.
    fn add_missing_columns(&self) -> Result<(), StoreError> {
        let added = [("results", "no_program_tokens", "INTEGER")]
            .into_iter()
            .chain(USAGE_COLUMNS.map(|column| ("results", column, "INTEGER")));
        for (table, column, kind) in added {
            if !self.has_column(table, column)? {
                self.conn
                    .execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// Whether `table` has `column` (a database opened read-only may
    /// predate it).
    fn has_column(&self, table: &str, column: &str) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .map_err(|e| self.err(e))?;
        let columns: Vec<(String,)> = self.rows(&mut stmt, [])?;
        Ok(columns.iter().any(|(c,)| c == column))
    }

    /// Refuses a database of another schema version.
    fn check_schema_version(&self) -> Result<(), StoreError> {
        let found: String = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if found == SCHEMA_VERSION.to_string() {
            Ok(())
        } else {
            Err(StoreError::Schema {
                path: self.path.clone(),
                found: found.parse().unwrap_or(-1),
            })
        }
    }

    /// Whether the parameterless query `sql` returns a row.
    fn has_row(&self, sql: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(sql, [], |_| Ok(()))
            .optional()
            .map(|row| row.is_some())
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, source)
    }

    /// Every row `stmt` yields for `params`, its columns read in order into
    /// the tuple `T`: the columns stay raw here, to be checked and
    /// converted by the caller.
    fn rows<T>(&self, stmt: &mut Statement<'_>, params: impl Params) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> TryFrom<&'r rusqlite::Row<'r>, Error = rusqlite::Error>,
    {
        stmt.query_map(params, |r| T::try_from(r))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// The run with this key, created if new. Fails if it exists with
    /// another dataset version.
    pub fn open_run(&self, key: &RunKey, dataset_version: &str) -> Result<RunId, StoreError> {
        let hash = key.config_hash();
        let config = key.config.to_string();
        self.conn
            .execute(
                "INSERT OR IGNORE INTO runs
                 (dataset, split, method, model, config_hash, config, dataset_version, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.dataset,
                    key.split,
                    key.method,
                    key.model,
                    hash,
                    config,
                    dataset_version,
                    now()
                ],
            )
            .map_err(|e| self.err(e))?;
        let (id, recorded): (i64, String) = self
            .conn
            .query_row(
                "SELECT id, dataset_version FROM runs
                 WHERE dataset = ?1 AND split = ?2 AND method = ?3 AND model = ?4 AND config_hash = ?5",
                params![key.dataset, key.split, key.method, key.model, hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        if recorded != dataset_version {
            return Err(StoreError::DatasetChanged {
                key: key.to_string(),
                recorded,
                current: dataset_version.to_string(),
            });
        }
        Ok(RunId(id))
    }

    /// The ids of the tasks this run is done with: those it finished and
    /// those it recorded as unable to run.
    pub fn finished_tasks(&self, run: RunId) -> Result<BTreeSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT task_id FROM results WHERE run_id = ?1
                 UNION SELECT task_id FROM unrunnable WHERE run_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run.0], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records a finished task and its scores in one transaction. Returns
    /// `false` (and writes nothing) when the run already has this task, as
    /// when two processes race on one run.
    pub fn record(&mut self, run: RunId, result: &TaskResult) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::sqlite(&path, source);
        let tx = self.conn.transaction().map_err(err)?;
        let s = &result.solution;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO results
                 (run_id, task_id, program, attempts, prefill_tokens, decode_tokens, executions,
                  wall_ms, attempt_list, records, finished_at, no_program_tokens,
                  requests, prompt_tokens, cached_prompt_tokens, generated_tokens)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    run.0,
                    result.task_id,
                    s.program,
                    s.attempt_programs().len() as i64,
                    s.cost.prefill_tokens as i64,
                    s.cost.decode_tokens as i64,
                    s.cost.executions as i64,
                    result.wall_ms,
                    serde_json::to_string(&s.attempts).unwrap_or_else(|_| "[]".into()),
                    s.records.to_string(),
                    now(),
                    s.cost.no_program_tokens.map(|n| n as i64),
                    s.cost.usage.requests as i64,
                    s.cost.usage.prompt_tokens as i64,
                    s.cost.usage.cached_prompt_tokens as i64,
                    s.cost.usage.generated_tokens as i64,
                ],
            )
            .map_err(err)?;
        if inserted == 0 {
            return Ok(false);
        }
        let result_id = tx.last_insert_rowid();
        if let Some(profile) = &s.profile {
            tx.execute(
                "INSERT INTO profiles (result_id, profile) VALUES (?1, ?2)",
                params![
                    result_id,
                    serde_json::to_string(profile).unwrap_or_else(|_| "{}".into())
                ],
            )
            .map_err(err)?;
        }
        for score in &result.scores {
            tx.execute(
                "INSERT INTO scores
                 (result_id, suite, passed, tests_passed, tests_total, detail, attempts_passed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    result_id,
                    score.suite,
                    score.passed,
                    score.tests_passed as i64,
                    score.tests_total as i64,
                    score.detail,
                    score
                        .attempts_passed
                        .as_ref()
                        .map(|v| serde_json::to_string(v).unwrap_or_default()),
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Records that `task` of `run` could not run, and why. Returns `false`
    /// (and writes nothing) when the run already has this task either way.
    pub fn record_unrunnable(
        &mut self,
        run: RunId,
        task: &UnrunnableTask,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO unrunnable (run_id, task_id, reason, recorded_at)
                 SELECT ?1, ?2, ?3, ?4
                 WHERE NOT EXISTS (SELECT 1 FROM results WHERE run_id = ?1 AND task_id = ?2)",
                params![run.0, task.task_id, task.reason, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(inserted > 0)
    }

    /// The tasks of `run` that could not run, in the order recorded.
    pub fn unrunnable(&self, run: RunId) -> Result<Vec<UnrunnableTask>, StoreError> {
        // A database written before the table existed, opened read-only
        // for a report, has none: nothing there could not run.
        if !self
            .has_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'unrunnable'")?
        {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT task_id, reason FROM unrunnable WHERE run_id = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String)> = self.rows(&mut stmt, [run.0])?;
        Ok(rows
            .into_iter()
            .map(|(task_id, reason)| UnrunnableTask { task_id, reason })
            .collect())
    }

    /// Every run, by id.
    pub fn runs(&self) -> Result<Vec<RunInfo>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.id, r.dataset, r.split, r.method, r.model, r.config_hash, r.config,
                        r.dataset_version, r.created_at,
                        (SELECT COUNT(*) FROM results WHERE run_id = r.id)
                 FROM runs r ORDER BY r.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let config: String = r.get(6)?;
                Ok(RunInfo {
                    id: RunId(r.get(0)?),
                    key: RunKey {
                        dataset: r.get(1)?,
                        split: r.get(2)?,
                        method: r.get(3)?,
                        model: r.get(4)?,
                        config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
                    },
                    config_hash: r.get(5)?,
                    dataset_version: r.get(7)?,
                    created_at: r.get(8)?,
                    tasks_done: r.get::<_, i64>(9)? as usize,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A run's results, ordered by task id as recorded (insertion order).
    pub fn results(&self, run: RunId) -> Result<Vec<TaskResult>, StoreError> {
        self.query_results(run, None, true)
    }

    /// A run's results without the solver's records (each is `null`):
    /// what a listing of many tasks needs, at a fraction of the reading.
    pub fn result_summaries(&self, run: RunId) -> Result<Vec<TaskResult>, StoreError> {
        self.query_results(run, None, false)
    }

    /// One task's result in a run, records included, if it has finished.
    pub fn result(&self, run: RunId, task_id: &str) -> Result<Option<TaskResult>, StoreError> {
        Ok(self.query_results(run, Some(task_id), true)?.pop())
    }

    /// The results of `run` (of one task, when given), with or without the
    /// records.
    fn query_results(
        &self,
        run: RunId,
        task: Option<&str>,
        with_records: bool,
    ) -> Result<Vec<TaskResult>, StoreError> {
        // A database opened read-only may predate a column: it reads as
        // unknown.
        let no_program = if self.has_column("results", "no_program_tokens")? {
            "no_program_tokens"
        } else {
            "NULL"
        };
        let mut usage = Vec::with_capacity(USAGE_COLUMNS.len());
        for column in USAGE_COLUMNS {
            usage.push(if self.has_column("results", column)? {
                column
            } else {
                "NULL"
            });
        }
        let usage = usage.join(", ");
        // A database written before profiles existed, opened read-only
        // for a report, has no such table: its tasks have no profile.
        let profile = if self
            .has_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'profiles'")?
        {
            "(SELECT profile FROM profiles WHERE result_id = results.id)"
        } else {
            "NULL"
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, task_id, program, prefill_tokens, decode_tokens, executions, wall_ms,
                        attempt_list, CASE WHEN ?2 THEN records ELSE 'null' END, {no_program},
                        {profile}, {usage}
                 FROM results WHERE run_id = ?1 AND (?3 IS NULL OR task_id = ?3) ORDER BY id"
            ))
            .map_err(|e| self.err(e))?;
        type Row = (
            i64,
            String,
            String,
            i64,
            i64,
            i64,
            f64,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = self.rows(&mut stmt, params![run.0, with_records, task])?;
        let mut scores_stmt = self
            .conn
            .prepare(
                "SELECT suite, passed, tests_passed, tests_total, detail, attempts_passed
                 FROM scores WHERE result_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let corrupt = |column, id, e: serde_json::Error| StoreError::Corrupt {
            path: self.path.clone(),
            column,
            id,
            message: e.to_string(),
        };
        let mut out = Vec::with_capacity(rows.len());
        for (
            id,
            task_id,
            program,
            prefill,
            decode,
            executions,
            wall_ms,
            attempts,
            records,
            no_program,
            profile,
            requests,
            prompt_tokens,
            cached_prompt_tokens,
            generated_tokens,
        ) in rows
        {
            let count = |n: Option<i64>| n.unwrap_or(0) as u64;
            let raw_scores: Vec<(String, bool, i64, i64, String, Option<String>)> =
                self.rows(&mut scores_stmt, [id])?;
            let mut scores = Vec::with_capacity(raw_scores.len());
            for (suite, passed, tests_passed, tests_total, detail, attempts_passed) in raw_scores {
                let attempts_passed = attempts_passed
                    .map(|t| serde_json::from_str(&t))
                    .transpose()
                    .map_err(|e| corrupt("attempts_passed", id, e))?;
                scores.push(SuiteScore {
                    suite,
                    passed,
                    tests_passed: tests_passed as usize,
                    tests_total: tests_total as usize,
                    detail,
                    attempts_passed,
                });
            }
            let attempts: Vec<Attempt> =
                serde_json::from_str(&attempts).map_err(|e| corrupt("attempt_list", id, e))?;
            let records = serde_json::from_str(&records).map_err(|e| corrupt("records", id, e))?;
            let profile = profile
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .map_err(|e| corrupt("profile", id, e))?;
            out.push(TaskResult {
                task_id,
                solution: Solution {
                    program,
                    attempts,
                    cost: Cost {
                        prefill_tokens: prefill as u64,
                        decode_tokens: decode as u64,
                        executions: executions as u64,
                        no_program_tokens: no_program.map(|n| n as u64),
                        usage: ServerUsage {
                            requests: count(requests),
                            prompt_tokens: count(prompt_tokens),
                            cached_prompt_tokens: count(cached_prompt_tokens),
                            generated_tokens: count(generated_tokens),
                        },
                    },
                    records,
                    profile,
                },
                wall_ms,
                scores,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn key(method: &str) -> RunKey {
        RunKey {
            dataset: "mbpp".into(),
            split: "validation".into(),
            method: method.into(),
            model: "tiny".into(),
            config: serde_json::json!({"b": 1, "a": [1, {"y": 2, "x": 1}]}),
        }
    }

    /// A served model's usage of `requests` requests.
    fn served(requests: u64) -> ServerUsage {
        ServerUsage {
            requests,
            prompt_tokens: 100 * requests,
            cached_prompt_tokens: 80 * requests,
            generated_tokens: 10 * requests,
        }
    }

    fn result(task: &str, passed: bool) -> TaskResult {
        TaskResult {
            task_id: task.into(),
            solution: Solution {
                program: "def f():\n    return 1\n".into(),
                attempts: vec![Attempt {
                    label: "greedy".into(),
                    program: "def f():\n    return 1\n".into(),
                    visible_passed: 3,
                    visible_total: 3,
                    gamma: Some(1.0),
                    wall_s: Some(2.5),
                    usage: served(4),
                }],
                cost: Cost {
                    prefill_tokens: 10,
                    decode_tokens: 20,
                    executions: 3,
                    no_program_tokens: Some(7),
                    usage: served(5),
                },
                records: serde_json::json!({"lines": 2}),
                profile: Some(crate::profile::tests::sample_profile()),
            },
            wall_ms: 12.5,
            scores: vec![SuiteScore {
                suite: "mbpp".into(),
                passed,
                tests_passed: if passed { 3 } else { 1 },
                tests_total: 3,
                detail: String::new(),
                attempts_passed: Some(vec![passed]),
            }],
        }
    }

    #[test]
    fn runs_are_keyed_and_results_round_trip() {
        let mut store = Store::open_in_memory().unwrap();
        let a = store.open_run(&key("baseline"), "v1").unwrap();
        let b = store.open_run(&key("egcfg"), "v1").unwrap();
        assert_ne!(a, b);
        assert_eq!(store.open_run(&key("baseline"), "v1").unwrap(), a);
        assert!(matches!(
            store.open_run(&key("baseline"), "v2"),
            Err(StoreError::DatasetChanged { .. })
        ));
        assert!(store.record(a, &result("Mbpp/511", true)).unwrap());
        let back = store.results(a).unwrap();
        assert_eq!(back, vec![result("Mbpp/511", true)]);
        assert_eq!(
            store.result(a, "Mbpp/511").unwrap(),
            Some(result("Mbpp/511", true))
        );
        assert_eq!(store.result(a, "Mbpp/512").unwrap(), None);
        let summary = store.result_summaries(a).unwrap().remove(0);
        assert_eq!(summary.solution.records, serde_json::Value::Null);
        assert_eq!(summary.scores, result("Mbpp/511", true).scores);
        assert!(store.results(b).unwrap().is_empty());
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].tasks_done, runs[1].tasks_done), (1, 0));
        assert_eq!(runs[0].key, key("baseline"));
    }

    #[test]
    fn a_task_is_recorded_at_most_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        {
            let mut store = Store::open(&path).unwrap();
            let run = store.open_run(&key("egcfg"), "v1").unwrap();
            assert!(store.record(run, &result("Mbpp/511", true)).unwrap());
            assert!(!store.record(run, &result("Mbpp/511", false)).unwrap());
        }
        let store = Store::open(&path).unwrap();
        let run = store.open_run(&key("egcfg"), "v1").unwrap();
        let results = store.results(run).unwrap();
        assert_eq!(results.len(), 1);
        assert!(results[0].scores[0].passed, "the first record stands");
        assert_eq!(
            store
                .finished_tasks(run)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["Mbpp/511"]
        );
    }

    /// A database of another program, with a `runs` table of its own.
    fn foreign_database(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (who TEXT); INSERT INTO runs VALUES ('someone else');",
        )
        .unwrap();
    }

    #[test]
    fn another_programs_database_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        foreign_database(&path);
        let before = std::fs::read(&path).unwrap();
        for err in [
            Store::open(&path).err().unwrap(),
            Store::open_read_only(&path).err().unwrap(),
        ] {
            let text = err.to_string();
            assert!(
                text.contains("not an egcfg results database") && text.contains("runs"),
                "{text}"
            );
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["other.sqlite"], "no WAL or journal files left");
    }

    #[test]
    fn a_file_that_is_no_database_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.sqlite");
        std::fs::write(&path, "x".repeat(4096)).unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("is not an SQLite database"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), "x".repeat(4096).as_bytes());
    }

    /// A new results database at `path` holding one run with task `t1`
    /// passed, still open.
    fn database_with_one_result(path: &Path) -> Store {
        let mut store = Store::open(path).unwrap();
        let run = store.open_run(&key("egcfg"), "v1").unwrap();
        store.record(run, &result("t1", true)).unwrap();
        store
    }

    #[test]
    fn a_damaged_database_is_named_as_such_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.sqlite");
        drop(database_with_one_result(&path));
        // A copy cut short: the first page survives, the tables do not.
        let whole = std::fs::read(&path).unwrap();
        assert!(whole.len() > 5000, "{} bytes", whole.len());
        std::fs::write(&path, &whole[..5000]).unwrap();
        for err in [
            Store::open(&path).err().unwrap(),
            Store::open_read_only(&path).err().unwrap(),
        ] {
            assert!(matches!(err, StoreError::Damaged { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains("is damaged") && text.contains("copy"),
                "{text}"
            );
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            &whole[..5000],
            "the file changed"
        );
    }

    #[test]
    fn a_directory_is_named_as_one_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for err in [
            Store::open(dir.path()).err().unwrap(),
            Store::open_read_only(dir.path()).err().unwrap(),
        ] {
            assert!(matches!(err, StoreError::Directory { .. }), "{err}");
            assert!(err.to_string().contains("is a directory"), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn reading_a_report_changes_nothing_and_needs_an_egcfg_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.sqlite");
        drop(database_with_one_result(&path));
        let before = std::fs::read(&path).unwrap();
        let store = Store::open_read_only(&path).unwrap();
        assert_eq!(store.runs().unwrap().len(), 1);
        assert!(store.open_run(&key("baseline"), "v1").is_err(), "read-only");
        drop(store);
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let empty = dir.path().join("empty.sqlite");
        std::fs::write(&empty, "").unwrap();
        assert!(Store::open_read_only(&empty).is_err());
        let missing = Store::open_read_only(&dir.path().join("none.sqlite"))
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("a benchmark run creates it"), "{missing}");
    }

    #[test]
    fn a_database_from_before_the_no_program_column_keeps_its_results() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let old_result = {
            let store = database_with_one_result(&path);
            store
                .conn
                .execute_batch("ALTER TABLE results DROP COLUMN no_program_tokens")
                .unwrap();
            let mut old = result("t1", true);
            old.solution.cost.no_program_tokens = None;
            old
        };
        let reader = Store::open_read_only(&path).unwrap();
        let run = reader.runs().unwrap()[0].id;
        assert_eq!(reader.results(run).unwrap(), vec![old_result.clone()]);
        drop(reader);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.results(run).unwrap(), vec![old_result.clone()]);
        store.record(run, &result("t2", false)).unwrap();
        let both = store.results(run).unwrap();
        assert_eq!(both[0], old_result, "the finished result is kept as it was");
        assert_eq!(both[1].solution.cost.no_program_tokens, Some(7));
    }

    #[test]
    fn a_database_from_before_served_costs_keeps_its_results_and_gains_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let old_result = {
            let store = database_with_one_result(&path);
            for column in USAGE_COLUMNS {
                store
                    .conn
                    .execute_batch(&format!("ALTER TABLE results DROP COLUMN {column}"))
                    .unwrap();
            }
            // Its attempts were written without γ, wall time or usage.
            let mut old = result("t1", true);
            old.solution.cost.usage = ServerUsage::default();
            let attempt = &mut old.solution.attempts[0];
            (attempt.gamma, attempt.wall_s, attempt.usage) = (None, None, ServerUsage::default());
            store
                .conn
                .execute(
                    "UPDATE results SET attempt_list = ?1",
                    [serde_json::json!([{
                        "label": "greedy",
                        "program": "def f():\n    return 1\n",
                        "visible_passed": 3,
                        "visible_total": 3,
                    }])
                    .to_string()],
                )
                .unwrap();
            old
        };
        let reader = Store::open_read_only(&path).unwrap();
        let run = reader.runs().unwrap()[0].id;
        assert_eq!(reader.results(run).unwrap(), vec![old_result.clone()]);
        drop(reader);
        let mut store = Store::open(&path).unwrap();
        store.record(run, &result("t2", false)).unwrap();
        let both = store.results(run).unwrap();
        assert_eq!(both[0], old_result, "the finished result is kept as it was");
        assert_eq!(both[1], result("t2", false), "new results keep their costs");
    }

    #[test]
    fn a_database_from_before_the_application_id_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            // It also predates the table of tasks that could not run.
            conn.execute_batch("DROP TABLE unrunnable").unwrap();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )
            .unwrap();
        }
        let old = Store::open_read_only(&path).unwrap();
        assert_eq!(old.unrunnable(RunId(1)).unwrap(), Vec::new());
        drop(old);
        Store::open(&path).unwrap();
    }

    #[test]
    fn a_database_from_before_profiles_keeps_its_results_and_gains_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let mut old_result = result("Mbpp/511", true);
        old_result.solution.profile = None;
        {
            let mut store = Store::open(&path).unwrap();
            let run = store.open_run(&key("egcfg"), "v1").unwrap();
            assert!(store.record(run, &old_result).unwrap());
            store.conn.execute_batch("DROP TABLE profiles").unwrap();
        }
        let read_only = Store::open_read_only(&path).unwrap();
        let run = read_only.runs().unwrap()[0].id;
        assert_eq!(read_only.results(run).unwrap(), vec![old_result.clone()]);
        drop(read_only);

        let mut store = Store::open(&path).unwrap();
        let profiled = result("Mbpp/512", false);
        assert!(profiled.solution.profile.is_some());
        assert!(store.record(run, &profiled).unwrap());
        assert_eq!(
            store.results(run).unwrap(),
            vec![old_result, profiled],
            "the old result is kept, the new one has its profile"
        );
    }

    #[test]
    fn an_unrunnable_task_is_finished_kept_apart_and_recorded_once() {
        let mut store = Store::open_in_memory().unwrap();
        let run = store.open_run(&key("egcfg"), "v1").unwrap();
        let too_long = UnrunnableTask {
            task_id: "Mbpp/7".into(),
            reason: "the prompt needs 900 tokens".into(),
        };
        assert!(store.record_unrunnable(run, &too_long).unwrap());
        assert!(!store.record_unrunnable(run, &too_long).unwrap());
        assert!(store.record(run, &result("Mbpp/511", true)).unwrap());
        // A task already finished is never also marked unrunnable.
        let late = UnrunnableTask {
            task_id: "Mbpp/511".into(),
            reason: "late".into(),
        };
        assert!(!store.record_unrunnable(run, &late).unwrap());

        assert_eq!(store.unrunnable(run).unwrap(), vec![too_long]);
        assert_eq!(store.results(run).unwrap().len(), 1, "not a failed program");
        assert_eq!(
            store
                .finished_tasks(run)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["Mbpp/511", "Mbpp/7"]
        );
    }
}
