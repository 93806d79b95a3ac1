//! Why a results database could not be used, in words that say what to do.

use super::SCHEMA_VERSION;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("results database {path}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// There is no file at the path.
    #[error("no results database at {path}; a benchmark run creates it")]
    Missing {
        /// The path.
        path: String,
    },
    /// The path is a directory, where a database file was expected.
    #[error("{path} is a directory; a results database is a file: give the path of one")]
    Directory {
        /// The path.
        path: String,
    },
    /// The file is an SQLite database whose pages are damaged (cut short
    /// by a copy, or written over): SQLite can read none or only part of it.
    #[error(
        "{path} is damaged (SQLite: {detail}); egcfg left it unchanged; restore it from a copy, \
         or give a new path"
    )]
    Damaged {
        /// The file.
        path: String,
        /// SQLite's description of the damage.
        detail: String,
    },
    /// The file is not an SQLite database at all.
    #[error("{path} is not an SQLite database, so not egcfg's results; egcfg left it unchanged; give a new path")]
    NotADatabase {
        /// The file.
        path: String,
    },
    /// The file is another program's SQLite database (or an empty one,
    /// where a report was asked for).
    #[error(
        "{path} is not an egcfg results database{}; egcfg left it unchanged; give a new path",
        describe_tables(tables)
    )]
    Foreign {
        /// The file.
        path: String,
        /// Its tables (none for an empty database).
        tables: Vec<String>,
    },
    /// The file was written by an incompatible egcfg.
    #[error("results database {path} has schema version {found}, this egcfg writes {SCHEMA_VERSION}; use a new database file")]
    Schema {
        /// The database file.
        path: String,
        /// The version found.
        found: i64,
    },
    /// The run exists but was recorded on different data.
    #[error("run {key} was recorded on dataset version {recorded}, but the data now is {current}; use a new database file to keep the runs apart")]
    DatasetChanged {
        /// The run.
        key: String,
        /// The version in the database.
        recorded: String,
        /// The version loaded now.
        current: String,
    },
    /// A stored JSON column could not be read.
    #[error("results database {path}: corrupt {column} in result {id}: {message}")]
    Corrupt {
        /// The database file.
        path: String,
        /// The column.
        column: &'static str,
        /// The row id.
        id: i64,
        /// The parse error.
        message: String,
    },
}

impl StoreError {
    /// The error for SQLite's `source` on the database at `path`: a damaged
    /// file is named as such.
    pub(super) fn sqlite(path: &str, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
                path: path.to_owned(),
                detail: source.to_string(),
            },
            _ => StoreError::Sqlite {
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// ` (its tables: a, b)` or ` (it holds no tables)`, for [`StoreError::Foreign`].
fn describe_tables(tables: &[String]) -> String {
    if tables.is_empty() {
        " (it holds no tables)".into()
    } else {
        format!(" (its tables: {})", tables.join(", "))
    }
}
