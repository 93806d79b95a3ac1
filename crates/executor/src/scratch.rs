//! Where sandboxed programs may write: one scratch directory per executor,
//! one per server below it (each with the Landlock ruleset that confines
//! writes to it), removed when the executor goes; an executor that died
//! without cleaning up has its directory swept by the next one.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ExecutorError;
use crate::pool::ScratchFactory;
use crate::sandbox::landlock;

/// The per-executor scratch directory, removed when the executor goes.
pub(crate) struct ScratchRoot {
    pub(crate) path: PathBuf,
}

impl ScratchRoot {
    pub(crate) fn create(parent: &Path) -> Result<Self, ExecutorError> {
        use std::os::unix::fs::DirBuilderExt;
        sweep_stale(parent);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!("egcfg-{}-{nanos:08x}", std::process::id()));
        // Searchable (for a child running as the sandbox id) but neither
        // listable nor writable by it.
        std::fs::DirBuilder::new()
            .mode(0o711)
            .create(&path)
            .map_err(|source| ExecutorError::Scratch {
                path: path.clone(),
                source,
            })?;
        Ok(ScratchRoot { path })
    }
}

/// Removes scratch roots of executors whose process is gone (one that
/// exits without dropping its executor leaves its root behind).
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("egcfg-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for ScratchRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Per server: `<root>/s<index>`, emptied, and a Landlock ruleset for it.
pub(crate) fn scratch_factory(
    root: PathBuf,
    landlock: Option<Arc<landlock::Policy>>,
) -> Arc<ScratchFactory> {
    Arc::new(
        move |index: usize| -> Result<(PathBuf, Option<OwnedFd>), String> {
            let dir = root.join(format!("s{index}"));
            let _ = std::fs::remove_dir_all(&dir);
            let fd = spawn_scratch(&dir, landlock.as_deref())?;
            Ok((dir, fd))
        },
    )
}

/// Creates `dir` for one server or one-shot interpreter, and the Landlock
/// ruleset confining its children to it.
pub(crate) fn spawn_scratch(
    dir: &Path,
    landlock: Option<&landlock::Policy>,
) -> Result<Option<OwnedFd>, String> {
    server_dir(dir)?;
    landlock.map(|policy| policy.ruleset_fd(dir)).transpose()
}

/// Creates `dir` and its scratch subdirectory, both searchable (for a
/// child running as the sandbox id) but neither listable nor writable by
/// anyone but the manager's uid.
fn server_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let scratch = dir.join(crate::server::SCRATCH_SUBDIR);
    std::fs::DirBuilder::new()
        .mode(0o711)
        .recursive(true)
        .create(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))
}
