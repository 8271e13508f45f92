//! The open checks of an untrusted process. Allocation-free.
//!
//! - **Before** the real call: the path as given, normalized lexically
//!   (absolute paths always; relative ones for writes), and, for opens that
//!   could change a file (`O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_TRUNC`,
//!   `O_TMPFILE`), the file it resolves to (an `O_PATH` open, which has no
//!   side effect) or, when it does not exist yet, its parent directory's real
//!   path plus the new name. So a denied `O_TRUNC` never truncates.
//! - **After** the real call: the fd's `(dev, ino)` against the vault
//!   entries (hard links, symlinks, `/proc/self/fd/N`), and, when the fd's
//!   device hosts a vault entry, the fd's real path (`/proc/self/fd/N`)
//!   against the vault paths (files inside a vault directory, whatever name
//!   reached them).
//!
//! Every failure to check fails closed (deny).

use crate::state::State;
use crate::sys;
use core::ffi::{c_int, c_uint};
use core::mem::MaybeUninit;
use policy_core::pathbuf::{FixedPath, PATH_MAX, normalize_into};

/// A denial: the index of the vault entry that denied (into the policy
/// image's entries), or [`INTERNAL`] when a check failed.
pub type EntryId = usize;
pub const INTERNAL: EntryId = usize::MAX;

/// Flags that can change a file or create one.
pub fn writeish(flags: c_int) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_TMPFILE) != 0
}

/// The real path of an open fd into `out` (via `/proc/self/fd/N`), with a
/// trailing ` (deleted)` removed. False when it cannot be read.
pub fn fd_path(fd: c_int, out: &mut FixedPath) -> bool {
    let mut p = [0u8; 40];
    let n = sys::proc_fd_path(fd, &mut p);
    let mut buf = [0u8; PATH_MAX];
    let len = sys::readlinkat(libc::AT_FDCWD, &p[..n], &mut buf);
    if len < 0 || len as usize >= PATH_MAX {
        return false;
    }
    let mut s = &buf[..len as usize];
    if let Some(x) = s.strip_suffix(b" (deleted)") {
        s = x;
    }
    out.set(s)
}

fn match_real_path(st: &State, path: &[u8]) -> Option<EntryId> {
    if !path.starts_with(b"/") {
        return None; // pipe:[..], socket:[..], anon_inode:...
    }
    st.match_path(path)
}

/// Check an open fd: its identity, and its real path when on a watched device.
pub fn check_fd(st: &State, fd: c_int) -> Option<EntryId> {
    check_fd_with(st, fd, false)
}

/// [`check_fd`] for a file just opened read-only: a file already found
/// outside the vault, unchanged since, is not looked up again
/// ([`crate::outside`]). Writes never use the cache: a denied write must
/// leave the vault unchanged, whatever a directory rename did meanwhile.
pub fn check_fd_read(st: &State, fd: c_int) -> Option<EntryId> {
    check_fd_with(st, fd, true)
}

fn check_fd_with(st: &State, fd: c_int, cached: bool) -> Option<EntryId> {
    let mut buf = MaybeUninit::uninit();
    let Ok(s) = sys::fstat(fd, &mut buf) else {
        return Some(INTERNAL);
    };
    check_stat(st, fd, s, cached)
}

/// [`check_fd`] with the fd's `fstat` already made.
fn check_stat(st: &State, fd: c_int, s: &libc::stat, cached: bool) -> Option<EntryId> {
    let id = policy_core::FileId {
        dev: s.st_dev,
        ino: s.st_ino,
    };
    // Built on first use; `None`: re-entered while building them (deny).
    let Some(ids) = st.identities() else {
        return Some(INTERNAL);
    };
    if let Some(r) = ids.match_id(id) {
        return Some(r);
    }
    if !ids.watched(s.st_dev) {
        return None;
    }
    if !cached {
        return check_real_path(st, fd);
    }
    let key = crate::outside::Key::of(s);
    if crate::outside::known(key) {
        return None;
    }
    let r = check_real_path(st, fd);
    if r.is_none() {
        crate::outside::remember(key);
    }
    r
}

