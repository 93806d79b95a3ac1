//! The start-up probe: a throw-away server's child reports which sandbox
//! layers took effect, and the executor refuses to start when one it set
//! up did not, or describes them all as [`SandboxCaps`].

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::caps::{LayerState, SandboxCaps};
use crate::config::ExecutorConfig;
use crate::error::ExecutorError;
use crate::interpreter::Interpreter;
use crate::pool::{ScratchFactory, STARTUP_DEADLINE};
use crate::result::Status;
use crate::sandbox::landlock;
use crate::sandbox::namespaces::Identity;
use crate::sandbox::seccomp::SeccompPrograms;
use crate::scratch::ScratchRoot;
use crate::server::{Launch, Server};

/// What the start-up probe child found.
#[derive(Debug, Default, Deserialize)]
struct Probe {
    #[serde(default)]
    inet_socket: String,
    #[serde(default)]
    seccomp_mode: String,
    #[serde(default)]
    write_outside: String,
    /// Listing `/`, which no policy lets children read.
    #[serde(default)]
    read_outside: String,
    #[serde(default)]
    fork: String,
    /// The child's uid as it sees it.
    #[serde(default)]
    uid: Option<u32>,
    /// Its effective capabilities (`CapEff`, hex).
    #[serde(default)]
    cap_eff: String,
}

/// What the start-up probe found, and which layers could be set up.
pub(crate) struct Probed {
    probe: Probe,
    /// Whether namespaces worked, or why not.
    namespaces: Result<(), String>,
    /// Why the children keep the manager's root uid, if they do.
    unprivileged_why_not: Option<String>,
}

/// Starts a throw-away server (with namespaces if configured and the
/// kernel allows) and reads its probe. Returns the probe, whether
/// namespaces worked (or why not) and why the children could not be given
/// the sandbox id, if so; leaves `launch` set accordingly.
pub(crate) fn probe(
    launch: &mut Launch,
    factory: &ScratchFactory,
    sandbox_id: u32,
) -> Result<Probed, ExecutorError> {
    const PROBE_SLOT: usize = usize::MAX;
    let start = |launch: &Launch| -> Result<Server, String> {
        let (dir, fd) = factory(PROBE_SLOT)?;
        Server::spawn(&Arc::new(launch.clone()), dir, fd, STARTUP_DEADLINE)
    };
    let first = if launch.namespaces {
        start(launch)
    } else {
        Err("disabled by configuration".to_string())
    };
    let (server, namespaces) = match first {
        Ok(server) => (server, Ok(())),
        Err(why) => {
            launch.namespaces = false;
            launch.identity = Identity::current(sandbox_id, false, &launch.python).0;
            let server = start(launch).map_err(|detail| ExecutorError::ServerStart { detail })?;
            (server, Err(why))
        }
    };
    let unprivileged_why_not = Identity::current(sandbox_id, launch.namespaces, &launch.python).1;
    #[derive(Deserialize)]
    struct Body {
        status: Status,
        #[serde(default)]
        probe: Option<Probe>,
        #[serde(default)]
        detail: Option<String>,
    }
    let hello = &server.hello;
    if let Some(status) = hello.header.status {
        return Err(ExecutorError::ServerStart {
            detail: format!(
                "probe child: {status}: {}",
                hello.header.detail.clone().unwrap_or_default()
            ),
        });
    }
    let raw = hello
        .bodies()
        .and_then(|b| b.first().copied())
        .unwrap_or_default();
    let body: Body = serde_json::from_slice(raw).map_err(|e| ExecutorError::ServerStart {
        detail: format!("malformed probe reply: {e}"),
    })?;
    match (body.status, body.probe) {
        (Status::Ok, Some(probe)) => Ok(Probed {
            probe,
            namespaces,
            unprivileged_why_not,
        }),
        (status, _) => Err(ExecutorError::ServerStart {
            detail: format!("probe child: {status}: {}", body.detail.unwrap_or_default()),
        }),
    }
}

