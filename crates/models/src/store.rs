//! The content-addressed model store under `$EGCFG_HOME`.
//!
//! A model lives at `<root>/models/<sha256>/<file name>`, next to a
//! `stamp.json` that records the size, modification time and digest seen
//! when it was last verified. Hashing a gigabyte takes seconds, so everyday
//! checks compare size and mtime with the stamp; [`Store::verify`] re-hashes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::digest::Sha256Digest;
use crate::error::{Corruption, Error};
use crate::registry::ModelSpec;

/// The environment variable that overrides the store's location.
pub const HOME_VAR: &str = "EGCFG_HOME";

/// File name of the verification stamp inside a model's directory.
const STAMP_FILE: &str = "stamp.json";

/// What was true of a model file when its digest was last checked.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    sha256: Sha256Digest,
    size: u64,
    modified: SystemTime,
}

/// A directory holding model files by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `$EGCFG_HOME`, or else at `egcfg` in the user's cache
    /// directory (`~/.cache/egcfg` on Linux).
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var_os(HOME_VAR) {
            Some(home) if !home.is_empty() => Ok(Self::at(home)),
            _ => dirs::cache_dir()
                .map(|cache| Self::at(cache.join("egcfg")))
                .ok_or(Error::NoStoreLocation),
        }
    }

    /// The store rooted at `root` (created on first fetch).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory that holds the file with this digest and its stamp.
    pub fn model_dir(&self, sha256: &Sha256Digest) -> PathBuf {
        self.root.join("models").join(sha256.to_string())
    }

    /// Where the model's file is (or will be) stored.
    pub fn model_path(&self, spec: &ModelSpec) -> PathBuf {
        self.model_dir(&spec.sha256).join(&spec.file_name)
    }

    fn stamp_path(&self, spec: &ModelSpec) -> PathBuf {
        self.model_dir(&spec.sha256).join(STAMP_FILE)
    }

    /// Whether the model's file is present and unchanged since it was
    /// verified: a quick check of size and mtime against the stamp, no hashing.
    pub fn is_installed(&self, spec: &ModelSpec) -> bool {
        let Ok(metadata) = fs::metadata(self.model_path(spec)) else {
            return false;
        };
        let Ok(recorded) = fs::read(self.stamp_path(spec)) else {
            return false;
        };
        let Ok(stamp) = serde_json::from_slice::<Stamp>(&recorded) else {
            debug!(model = %spec.name, "unreadable stamp; treating as not installed");
            return false;
        };
        stamp.sha256 == spec.sha256
            && stamp.size == spec.size
            && metadata.is_file()
            && metadata.len() == spec.size
            && metadata
                .modified()
                .is_ok_and(|modified| modified == stamp.modified)
    }

    /// Re-hashes the stored file. On a match the stamp is renewed and the
    /// path returned; on a mismatch the stamp is removed (so the quick check
    /// fails from now on) and the error says what was found.
    pub fn verify(&self, spec: &ModelSpec) -> Result<PathBuf, Error> {
        let path = self.model_path(spec);
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotInstalled {
                    model: spec.name.clone(),
                    path,
                })
            }
            Err(source) => return Err(io_error("cannot read", &path, source)),
        };
        let found = Sha256Digest::of_file(&path).map_err(|e| io_error("cannot read", &path, e))?;
        if found == spec.sha256 && metadata.len() == spec.size {
            self.record_stamp(spec)?;
            return Ok(path);
        }
        let stamp = self.stamp_path(spec);
        if let Err(e) = fs::remove_file(&stamp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io_error("cannot remove", &stamp, e));
            }
        }
        Err(Error::Corrupt(Box::new(Corruption {
            model: spec.name.clone(),
            path,
            expected: spec.sha256,
            found,
            expected_size: spec.size,
            found_size: metadata.len(),
        })))
    }

    /// Records that the stored file, as it is now, has the official digest.
    /// Call only right after checking the bytes.
    pub(crate) fn record_stamp(&self, spec: &ModelSpec) -> Result<(), Error> {
        let path = self.model_path(spec);
        let metadata = fs::metadata(&path).map_err(|e| io_error("cannot read", &path, e))?;
        let modified = metadata
            .modified()
            .map_err(|e| io_error("cannot read the mtime of", &path, e))?;
        let stamp = Stamp {
            sha256: spec.sha256,
            size: metadata.len(),
            modified,
        };
        let json = serde_json::to_vec_pretty(&stamp).expect("a stamp always serializes");
        let stamp_path = self.stamp_path(spec);
        let dir = self.model_dir(&spec.sha256);
        let mut tmp = store_file_builder(".stamp.", ".tmp")
            .tempfile_in(&dir)
            .map_err(|e| io_error("cannot create a file in", &dir, e))?;
        tmp.write_all(&json)
            .map_err(|e| io_error("cannot write", tmp.path(), e))?;
        tmp.persist(&stamp_path)
            .map_err(|e| io_error("cannot write", &stamp_path, e.error))?;
        Ok(())
    }
}

/// A temporary-file builder for files that end up in the store. On Unix
/// they are created readable by everyone the umask allows, like any
/// installed file, instead of tempfile's owner-only default.
pub(crate) fn store_file_builder<'a, 'b>(
    prefix: &'a str,
    suffix: &'b str,
) -> tempfile::Builder<'a, 'b> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder
}

/// Shorthand for [`Error::Io`].
pub(crate) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