/// The fd's real path against the vault paths. Out of line: its path
/// buffer (4 KiB) stays off the stack of [`check_stat`]'s callers unless a
/// path is read.
#[inline(never)]
fn check_real_path(st: &State, fd: c_int) -> Option<EntryId> {
    let mut p = FixedPath::new();
    if !fd_path(fd, &mut p) {
        return Some(INTERNAL);
    }
    match_real_path(st, p.as_bytes())
}

/// The light check: the path as given, when absolute, normalized lexically.
/// No system call.
#[inline]
pub fn lexical(st: &State, path: &[u8]) -> Option<EntryId> {
    if !path.starts_with(b"/") {
        return None;
    }
    // Most paths are clean already: match them as they are (one pass over
    // the path, then a prefix comparison per vault entry).
    if policy_core::image::is_clean_absolute(path) {
        return st.match_path(path);
    }
    if !st.may_match(path) {
        return None;
    }
    lexical_normalized(st, path)
}

/// The normalizing half of [`lexical`], out of line: its path buffer would
/// otherwise make every open hook's frame a page deep (a page fault in a
/// fresh process's stack).
#[inline(never)]
fn lexical_normalized(st: &State, path: &[u8]) -> Option<EntryId> {
    let mut norm = FixedPath::new();
    if !normalize_into(b"/", path, &mut norm) {
        return Some(INTERNAL);
    }
    st.match_path(norm.as_bytes())
}

/// The directory `dirfd` names, as an absolute path.
fn dir_base(dirfd: c_int, out: &mut FixedPath) -> bool {
    if dirfd == libc::AT_FDCWD {
        let mut buf = [0u8; PATH_MAX];
        let len = sys::readlinkat(libc::AT_FDCWD, b"/proc/self/cwd\0", &mut buf);
        if len <= 0 || len as usize >= PATH_MAX {
            return false;
        }
        out.set(&buf[..len as usize])
    } else {
        fd_path(dirfd, out)
    }
}

/// Pre-check an open of `path` (relative to `dirfd`) with `flags`.
/// `force_resolve`: resolve even a read-only open (the open will happen
/// where no post-check runs: posix_spawn file actions).
pub fn pre_open(
    st: &State,
    dirfd: c_int,
    path: &[u8],
    flags: c_int,
    force_resolve: bool,
) -> Option<EntryId> {
    let write = writeish(flags) || force_resolve;
    let mut norm = FixedPath::new();
    if path.starts_with(b"/") {
        if let Some(r) = lexical(st, path) {
            return Some(r);
        }
    } else if write {
        let mut base = FixedPath::new();
        if !dir_base(dirfd, &mut base) || !normalize_into(base.as_bytes(), path, &mut norm) {
            return Some(INTERNAL);
        }
        if let Some(r) = match_real_path(st, norm.as_bytes()) {
            return Some(r);
        }
    }
    if !write {
        return None;
    }
    resolve_check(st, dirfd, path, flags)
}

/// Check the file `path` resolves to, or its would-be location.
fn resolve_check(st: &State, dirfd: c_int, path: &[u8], flags: c_int) -> Option<EntryId> {
    let Some(c) = FixedPath::from_bytes(path) else {
        return Some(INTERNAL);
    };
    let nofollow = flags & libc::O_NOFOLLOW;
    let fd = sys::openat(
        dirfd,
        c.as_bytes_with_nul(),
        libc::O_PATH | libc::O_CLOEXEC | nofollow,
        0,
    );
    if fd >= 0 {
        let r = check_fd(st, fd);
        sys::close(fd);
        return r;
    }
    if fd != -libc::ENOENT {
        return None; // the real open will fail the same way (or be post-checked)
    }
    // Not there yet: where would it be created? The parent's real path + name.
    let trimmed = {
        let mut t = path;
        while t.len() > 1 && t.ends_with(b"/") {
            t = &t[..t.len() - 1];
        }
        t
    };
    let (parent, name): (&[u8], &[u8]) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    let Some(pc) = FixedPath::from_bytes(parent) else {
        return Some(INTERNAL);
    };
    let pfd = sys::openat(
        dirfd,
        pc.as_bytes_with_nul(),
        libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY,
        0,
    );
    if pfd < 0 {
        return None; // no parent: the open fails anyway
    }
    let mut real = FixedPath::new();
    let ok = fd_path(pfd, &mut real);
    let r = if !ok {
        Some(INTERNAL)
    } else if name == b".." || name == b"." || name.is_empty() {
        match_real_path(st, real.as_bytes())
    } else if !real.push(name) {
        Some(INTERNAL)
    } else {
        match_real_path(st, real.as_bytes())
    };
    sys::close(pfd);
    r
}

