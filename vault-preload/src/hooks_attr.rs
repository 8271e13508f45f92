//! The attribute family: chmod, chown, utimes and extended attributes.
//!
//! Why: Landlock has no access right for any of them (nor does it need one
//! to reach a file it may not open), and a tool runs as the harness user,
//! who owns the vault. Without these hooks `chmod 000 /pi-agent` breaks the
//! harness for this session and every later one, and `setfattr` or `touch
//! -d` alters its files. In a tool (a guarded process) each call is checked
//! like a write open ([`guard::pre_open`]: the path as given, then the file
//! it resolves to, by identity and real path; the `l*` calls and
//! `AT_SYMLINK_NOFOLLOW` check the link itself) or, for the `f*` calls, by
//! the fd's identity and real path ([`guard::check_fd`]); a vault entry is
//! refused with `EPERM` and an audit record. The harness calls the real
//! functions directly. Allocation-free, like the open hooks.
//!
//! A static tool makes these system calls without us, and the kernel has no
//! per-path rule for them: seccomp could only deny `fchmodat`, `fchownat`,
//! `utimensat`, `setxattr` … for every file, which breaks `git`, `cp -p`,
//! `tar`, `npm` and every build that sets an executable bit. So they stay
//! allowed, and agent-init gives the vault back to the harness user at
//! every start (`agent-init/src/seed/restore.rs`): the damage a static tool
//! can do lasts at most until the next start.

use crate::real::real;
use crate::{audit, guard, state, sys};
use core::ffi::{c_char, c_int, c_void};
use libc::{gid_t, mode_t, uid_t};
use policy_core::pathbuf::FixedPath;

/// Refuse: `errno = EPERM`, audit record; returns -1.
#[cold]
fn refuse(st: &state::State, path: &[u8], rule: guard::EntryId, op: &[u8]) -> c_int {
    audit::deny(st, path, rule, op);
    sys::set_errno(libc::EPERM);
    -1
}

/// The check of a call on `path` relative to `dirfd` (`path` null or empty
/// with `AT_EMPTY_PATH`: the file `dirfd` refers to). `Some(-1)` (errno
/// set, audited) when it names a vault entry; `None`: make the real call.
///
/// # Safety
/// `path` is null or a valid C string for the call.
unsafe fn check_at(
    op: &'static [u8],
    dirfd: c_int,
    path: *const c_char,
    nofollow: bool,
    empty_path: bool,
) -> Option<c_int> {
    let Some(st) = state::get() else {
        sys::set_errno(libc::EPERM); // re-entered during initialisation: fail closed
        return Some(-1);
    };
    if !st.guarded() {
        return None;
    }
    let p = if path.is_null() {
        &b""[..]
    } else {
        // SAFETY: non-null and a C string by the caller's contract.
        unsafe { sys::cstr_bytes(path) }
    };
    if p.is_empty() {
        if path.is_null() || empty_path {
            return check_fd_in(st, op, dirfd);
        }
        return None; // ENOENT from the real call
    }
    let flags = libc::O_WRONLY | if nofollow { libc::O_NOFOLLOW } else { 0 };
    guard::pre_open(st, dirfd, p, flags, true).map(|rule| refuse(st, p, rule, op))
}

/// The check of a call on the open file `fd`.
fn check_fd(op: &'static [u8], fd: c_int) -> Option<c_int> {
    let Some(st) = state::get() else {
        sys::set_errno(libc::EPERM);
        return Some(-1);
    };
    if !st.guarded() {
        return None;
    }
    check_fd_in(st, op, fd)
}

fn check_fd_in(st: &state::State, op: &'static [u8], fd: c_int) -> Option<c_int> {
    let rule = guard::check_fd(st, fd)?;
    let mut path = FixedPath::new();
    let shown = if guard::fd_path(fd, &mut path) {
        path.as_bytes()
    } else {
        &b""[..]
    };
    Some(refuse(st, shown, rule, op))
}

/// A hook on a path relative to the working directory.
macro_rules! path_hook {
    ($name:ident, $sym:literal, $nofollow:expr, ($($a:ident: $t:ty),*)) => {
        /// Interposed; see the module documentation.
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, $($a: $t),*) -> c_int {
            type F = unsafe extern "C" fn(*const c_char, $($t),*) -> c_int;
            // SAFETY: `path` is the caller's C string (or null), alive for the call.
            if let Some(r) = unsafe { check_at($sym.as_bytes(), libc::AT_FDCWD, path, $nofollow, false) } {
                return r;
            }
            let f = real!($sym, F);
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe { f(path, $($a),*) }
        }
    };
}

