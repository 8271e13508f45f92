//! The harness's ruleset cache: built in the harness (before each fork,
//! from a `pthread_atfork` handler, and before each `posix_spawn`, `system`
//! or `popen`, for its helper thread), used by its children, which
//! re-validate it ([`Recorder`]) instead of walking again.
//!
//! Lock-free, since a fork can happen at any moment: a seqlock (`GEN`, odd
//! while written) guards the data; `BUSY` keeps two harness threads from
//! rebuilding at once (the loser skips: a child then builds its own).

use super::recorder::Recorder;
use super::ruleset::build;
use crate::state::State;
use crate::sys;
use core::ffi::c_int;

struct CacheCell(core::cell::UnsafeCell<Recorder>);
// SAFETY: writes happen only with BUSY held and GEN odd; readers check GEN
// before and after and discard what they read when it changed.
unsafe impl Sync for CacheCell {}

static CACHE: CacheCell = CacheCell(core::cell::UnsafeCell::new(Recorder::new()));
static CACHE_FD: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(-1);
static GEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static BUSY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The cached ruleset fd when its dependencies are unchanged.
pub(super) fn cached_fd() -> Option<c_int> {
    use core::sync::atomic::Ordering::Acquire;
    let g1 = GEN.load(Acquire);
    let fd = CACHE_FD.load(Acquire);
    if g1 % 2 == 1 || fd < 0 {
        return None;
    }
    // SAFETY: a shared read of the cache; a concurrent writer makes GEN
    // differ below and the result is discarded.
    let ok = unsafe { (*CACHE.0.get()).still_valid() };
    (ok && GEN.load(Acquire) == g1).then_some(fd)
}

/// The cached ruleset's fd number, unchecked (-1: none): the fd a child of
/// the harness must keep open until it execs (it is close-on-exec).
pub fn cache_fd() -> c_int {
    CACHE_FD.load(core::sync::atomic::Ordering::Acquire)
}

/// In the harness: make sure the cache is current (rebuild when stale).
pub fn refresh_cache(st: &State) {
    use core::sync::atomic::Ordering::{AcqRel, Release};
    if st.policy.landlock == policy_core::Mode::Off || BUSY.swap(true, AcqRel) {
        return;
    }
    if cached_fd().is_none() {
        let mut rec = Recorder::new();
        let fresh = match build(st, Some(&mut rec)) {
            Ok(fd) if rec.overflow => {
                sys::close(fd);
                -1
            }
            Ok(fd) => fd,
            Err(_) => -1,
        };
        // Publish the fresh ruleset, or (when it could not be built or
        // cannot be validated later) no cache at all: a stale one must
        // never outlive a failed rebuild.
        GEN.fetch_add(1, AcqRel);
        if fresh >= 0 {
            // SAFETY: BUSY is held and GEN is odd: no other writer, and
            // readers will discard what they see meanwhile.
            unsafe { *CACHE.0.get() = rec };
        }
        let old = CACHE_FD.swap(fresh, AcqRel);
        GEN.fetch_add(1, AcqRel);
        if old >= 0 {
            sys::close(old);
        }
    }
    BUSY.store(false, Release);
}

/// `pthread_atfork` prepare handler, registered by the harness.
pub extern "C" fn before_fork() {
    if let Some(st) = crate::state::get()
        && st.is_harness()
    {
        refresh_cache(st);
    }
}