/// What to do with an fd on a vault file before an `exec`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FdAction {
    /// Close it: the fd table is this child's own.
    Close,
    /// Mark it close-on-exec: the table is shared with the harness (the
    /// posix_spawn helper thread when `unshare(CLONE_FILES)` is refused,
    /// as Docker's default seccomp profile does), which keeps the fd.
    CloseOnExec,
}

fn act(fd: c_int, action: FdAction) {
    match action {
        FdAction::Close => {
            sys::close(fd);
        }
        FdAction::CloseOnExec => {
            sys::set_cloexec(fd);
        }
    }
}

/// Close (or mark close-on-exec) every fd of this process that refers to a
/// vault file or directory, before an exec in a child of the harness.
/// Allocation-free. `Err(errno)` when the fds could not be listed: the
/// caller must not exec then.
pub fn close_vault_fds(st: &State, action: FdAction) -> Result<(), c_int> {
    // Every open fd is below the fd table's size, whatever the soft limit
    // (an fd opened before the limit was lowered included): poll that
    // range when the table is small, else list /proc/self/fd.
    if let Some(size) = fd_table_size()
        && close_vault_fds_by_poll(st, size, action)
    {
        return Ok(());
    }
    close_vault_fds_by_listing(st, action)
}

/// [`close_vault_fds`] by listing `/proc/self/fd`. Out of line, like every
/// buffer the poll path does not need: a harness child's stack pages are
/// copy-on-write, one page fault each written.
#[inline(never)]
fn close_vault_fds_by_listing(st: &State, action: FdAction) -> Result<(), c_int> {
    if action == FdAction::CloseOnExec {
        // Marking does not change the listing: one pass sees every fd.
        return list_vault_fds(st, &mut |fd| act(fd, action));
    }
    // Each pass closes up to 64 (collected first: closing while listing
    // could skip entries); repeat while a pass found a full batch.
    for _ in 0..256 {
        let mut victims = [-1 as c_int; 64];
        let mut nv = 0;
        list_vault_fds(st, &mut |fd| {
            if nv < victims.len() {
                victims[nv] = fd;
                nv += 1;
            }
        })?;
        for &fd in &victims[..nv] {
            sys::close(fd);
        }
        if nv < victims.len() {
            return Ok(());
        }
    }
    Err(libc::EMFILE) // more than 16,384 vault fds
}

/// The largest fd table worth polling: for a table up to this size,
/// [`close_vault_fds`] asks `poll(2)` which numbers in it are open instead
/// of listing `/proc/self/fd` (which costs a fresh child tens of
/// microseconds: procfs builds an entry per fd).
const POLL_LIMIT: c_uint = 4096;

/// The size of this process's fd table, rounded up to a power of two from
/// 64 (the smallest table; a table grows to multiples of 128), when it is
/// at most [`POLL_LIMIT`]: every open fd is below it. A harness's child
/// has a small table whatever its fd limit (Kubernetes's 1,048,576
/// included), so it polls 64 or 128 numbers, not the limit's 1,024 (10 µs
/// of `poll` alone here, bench/RESULTS.md run 10). One or two system calls
/// per size tried ([`sys::fd_within_table`]).
fn fd_table_size() -> Option<c_uint> {
    let mut size: c_uint = 64;
    while size <= POLL_LIMIT {
        if !sys::fd_within_table(size) {
            return Some(size);
        }
        size *= 2;
    }
    None
}

