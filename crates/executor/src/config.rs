//! How the executor is set up: pool size, interpreter, limits and the
//! isolation it must refuse to run without.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::caps::Layer;

/// Settings for [`crate::Executor::start`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// Number of fork-servers, i.e. executions in flight at once.
    /// Default: available cores + 1 (the extra one hides IPC latency).
    pub pool_size: usize,
    /// The Python interpreter; `None` resolves `EGCFG_PYTHON`, then the real
    /// binary behind `python3` on `PATH` (never a pyenv shim).
    pub python: Option<PathBuf>,
    /// Per-execution budgets; part of the result cache key.
    pub limits: ExecLimits,
    /// Layers that must be active, or [`crate::Executor::start`] fails.
    pub min_isolation: MinIsolation,
    /// Where per-execution scratch directories live (tmpfs is ~200x faster
    /// than ext4 for mkdir + rmdir). Default: `/dev/shm` when it exists,
    /// else the system temporary directory.
    pub scratch_root: PathBuf,
    /// Results kept by the cache (oldest evicted first); 0 disables it.
    pub cache_capacity: usize,
    /// Host uid and gid the children run as when the manager is root
    /// (default 65534, `nobody`): no capabilities, and no more file access
    /// than that user has. A non-root manager's children keep its own uid,
    /// since only root may hand out another one.
    pub sandbox_id: u32,
    /// Put every server in its own user, network, IPC, UTS, PID and mount
    /// namespaces when the kernel allows. `false` forces the degraded mode
    /// of kernels and containers without user namespaces (for tests, and to
    /// compare).
    pub namespaces: bool,
    /// What one execution's scratch may hold; with namespaces on, each
    /// server (which runs one execution at a time) has a tmpfs of this size.
    pub scratch: ScratchLimits,
    /// What [`crate::Executor::check`] does with a test it cannot judge
    /// outside the candidate's process.
    pub unplanned_tests: UnplannedTests,
}

/// The fate of a test that `check` cannot judge outside the candidate's
/// process: an assert or script of a shape the planner does not know (see
/// [`crate::Executor::check`]). Such a test can only run whole inside the
/// candidate's process and pass when it raises nothing, which a hostile
/// program can forge (an always-equal object, a patched harness, a forged
/// result frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnplannedTests {
    /// Fail closed: the test is not run and its verdict is
    /// [`crate::Verdict::Error`], saying why.
    #[default]
    Refuse,
    /// Run it in the candidate's process and trust its report: for test
    /// suites written by people (benchmark scripts that compute their own
    /// expected values) scored on programs one is willing to trust that far.
    RunInChild,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shm = PathBuf::from("/dev/shm");
        ExecutorConfig {
            pool_size: cores + 1,
            python: None,
            limits: ExecLimits::default(),
            min_isolation: MinIsolation::default(),
            scratch_root: if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            },
            cache_capacity: 4096,
            sandbox_id: 65534,
            namespaces: true,
            scratch: ScratchLimits::default(),
            unplanned_tests: UnplannedTests::default(),
        }
    }
}

/// Bounds on one execution's scratch directory (enforced by its server's
/// tmpfs, so only with namespaces on; otherwise only `RLIMIT_FSIZE` bounds
/// each file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchLimits {
    /// Bytes of file data.
    pub bytes: u64,
    /// Files, directories and hard links together (tmpfs counts each link
    /// as an inode), which also bounds the work of removing them.
    pub files: u64,
}

impl Default for ScratchLimits {
    fn default() -> Self {
        ScratchLimits {
            bytes: 64 << 20,
            files: 4096,
        }
    }
}

/// The isolation layers an executor must have; missing ones make
/// [`crate::Executor::start`] fail with [`crate::ExecutorError::IsolationMissing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinIsolation {
    /// Required layers. rlimits and the fork-server are always on.
    pub layers: Vec<Layer>,
}

impl MinIsolation {
    /// Require nothing beyond rlimits: degrade as far as the kernel forces.
    pub fn none() -> Self {
        MinIsolation { layers: Vec::new() }
    }

    /// Require every layer this crate knows.
    pub fn all() -> Self {
        MinIsolation {
            layers: vec![
                Layer::Seccomp,
                Layer::Landlock,
                Layer::Namespaces,
                Layer::Unprivileged,
            ],
        }
    }
}

impl Default for MinIsolation {
    /// seccomp and an unprivileged child are required by default: seccomp
    /// is what stops `exec`, `fork` and inet sockets, and every Linux
    /// kernel this tool targets has it; a child running as root could
    /// change and read any host file the other layers leave open.
    fn default() -> Self {
        MinIsolation {
            layers: vec![Layer::Seccomp, Layer::Unprivileged],
        }
    }
}

/// Per-execution budgets, enforced in the child (and behind it by the
/// server's hard kill and the Rust watchdog).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecLimits {
    /// Time budget: wall-clock time less the time the program waited for a
    /// CPU (its run-queue delay), within twice the budget of plain
    /// wall-clock time. At 0.9x the child returns a partial result; at
    /// +100 ms it is killed; a server that has not answered 1 s after the
    /// longest its job may take is replaced.
    pub timeout: Duration,
    /// Address-space limit (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Largest file the child may write (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Line events before the run ends as `line_limit`.
    pub max_lines: u64,
    /// Events recorded in full before sampling starts.
    pub head_events: u32,
    /// Exponentially spaced samples recorded after the head.
    pub max_samples: u32,
    /// Bounds on value reprs.
    pub repr: ReprLimits,
    /// Printed bytes kept in [`crate::ExecResult::stdout`].
    pub stdout_bytes: u64,
    /// Largest result frame accepted from a child.
    pub result_bytes: u64,
    /// Also record the reference trace format's values (needed by
    /// [`crate::render::TraceFormat::Compat`]; costs a second repr per value).
    pub compat_values: bool,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            timeout: Duration::from_secs(2),
            memory_bytes: 1 << 30,
            file_size_bytes: 16 << 20,
            open_files: 64,
            max_lines: 1_000_000,
            head_events: 200,
            max_samples: 64,
            repr: ReprLimits::default(),
            stdout_bytes: 4096,
            result_bytes: 4 << 20,
            compat_values: false,
        }
    }
}

/// Bounds on the safe repr of traced values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReprLimits {
    /// Characters per value.
    pub chars: u32,
    /// Items shown per container.
    pub items: u32,
    /// Container nesting shown.
    pub depth: u32,
    /// Variables per snapshot.
    pub vars: u32,
}

impl Default for ReprLimits {
    fn default() -> Self {
        ReprLimits {
            chars: 80,
            items: 8,
            depth: 3,
            vars: 24,
        }
    }
}
