//! Putting a process under the tool layer: the constructor of a tool
//! started outside the harness tree ([`ensure`]: probe first), a child of
//! the harness before it execs ([`ensure_in_harness_child`]: no probe on the
//! first attempt), and the harness's spawn helper thread ([`apply`]).
//!
//! Its own module because it is the one place that decides when a layer is
//! added: Landlock allows 16 layers, so a process must never stack one per
//! attempt.

use super::cache::cached_fd;
use super::error::LandlockError;
use super::probe::{Probe, probe, probe_file};
use super::ruleset::build;
use crate::state::State;
use crate::sys;
use core::ffi::c_int;

/// Apply the tool layer unless the probe says it is already there (or has
/// nothing to look at). Ok(true): the process is under the tool layer now;
/// Ok(false): nothing to probe, no layer (see the module documentation).
pub fn ensure(st: &State) -> Result<bool, LandlockError> {
    let under = match probe(st) {
        Probe::Nothing => false,
        Probe::Under => true,
        Probe::NotYet => {
            apply(st)?;
            true
        }
    };
    if under {
        crate::state::mark_under_tool_layer();
    }
    Ok(under)
}

/// The pid that last applied the tool layer in this address space: a hint
/// only. A vfork child writes it into the harness's memory, and a later
/// child may reuse that pid, so a match is confirmed with the probe.
static APPLIED_PID: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// In a child of the harness: apply the layer, once per process. The first
/// `exec` attempt applies it without probing. A later attempt in the same
/// process (an `exec` that failed, as `execvp`-style loops over `PATH`
/// make: Landlock refuses a 17th layer) skips it only when this process
/// noted it applied the layer ([`note_applied`]) and the probe (agent-init's
/// `probe/probe`) confirms the process is under a layer.
pub fn ensure_in_harness_child(st: &State) -> Result<bool, LandlockError> {
    use core::sync::atomic::Ordering::Relaxed;
    if APPLIED_PID.load(Relaxed) == sys::getpid()
        && let Some(dir) = st.policy.probe
        && probe_file(dir.bytes()) == Probe::Under
    {
        return Ok(false);
    }
    apply(st)?;
    Ok(true)
}

/// In a child of the harness that goes on after [`ensure_in_harness_child`]
/// (it spawned, or its `exec` failed and it may try again): remember that
/// this process applied the layer. Not before an `exec` that succeeds: the
/// new image starts afresh, and this write would be the child's only one
/// to the library's data, a page fault in every spawn from the harness
/// (bench/RESULTS.md run 12).
pub fn note_applied() {
    APPLIED_PID.store(sys::getpid(), core::sync::atomic::Ordering::Relaxed);
}

fn restrict(rs: c_int) -> Result<(), LandlockError> {
    let r = sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if r < 0 {
        return Err(LandlockError {
            what: "prctl(PR_SET_NO_NEW_PRIVS)",
            errno: (-r) as i32,
        });
    }
    let r = sys::landlock_restrict_self(rs);
    if r < 0 {
        return Err(LandlockError {
            what: "landlock_restrict_self",
            errno: -r,
        });
    }
    Ok(())
}

/// Restrict the calling thread with the tool layer: the harness's cached
/// ruleset when still valid (and ours), else a fresh one.
pub fn apply(st: &State) -> Result<(), LandlockError> {
    if let Some(fd) = cached_fd()
        && restrict(fd).is_ok()
    {
        return Ok(());
    }
    let rs = build(st, None)?;
    let r = restrict(rs);
    sys::close(rs);
    r
}