pub(crate) fn sandbox_caps(
    python: &Interpreter,
    config: &ExecutorConfig,
    scratch: &ScratchRoot,
    seccomp: Option<&SeccompPrograms>,
    landlock_policy: Option<&landlock::Policy>,
    probed: Probed,
    launch: &Launch,
) -> Result<SandboxCaps, ExecutorError> {
    let probe = &probed.probe;
    let seccomp_state = match seccomp {
        None => LayerState::off("the kernel has no seccomp filter mode"),
        Some(p)
            if probe.seccomp_mode == "2"
                && probe.inet_socket == "EPERM"
                && probe.fork == "EPERM" =>
        {
            let (server, child) = p.instructions();
            LayerState::on(format!(
                "deny-lists of {server} BPF instructions per server and {child} per child; \
                 probe: inet socket, fork -> EPERM"
            ))
        }
        Some(_) => {
            return Err(ExecutorError::ServerStart {
                detail: format!(
                "the seccomp filters did not take effect (Seccomp: {}, inet socket: {}, fork: {})",
                probe.seccomp_mode, probe.inet_socket, probe.fork
            ),
            })
        }
    };
    let landlock_state = match landlock_policy {
        None => LayerState::off(format!(
            "kernel Landlock ABI {} (0 = unavailable)",
            landlock::kernel_abi()
        )),
        Some(policy) if probe.write_outside == "EACCES" && probe.read_outside == "EACCES" => {
            let abi = policy.abi() as i32;
            LayerState::on(format!(
                "ABI {abi} (kernel {}): reads only in scratch and {} system and interpreter \
                 paths, writes only in scratch, no execute{}{}; probe: write outside scratch, \
                 list / -> EACCES",
                landlock::kernel_abi(),
                policy.reads().len(),
                if abi >= 4 { ", no TCP" } else { "" },
                if abi >= 6 {
                    ", signals and abstract sockets scoped"
                } else {
                    ""
                },
            ))
        }
        Some(_) => {
            return Err(ExecutorError::ServerStart {
                detail: format!(
                    "the Landlock ruleset did not take effect (write outside scratch: {}, \
                     list /: {})",
                    probe.write_outside, probe.read_outside
                ),
            })
        }
    };
    let namespaces_state = match probed.namespaces {
        Ok(()) => LayerState::on(
            "user, network, IPC, UTS, PID and mount namespaces per server: no network devices, \
             no host IPC objects, no other processes, a scratch tmpfs of its own",
        ),
        Err(why) if !config.namespaces => LayerState::off(why),
        Err(why) => LayerState::off(format!("unshare refused: {why}")),
    };
    let unprivileged_state = unprivileged_state(probe, launch, probed.unprivileged_why_not);
    let scratch_bound = if launch.namespaces {
        format!(
            "{} MiB and {} files per execution (a tmpfs per server, one execution at a time)",
            config.scratch.bytes >> 20,
            config.scratch.files
        )
    } else {
        format!(
            "per execution unbounded (no mount namespace); {} MiB per file (FSIZE)",
            config.limits.file_size_bytes >> 20
        )
    };
    let nproc_note = if seccomp.is_some() {
        "; NPROC unset (seccomp denies fork; NPROC would count threads of every process of the uid)"
    } else {
        "; NPROC 0 unless uid 0"
    };
    let l = &config.limits;
    Ok(SandboxCaps {
        python: python.path.clone(),
        python_version: python.version.clone(),
        pool_size: config.pool_size.max(1),
        scratch_root: config.scratch_root.clone(),
        scratch_tmpfs: is_tmpfs(&scratch.path),
        scratch_bound,
        rlimits: LayerState::on(format!(
            "AS {} MiB, CPU timeout+2 s, FSIZE {} MiB, NOFILE {}, CORE 0{nproc_note}",
            l.memory_bytes >> 20,
            l.file_size_bytes >> 20,
            l.open_files
        )),
        seccomp: seccomp_state,
        landlock: landlock_state,
        namespaces: namespaces_state,
        unprivileged: unprivileged_state,
    })
}

/// Whether the probe child ran with no capabilities as a host uid other
/// than root.
fn unprivileged_state(probe: &Probe, launch: &Launch, why_not: Option<String>) -> LayerState {
    // SAFETY: getuid cannot fail.
    let manager = unsafe { libc::getuid() };
    let no_caps = u64::from_str_radix(probe.cap_eff.trim(), 16) == Ok(0);
    // Without a separate sandbox id the child's host uid is the manager's
    // (mapped to 0 inside its namespace).
    let host_uid = match launch.identity.child_id {
        Some(id) => Some(id),
        None if launch.namespaces => Some(manager),
        None => probe.uid,
    };
    match (host_uid, no_caps) {
        (Some(uid), true) if uid != 0 => LayerState::on(format!(
            "children run as host uid {uid}{} with no capabilities",
            match (launch.identity.child_id, launch.namespaces) {
                (Some(_), _) => " (the sandbox id)",
                (None, true) => " (the manager's own: only root can hand out another)",
                (None, false) => {
                    " (the manager's own: only root can hand out another, and without \
                     namespaces executions running at once can read each other's scratch)"
                }
            }
        )),
        _ => LayerState::off(format!(
            "children run as root (CapEff {}){}",
            probe.cap_eff.trim(),
            why_not.map(|w| format!(": {w}")).unwrap_or_default()
        )),
    }
}

fn is_tmpfs(path: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and an out-parameter owned by this frame.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC }
}
