//! The namespaces around a server process, entered between `fork` and
//! `exec` of the server:
//! * **user**: when the manager is root, host root and the unprivileged
//!   sandbox id are mapped to themselves, so the server can set up mounts
//!   and its children can drop to the sandbox id; otherwise the manager's
//!   own uid is mapped to 0 (the only id an unprivileged user may map);
//! * **network**: the only device is a loopback that is down;
//! * **IPC**: SysV objects and POSIX message queues of the host are out of
//!   reach, and the children's own vanish with the server;
//! * **UTS**: the host name cannot be changed for anyone else;
//! * **mount**: the server's scratch is a tmpfs of its own, bounded in
//!   bytes and inodes (hard links included) and invisible to every other
//!   server; it is mounted on a subdirectory of the server's directory,
//!   because Landlock ignores the rules of a directory hidden beneath a
//!   mount and the server's ruleset names that directory. A
//!   world-searchable tmpfs covers each directory on the interpreter's path
//!   the sandbox id could not search (a 0700 home holding a pyenv), with
//!   only that path bound back into it.
//!
//! One tmpfs per server, not per execution: unmounting one waits for an
//! RCU grace period, ≈0.4 ms of wall time per execution on the
//! development machine, against µs for a directory in a mounted one.
//!
//! * **PID**: the server is the init of a namespace of its own, under a
//!   relay process that passes on its exit (see [`enter_pid_namespace`]);
//!   children see only their server's processes, and nothing they leave
//!   outlives it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::ScratchLimits;
use crate::sandbox::landlock;

/// Who the children run as, decided once per executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The manager runs as host root (and may map other ids).
    pub(crate) manager_root: bool,
    /// The host uid and gid children switch to, when there is one.
    pub(crate) child_id: Option<u32>,
}

impl Identity {
    /// The identity for a manager running as the current user: root hands
    /// its children `sandbox_id`, provided that id can search every
    /// directory on the interpreter's path (with `namespaces`, the ones it
    /// cannot are covered, so it always can).
    pub(crate) fn current(
        sandbox_id: u32,
        namespaces: bool,
        python: &Path,
    ) -> (Self, Option<String>) {
        // SAFETY: getuid cannot fail.
        let manager_root = unsafe { libc::getuid() } == 0;
        if !manager_root {
            return (
                Identity {
                    manager_root,
                    child_id: None,
                },
                None,
            );
        }
        let blocked = unsearchable_dirs(python, sandbox_id);
        if !namespaces && !blocked.is_empty() {
            let why = format!(
                "uid {sandbox_id} cannot search {} on the way to {}; use an interpreter every \
                 user can read (EGCFG_PYTHON=/usr/bin/python3) or allow user namespaces",
                blocked[0].display(),
                python.display()
            );
            return (
                Identity {
                    manager_root,
                    child_id: None,
                },
                Some(why),
            );
        }
        (
            Identity {
                manager_root,
                child_id: (sandbox_id != 0).then_some(sandbox_id),
            },
            None,
        )
    }
}

