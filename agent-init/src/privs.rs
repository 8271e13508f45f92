//! Step 4, dropping privileges (in the harness child, before exec), and the
//! smaller drop agent-init applies to itself once the harness runs.
//!
//! Order (each step needs a capability the next one drops): bounding set swept
//! over `0..=cap_last_cap`, ambient and inheritable cleared; securebits
//! locked (`NOROOT`, `NO_SETUID_FIXUP`, `KEEP_CAPS` off, `NO_CAP_AMBIENT_RAISE`,
//! each with its lock); `setgroups`, `setresgid`, `setresuid`; permitted and
//! effective cleared; `no_new_privs`; `RLIMIT_CORE` 0. Then the result is
//! read back and checked: every set empty.

use crate::config::Identity;
use crate::error::{Call, CallResult};
use crate::log::debug;
use crate::sys;
use caps::CapSet;
use caps::errors::CapsError;
use nix::sys::resource::{Resource, setrlimit};
use nix::unistd::{Gid, Uid};
use std::fmt;

const SECBIT_NOROOT: u32 = 1 << 0;
const SECBIT_NOROOT_LOCKED: u32 = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: u32 = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: u32 = 1 << 7;

/// The securebits agent-init sets and locks.
pub const SECUREBITS: u32 = SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
    | SECBIT_NO_CAP_AMBIENT_RAISE
    | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;

/// What failed.
#[derive(Debug)]
pub enum PrivError {
    /// A named call failed.
    Call(Call<std::io::Error>),
    /// A named call of the caps crate failed.
    Caps(Call<CapsError>),
    /// A capability set is not empty after the drop.
    Leftover(&'static str),
}

impl fmt::Display for PrivError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivError::Call(c) => write!(f, "{c}"),
            PrivError::Caps(c) => write!(f, "{c}"),
            PrivError::Leftover(set) => {
                write!(f, "the {set} capability set is not empty after the drop")
            }
        }
    }
}

impl std::error::Error for PrivError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PrivError::Call(c) => Some(&c.source),
            PrivError::Caps(c) => Some(&c.source),
            PrivError::Leftover(_) => None,
        }
    }
}

impl From<Call<std::io::Error>> for PrivError {
    fn from(c: Call<std::io::Error>) -> PrivError {
        PrivError::Call(c)
    }
}

/// nix's errno, reported as the I/O error it is (`... (os error N)`).
impl From<Call<nix::Error>> for PrivError {
    fn from(c: Call<nix::Error>) -> PrivError {
        PrivError::Call(c.map(std::io::Error::from))
    }
}

impl From<Call<CapsError>> for PrivError {
    fn from(c: Call<CapsError>) -> PrivError {
        PrivError::Caps(c)
    }
}

/// The highest capability number the kernel knows.
pub fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

fn clear_bounding() -> Result<(), PrivError> {
    for cap in 0..=cap_last_cap() {
        match sys::capbset_drop(cap) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(Call::of("prctl(PR_CAPBSET_DROP)", e).into()),
        }
    }
    Ok(())
}

/// As root, before the uid changes: nothing an exec could gain back. The
/// bounding set swept, ambient and inheritable cleared, securebits set and
/// locked.
fn lock_inheritance() -> Result<(), PrivError> {
    clear_bounding()?;
    sys::ambient_clear_all().call("prctl(PR_CAP_AMBIENT_CLEAR_ALL)")?;
    caps::clear(None, CapSet::Inheritable).call("capset(inheritable)")?;
    sys::set_securebits(SECUREBITS).call("prctl(PR_SET_SECUREBITS)")?;
    Ok(())
}

/// Become `who`: supplementary groups, then gid, then uid (all three ids).
fn switch_user(who: &Identity) -> Result<(), PrivError> {
    let groups: Vec<Gid> = who.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).call("setgroups")?;
    let g = Gid::from_raw(who.gid);
    nix::unistd::setresgid(g, g, g).call("setresgid")?;
    let u = Uid::from_raw(who.uid);
    nix::unistd::setresuid(u, u, u).call("setresuid")?;
    Ok(())
}

