//! The seccomp deny-lists, compiled here with `seccompiler` and handed to
//! the servers as raw BPF.
//!
//! Two layers, both default-allow with `EPERM` for what they deny:
//! * the **server filter**, installed once by each server before it forks
//!   anything and inherited by every child at no cost: exec, non-Unix
//!   sockets and all connect/bind/listen/accept, addressed sends
//!   (`sendto` with an address, `sendmsg`, which can carry one and file
//!   descriptors), ptrace and cross-process memory access,
//!   mount/namespace/chroot calls, kernel administration, SysV IPC and
//!   POSIX message queues (reachable on the host when there is no IPC
//!   namespace), device nodes, memory locking, fanotify, and scheduling or
//!   I/O priority aimed at any process but the caller itself; `clone3`
//!   fails with `ENOSYS` so glibc falls back to `clone`, whose flags a
//!   filter can inspect;
//! * the **child filter**, installed by each child after its own set-up:
//!   mounting, process creation (`fork`, `vfork`, `clone` without `CLONE_THREAD`;
//!   threads still work), signals to process groups or init, pidfd
//!   signalling, replacing the soft-deadline alarm handler, and changing
//!   resource limits. (The alarm itself stays settable: the child re-arms
//!   it per invocation; a candidate that disarms it meets the server's
//!   hard kill instead.)
//!
//! Keeping the child's part small keeps its per-execution install (the
//! kernel validates and JIT-compiles the program) in microseconds.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::ExecutorError;

/// Denied for servers and children, whatever the arguments.
const SERVER_DENY: &[i64] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_shmdt,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
    libc::SYS_mq_open,
    libc::SYS_mq_unlink,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_notify,
    libc::SYS_mq_getsetattr,
    libc::SYS_fanotify_init,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_mlockall,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_setparam,
    libc::SYS_sched_setattr,
    libc::SYS_migrate_pages,
    libc::SYS_process_madvise,
    libc::SYS_kcmp,
    libc::SYS_vhangup,
];

/// Denied for children only (the server forks, signals its children's
/// process groups, uses pidfds and mounts each execution's scratch),
/// whatever the arguments.
const CHILD_DENY: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_fork,
    libc::SYS_vfork,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_setrlimit,
];

/// Whether the kernel has seccomp's filter mode at all.
pub(crate) fn available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers; -1/EINVAL means no seccomp.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// The compiled filters.
#[derive(Debug, Clone)]
pub(crate) struct SeccompPrograms {
    /// Installed by the server, in order: the `EPERM` deny-list, then the
    /// `clone3` → `ENOSYS` rule (one filter has one action).
    pub(crate) server: Vec<BpfProgram>,
    /// Installed by each child.
    pub(crate) child: Vec<BpfProgram>,
}

impl SeccompPrograms {
    /// Compiles the filters for the architecture this binary runs on.
    pub(crate) fn compile() -> Result<Self, ExecutorError> {
        let arch = target_arch()?;
        let always = |list: &[i64]| {
            list.iter()
                .map(|&nr| (nr, Vec::new()))
                .collect::<BTreeMap<_, _>>()
        };
        let mut server_rules = always(SERVER_DENY);
        server_rules.extend(server_argument_rules()?);
        let clone3 = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
        let mut child_rules = always(CHILD_DENY);
        child_rules.extend(child_argument_rules()?);
        Ok(SeccompPrograms {
            server: vec![
                filter(server_rules, libc::EPERM, arch)?,
                filter(clone3, libc::ENOSYS, arch)?,
            ],
            child: vec![filter(child_rules, libc::EPERM, arch)?],
        })
    }

    /// Programs as the bytes of their `struct sock_filter` arrays, hex
    /// encoded for the server's config frame.
    pub(crate) fn to_hex(programs: &[BpfProgram]) -> Vec<String> {
        programs
            .iter()
            .map(|program| {
                let mut hex = String::with_capacity(program.len() * 16);
                for insn in program {
                    let mut bytes = [0u8; 8];
                    bytes[0..2].copy_from_slice(&insn.code.to_ne_bytes());
                    bytes[2] = insn.jt;
                    bytes[3] = insn.jf;
                    bytes[4..8].copy_from_slice(&insn.k.to_ne_bytes());
                    for b in bytes {
                        hex.push_str(&format!("{b:02x}"));
                    }
                }
                hex
            })
            .collect()
    }

    /// Instructions of the server's and the child's programs (for `doctor`).
    pub(crate) fn instructions(&self) -> (usize, usize) {
        let count = |ps: &[BpfProgram]| ps.iter().map(Vec::len).sum();
        (count(&self.server), count(&self.child))
    }
}

