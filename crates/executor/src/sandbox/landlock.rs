//! The Landlock ruleset every child of a server enters, built here with the
//! `landlock` crate.
//!
//! The ruleset is created once per server, before the server starts, and
//! inherited by it as a file descriptor; a child only calls
//! `landlock_restrict_self` on it (one raw syscall from the harness, after
//! `PR_SET_NO_NEW_PRIVS`). That keeps the whole policy in Rust and the
//! per-execution cost to microseconds, with no native helper library.
//!
//! Policy ([`Policy`]): read only beneath the system's own directories
//! ([`SYSTEM_READS`]), the interpreter's (its prefixes and `sys.path`) and
//! scratch, so a program cannot read the user's files (a home directory,
//! `/tmp`, `/run`) even where it runs as the user's own uid; write, create
//! and remove only beneath the server's scratch directory; execute
//! nothing; no TCP bind or connect (ABI ≥ 4); no signals to and no abstract
//! Unix sockets of processes outside the child (ABI ≥ 6). Landlock's
//! ptrace rule also hides other processes' `/proc/<pid>/environ`.
//!
//! Rules name inodes, not paths, so the rules the manager makes hold in a
//! server's own mount namespace too, with one exception: Landlock ignores
//! the rule of a directory hidden beneath a mount. So the scratch tmpfs is
//! mounted below the directory whose rule names it; the bind mount that
//! brings a pyenv back under a covered 0700 home holds the interpreter's
//! prefix, whose rule applies; and a server's own `/proc` joins its
//! ruleset once mounted ([`allow_reading_beneath`]).

use std::ffi::CStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

/// The Landlock ABI the kernel offers, 0 when Landlock is unavailable.
pub(crate) fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0 this call only queries the
    // ABI version; it takes no pointers the kernel would dereference.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi < 0 {
        0
    } else {
        abi as i32
    }
}

/// The highest ABI both the kernel and the `landlock` crate know.
fn usable_abi() -> Option<ABI> {
    let kernel = kernel_abi();
    if kernel <= 0 {
        return None;
    }
    let known = [
        ABI::V1,
        ABI::V2,
        ABI::V3,
        ABI::V4,
        ABI::V5,
        ABI::V6,
        ABI::V7,
    ];
    known.into_iter().rev().find(|abi| (*abi as i32) <= kernel)
}

/// What every child may read besides its interpreter's directories and
/// scratch: the system's programs, libraries and configuration, the
/// kernel's views (`/proc`, `/sys`), the package stores of Nix and Guix,
/// and the harmless devices. Not `/home`, `/root`, `/tmp`, `/run`, `/var`,
/// `/srv`, `/mnt`, `/media` or `/opt`, nor the rest of `/dev` (`/dev/shm`
/// holds other programs' shared memory): that is where users keep their
/// own files. Paths a machine lacks are skipped.
const SYSTEM_READS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/proc",
    "/sys",
    "/nix/store",
    "/gnu/store",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// The file-system policy of every child of an executor, decided once: the
/// ABI to build rulesets for and what children may read.
#[derive(Debug)]
pub(crate) struct Policy {
    abi: ABI,
    reads: Vec<PathBuf>,
}

impl Policy {
    /// The policy for children of an interpreter that loads its code from
    /// `interpreter_dirs`, or `None` when the kernel has no Landlock.
    pub(crate) fn new(interpreter_dirs: &[PathBuf]) -> Option<Policy> {
        Some(Policy {
            abi: usable_abi()?,
            reads: readable(interpreter_dirs),
        })
    }

    /// The ABI the rulesets are built for.
    pub(crate) fn abi(&self) -> ABI {
        self.abi
    }

    /// Beneath these paths (and scratch) children may read.
    pub(crate) fn reads(&self) -> &[PathBuf] {
        &self.reads
    }

