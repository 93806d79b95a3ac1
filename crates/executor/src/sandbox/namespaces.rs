//! A user + network namespace around a server process: inside it the only
//! network device is a loopback that is down, so nothing can connect
//! anywhere. Entered between `fork` and `exec` of the server.

use std::ffi::CString;
use std::io;

/// What the forked server process writes into its own `/proc/self/*` maps
/// after `unshare`, prepared before the fork so the child does not allocate.
pub(crate) struct NamespacePlan {
    uid_map: CString,
    gid_map: CString,
}

impl NamespacePlan {
    /// Maps the current uid and gid to themselves inside the namespace.
    pub(crate) fn identity() -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        NamespacePlan {
            uid_map: CString::new(format!("{uid} {uid} 1")).expect("no NUL in digits"),
            gid_map: CString::new(format!("{gid} {gid} 1")).expect("no NUL in digits"),
        }
    }

    /// Enters new user and network namespaces. Only async-signal-safe calls:
    /// meant for `pre_exec`.
    pub(crate) fn enter(&self) -> io::Result<()> {
        // SAFETY: plain syscalls on NUL-terminated static paths and buffers
        // owned by `self`, which outlives the call.
        unsafe {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            write_file(c"/proc/self/setgroups", c"deny")?;
            write_file(c"/proc/self/uid_map", &self.uid_map)?;
            write_file(c"/proc/self/gid_map", &self.gid_map)?;
        }
        Ok(())
    }
}

/// # Safety
/// Async-signal-safe; `path` and `data` must be valid C strings.
unsafe fn write_file(path: &std::ffi::CStr, data: &std::ffi::CStr) -> io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes = data.to_bytes();
    let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    let err = io::Error::last_os_error();
    libc::close(fd);
    if n != bytes.len() as isize {
        return Err(err);
    }
    Ok(())
}
