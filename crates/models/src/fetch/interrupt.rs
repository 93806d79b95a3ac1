//! What a fetch leaves behind if the process is stopped mid-way, kept in
//! one process-wide list so that a signal handler can undo it.
//!
//! In the normal course every temporary file and directory of a fetch is
//! removed by its owner's `Drop`, and `pip` is waited for. A signal that
//! ends the process runs no destructor, so each fetch also registers its
//! temporary paths and its `pip` process here while they exist, and
//! [`abandon_fetches`] (called by the binary's signal handler, just before
//! it exits) kills those processes and removes those paths.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::debug;

/// Temporary paths and child processes of the fetches under way.
#[derive(Default)]
struct InFlight {
    paths: Vec<PathBuf>,
    children: Vec<u32>,
    /// [`abandon_fetches`] ran: the process is ending.
    abandoned: bool,
}

static IN_FLIGHT: Mutex<InFlight> = Mutex::new(InFlight {
    paths: Vec::new(),
    children: Vec::new(),
    abandoned: false,
});

fn in_flight() -> std::sync::MutexGuard<'static, InFlight> {
    // A panic while the list was held leaves it usable: it is plain data.
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every `pip` process of a fetch under way (with its process group)
/// and removes every temporary file and directory of one. For a handler of
/// SIGINT and SIGTERM to call before the process exits; safe to call from
/// any thread, and at any time (it then breaks the fetches under way).
pub fn abandon_fetches() {
    let mut state = in_flight();
    state.abandoned = true;
    for pid in state.children.drain(..) {
        kill_group(pid);
    }
    for path in state.paths.drain(..) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        debug!(path = %path.display(), ?removed, "removed an abandoned download");
    }
}

/// A temporary path registered for [`abandon_fetches`] while this lives.
/// Dropping it only unregisters the path: its owner removes it.
pub(crate) struct TrackedPath(PathBuf);

impl TrackedPath {
    pub(crate) fn new(path: &Path) -> Self {
        in_flight().paths.push(path.to_owned());
        Self(path.to_owned())
    }
}

impl Drop for TrackedPath {
    fn drop(&mut self) {
        in_flight().paths.retain(|p| p != &self.0);
    }
}

/// A child process (leader of its own process group) registered for
/// [`abandon_fetches`] while this lives. Dropping it kills the group unless
/// [`TrackedChild::exited`] was called, so that no early return leaves the
/// child running.
pub(crate) struct TrackedChild {
    pid: u32,
    running: bool,
}

impl TrackedChild {
    pub(crate) fn new(pid: u32) -> Self {
        in_flight().children.push(pid);
        Self { pid, running: true }
    }

    /// The child has been waited for: nothing is left to kill (and its
    /// pid may be reused from now on, so it leaves the list at once).
    ///
    /// When [`abandon_fetches`] killed it, this never returns: the signal
    /// handler that called it is about to end the process with the signal,
    /// and the failed fetch, carried on, would race it to exit with a plain
    /// error code instead.
    pub(crate) fn exited(&mut self) {
        self.running = false;
        let mut state = in_flight();
        state.children.retain(|&p| p != self.pid);
        if state.abandoned {
            drop(state);
            loop {
                std::thread::park();
            }
        }
    }
}

impl Drop for TrackedChild {
    fn drop(&mut self) {
        in_flight().children.retain(|&p| p != self.pid);
        if self.running {
            kill_group(self.pid);
        }
    }
}

/// Sends SIGKILL to the process group led by `pid`.
#[cfg(unix)]
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a
    // negative pid addresses the process group `pid` leads.
    let result = unsafe { libc::kill(-pid, libc::SIGKILL) };
    debug!(pid, result, "killed the process group of pip");
}

#[cfg(not(unix))]
fn kill_group(_pid: u32) {}
