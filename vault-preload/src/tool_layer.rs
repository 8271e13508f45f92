//! The tool layer: a Landlock domain that grants what the base layer grants
//! except the vault (`policy_core::walk`), applied with raw
//! system calls. Allocation-free, so it runs in a forked or vforked child of
//! the harness, in a helper thread, or in a tool's constructor.
//!
//! Handled rights: `Access::ALL` ∩ what the kernel's ABI supports; scopes
//! `SIGNAL | ABSTRACT_UNIX_SOCKET` from ABI 6. The ruleset is built fresh for
//! every spawn (the walk lists the vault's ancestors each time).
//!
//! Detection ("is this process already under the tool layer?"). Landlock
//! rights on a directory are inherited by everything beneath it, and the
//! tool layer grants `read_dir` on every ancestor of a vault entry, so a
//! vault *directory* stays listable under the tool layer: opening agent-init's
//! probe directory proves nothing. What the tool layer denies is reading a
//! *file* inside a vault entry. So the probe lists the candidate directory
//! (agent-init's probe dir first, then each vault directory) and opens the
//! first regular file in it read-only with a raw `openat`: `EACCES` means
//! "already under the tool layer", success means "not yet". A candidate that
//! is missing or holds no regular file is skipped. When no candidate is
//! conclusive (no file anywhere in the vault yet) the constructor applies no
//! layer: there is nothing on disk to hide, and the open hooks still deny by
//! path (documented fallback). agent-init should therefore put a
//! world-readable file in `probe/` (any name) so that detection never
//! depends on the vault's content.
//!
//! In a child of the harness and in the harness's helper thread the layer is
//! applied without probing (they are never under it yet), once per process.

use crate::state::State;
use crate::sys;
use core::ffi::c_int;
use policy_core::pathbuf::FixedPath;
use policy_core::walk::{DirEntry, EntryKind, FsView, RuleSink, tool_layer};
use policy_core::{Access, FileId};

/// Why the tool layer could not be applied.
#[derive(Debug, Clone, Copy)]
pub struct LandlockError {
    pub what: &'static str,
    pub errno: i32,
}

/// What the probe says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The probe is denied: already under the tool layer.
    Under,
    /// The probe opens: not yet.
    NotYet,
    /// Nothing to probe (no probe dir, no existing vault directory).
    Nothing,
}

pub fn probe(st: &State) -> Probe {
    // agent-init's probe file by name: one open instead of a listing.
    if let Some(dir) = st.policy.probe {
        match probe_file(dir.bytes()) {
            Probe::Nothing => {}
            verdict => return verdict,
        }
    }
    for p in st.probe_candidates() {
        match probe_dir(p) {
            Probe::Nothing => continue,
            verdict => return verdict,
        }
    }
    Probe::Nothing
}

/// Read-open `<dir>/probe`, the file agent-init puts in its probe directory.
fn probe_file(dir: &[u8]) -> Probe {
    // A short buffer: this runs in every tool's constructor, on a fresh stack.
    let name = policy_core::layout::PROBE_FILE.name.as_bytes();
    let Some(p) = crate::state::StatePath::new(&[dir, b"/", name]) else {
        return Probe::Nothing;
    };
    let fd = sys::openat(
        libc::AT_FDCWD,
        p.with_nul(),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
    );
    if fd >= 0 {
        sys::close(fd);
        return Probe::NotYet;
    }
    if fd == -libc::EACCES || fd == -libc::EPERM {
        return Probe::Under;
    }
    Probe::Nothing // not there (or a symlink): list the candidates
}

