//! Files the user asks egcfg to write (`--record`, `--html`), claimed before
//! any compute is spent and written in one step at the end.
//!
//! A careful tool never replaces what it was not asked to replace: an
//! output path that names one of the run's inputs (the task file, the
//! results database) or an existing file egcfg did not write is refused up
//! front, with the reason, so a typo costs nothing. The content goes to a
//! temporary file beside the target and is renamed over it only when
//! complete, so an interrupted write never leaves half a file.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tempfile::NamedTempFile;

/// What kind of file an output is, and how to recognise an earlier one of
/// the same kind (which may be replaced).
#[derive(Debug, Clone, Copy)]
pub struct OutputKind {
    /// The flag that names the file, for messages.
    pub flag: &'static str,
    /// What it holds, for messages ("HTML report").
    pub what: &'static str,
    /// Whether the first bytes of an existing file show it is an earlier
    /// output of this kind.
    pub is_earlier_output: fn(&[u8]) -> bool,
}

/// How much of an existing file is read to recognise it.
const SNIFF_BYTES: u64 = 64 * 1024;

/// A claimed output path: checked, with a temporary file ready beside it.
pub struct OutputFile {
    path: PathBuf,
    kind: OutputKind,
    staged: NamedTempFile,
}

impl OutputFile {
    /// Checks that `path` may receive a `kind` output of a run that reads
    /// `inputs`, and stages a temporary file in its directory (which proves
    /// the directory is writable before the run starts).
    pub fn claim(path: &Path, kind: OutputKind, inputs: &[&Path]) -> Result<OutputFile> {
        let flag = kind.flag;
        if path.is_dir() {
            bail!("{flag} {} is a directory; give a file path", path.display());
        }
        for input in inputs {
            if same_file(path, input) {
                bail!(
                    "{flag} {} is this run's input {}; egcfg never writes over its inputs, so give another path",
                    path.display(),
                    input.display()
                );
            }
        }
        if path.exists() {
            let head = read_head(path).with_context(|| {
                format!("{flag} {}: cannot read the existing file", path.display())
            })?;
            if !(kind.is_earlier_output)(&head) {
                bail!(
                    "{flag} {} already exists and is not an earlier egcfg {}; give another path, or remove the file if it may go",
                    path.display(),
                    kind.what
                );
            }
        }
        let dir = directory_of(path);
        if !dir.is_dir() {
            bail!(
                "{flag} {}: there is no directory {}; create it first, or give another path",
                path.display(),
                dir.display()
            );
        }
        let staged = NamedTempFile::new_in(dir).with_context(|| {
            format!(
                "{flag} {}: cannot create a file in {}",
                path.display(),
                dir.display()
            )
        })?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            kind,
            staged,
        })
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` and moves them into place in one rename.
    pub fn write(mut self, bytes: &[u8]) -> Result<()> {
        let target = format!("{} {}", self.kind.flag, self.path.display());
        self.staged
            .write_all(bytes)
            .and_then(|()| self.staged.as_file().sync_all())
            .with_context(|| format!("writing {target}"))?;
        self.staged
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("moving the finished {target} into place"))?;
        Ok(())
    }
}

/// Whether `a` and `b` name the same file, whether or not it exists yet
/// (an input such as a results database may be created after the check).
fn same_file(a: &Path, b: &Path) -> bool {
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `path` with links and `..` resolved: the file's own when it exists,
/// else its directory's joined with its name.
fn resolved(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok().or_else(|| {
        Some(
            fs::canonicalize(directory_of(path))
                .ok()?
                .join(path.file_name()?),
        )
    })
}

/// The directory a file `path` is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    fs::File::open(path)?
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: OutputKind = OutputKind {
        flag: "--note",
        what: "note",
        is_earlier_output: |head| head.starts_with(b"egcfg note"),
    };

    #[test]
    fn an_earlier_output_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        fs::write(&path, "egcfg note: old").unwrap();
        let out = OutputFile::claim(&path, NOTE, &[]).unwrap();
        out.write(b"egcfg note: new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "egcfg note: new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
    }

    #[test]
    fn a_foreign_file_or_an_input_is_never_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("mine.txt");
        fs::write(&foreign, "precious").unwrap();
        let err = OutputFile::claim(&foreign, NOTE, &[]).err().unwrap();
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");

        let input = dir.path().join("egcfg-note.txt");
        fs::write(&input, "egcfg note").unwrap();
        let via_dot = dir.path().join(".").join("egcfg-note.txt");
        let err = OutputFile::claim(&via_dot, NOTE, &[&input]).err().unwrap();
        assert!(format!("{err:#}").contains("input"), "{err:#}");
        assert_eq!(fs::read_to_string(&foreign).unwrap(), "precious");

        // An input the run has yet to create, such as a new database.
        let new_input = dir.path().join("runs.sqlite");
        let via_dot = dir.path().join(".").join("runs.sqlite");
        let err = OutputFile::claim(&via_dot, NOTE, &[&new_input])
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("input"), "{err:#}");
        assert!(!new_input.exists());
    }

    #[test]
    fn a_missing_directory_is_found_before_the_run() {
        let err = OutputFile::claim(Path::new("/nonexistent-dir/out.txt"), NOTE, &[])
            .err()
            .unwrap();
        let text = format!("{err:#}");
        assert!(
            text.contains("there is no directory /nonexistent-dir; create it first"),
            "{text}"
        );
        assert!(!text.contains(".tmp"), "no staging file is named: {text}");
    }
}
