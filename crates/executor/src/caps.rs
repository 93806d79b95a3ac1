//! Which isolation layers are active on this machine, as probed at start-up.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An optional isolation layer (rlimits and the fork-server are always on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// A seccomp-BPF deny-list in every child: no exec, no process fork, no
    /// inet sockets, no ptrace/mount/namespace calls, no signals to groups.
    Seccomp,
    /// Landlock in every child: read only the system's and the
    /// interpreter's directories and scratch, write only in scratch, no
    /// execute, no TCP, no signals or abstract sockets outside the child.
    Landlock,
    /// User, network, IPC, UTS, PID and mount namespaces around every
    /// server: no network at all, no host IPC objects, no process but the
    /// server's in sight, and a size-bounded scratch tmpfs of its own (one
    /// execution at a time).
    Namespaces,
    /// Children run as a non-root uid and gid with no capabilities, so they
    /// can read and change no more host files than an unprivileged user.
    Unprivileged,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Seccomp => "seccomp",
            Layer::Landlock => "landlock",
            Layer::Namespaces => "namespaces",
            Layer::Unprivileged => "unprivileged",
        })
    }
}

/// Whether one layer is active, and why not when it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerState {
    /// The layer is installed in every execution.
    pub active: bool,
    /// What was found: a version, or the reason the layer is off.
    pub note: String,
}

impl LayerState {
    pub(crate) fn on(note: impl Into<String>) -> Self {
        LayerState {
            active: true,
            note: note.into(),
        }
    }

    pub(crate) fn off(note: impl Into<String>) -> Self {
        LayerState {
            active: false,
            note: note.into(),
        }
    }
}

/// The sandbox as it runs on this machine; `Display` is what
/// `egcfg doctor` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCaps {
    /// The resolved interpreter.
    pub python: PathBuf,
    /// Its version (`3.11.7`).
    pub python_version: String,
    /// Fork-servers in the pool.
    pub pool_size: usize,
    /// Where scratch directories are created.
    pub scratch_root: PathBuf,
    /// The scratch root is on tmpfs.
    pub scratch_tmpfs: bool,
    /// What bounds one execution's scratch (bytes and files), or why
    /// nothing does.
    pub scratch_bound: String,
    /// rlimits (always active): what is limited.
    pub rlimits: LayerState,
    /// The seccomp filter.
    pub seccomp: LayerState,
    /// Landlock.
    pub landlock: LayerState,
    /// User, network, IPC, UTS, PID and mount namespaces per server.
    pub namespaces: LayerState,
    /// Who the children run as.
    pub unprivileged: LayerState,
}

impl SandboxCaps {
    /// Whether `layer` is active.
    pub fn has(&self, layer: Layer) -> bool {
        self.state(layer).active
    }

    /// The state of `layer`.
    pub fn state(&self, layer: Layer) -> &LayerState {
        match layer {
            Layer::Seccomp => &self.seccomp,
            Layer::Landlock => &self.landlock,
            Layer::Namespaces => &self.namespaces,
            Layer::Unprivileged => &self.unprivileged,
        }
    }

    /// The layers in `required` that are not active, in order.
    pub fn missing(&self, required: &[Layer]) -> Vec<Layer> {
        let mut missing: Vec<Layer> = required.iter().copied().filter(|l| !self.has(*l)).collect();
        missing.sort();
        missing.dedup();
        missing
    }
}

impl fmt::Display for SandboxCaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = |s: &LayerState| if s.active { "on " } else { "OFF" };
        writeln!(
            f,
            "python:      {} (Python {}, started -S -s, fixed hash seed)",
            self.python.display(),
            self.python_version
        )?;
        writeln!(f, "pool:        {} fork-servers", self.pool_size)?;
        writeln!(
            f,
            "scratch:     {}{}; {}",
            self.scratch_root.display(),
            if self.scratch_tmpfs {
                " (tmpfs)"
            } else {
                " (not tmpfs: slower)"
            },
            self.scratch_bound
        )?;
        writeln!(
            f,
            "rlimits:     {}  {}",
            mark(&self.rlimits),
            self.rlimits.note
        )?;
        writeln!(
            f,
            "seccomp:     {}  {}",
            mark(&self.seccomp),
            self.seccomp.note
        )?;
        writeln!(
            f,
            "landlock:    {}  {}",
            mark(&self.landlock),
            self.landlock.note
        )?;
        writeln!(
            f,
            "namespaces:  {}  {}",
            mark(&self.namespaces),
            self.namespaces.note
        )?;
        write!(
            f,
            "unprivileged: {} {}",
            mark(&self.unprivileged),
            self.unprivileged.note
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(landlock: bool) -> SandboxCaps {
        SandboxCaps {
            python: PathBuf::from("/usr/bin/python3"),
            python_version: "3.11.7".into(),
            pool_size: 3,
            scratch_root: PathBuf::from("/dev/shm"),
            scratch_tmpfs: true,
            scratch_bound: "64 MiB and 4096 files per execution".into(),
            rlimits: LayerState::on("AS 1024 MiB"),
            seccomp: LayerState::on("deny-lists"),
            landlock: if landlock {
                LayerState::on("ABI 7")
            } else {
                LayerState::off("kernel Landlock ABI 0 (0 = unavailable)")
            },
            namespaces: LayerState::off("unshare refused: EPERM"),
            unprivileged: LayerState::on("uid 65534, no capabilities"),
        }
    }

    #[test]
    fn missing_layers_are_reported_in_order() {
        let c = caps(false);
        let required = [
            Layer::Namespaces,
            Layer::Seccomp,
            Layer::Landlock,
            Layer::Namespaces,
        ];
        assert_eq!(
            c.missing(&required),
            vec![Layer::Landlock, Layer::Namespaces]
        );
        assert!(caps(true)
            .missing(&[Layer::Seccomp, Layer::Landlock])
            .is_empty());
    }

    #[test]
    fn doctor_text_names_every_layer() {
        let text = caps(false).to_string();
        assert!(text.contains("seccomp:     on   deny-lists"), "{text}");
        assert!(
            text.contains("landlock:    OFF  kernel Landlock ABI 0"),
            "{text}"
        );
        assert!(text.contains("namespaces:  OFF  unshare refused"), "{text}");
        assert!(text.contains("unprivileged: on  uid 65534"), "{text}");
        assert!(
            text.contains("; 64 MiB and 4096 files per execution"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 8);
    }
}
