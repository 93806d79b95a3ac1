//! The GGUF models egcfg runs: which ones it knows, where they are kept,
//! and how they get there safely.
//!
//! * [`Registry`] lists known models by name ([`Registry::builtin`]): file
//!   name, exact size, official SHA-256, licence, upstream repository, and
//!   [`Source`]s in the order to try them (the upstream file over HTTPS,
//!   then mirrors, such as model files split across Python wheels).
//! * [`Store`] keeps files content-addressed at
//!   `$EGCFG_HOME/models/<sha256>/<file name>` with a small stamp, so that
//!   later runs check size and mtime instead of re-hashing a gigabyte.
//! * [`Models`] ties both together: [`Models::fetch`] downloads into a
//!   `*.part` file, verifies size and digest, and renames it into place;
//!   [`Models::resolve`] turns a `--model` argument (name or GGUF path) into
//!   a local path; [`Models::list`] reports what is installed.
//!
//! No source is trusted. Bytes are accepted only when they match the
//! registered SHA-256, and a failed fetch never leaves a file where a model
//! is expected.

#![deny(missing_docs)]

mod digest;
mod error;
mod fetch;
mod list;
mod manager;
mod progress;
mod registry;
mod resolve;
mod store;

#[cfg(test)]
mod testing;

pub use digest::{ParseDigestError, Sha256Digest};
pub use error::{Attempt, Corruption, Error, SourceError};
pub use fetch::{abandon_fetches, FetchOptions, PYTHON_VAR, TIMEOUT_VAR};
pub use list::ModelEntry;
pub use manager::Models;
pub use registry::{ModelSpec, Registry, Source, WheelPart};
pub use resolve::check_gguf;
pub use store::{Store, HOME_VAR};
