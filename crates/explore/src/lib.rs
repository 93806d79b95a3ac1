//! `egcfg explore`: a local web app over a results database or a solve
//! record, to see why a task passed or failed.
//!
//! The pages, each reached from the one before:
//!
//! * `/`: the runs side by side (dataset, model, method, config) with their
//!   headline numbers; a run still being written refreshes itself;
//! * `/run?id=N`: the tasks of a run, filterable by solved / failed and,
//!   against another run (by default the baseline), fixed / broken;
//! * `/task?run=N&id=T`: the attempts in schedule order with their costs,
//!   the hidden-test verdicts of the chosen program, and the other run's
//!   program beside it;
//! * `/attempt?run=N&id=T&n=K`: the program as it grew line by line, each
//!   refresh's candidates, traces and signal, and every guided token;
//!   `&token=S` opens the top tokens of `P`, `P_c` and the guided
//!   distribution at step S.
//!
//! JSON of the same data is under `/api/`. Pages are rendered on the server
//! with every recorded text escaped (model-written code is untrusted and may
//! hold markup); the only asset is a stylesheet compiled into the binary,
//! so the explorer works offline. Nothing from the database is executed.

#![deny(missing_docs)]

mod api;
mod attempt;
mod page;
mod run;
mod runs;
mod server;
mod source;
mod task;

pub use server::{serve, Explorer, Response};

/// The port `egcfg explore` listens on unless told otherwise, and the one
/// the HTML report's task links point to.
pub const DEFAULT_PORT: u16 = egcfg_bench::report::EXPLORER_PORT;
pub use source::Source;

/// Why the explorer could not show its file.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] egcfg_bench::StoreError),
    /// The file is neither an egcfg database nor a solve record.
    #[error(
        "{path} is neither an egcfg results database nor an `egcfg solve --record` file \
         (read as a record's JSON: {message}); give one of those"
    )]
    NotARecord {
        /// The file.
        path: String,
        /// Why it is not a record.
        message: String,
    },
    /// The server could not listen.
    #[error("cannot listen on {address}: {message}")]
    Listen {
        /// The address.
        address: String,
        /// The error.
        message: String,
    },
}