fn target_arch() -> Result<TargetArch, ExecutorError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err(ExecutorError::Seccomp(
            "unsupported CPU architecture (x86_64 and aarch64 only)".into(),
        ))
    }
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, ExecutorError> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| ExecutorError::Seccomp(e.to_string()))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, ExecutorError> {
    SeccompRule::new(conditions).map_err(|e| ExecutorError::Seccomp(e.to_string()))
}

/// The server's rules that look at arguments: each denies the call when
/// any one of its rules matches.
fn server_argument_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, ExecutorError> {
    use SeccompCmpArgLen::{Dword, Qword};
    use SeccompCmpOp::{MaskedEq, Ne};
    let not_self = |pid_arg: u8| -> Result<Vec<SeccompRule>, ExecutorError> {
        Ok(vec![rule(vec![cond(pid_arg, Dword, Ne, 0)?])?])
    };
    // Character and block devices (a FIFO or plain file stays possible).
    let device = |mode_arg: u8| -> Result<Vec<SeccompRule>, ExecutorError> {
        let kind = libc::S_IFMT as u64;
        Ok(vec![
            rule(vec![cond(
                mode_arg,
                Dword,
                MaskedEq(kind),
                libc::S_IFCHR as u64,
            )?])?,
            rule(vec![cond(
                mode_arg,
                Dword,
                MaskedEq(kind),
                libc::S_IFBLK as u64,
            )?])?,
        ])
    };
    Ok(BTreeMap::from([
        // Only Unix sockets (and those only unaddressed, see below).
        (
            libc::SYS_socket,
            vec![rule(vec![cond(0, Dword, Ne, libc::AF_UNIX as u64)?])?],
        ),
        // A send with a destination reaches any host socket it names.
        (libc::SYS_sendto, vec![rule(vec![cond(4, Qword, Ne, 0)?])?]),
        (libc::SYS_mknod, device(1)?),
        (libc::SYS_mknodat, device(2)?),
        // Scheduling of other processes and threads (pid 0 is the caller).
        (libc::SYS_sched_setaffinity, not_self(0)?),
        (libc::SYS_move_pages, not_self(0)?),
        // setpriority(PRIO_PROCESS, 0, n) only: a group or a user reaches
        // other processes.
        (
            libc::SYS_setpriority,
            vec![
                rule(vec![cond(0, Dword, Ne, libc::PRIO_PROCESS as u64)?])?,
                rule(vec![cond(1, Dword, Ne, 0)?])?,
            ],
        ),
        // ioprio_set(IOPRIO_WHO_PROCESS, 0, n) only.
        (
            libc::SYS_ioprio_set,
            vec![
                rule(vec![cond(0, Dword, Ne, 1)?])?,
                rule(vec![cond(1, Dword, Ne, 0)?])?,
            ],
        ),
    ]))
}

/// The child's rules that look at arguments.
fn child_argument_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, ExecutorError> {
    use SeccompCmpArgLen::{Dword, Qword};
    Ok(BTreeMap::from([
        // A new process, not a thread.
        (
            libc::SYS_clone,
            vec![rule(vec![cond(
                0,
                Qword,
                SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
                0,
            )?])?],
        ),
        // kill(pid < 0) reaches process groups (kill(-1) everything); kill(1) init.
        (
            libc::SYS_kill,
            vec![
                rule(vec![cond(0, Dword, SeccompCmpOp::Ge, 0x8000_0000)?])?,
                rule(vec![cond(0, Dword, SeccompCmpOp::Eq, 1)?])?,
            ],
        ),
        // The soft deadline is a SIGALRM handler installed before the filter.
        (
            libc::SYS_rt_sigaction,
            vec![rule(vec![cond(
                0,
                Dword,
                SeccompCmpOp::Eq,
                libc::SIGALRM as u64,
            )?])?],
        ),
        // Setting limits (reading them passes a null new-limit pointer).
        (
            libc::SYS_prlimit64,
            vec![rule(vec![cond(2, Qword, SeccompCmpOp::Ne, 0)?])?],
        ),
    ]))
}

fn filter(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, ExecutorError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| ExecutorError::Seccomp(e.to_string()))?;
    BpfProgram::try_from(filter).map_err(|e| ExecutorError::Seccomp(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_to_whole_instructions() {
        let programs = SeccompPrograms::compile().unwrap();
        assert_eq!(programs.server.len(), 2);
        assert_eq!(programs.child.len(), 1);
        for set in [&programs.server, &programs.child] {
            for (hex, program) in SeccompPrograms::to_hex(set).iter().zip(set) {
                assert_eq!(hex.len(), program.len() * 16);
            }
        }
        let (server, child) = programs.instructions();
        assert!(server > SERVER_DENY.len() && child > CHILD_DENY.len());
        assert!(child < server / 2, "the per-child filter stays small");
    }
}
