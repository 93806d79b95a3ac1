//! The Landlock ruleset every child of a server enters, built here with the
//! `landlock` crate.
//!
//! The ruleset is created once per server, before the server starts, and
//! inherited by it as a file descriptor; a child only calls
//! `landlock_restrict_self` on it (one raw syscall from the harness, after
//! `PR_SET_NO_NEW_PRIVS`). That keeps the whole policy in Rust and the
//! per-execution cost to microseconds, with no native helper library.
//!
//! Policy: read anything; write, create and remove only beneath the
//! server's scratch directory; execute nothing; no TCP bind or connect
//! (ABI ≥ 4); no signals to and no abstract Unix sockets of processes
//! outside the child (ABI ≥ 6). Landlock's ptrace rule also hides other
//! processes' `/proc/<pid>/environ`.

use std::os::fd::OwnedFd;
use std::path::Path;

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
pub(crate) fn usable_abi() -> Option<ABI> {
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

/// Builds the ruleset for children writing beneath `scratch`; the returned
/// descriptor is what the server's children restrict themselves with.
pub(crate) fn ruleset_fd(abi: ABI, scratch: &Path) -> Result<OwnedFd, String> {
    let read: BitFlags<AccessFs> = AccessFs::from_read(abi) & !AccessFs::Execute;
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
    let created = ruleset
        .create()
        .map_err(|e| e.to_string())?
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| e.to_string())?,
            read,
        ))
        .map_err(|e| e.to_string())?
        .add_rule(PathBeneath::new(
            PathFd::new(scratch).map_err(|e| e.to_string())?,
            write,
        ))
        .map_err(|e| e.to_string())?;
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| "the kernel did not create a ruleset".to_string())
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
        assert!(ruleset_fd(abi, dir.path()).is_ok());
    }
}
