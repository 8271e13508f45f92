//! The harness's ruleset cache: built in the harness (before each fork,
//! from a `pthread_atfork` handler, and before each `posix_spawn`, `system`
//! or `popen`, for its helper thread), used by its children, which
//! re-validate it ([`Recorder`]) instead of walking again.
//!
//! Lock-free, since a fork can happen at any moment: a seqlock (`GEN`, odd
//! while written) guards the data; `BUSY` keeps two harness threads from
//! rebuilding at once (the loser skips: a child then builds its own).
//!
//! Every child validates the cache right before it applies it (the check
//! that counts: a forked worker may change the file system between fork
//! and exec). The harness validates it before a fork too, so that a
//! change, say an atomic save in `~`, costs one rebuild, in the harness,
//! rather than one in each child; a validation there stands for 50 ms
//! (`VALIDATION_STANDS_NS`), so a burst of spawns pays it once.
//!
//! **Which fd.** The cache is an fd number in the harness's table, and
//! the harness may close it (Python's `close_fds`, a daemon closing
//! everything) and later get another Landlock ruleset at the same number
//! (a sandbox of its own). Rulesets share one anonymous inode, so `fstat`
//! cannot tell them apart; the cache marks its open file description with
//! `fcntl(F_SETSIG, cookie)` (a value nothing else sets on a ruleset, and
//! which a Landlock ruleset never uses: it raises no signal), and every use
//! checks the mark (`F_GETSIG`, one system call). An fd without it is not
//! ours: never applied, kept open or closed by the cache.

use super::recorder::Recorder;
use super::ruleset::build;
use crate::state::State;
use crate::sys;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64};

struct CacheCell(core::cell::UnsafeCell<Recorder>);
// SAFETY: writes happen only with BUSY held and GEN odd; readers check GEN
// before and after and discard what they read when it changed.
unsafe impl Sync for CacheCell {}

static CACHE: CacheCell = CacheCell(core::cell::UnsafeCell::new(Recorder::new()));
static CACHE_FD: AtomicI32 = AtomicI32::new(-1);
/// The `F_SETSIG` mark of CACHE_FD's open file description (1..=64).
static COOKIE: AtomicI32 = AtomicI32::new(0);
static GEN: AtomicU64 = AtomicU64::new(0);
static BUSY: AtomicBool = AtomicBool::new(false);
/// `fd` is the cache's ruleset: open and carrying the cookie.
fn is_ours(fd: c_int, cookie: c_int) -> bool {
    fd >= 0 && cookie > 0 && sys::fd_sig(fd) == cookie
}

/// The cached ruleset fd when it is ours and its dependencies are unchanged.
pub(super) fn cached_fd() -> Option<c_int> {
    use core::sync::atomic::Ordering::Acquire;
    let g1 = GEN.load(Acquire);
    let fd = CACHE_FD.load(Acquire);
    let cookie = COOKIE.load(Acquire);
    if g1 % 2 == 1 || !is_ours(fd, cookie) {
        return None;
    }
    // SAFETY: a shared read of the cache; a concurrent writer makes GEN
    // differ below and the result is discarded.
    let ok = unsafe { (*CACHE.0.get()).still_valid() };
    (ok && GEN.load(Acquire) == g1).then_some(fd)
}

/// The cached ruleset's fd number when it is still ours (-1: none): the fd
/// a child of the harness must keep open until it execs (it is
/// close-on-exec). Another file at that number is not kept.
pub fn cache_fd() -> c_int {
    use core::sync::atomic::Ordering::Acquire;
    let fd = CACHE_FD.load(Acquire);
    if is_ours(fd, COOKIE.load(Acquire)) {
        fd
    } else {
        -1
    }
}

/// How long the harness trusts its last validation of the cache before a
/// spawn validates it again. Only an economy: every child validates the
/// cache itself right before it applies it ([`cached_fd`]), so a cache
/// that went stale meanwhile is never applied; its children build their
/// own ruleset until the harness validates again, at most this much later.
/// Without it the harness made its 14 or so `stat`s before every fork, the
/// child the same again (about 19 µs a spawn, bench/RESULTS.md run 10).
const VALIDATION_STANDS_NS: u64 = 50_000_000;

/// When the harness last found the cache current (CLOCK_MONOTONIC, ns; 0:
/// never).
static VALIDATED_AT: AtomicU64 = AtomicU64::new(0);

/// In the harness: make sure the cache is current (rebuild when stale, or
/// when the fd is no longer ours). A validation made less than
/// `VALIDATION_STANDS_NS` ago stands while the fd is still ours.
pub fn refresh_cache(st: &State) {
    use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
    if st.policy.landlock == policy_core::Mode::Off {
        return;
    }
    let now = sys::monotonic_ns();
    let at = VALIDATED_AT.load(Relaxed);
    if at != 0
        && now.wrapping_sub(at) < VALIDATION_STANDS_NS
        && is_ours(CACHE_FD.load(Acquire), COOKIE.load(Acquire))
    {
        return;
    }
    if BUSY.swap(true, AcqRel) {
        return;
    }
    if cached_fd().is_none() {
        rebuild(st, now);
    } else {
        VALIDATED_AT.store(now, Relaxed);
    }
    BUSY.store(false, Release);
}

/// [`refresh_cache`]'s rebuild, with `BUSY` held. Out of line: its
/// recorder (about 17 KiB) is then on the stack only when a rebuild runs.
/// `refresh_cache` runs before every fork in the harness, and each stack
/// page a frame touches there is written again after the fork, a page
/// fault each (five a spawn with the recorder in `refresh_cache`'s own
/// frame, bench/RESULTS.md run 12).
#[inline(never)]
#[cold]
fn rebuild(st: &State, now: u64) {
    use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
    let mut rec = Recorder::new();
    // The next cookie: 1..=64 (F_SETSIG's range), a new one per build.
    let cookie = COOKIE.load(Acquire) % 64 + 1;
    let fresh = match build(st, Some(&mut rec)) {
        Ok(fd) if rec.overflow || sys::set_fd_sig(fd, cookie) < 0 => {
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
        // SAFETY: BUSY is held (this function's caller) and GEN is odd: no
        // other writer, and readers will discard what they see meanwhile.
        unsafe { *CACHE.0.get() = rec };
    }
    let old_cookie = COOKIE.load(Acquire);
    let old = CACHE_FD.swap(fresh, AcqRel);
    COOKIE.store(if fresh >= 0 { cookie } else { 0 }, Release);
    GEN.fetch_add(1, AcqRel);
    // The old number is closed only while it is still ours: the
    // harness may have closed it and opened something else there.
    if is_ours(old, old_cookie) {
        sys::close(old);
    }
    if fresh >= 0 {
        VALIDATED_AT.store(now, Relaxed);
    }
}