/// Probe one directory (NUL-terminated path): read-open its first regular file.
fn probe_dir(dir: &[u8]) -> Probe {
    let dfd = sys::openat(
        libc::AT_FDCWD,
        dir,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    );
    if dfd == -libc::EACCES || dfd == -libc::EPERM {
        return Probe::Under;
    }
    if dfd < 0 {
        return Probe::Nothing;
    }
    // Small: this runs in the constructor of every tool, on a fresh stack.
    let mut buf = [0u8; 1024];
    let mut verdict = Probe::Nothing;
    'outer: loop {
        let n = sys::getdents64(dfd, &mut buf);
        if n <= 0 {
            break;
        }
        for name in sys::dirents(&buf[..n as usize]) {
            if name == b".\0" || name == b"..\0" {
                continue;
            }
            // SAFETY: all-zero is a valid `struct stat`.
            let mut s: libc::stat = unsafe { core::mem::zeroed() };
            if sys::fstatat(dfd, name, &mut s, libc::AT_SYMLINK_NOFOLLOW) < 0
                || s.st_mode & libc::S_IFMT != libc::S_IFREG
            {
                continue;
            }
            let fd = sys::openat(
                dfd,
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
                0,
            );
            if fd >= 0 {
                sys::close(fd);
                verdict = Probe::NotYet;
                break 'outer;
            }
            if fd == -libc::EACCES || fd == -libc::EPERM {
                verdict = Probe::Under;
                break 'outer;
            }
        }
    }
    sys::close(dfd);
    verdict
}

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
        crate::state::UNDER_TOOL_LAYER.store(true, core::sync::atomic::Ordering::Relaxed);
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
/// make: Landlock refuses a 17th layer) skips it only when the probe
/// (agent-init's `probe/probe`) confirms the process is under a layer.
pub fn ensure_in_harness_child(st: &State) -> Result<bool, LandlockError> {
    use core::sync::atomic::Ordering::Relaxed;
    let me = sys::getpid();
    if APPLIED_PID.load(Relaxed) == me
        && let Some(dir) = st.policy.probe
        && probe_file(dir.bytes()) == Probe::Under
    {
        return Ok(false);
    }
    apply(st)?;
    APPLIED_PID.store(me, Relaxed);
    Ok(true)
}

/// Records what a built ruleset depends on: each listed directory (identity
/// and mtime: an entry added, removed or renamed changes it) and each base
/// rule path (identity). Fixed capacity; overflow means "do not cache".
pub struct Recorder {
    arena: [u8; 16384],
    used: usize,
    entries: [Dep; 64],
    n: usize,
    overflow: bool,
}

#[derive(Clone, Copy)]
struct Dep {
    off: u32,
    len: u32,
    dev: u64,
    ino: u64,
    /// (sec, nsec) for listed directories; None for rule paths.
    mtime: Option<(i64, i64)>,
}

impl Recorder {
    pub const fn new() -> Recorder {
        Recorder {
            arena: [0; 16384],
            used: 0,
            entries: [Dep {
                off: 0,
                len: 0,
                dev: 0,
                ino: 0,
                mtime: None,
            }; 64],
            n: 0,
            overflow: false,
        }
    }

    fn record(&mut self, path: &[u8], s: &libc::stat, listed: bool) {
        let need = path.len() + 1;
        if self.n == self.entries.len() || self.used + need > self.arena.len() {
            self.overflow = true;
            return;
        }
        self.arena[self.used..self.used + path.len()].copy_from_slice(path);
        self.arena[self.used + path.len()] = 0;
        self.entries[self.n] = Dep {
            off: self.used as u32,
            len: need as u32,
            dev: s.st_dev,
            ino: s.st_ino,
            mtime: listed.then_some((s.st_mtime, s.st_mtime_nsec)),
        };
        self.n += 1;
        self.used += need;
    }

    /// Every dependency is unchanged.
    fn still_valid(&self) -> bool {
        if self.overflow {
            return false;
        }
        self.entries[..self.n.min(self.entries.len())]
            .iter()
            .all(|d| {
                // A reader racing a writer may see a torn entry (the seqlock
                // discards the result): never index out of range on one.
                let Some(p) = (d.off as usize)
                    .checked_add(d.len as usize)
                    .and_then(|end| self.arena.get(d.off as usize..end))
                else {
                    return false;
                };
                // SAFETY: all-zero is a valid `struct stat`.
                let mut s: libc::stat = unsafe { core::mem::zeroed() };
                sys::fstatat(libc::AT_FDCWD, p, &mut s, 0) == 0
                    && s.st_dev == d.dev
                    && s.st_ino == d.ino
                    && d.mtime.is_none_or(|m| m == (s.st_mtime, s.st_mtime_nsec))
            })
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

struct RawFs;

impl FsView for RawFs {
    type Error = LandlockError;
    fn list(
        &mut self,
        dir: &[u8],
        f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), LandlockError>,
    ) -> Result<(), LandlockError> {
        let Some(d) = FixedPath::from_bytes(dir) else {
            return Ok(()); // unnameable: no rules below it, so no access
        };
        let dfd = sys::openat(
            libc::AT_FDCWD,
            d.as_bytes_with_nul(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        );
        if dfd < 0 {
            // Missing or unlistable ancestor: no sibling rules (deny by default).
            return Ok(());
        }
        let mut buf = [0u8; 8192];
        let mut res = Ok(());
        'outer: loop {
            let n = sys::getdents64(dfd, &mut buf);
            if n < 0 {
                res = Err(LandlockError {
                    what: "listing a vault ancestor",
                    errno: (-n) as i32,
                });
                break;
            }
            if n == 0 {
                break;
            }
            for name_nul in sys::dirents(&buf[..n as usize]) {
                let name = &name_nul[..name_nul.len() - 1];
                if name == b"." || name == b".." {
                    continue;
                }
                // SAFETY: all-zero is a valid `struct stat`.
                let mut s: libc::stat = unsafe { core::mem::zeroed() };
                if sys::fstatat(dfd, name_nul, &mut s, libc::AT_SYMLINK_NOFOLLOW) < 0 {
                    continue; // vanished
                }
                let kind = match s.st_mode & libc::S_IFMT {
                    libc::S_IFDIR => EntryKind::Dir,
                    libc::S_IFLNK => EntryKind::Symlink,
                    _ => EntryKind::Other,
                };
                let e = DirEntry {
                    name,
                    kind,
                    nlink: s.st_nlink,
                    id: FileId {
                        dev: s.st_dev,
                        ino: s.st_ino,
                    },
                };
                if let Err(e) = f(&e) {
                    res = Err(e);
                    break 'outer;
                }
            }
        }
        sys::close(dfd);
        res
    }
}

struct RawSink<'a> {
    ruleset: c_int,
    handled: Access,
    rec: Option<&'a mut Recorder>,
}