/// Permitted and effective cleared, `no_new_privs`, no core dumps.
fn clear_own_capabilities() -> Result<(), PrivError> {
    caps::clear(None, CapSet::Permitted).call("capset(permitted)")?;
    caps::clear(None, CapSet::Effective).call("capset(effective)")?;
    nix::sys::prctl::set_no_new_privs().call("prctl(PR_SET_NO_NEW_PRIVS)")?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).call("setrlimit(RLIMIT_CORE)")?;
    Ok(())
}

/// Read the result back: every capability set empty (the bounding set too,
/// when root could sweep it).
fn verify_dropped(root: bool) -> Result<(), PrivError> {
    for (set, name) in [
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Ambient, "ambient"),
    ] {
        if !caps::read(None, set).call("capget")?.is_empty() {
            return Err(PrivError::Leftover(name));
        }
    }
    if root && (0..=cap_last_cap()).any(|c| sys::capbset_read(c).unwrap_or(false)) {
        return Err(PrivError::Leftover("bounding"));
    }
    Ok(())
}

/// Drop to `who` (when `switch`), clear all capabilities, lock securebits,
/// set `no_new_privs` and `RLIMIT_CORE` 0. Returns the log line.
pub fn drop_privileges(who: &Identity, switch: bool) -> Result<String, PrivError> {
    let root = nix::unistd::geteuid().is_root();
    let mut notes = Vec::new();
    if root {
        lock_inheritance()?;
    } else {
        // Without CAP_SETPCAP neither the bounding set nor securebits can
        // change; with empty permitted/effective sets and no_new_privs, no
        // exec can grant a capability anyway.
        let _ = sys::ambient_clear_all();
        let _ = caps::clear(None, CapSet::Inheritable);
        notes.push("not root: bounding set and securebits left as they are");
    }
    if switch && root {
        switch_user(who)?;
    }
    clear_own_capabilities()?;
    verify_dropped(root)?;
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    debug!(
        "drop: uid {uid} gid {gid} groups {:?} securebits {:#x}",
        who.groups,
        sys::get_securebits().unwrap_or(0)
    );
    let mut line = format!(
        "uid {uid} gid {gid}{}, all capabilities cleared, no_new_privs, core dumps off",
        who.name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    if root {
        line.push_str(", securebits locked");
    }
    for n in notes {
        line.push_str("; ");
        line.push_str(n);
    }
    Ok(line)
}

/// Not dumpable and no core file: `/proc/<pid>/mem`, `environ` and `fd`
/// become root's, even for processes of the same uid.
pub fn no_dumps() {
    let _ = nix::sys::prctl::set_dumpable(false);
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
}

/// agent-init holds CAP_KILL (needed to signal a harness of another uid).
pub fn holds_kill() -> bool {
    caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_KILL).unwrap_or(false)
}

/// agent-init itself, once the harness runs: it only needs to signal and
/// reap. Keep CAP_KILL (to signal a harness of another uid) and drop every
/// other capability from all sets; no core dumps; not dumpable (its memory
/// and `/proc/<pid>/environ` hold the harness's secrets, and in host mode it
/// runs as the tools' user); `no_new_privs`.
///
/// `restarts_proxy`: also keep what starting vault-proxy again takes
/// (`CAP_SETUID`, `CAP_SETGID` to switch to its user, `CAP_SETPCAP` to empty
/// its bounding set and lock its securebits). agent-init is root, not
/// dumpable and signalled by no one else, so the harness cannot use them.
pub fn restrict_self(restarts_proxy: bool) {
    no_dumps();
    let _ = nix::sys::prctl::set_no_new_privs();
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    use caps::Capability::{CAP_KILL, CAP_SETGID, CAP_SETPCAP, CAP_SETUID};
    let mut keep = caps::CapsHashSet::new();
    keep.insert(CAP_KILL);
    if restarts_proxy {
        keep.extend([CAP_SETUID, CAP_SETGID, CAP_SETPCAP]);
    }
    for cap in 0..=cap_last_cap() {
        if !keep.iter().any(|k| k.index() as u32 == cap) {
            let _ = sys::capbset_drop(cap);
        }
    }
    let _ = sys::ambient_clear_all();
    let _ = caps::clear(None, CapSet::Inheritable);
    let _ = caps::set(None, CapSet::Effective, &keep);
    let _ = caps::set(None, CapSet::Permitted, &keep);
}