/// The directories above `path` that `id` (as uid and gid) may not search,
/// outermost first.
pub(crate) fn unsearchable_dirs(path: &Path, id: u32) -> Vec<PathBuf> {
    let Ok(path) = path.canonicalize() else {
        return Vec::new();
    };
    path.ancestors()
        .skip(1)
        .filter(|dir| {
            std::fs::metadata(dir).is_ok_and(|m| {
                let mode = m.mode();
                let bit = if m.uid() == id {
                    0o100
                } else if m.gid() == id {
                    0o010
                } else {
                    0o001
                };
                mode & bit == 0
            })
        })
        .map(Path::to_path_buf)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// A directory to cover with a searchable tmpfs, and the one entry of it
/// (on the interpreter's path) bound back.
struct Cover {
    dir: CString,
    entry: CString,
}

/// Everything the forked server process does after `unshare`, prepared
/// before the fork so the child does not allocate.
pub(crate) struct NamespacePlan {
    uid_map: CString,
    gid_map: CString,
    deny_setgroups: bool,
    covers: Vec<Cover>,
    /// The scratch tmpfs: where, and its options.
    scratch: (CString, CString),
}

const TMPFS: &CStr = c"tmpfs";
const COVER_OPTIONS: &CStr = c"mode=0755,size=16k,nr_inodes=16";

impl NamespacePlan {
    /// The plan for a server running `python`, with children running as
    /// `identity` in a tmpfs mounted on `scratch` bounded by `limits`.
    pub(crate) fn new(
        identity: Identity,
        python: &Path,
        scratch: &Path,
        limits: ScratchLimits,
    ) -> io::Result<Self> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let map = |own: u32| match identity.child_id {
            Some(id) if identity.manager_root => format!("0 0 1\n{id} {id} 1\n"),
            _ if identity.manager_root => "0 0 1\n".to_string(),
            _ => format!("0 {own} 1\n"),
        };
        let covers = match identity.child_id {
            Some(id) => unsearchable_dirs(python, id)
                .into_iter()
                .map(|dir| {
                    let canonical = python.canonicalize()?;
                    let rest = canonical
                        .strip_prefix(&dir)
                        .map_err(io::Error::other)?
                        .components()
                        .next()
                        .ok_or_else(|| io::Error::other("the interpreter is a directory"))?;
                    Ok(Cover {
                        dir: c_path(&dir)?,
                        entry: c_path(&dir.join(rest))?,
                    })
                })
                .collect::<io::Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        Ok(NamespacePlan {
            uid_map: CString::new(map(uid)).expect("no NUL in digits"),
            gid_map: CString::new(map(gid)).expect("no NUL in digits"),
            deny_setgroups: !identity.manager_root,
            covers,
            scratch: (
                c_path(scratch)?,
                CString::new(format!(
                    "mode=0711,size={},nr_inodes={}",
                    limits.bytes, limits.files
                ))
                .expect("no NUL in digits"),
            ),
        })
    }

    /// Enters the namespaces and sets up the mounts; the server's own
    /// `/proc` is added to the Landlock ruleset `landlock_fd` when given.
    /// Only async-signal-safe calls: meant for `pre_exec`.
    pub(crate) fn enter(&self, landlock_fd: Option<i32>) -> io::Result<()> {
        // SAFETY: plain syscalls on NUL-terminated static strings and
        // buffers owned by `self`, which outlives the call.
        unsafe {
            if self.deny_setgroups {
                check(libc::unshare(NAMESPACES))?;
                write_file(c"/proc/self/setgroups", c"deny")?;
                write_file(c"/proc/self/uid_map", &self.uid_map)?;
                write_file(c"/proc/self/gid_map", &self.gid_map)?;
            } else {
                self.unshare_mapped_by_helper()?;
            }
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for cover in &self.covers {
                cover.apply()?;
            }
            mount_tmpfs(&self.scratch.0, &self.scratch.1)?;
            enter_pid_namespace(landlock_fd)?;
        }
        Ok(())
    }

    /// A map of more than the writer's own id must be written by a process
    /// with `CAP_SETUID` in the *parent* namespace, which the process that
    /// unshared no longer is: a forked helper that stays outside writes
    /// them once told the namespace exists.
    ///
    /// # Safety
    /// Async-signal-safe; call between `fork` and `exec`.
    unsafe fn unshare_mapped_by_helper(&self) -> io::Result<()> {
        let mut pipe = [0; 2];
        check(libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC))?;
        let helper = libc::fork();
        if helper < 0 {
            return Err(io::Error::last_os_error());
        }
        if helper == 0 {
            libc::close(pipe[1]);
            let mut byte = [0u8; 1];
            let parent = libc::getppid();
            let mut path = [0u8; 48];
            let ok = libc::read(pipe[0], byte.as_mut_ptr().cast(), 1) == 1
                && write_file(proc_path(parent, b"/uid_map", &mut path), &self.uid_map).is_ok()
                && write_file(proc_path(parent, b"/gid_map", &mut path), &self.gid_map).is_ok();
            libc::_exit(if ok { 0 } else { 1 });
        }
        libc::close(pipe[0]);
        let unshared = check(libc::unshare(NAMESPACES));
        if unshared.is_ok() {
            libc::write(pipe[1], b"u".as_ptr().cast(), 1);
        }
        libc::close(pipe[1]);
        let mut status = 0;
        libc::waitpid(helper, &mut status, 0);
        unshared?;
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            // No allocation here: report it as the refusal it most likely was.
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(())
    }
}

/// Makes the rest of `pre_exec` and the server run as the init of a PID
/// namespace of its own, with a `/proc` of that namespace where the kernel
/// allows mounting one: a child sees no process but its server's, and when
/// the server ends, the kernel kills whatever is left in the namespace.
/// The calling process stays outside (only its children enter), so it
/// forks the server and stays behind, holding no descriptor, to pass on
/// its exit status; it is the process the manager started and kills.
/// Children may read that `/proc` where the ruleset `landlock_fd` confines
/// them: the rule the manager made for the host's `/proc` does not reach
/// beneath a mount hiding it.
///
/// # Safety
/// Async-signal-safe; call between `fork` and `exec`, after the mounts.
unsafe fn enter_pid_namespace(landlock_fd: Option<i32>) -> io::Result<()> {
    check(libc::unshare(libc::CLONE_NEWPID))?;
    let server = libc::fork();
    if server < 0 {
        return Err(io::Error::last_os_error());
    }
    if server > 0 {
        relay_exit(server);
    }
    // The parent-death signal is cleared by fork; the relay waits for this
    // process, so it cannot be gone already.
    check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
    // Refused where the host's /proc has parts hidden under other mounts
    // (containers): then /proc still lists the host's processes, which
    // Landlock, seccomp and the uid keep out of reach.
    let mounted = libc::mount(
        c"proc".as_ptr(),
        c"/proc".as_ptr(),
        c"proc".as_ptr(),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        std::ptr::null(),
    ) == 0;
    match landlock_fd {
        Some(ruleset) if mounted => landlock::allow_reading_beneath(ruleset, c"/proc"),
        _ => Ok(()),
    }
}