/// Check the fd `fd` (open, `s` its `fstat`): a vault file or directory.
fn is_vault_fd(st: &State, fd: c_int) -> bool {
    let mut buf = MaybeUninit::uninit();
    let Ok(s) = sys::fstat(fd, &mut buf) else {
        return false; // closed meanwhile
    };
    // Only a file (read or written through the fd) or a directory (listed
    // through it) can give the vault away; pipes, sockets, terminals and
    // the like are left alone.
    let t = s.st_mode & libc::S_IFMT;
    (t == libc::S_IFREG || t == libc::S_IFDIR) && check_stat(st, fd, s, false).is_some()
}

/// [`close_vault_fds`] by `poll(2)`, for fds below `limit`. False when
/// `poll` is refused (seccomp, say): then list `/proc/self/fd`.
fn close_vault_fds_by_poll(st: &State, limit: c_uint, action: FdAction) -> bool {
    // A batch of 512 bytes for the smallest table (a harness child's
    // usual), 4 KiB for the rest: this runs in a child of the harness on
    // the stack of whichever harness thread forked, which may be small,
    // and every stack page written there is a page fault (a frame's stack
    // probes write each page it spans, used or not).
    if limit <= 64 {
        poll_vault_fds::<64>(st, limit, action)
    } else {
        poll_vault_fds::<512>(st, limit, action)
    }
}

/// [`close_vault_fds_by_poll`] in batches of `BATCH` fds.
#[inline(never)]
fn poll_vault_fds<const BATCH: usize>(st: &State, limit: c_uint, action: FdAction) -> bool {
    let mut fds = [const { MaybeUninit::<libc::pollfd>::uninit() }; BATCH];
    let mut base: c_uint = 0;
    while base < limit {
        let n = (limit - base).min(BATCH as c_uint) as usize;
        for (i, p) in fds[..n].iter_mut().enumerate() {
            p.write(libc::pollfd {
                fd: (base as usize + i) as c_int,
                events: 0,
                revents: 0,
            });
        }
        // SAFETY: the first `n` entries were written just above;
        // MaybeUninit<pollfd> has pollfd's layout.
        let used =
            unsafe { core::slice::from_raw_parts_mut(fds.as_mut_ptr().cast::<libc::pollfd>(), n) };
        if sys::poll_now(used) < 0 {
            return false;
        }
        for p in used.iter() {
            if p.revents & libc::POLLNVAL == 0 && is_vault_fd(st, p.fd) {
                act(p.fd, action);
            }
        }
        base += n as c_uint;
    }
    true
}

/// Call `f` with every fd in `/proc/self/fd` that is a vault file or
/// directory. `Err(errno)` when the listing cannot be made or read to its
/// end.
fn list_vault_fds(st: &State, f: &mut dyn FnMut(c_int)) -> Result<(), c_int> {
    let dfd = sys::openat(
        libc::AT_FDCWD,
        b"/proc/self/fd\0",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    );
    if dfd < 0 {
        return Err(-dfd);
    }
    // A small buffer: this runs in a forked child, where every stack page
    // written is a copy-on-write fault.
    let mut buf = [0u8; 2048];
    let res = loop {
        let n = sys::getdents64(dfd, &mut buf);
        if n < 0 {
            break Err((-n) as c_int);
        }
        if n == 0 {
            break Ok(());
        }
        for name in sys::dirents(&buf[..n as usize]) {
            let Some(fd) = parse_fd(&name[..name.len() - 1]) else {
                continue;
            };
            if fd != dfd && is_vault_fd(st, fd) {
                f(fd);
            }
        }
    };
    sys::close(dfd);
    res
}

fn parse_fd(name: &[u8]) -> Option<c_int> {
    if name.is_empty() || name.len() > 9 {
        return None;
    }
    let mut v: c_int = 0;
    for &b in name {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as c_int;
    }
    Some(v)
}