/// A hook on an open fd.
macro_rules! fd_hook {
    ($name:ident, $sym:literal, ($($a:ident: $t:ty),*)) => {
        /// Interposed; see the module documentation.
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(fd: c_int, $($a: $t),*) -> c_int {
            type F = unsafe extern "C" fn(c_int, $($t),*) -> c_int;
            if let Some(r) = check_fd($sym.as_bytes(), fd) {
                return r;
            }
            let f = real!($sym, F);
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe { f(fd, $($a),*) }
        }
    };
}

path_hook!(chmod, "chmod", false, (mode: mode_t));
path_hook!(lchmod, "lchmod", true, (mode: mode_t));
path_hook!(chown, "chown", false, (owner: uid_t, group: gid_t));
path_hook!(lchown, "lchown", true, (owner: uid_t, group: gid_t));
path_hook!(utime, "utime", false, (times: *const c_void));
path_hook!(utimes, "utimes", false, (times: *const c_void));
path_hook!(lutimes, "lutimes", true, (times: *const c_void));
path_hook!(setxattr, "setxattr", false, (name: *const c_char, value: *const c_void, size: usize, flags: c_int));
path_hook!(lsetxattr, "lsetxattr", true, (name: *const c_char, value: *const c_void, size: usize, flags: c_int));
path_hook!(removexattr, "removexattr", false, (name: *const c_char));
path_hook!(lremovexattr, "lremovexattr", true, (name: *const c_char));

fd_hook!(fchmod, "fchmod", (mode: mode_t));
fd_hook!(fchown, "fchown", (owner: uid_t, group: gid_t));
fd_hook!(futimens, "futimens", (times: *const c_void));
fd_hook!(futimes, "futimes", (times: *const c_void));
fd_hook!(fsetxattr, "fsetxattr", (name: *const c_char, value: *const c_void, size: usize, flags: c_int));
fd_hook!(fremovexattr, "fremovexattr", (name: *const c_char));

type FchmodatFn = unsafe extern "C" fn(c_int, *const c_char, mode_t, c_int) -> c_int;
type FchownatFn = unsafe extern "C" fn(c_int, *const c_char, uid_t, gid_t, c_int) -> c_int;
type UtimensatFn = unsafe extern "C" fn(c_int, *const c_char, *const c_void, c_int) -> c_int;
type FutimesatFn = unsafe extern "C" fn(c_int, *const c_char, *const c_void) -> c_int;

fn nofollow(flags: c_int) -> bool {
    flags & libc::AT_SYMLINK_NOFOLLOW != 0
}

fn empty_path(flags: c_int) -> bool {
    flags & libc::AT_EMPTY_PATH != 0
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `fchmodat`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchmodat(
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    flags: c_int,
) -> c_int {
    // SAFETY: `path` is the caller's C string, alive for the call.
    let checked = unsafe { check_at(b"fchmodat", dirfd, path, nofollow(flags), empty_path(flags)) };
    if let Some(r) = checked {
        return r;
    }
    let f = real!("fchmodat", FchmodatFn);
    // SAFETY: arguments forwarded unchanged from our caller.
    unsafe { f(dirfd, path, mode, flags) }
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `fchownat`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchownat(
    dirfd: c_int,
    path: *const c_char,
    owner: uid_t,
    group: gid_t,
    flags: c_int,
) -> c_int {
    // SAFETY: `path` is the caller's C string, alive for the call.
    let checked = unsafe { check_at(b"fchownat", dirfd, path, nofollow(flags), empty_path(flags)) };
    if let Some(r) = checked {
        return r;
    }
    let f = real!("fchownat", FchownatFn);
    // SAFETY: arguments forwarded unchanged from our caller.
    unsafe { f(dirfd, path, owner, group, flags) }
}

/// Interposed; see the module documentation. A null `path` changes the
/// file `dirfd` refers to.
///
/// # Safety
/// C contract of `utimensat`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn utimensat(
    dirfd: c_int,
    path: *const c_char,
    times: *const c_void,
    flags: c_int,
) -> c_int {
    // SAFETY: `path` is the caller's C string or null, alive for the call.
    let checked = unsafe {
        check_at(
            b"utimensat",
            dirfd,
            path,
            nofollow(flags),
            empty_path(flags),
        )
    };
    if let Some(r) = checked {
        return r;
    }
    let f = real!("utimensat", UtimensatFn);
    // SAFETY: arguments forwarded unchanged from our caller.
    unsafe { f(dirfd, path, times, flags) }
}

/// Interposed; see the module documentation. A null `path` changes the
/// file `dirfd` refers to.
///
/// # Safety
/// C contract of `futimesat`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn futimesat(
    dirfd: c_int,
    path: *const c_char,
    times: *const c_void,
) -> c_int {
    // SAFETY: `path` is the caller's C string or null, alive for the call.
    if let Some(r) = unsafe { check_at(b"futimesat", dirfd, path, false, false) } {
        return r;
    }
    let f = real!("futimesat", FutimesatFn);
    // SAFETY: arguments forwarded unchanged from our caller.
    unsafe { f(dirfd, path, times) }
}