impl RuleSink for RawSink<'_> {
    type Error = LandlockError;
    fn add(
        &mut self,
        path: &[u8],
        is_dir: Option<bool>,
        access: Access,
    ) -> Result<(), LandlockError> {
        let mut a = access.intersect(self.handled);
        if a.is_empty() {
            return Ok(());
        }
        let Some(p) = FixedPath::from_bytes(path) else {
            return Ok(());
        };
        // Siblings found by the walk: never follow a symlink swapped in since.
        let nofollow = if is_dir.is_some() {
            libc::O_NOFOLLOW
        } else {
            0
        };
        let fd = sys::openat(
            libc::AT_FDCWD,
            p.as_bytes_with_nul(),
            libc::O_PATH | libc::O_CLOEXEC | nofollow,
            0,
        );
        if fd < 0 {
            if is_dir.is_none()
                && let Some(rec) = self.rec.as_deref_mut()
            {
                rec.overflow = true; // a base path that may appear later: do not cache
            }
            return Ok(()); // a base path that does not exist (or vanished): no rule
        }
        // SAFETY: all-zero is a valid `struct stat`.
        let mut s: libc::stat = unsafe { core::mem::zeroed() };
        let r = sys::fstat(fd, &mut s);
        if r < 0 {
            sys::close(fd);
            return Err(LandlockError {
                what: "fstat of a rule path",
                errno: -r,
            });
        }
        if is_dir.is_none()
            && let Some(rec) = self.rec.as_deref_mut()
        {
            rec.record(path, &s, false);
        }
        let fmt = s.st_mode & libc::S_IFMT;
        let dir = fmt == libc::S_IFDIR;
        if fmt == libc::S_IFLNK || is_dir.is_some_and(|d| d != dir) {
            sys::close(fd);
            return Ok(()); // changed under us: no rule
        }
        if !dir {
            a = a.intersect(Access::FILE_ONLY);
        }
        let r = if a.is_empty() {
            0
        } else {
            sys::landlock_add_path_rule(self.ruleset, fd, a.bits())
        };
        sys::close(fd);
        if r < 0 {
            return Err(LandlockError {
                what: "landlock_add_rule",
                errno: -r,
            });
        }
        Ok(())
    }
}

/// The Landlock ABI of this kernel (0: none).
pub fn abi() -> u32 {
    let v = sys::landlock_abi();
    if v < 0 { 0 } else { v as u32 }
}

