//! Finding the real Python binary, once.
//!
//! pyenv's `python3` is a shell-script shim that costs ~70 ms per start;
//! servers must start the interpreter itself. The candidate (`EGCFG_PYTHON`,
//! the configured path, or `python3` on `PATH`) is asked for
//! `sys.executable` once; if that does not name an ELF binary, `PATH` is
//! scanned for one. The same question names the directories the
//! interpreter loads its code from, which its sandboxed children must be
//! able to read.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::ExecutorError;

/// A resolved interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// The real binary.
    pub(crate) path: PathBuf,
    /// `major.minor.micro`.
    pub(crate) version: String,
    /// Where it loads its code from: its prefixes and the entries of
    /// `sys.path` (without the site directories, as servers start it).
    pub(crate) code_dirs: Vec<PathBuf>,
}

/// What an interpreter says of itself.
struct Report {
    executable: PathBuf,
    version: String,
    code_dirs: Vec<PathBuf>,
}

/// Prints `sys.executable`, the version, then one code directory a line.
const QUERY: &str = "import sys;print(sys.executable);print('%d.%d.%d' % sys.version_info[:3]);\
print('\\n'.join(p for p in [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix] + sys.path if p))";

/// Resolves `configured`, else `EGCFG_PYTHON`, else `python3` on `PATH`.
pub(crate) fn resolve(configured: Option<&Path>) -> Result<Interpreter, ExecutorError> {
    let from_env = std::env::var_os("EGCFG_PYTHON").map(PathBuf::from);
    let candidate = configured
        .map(Path::to_path_buf)
        .or(from_env)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let report = query(&candidate)?;
    let (path, report) = if is_elf(&report.executable) {
        (report.executable.clone(), report)
    } else if is_elf(&candidate) {
        (candidate.clone(), report)
    } else {
        scan_path(&report.version).ok_or_else(|| ExecutorError::PythonNotFound {
            detail: format!(
                "{} reports sys.executable = {:?}, which is no binary, and no Python {} binary is on PATH",
                candidate.display(),
                report.executable,
                report.version
            ),
        })?
    };
    let Report {
        version, code_dirs, ..
    } = report;
    let (major, minor) = major_minor(&version);
    if (major, minor) < (3, 9) {
        return Err(ExecutorError::PythonTooOld { path, version });
    }
    Ok(Interpreter {
        path,
        version,
        code_dirs,
    })
}

fn query(python: &Path) -> Result<Report, ExecutorError> {
    let out = Command::new(python)
        .args(["-S", "-I", "-c", QUERY])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ExecutorError::PythonNotFound {
            detail: format!("cannot run {}: {e}", python.display()),
        })?;
    if !out.status.success() {
        return Err(ExecutorError::PythonNotFound {
            detail: format!(
                "{} failed: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let executable = PathBuf::from(lines.next().unwrap_or_default().trim());
    let version = lines.next().unwrap_or_default().trim().to_string();
    Ok(Report {
        executable,
        version,
        code_dirs: lines.map(PathBuf::from).collect(),
    })
}

fn major_minor(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether `path` is an executable ELF file (not a script such as a shim).
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let Ok(resolved) = std::fs::canonicalize(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    std::fs::File::open(resolved)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The first `python3` ELF binary on `PATH` with this version, and what it
/// says of itself.
fn scan_path(version: &str) -> Option<(PathBuf, Report)> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .filter(|p| is_elf(p))
        .find_map(|p| {
            let report = query(&p).ok()?;
            (report.version == version).then_some((p, report))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_to_a_binary_not_a_shim() {
        let python = resolve(None).expect("python3 on PATH");
        assert!(is_elf(&python.path), "{:?}", python.path);
        assert!(major_minor(&python.version) >= (3, 9));
        let stdlib = python
            .code_dirs
            .iter()
            .find(|dir| dir.join("os.py").is_file());
        assert!(stdlib.is_some(), "{:?}", python.code_dirs);
    }

    #[test]
    fn scripts_are_not_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec python3 \"$@\"\n").unwrap();
        assert!(!is_elf(&shim));
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(major_minor("3.11.7"), (3, 11));
        assert!(major_minor("3.10.0") > (3, 9));
    }
}
