//! What the container gives a root agent-init, checked before the steps so
//! that a start that cannot work says the real cause and its fix, not the
//! first call that happens to fail (a seeding `EPERM`, a bare
//! `prctl(PR_CAPBSET_DROP): Operation not permitted`).
//!
//! Two facts: the capabilities the steps need ([`NEEDED`]) against this
//! process's effective set, and whether agent-init was started by another
//! init (`--init`, `init: true`: tini, docker-init, catatonit, podman-init) instead of
//! being PID 1. Only a root agent-init (container mode) is checked: a host
//! run as a user is legitimately neither PID 1 nor privileged, and a root
//! run from a shell or a service manager is not under a container init.

use std::fmt;

/// A capability a step needs, and what for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    /// The name without `CAP_`, as `--cap-add` takes it.
    pub name: &'static str,
    pub cap: caps::Capability,
    /// Without it agent-init cannot drop privileges: the start is refused.
    pub for_drop: bool,
}

/// The capabilities `run` needs as root.
pub const NEEDED: &[Needed] = &[
    Needed {
        name: "CHOWN",
        cap: caps::Capability::CAP_CHOWN,
        for_drop: false,
    },
    Needed {
        name: "DAC_OVERRIDE",
        cap: caps::Capability::CAP_DAC_OVERRIDE,
        for_drop: false,
    },
    Needed {
        name: "FOWNER",
        cap: caps::Capability::CAP_FOWNER,
        for_drop: false,
    },
    Needed {
        name: "SETUID",
        cap: caps::Capability::CAP_SETUID,
        for_drop: true,
    },
    Needed {
        name: "SETGID",
        cap: caps::Capability::CAP_SETGID,
        for_drop: true,
    },
    Needed {
        name: "SETPCAP",
        cap: caps::Capability::CAP_SETPCAP,
        for_drop: true,
    },
    Needed {
        name: "KILL",
        cap: caps::Capability::CAP_KILL,
        for_drop: false,
    },
];

/// Programs that serve as a container's init when `--init` is given.
pub const CONTAINER_INITS: &[&str] = &[
    "tini",
    "tini-static",
    "docker-init",
    "catatonit",
    "podman-init",
    "dumb-init",
];

/// The capabilities of [`NEEDED`] missing from `effective` (a `CapEff` mask).
pub fn missing_from(effective: u64) -> Vec<Needed> {
    NEEDED
        .iter()
        .filter(|n| effective & n.cap.bitmask() == 0)
        .copied()
        .collect()
}

/// This process's `CapEff` from /proc/self/status (0 when unreadable).
pub fn effective_mask() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The missing capabilities, in one line: which, what for, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingCaps(pub Vec<Needed>);

impl MissingCaps {
    /// Some of them are needed to drop privileges: the start cannot work.
    pub fn fatal(&self) -> bool {
        self.0.iter().any(|n| n.for_drop)
    }
}

impl fmt::Display for MissingCaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|n| n.name).collect();
        let adds: Vec<String> = names.iter().map(|n| format!("--cap-add={n}")).collect();
        write!(
            f,
            "missing capabilities {} (agent-init needs CHOWN, DAC_OVERRIDE, FOWNER to seed, SETUID, SETGID, SETPCAP to drop privileges, KILL to forward signals). Fix: {} (with --cap-drop=ALL, add these back)",
            names.join(", "),
            adds.join(" ")
        )
    }
}

/// A start that cannot work here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightError {
    /// Started by a container init (`--init`) instead of being PID 1.
    NotPid1 { pid: u32, parent: String },
    /// Capabilities the privilege drop needs are missing.
    Capabilities(MissingCaps),
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreflightError::NotPid1 { pid, parent } => write!(
                f,
                "agent-init is not PID 1 (pid {pid}, started by {parent:?}, the container's init): agent-init is the init. Fix: remove --init (docker/podman run) or `init: true` (compose)"
            ),
            PreflightError::Capabilities(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PreflightError {}

/// The parent's name when it is a container init and we are not PID 1.
pub fn started_by_container_init() -> Option<String> {
    if std::process::id() == 1 {
        return None;
    }
    let ppid = nix::unistd::getppid().as_raw();
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).ok()?;
    let comm = comm.trim();
    CONTAINER_INITS.contains(&comm).then(|| comm.to_string())
}

/// The checks, for a root agent-init. `Ok(missing)`: capabilities that
/// are missing but not needed to drop privileges (seeding may still work:
/// the caller warns, and names them if seeding fails).
pub fn check() -> Result<MissingCaps, PreflightError> {
    if let Some(parent) = started_by_container_init() {
        return Err(PreflightError::NotPid1 {
            pid: std::process::id(),
            parent,
        });
    }
    let missing = MissingCaps(missing_from(effective_mask()));
    if missing.fatal() {
        return Err(PreflightError::Capabilities(missing));
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_each_capability_and_the_fix() {
        let all: u64 = NEEDED.iter().map(|n| n.cap.bitmask()).sum();
        assert!(missing_from(all).is_empty());
        let m = MissingCaps(missing_from(all & !caps::Capability::CAP_SETPCAP.bitmask()));
        assert!(m.fatal());
        let s = m.to_string();
        assert!(s.starts_with("missing capabilities SETPCAP ("), "{s}");
        assert!(s.contains("Fix: --cap-add=SETPCAP"), "{s}");
        let m = MissingCaps(missing_from(0));
        assert_eq!(m.0.len(), NEEDED.len());
        assert!(!MissingCaps(missing_from(all & !caps::Capability::CAP_CHOWN.bitmask())).fatal());
    }
}