    /// Builds the ruleset for children writing beneath `scratch`; the
    /// returned descriptor is what the server's children restrict
    /// themselves with.
    pub(crate) fn ruleset_fd(&self, scratch: &Path) -> Result<OwnedFd, String> {
        let abi = self.abi;
        let read = read_access();
        let write: BitFlags<AccessFs> = AccessFs::from_all(abi) & !AccessFs::Execute;
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .map_err(|e| e.to_string())?;
        if abi >= ABI::V4 {
            ruleset = ruleset
                .handle_access(AccessNet::from_all(abi))
                .map_err(|e| e.to_string())?;
        }
        if abi >= ABI::V6 {
            ruleset = ruleset
                .scope(Scope::from_all(abi))
                .map_err(|e| e.to_string())?;
        }
        let mut created = ruleset.create().map_err(|e| e.to_string())?;
        for path in &self.reads {
            // A path gone since the policy was made is simply not readable.
            let (Ok(fd), Ok(meta)) = (PathFd::new(path), std::fs::metadata(path)) else {
                continue;
            };
            // A rule on a file may carry only the rights a file has.
            let access = if meta.is_dir() {
                read
            } else {
                read & AccessFs::from_file(abi)
            };
            created = created
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let created = created
            .add_rule(PathBeneath::new(
                PathFd::new(scratch).map_err(|e| e.to_string())?,
                write,
            ))
            .map_err(|e| e.to_string())?;
        let fd: Option<OwnedFd> = created.into();
        fd.ok_or_else(|| "the kernel did not create a ruleset".to_string())
    }
}

/// What children may do beneath a readable directory: read its files and
/// list it (execute nothing, as everywhere).
fn read_access() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

/// Lets the children confined by the ruleset `ruleset` read beneath `dir`,
/// a directory mounted after the ruleset was built (a server's own
/// `/proc`): a rule the manager made for the directory it hides does not
/// reach it, because Landlock ignores rules of a directory hidden beneath
/// a mount.
///
/// # Safety
/// Async-signal-safe: meant for `pre_exec`.
pub(crate) unsafe fn allow_reading_beneath(ruleset: i32, dir: &CStr) -> io::Result<()> {
    /// `struct landlock_path_beneath_attr`, packed as in the kernel's ABI.
    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
    let fd = libc::open(
        dir.as_ptr(),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
    );
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let attr = PathBeneathAttr {
        allowed_access: read_access().bits(),
        parent_fd: fd,
    };
    let added = libc::syscall(
        libc::SYS_landlock_add_rule,
        ruleset,
        LANDLOCK_RULE_PATH_BENEATH,
        std::ptr::addr_of!(attr),
        0u32,
    );
    let error = io::Error::last_os_error();
    libc::close(fd);
    if added < 0 {
        Err(error)
    } else {
        Ok(())
    }
}

/// The system's paths and the interpreter's directories that exist, in a
/// defined order, none beneath another. `/` never: an interpreter
/// installed there keeps its code in `/lib` or `/usr/lib`, which are
/// readable anyway, and the rest of the tree is what the policy keeps out
/// of reach.
fn readable(interpreter_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut reads: Vec<PathBuf> = SYSTEM_READS
        .iter()
        .map(PathBuf::from)
        .chain(interpreter_dirs.iter().cloned())
        .filter(|p| p.is_absolute() && p.exists())
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.parent().is_some())
        .collect();
    reads.sort();
    // Sorted, a directory comes right before the paths beneath it.
    reads.dedup_by(|later, kept| later.starts_with(kept));
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_ruleset_when_the_kernel_has_landlock() {
        let Some(abi) = usable_abi() else {
            eprintln!("Landlock unavailable here; nothing to build");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            abi,
            reads: readable(&[]),
        };
        assert!(policy.ruleset_fd(dir.path()).is_ok());
    }

    #[test]
    fn reads_the_system_and_the_interpreter_but_never_the_root() {
        let python = tempfile::tempdir().unwrap();
        let reads = readable(&[
            python.path().to_path_buf(),
            PathBuf::from("/"),
            PathBuf::from("relative/lib"),
            PathBuf::from("/no/such/egcfg/dir"),
            PathBuf::from("/usr"),
        ]);
        assert!(reads.contains(&python.path().canonicalize().unwrap()));
        assert!(reads.contains(&PathBuf::from("/usr")));
        assert!(reads.contains(&PathBuf::from("/dev/null")));
        assert!(!reads.contains(&PathBuf::from("/")), "{reads:?}");
        assert!(reads.iter().all(|p| p.is_absolute() && p.exists()));
        assert!(
            reads
                .windows(2)
                .all(|w| w[0] < w[1] && !w[1].starts_with(&w[0])),
            "sorted, none beneath another: {reads:?}"
        );
    }
}