/// Waits for `server` and exits as it did; never returns.
///
/// # Safety
/// Async-signal-safe.
unsafe fn relay_exit(server: libc::pid_t) -> ! {
    // The protocol pipes and `spawn`'s exec-error channel are the server's:
    // holding them would hide its end from the manager.
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    let mut status = 0;
    while libc::waitpid(server, &mut status, 0) < 0 {
        if *libc::__errno_location() != libc::EINTR {
            libc::_exit(1);
        }
    }
    libc::_exit(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

const NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNS;

impl Cover {
    /// # Safety
    /// Async-signal-safe; call in the new mount namespace only.
    unsafe fn apply(&self) -> io::Result<()> {
        // Opened in this namespace: a bind mount's source must belong to it.
        let fd = libc::open(
            self.entry.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 48];
        let source = fd_path(fd, &mut buf);
        let result = (|| {
            mount_tmpfs(&self.dir, COVER_OPTIONS)?;
            // The entry is a directory (pyenv's tree) or a file (a lone
            // binary); the mount point must be of the same kind.
            let mut st: libc::stat = std::mem::zeroed();
            check(libc::fstat(fd, &mut st))?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                check(libc::mkdir(self.entry.as_ptr(), 0o755))?;
            } else {
                let f = libc::open(
                    self.entry.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o755,
                );
                check(f)?;
                libc::close(f);
            }
            check(libc::mount(
                source.as_ptr(),
                self.entry.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))
        })();
        libc::close(fd);
        result
    }
}

/// # Safety
/// Async-signal-safe.
unsafe fn mount_tmpfs(target: &CStr, options: &CStr) -> io::Result<()> {
    check(libc::mount(
        c"egcfg".as_ptr(),
        target.as_ptr(),
        TMPFS.as_ptr(),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        options.as_ptr().cast(),
    ))
}

/// `/proc/self/fd/<fd>` written into `buf` without allocating.
fn fd_path(fd: i32, buf: &mut [u8; 48]) -> &CStr {
    decimal_path(b"/proc/self/fd/", fd, b"", buf)
}

/// `/proc/<pid><leaf>` written into `buf` without allocating.
fn proc_path<'a>(pid: i32, leaf: &[u8], buf: &'a mut [u8; 48]) -> &'a CStr {
    decimal_path(b"/proc/", pid, leaf, buf)
}

/// `prefix`, the decimal digits of `n`, `suffix` and a NUL, in `buf`.
fn decimal_path<'a>(prefix: &[u8], n: i32, suffix: &[u8], buf: &'a mut [u8; 48]) -> &'a CStr {
    let mut digits = [0u8; 10];
    let mut n = n.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut at = 0;
    for &b in prefix
        .iter()
        .chain(digits[..len].iter().rev())
        .chain(suffix)
    {
        buf[at] = b;
        at += 1;
    }
    buf[at] = 0;
    CStr::from_bytes_until_nul(&buf[..]).expect("NUL written above")
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// # Safety
/// Async-signal-safe; `path` and `data` must be valid C strings.
unsafe fn write_file(path: &CStr, data: &CStr) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn paths_are_written_without_allocating() {
        let mut buf = [0u8; 48];
        assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(fd_path(1234, &mut buf), c"/proc/self/fd/1234");
        assert_eq!(
            proc_path(4_194_304, b"/uid_map", &mut buf),
            c"/proc/4194304/uid_map"
        );
    }

    #[test]
    fn finds_the_directories_another_id_cannot_search() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python"), "").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let owner = std::fs::metadata(&home).unwrap().uid();
        let other = if owner == 65534 { 65533 } else { 65534 };
        let blocked = unsearchable_dirs(&bin.join("python"), other);
        assert!(
            blocked.contains(&home.canonicalize().unwrap()),
            "{blocked:?}"
        );
        assert!(
            !blocked.contains(&bin.canonicalize().unwrap()),
            "{blocked:?}"
        );
        assert!(!unsearchable_dirs(&bin.join("python"), owner).contains(&home));
    }
}
