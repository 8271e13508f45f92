//! `agent-init health`: exit 0 only while the harness runs under every
//! layer the policy requires, for a container HEALTHCHECK, a Kubernetes
//! exec probe or `docker exec`; exit 1 with one line saying what is wrong.
//!
//! It reads agent-init's state directory (`/run/agent-vault` as root, else
//! `/tmp/agent-vault-<uid>`): the effective policy and the harness's pid.
//! Then, from `/proc/<pid>` (what any process may read of another):
//!
//! - the harness is alive and not a zombie;
//! - its parent is `agent-init` (the pid was not reused by another process,
//!   and the harness is the one agent-init started after applying the
//!   layers);
//! - `NoNewPrivs: 1` and `CapEff` empty (step 4);
//! - `Seccomp: 2` unless the policy's seccomp mode is `off` (step 6);
//! - not dumpable: its `/proc/<pid>` files are root's although it is not
//!   (the vault preload keeps the harness's memory and environment from its
//!   tools).
//!
//! Landlock is not visible from outside a process: no `/proc` field shows a
//! domain, and a probe would have to run inside the harness's domain. So
//! health does not claim it; it relies on step 5, which runs before the
//! harness's exec and, with `landlock = "required"`, refuses to start a
//! harness the kernel does not fully restrict (the parent check above ties
//! the running process to that start). `self-test`, run as a tool, proves
//! the Landlock layers from inside.

use policy::{EnforceMode, Policy};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Why the harness is not healthy: one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unhealthy {
    /// No effective policy in the state directory: no session here.
    NoSession { policy_file: PathBuf, why: String },
    /// The harness's pid cannot be read.
    NoPid { pid_file: PathBuf, why: String },
    /// The harness is gone (or a zombie).
    NotRunning { pid: i32 },
    /// The pid is not a child of agent-init.
    NotStartedByAgentInit { pid: i32, parent: String },
    /// A layer the policy requires is missing: which, and what /proc shows.
    Layer {
        pid: i32,
        layer: &'static str,
        seen: String,
    },
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unhealthy::NoSession { policy_file, why } => write!(
                f,
                "unhealthy: no agent-init session here ({}: {why})",
                policy_file.display()
            ),
            Unhealthy::NoPid { pid_file, why } => write!(
                f,
                "unhealthy: no harness recorded ({}: {why})",
                pid_file.display()
            ),
            Unhealthy::NotRunning { pid } => {
                write!(f, "unhealthy: the harness (pid {pid}) is not running")
            }
            Unhealthy::NotStartedByAgentInit { pid, parent } => write!(
                f,
                "unhealthy: pid {pid} is not the harness agent-init started (its parent is {parent:?})"
            ),
            Unhealthy::Layer { pid, layer, seen } => write!(
                f,
                "unhealthy: the harness (pid {pid}) is not under {layer} ({seen})"
            ),
        }
    }
}

impl std::error::Error for Unhealthy {}

/// What `/proc/<pid>/status` says, by field.
fn status(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

/// Check the session described by the state directory's files.
pub fn check_session(policy_file: PathBuf, pid_file: PathBuf) -> Result<String, Unhealthy> {
    let policy: Policy = policy::load_file(&policy_file, &policy::ExpandContext::default())
        .map_err(|e| Unhealthy::NoSession {
            policy_file: policy_file.clone(),
            why: e.to_string(),
        })?;
    let text = std::fs::read_to_string(&pid_file).map_err(|e| Unhealthy::NoPid {
        pid_file: pid_file.clone(),
        why: e.to_string(),
    })?;
    let record =
        policy::layout::HarnessRecord::parse(text.as_bytes()).ok_or_else(|| Unhealthy::NoPid {
            pid_file: pid_file.clone(),
            why: format!("not a harness record (\"PID START\"): {:?}", text.trim()),
        })?;
    let pid = record.pid;
    // The same process, not a later one that reused its pid.
    let start = std::fs::read(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|st| policy::layout::stat_start_time(&st));
    if start != Some(record.start) {
        return Err(Unhealthy::NotRunning { pid });
    }
    check_harness(&policy, pid)
}

/// Check the running harness `pid` against `policy`. Ok: the one line.
pub fn check_harness(policy: &Policy, pid: i32) -> Result<String, Unhealthy> {
    let st = status(pid).ok_or(Unhealthy::NotRunning { pid })?;
    if matches!(
        field(&st, "State:").and_then(|s| s.chars().next()),
        Some('Z' | 'X')
    ) {
        return Err(Unhealthy::NotRunning { pid });
    }
    let ppid = field(&st, "PPid:").unwrap_or("0");
    let parent = std::fs::read_to_string(format!("/proc/{ppid}/comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| format!("pid {ppid}"));
    if parent != "agent-init" {
        return Err(Unhealthy::NotStartedByAgentInit { pid, parent });
    }
    let layer = |layer: &'static str, seen: String| Unhealthy::Layer { pid, layer, seen };
    let nnp = field(&st, "NoNewPrivs:").unwrap_or("?");
    if nnp != "1" {
        return Err(layer("no_new_privs", format!("NoNewPrivs: {nnp}")));
    }
    let cap_eff = field(&st, "CapEff:").unwrap_or("?");
    if u64::from_str_radix(cap_eff, 16) != Ok(0) {
        return Err(layer("the capability drop", format!("CapEff: {cap_eff}")));
    }
    let seccomp = field(&st, "Seccomp:").unwrap_or("?");
    if policy.seccomp.mode != EnforceMode::Off && seccomp != "2" {
        return Err(layer("its seccomp filter", format!("Seccomp: {seccomp}")));
    }
    let uid = field(&st, "Uid:")
        .and_then(|u| u.split_whitespace().next())
        .and_then(|u| u.parse::<u32>().ok())
        .unwrap_or(0);
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .map(|m| m.uid())
        .ok();
    if uid != 0 && owner != Some(0) {
        return Err(layer(
            "the vault preload (it is dumpable)",
            format!(
                "/proc/{pid}/environ owned by uid {}",
                owner.map_or("?".into(), |o| o.to_string())
            ),
        ));
    }
    Ok(format!(
        "healthy: harness pid {pid} (uid {uid}) runs under no_new_privs, no capabilities, {}not dumpable; landlock {} (applied before its start; not visible from outside)",
        if policy.seccomp.mode == EnforceMode::Off {
            ""
        } else {
            "seccomp, "
        },
        policy.landlock.as_str()
    ))
}

/// `agent-init health`.
pub fn main() -> i32 {
    let state = crate::state::StateDir::for_process();
    match check_session(state.policy_file(), state.pid_file()) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => {
            eprintln!("agent-init: {e}");
            1
        }
    }
}