/// Build a fresh tool-layer ruleset (an fd), recording its dependencies in `rec`.
fn build(st: &State, rec: Option<&mut Recorder>) -> Result<c_int, LandlockError> {
    let abi = abi();
    if abi == 0 {
        return Err(LandlockError {
            what: "Landlock is not available on this kernel",
            errno: libc::EOPNOTSUPP,
        });
    }
    let handled = Access::ALL.intersect(Access::supported_by_abi(abi));
    let attr = sys::RulesetAttr {
        handled_access_fs: handled.bits(),
        handled_access_net: 0,
        scoped: if abi >= 6 {
            sys::LANDLOCK_SCOPE_SIGNAL | sys::LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
        } else {
            0
        },
    };
    let size = if abi >= 6 {
        24
    } else if abi >= 4 {
        16
    } else {
        8
    };
    let rs = sys::landlock_create_ruleset(&attr, size);
    if rs < 0 {
        return Err(LandlockError {
            what: "landlock_create_ruleset",
            errno: -rs,
        });
    }
    // With a recorder, the walk's view and sink share it, borrowed in turn.
    let r = match rec {
        Some(r) => {
            let cell = core::cell::RefCell::new(r);
            tool_layer(
                &st.policy,
                st.vault_ids(),
                &mut SharedFs(&cell),
                &mut SharedSink(&cell, rs, handled),
            )
        }
        None => tool_layer(
            &st.policy,
            st.vault_ids(),
            &mut RawFs,
            &mut RawSink {
                ruleset: rs,
                handled,
                rec: None,
            },
        ),
    };
    if let Err(e) = r {
        sys::close(rs);
        return Err(e);
    }
    Ok(rs)
}

/// Never happens (the view releases the recorder before calling the sink);
/// an error rather than a panic if it ever did.
const BORROW: LandlockError = LandlockError {
    what: "internal: recorder borrowed twice",
    errno: libc::EINVAL,
};

/// Adapters that share one recorder between the walk's view and sink.
struct SharedFs<'a, 'b>(&'a core::cell::RefCell<&'b mut Recorder>);
struct SharedSink<'a, 'b>(&'a core::cell::RefCell<&'b mut Recorder>, c_int, Access);

impl FsView for SharedFs<'_, '_> {
    type Error = LandlockError;
    fn list(
        &mut self,
        dir: &[u8],
        f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), LandlockError>,
    ) -> Result<(), LandlockError> {
        // The sink is called from inside `f`: hold the borrow only to record.
        match self.0.try_borrow_mut() {
            Ok(mut r) => record_dir(&mut r, dir),
            Err(_) => return Err(BORROW),
        }
        RawFs.list(dir, f)
    }
}

fn record_dir(rec: &mut Recorder, dir: &[u8]) {
    let Some(d) = FixedPath::from_bytes(dir) else {
        rec.overflow = true;
        return;
    };
    // SAFETY: all-zero is a valid `struct stat`.
    let mut s: libc::stat = unsafe { core::mem::zeroed() };
    if sys::fstatat(libc::AT_FDCWD, d.as_bytes_with_nul(), &mut s, 0) < 0 {
        rec.overflow = true;
    } else {
        rec.record(dir, &s, true);
    }
}

impl RuleSink for SharedSink<'_, '_> {
    type Error = LandlockError;
    fn add(
        &mut self,
        path: &[u8],
        is_dir: Option<bool>,
        access: Access,
    ) -> Result<(), LandlockError> {
        let Ok(mut r) = self.0.try_borrow_mut() else {
            return Err(BORROW);
        };
        let mut sink = RawSink {
            ruleset: self.1,
            handled: self.2,
            rec: Some(&mut **r),
        };
        sink.add(path, is_dir, access)
    }
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

// The harness's ruleset cache: built in the harness (before each fork, from
// a pthread_atfork handler, and in the posix_spawn helper thread), used by
// the children. A seqlock (`GEN`, odd while written) guards the data;
// `BUSY` keeps two harness threads from rebuilding at once.

struct CacheCell(core::cell::UnsafeCell<Recorder>);
// SAFETY: writes happen only with BUSY held and GEN odd; readers check GEN
// before and after and discard what they read when it changed.
unsafe impl Sync for CacheCell {}

static CACHE: CacheCell = CacheCell(core::cell::UnsafeCell::new(Recorder::new()));
static CACHE_FD: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(-1);
static GEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static BUSY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The cached ruleset fd when its dependencies are unchanged.
fn cached_fd() -> Option<c_int> {
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

/// Restrict the calling thread with the tool layer: the harness's cached
/// ruleset when still valid, else a fresh one.
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

/// One line on stderr: why the tool layer is missing.
pub fn report(e: LandlockError, consequence: &[u8]) {
    let mut d = [0u8; 20];
    sys::write_all(2, b"agent-vault: cannot apply the tool layer: ");
    sys::write_all(2, e.what.as_bytes());
    sys::write_all(2, b" (errno ");
    sys::write_all(2, sys::fmt_u64(e.errno.max(0) as u64, &mut d));
    sys::write_all(2, b")");
    sys::write_all(2, consequence);
    sys::write_all(2, b"\n");
}
