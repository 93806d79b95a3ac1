//! The temporary `*.part` file a fetch writes into: it counts, hashes and
//! bounds the bytes as they arrive, and is deleted unless it is verified.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tracing::{info, warn};

use super::interrupt::TrackedPath;
use crate::digest::{Sha256Digest, CHUNK};
use crate::error::SourceError;
use crate::progress;
use crate::registry::ModelSpec;
use crate::store::store_file_builder;

/// Suffix of every temporary file and directory of a fetch.
pub(crate) const PART_SUFFIX: &str = ".part";

/// A model file being written; removed from disk when dropped.
pub(crate) struct PartFile {
    file: NamedTempFile,
    tracked: TrackedPath,
    hasher: Sha256,
    written: u64,
    expected: u64,
    bar: ClearOnDrop,
}

/// A fully written temporary file whose size and digest match the model.
pub(crate) struct Verified {
    file: NamedTempFile,
    _tracked: TrackedPath,
}

/// Clears a progress bar from the terminal however the fetch ends.
struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl PartFile {
    /// Creates `<dir>/<file name>.<random>.part` for `spec`, with a byte
    /// progress bar when `show_progress` is set.
    pub(crate) fn create(
        dir: &Path,
        spec: &ModelSpec,
        show_progress: bool,
    ) -> Result<Self, SourceError> {
        let file = store_file_builder(&format!("{}.", spec.file_name), PART_SUFFIX)
            .tempfile_in(dir)
            .map_err(|e| {
                SourceError::io(
                    format!("cannot create a temporary file in {}", dir.display()),
                    e,
                )
            })?;
        Ok(Self {
            tracked: TrackedPath::new(file.path()),
            file,
            hasher: Sha256::new(),
            written: 0,
            expected: spec.size,
            bar: ClearOnDrop(progress::bytes(spec.size, spec.name.clone(), show_progress)),
        })
    }

    /// Appends everything `reader` yields, failing as soon as the total
    /// would exceed the model's size.
    pub(crate) fn append(&mut self, mut reader: impl Read) -> Result<(), SourceError> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => {
                    return Err(SourceError::Stalled {
                        received: self.written,
                    })
                }
                Err(e) => {
                    return Err(SourceError::io(
                        format!("read failed after {} bytes", self.written),
                        e,
                    ))
                }
            };
            if self.written + n as u64 > self.expected {
                return Err(SourceError::TooLong {
                    expected: self.expected,
                });
            }
            self.hasher.update(&buf[..n]);
            self.file.write_all(&buf[..n]).map_err(|e| {
                SourceError::io(format!("cannot write {}", self.file.path().display()), e)
            })?;
            self.written += n as u64;
            self.bar.0.inc(n as u64);
        }
    }

    /// Checks size and digest against `spec` and flushes the file to disk.
    pub(crate) fn finish(self, spec: &ModelSpec) -> Result<Verified, SourceError> {
        if self.written != spec.size {
            return Err(SourceError::Truncated {
                expected: spec.size,
                found: self.written,
            });
        }
        let found = Sha256Digest::from_hasher(self.hasher);
        if found != spec.sha256 {
            return Err(SourceError::ChecksumMismatch {
                expected: spec.sha256,
                found,
                size: self.written,
            });
        }
        self.file.as_file().sync_all().map_err(|e| {
            SourceError::io(format!("cannot flush {}", self.file.path().display()), e)
        })?;
        Ok(Verified {
            file: self.file,
            _tracked: self.tracked,
        })
    }
}

/// Whether a read failed for want of data within the read timeout (ureq
/// wraps its own timeout error in the `io::Error` its body reader returns).
fn is_timeout(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::TimedOut
        || error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)))
}

impl Verified {
    /// Renames the file to `path` in one atomic step.
    pub(crate) fn persist(self, path: &Path) -> io::Result<()> {
        self.file.persist(path).map(drop).map_err(|e| e.error)
    }
}

/// Removes every `*.part` file and directory in `dir`: leftovers of
/// fetches that were killed. Call only while holding the store's fetch
/// lock, which guarantees that no fetch is under way.
pub(crate) fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_part = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(PART_SUFFIX));
        if !is_part {
            continue;
        }
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => info!(path = %path.display(), "removed the leftover of an interrupted fetch"),
            Err(e) => {
                warn!(path = %path.display(), "cannot remove the leftover of an interrupted fetch: {e}")
            }
        }
    }
}
