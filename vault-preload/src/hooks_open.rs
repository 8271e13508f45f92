//! The open family. In a tool: pre-check, real call, post-check (see
//! [`crate::guard`]); a denial returns `EACCES` (`NULL` + `errno` for the
//! `FILE*` calls) and writes an audit record. In the harness (and in a
//! privileged process) the real function is called directly.
//!
//! The variadic `mode` argument is declared as a fixed third `mode_t`
//! (stable Rust cannot define C-variadic functions; on x86_64 and aarch64 it
//! arrives in the same register) and forwarded only with `O_CREAT` or
//! `O_TMPFILE`.
//!
//! Fast path: no allocation, no lock. Under the tool layer (the usual case,
//! [`state::State::light`]): a lexical match of the path as given, no system
//! call; the kernel refuses the rest and a refusal is audited on the error
//! path. Without it: also the checks' `fstat` and, on a device that hosts a
//! vault entry, one `readlink` of `/proc/self/fd/N`.

use crate::real::{real, real_opt};
use crate::{audit, guard, state, sys};
use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use libc::{FILE, mode_t};

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type OpenAtFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
type Open2Fn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type OpenAt2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type CreatFn = unsafe extern "C" fn(*const c_char, mode_t) -> c_int;
type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;
type FreopenFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut FILE) -> *mut FILE;
type FcloseFn = unsafe extern "C" fn(*mut FILE) -> c_int;
type Openat2SysFn = unsafe extern "C" fn(c_int, *const c_char, *mut c_void, usize) -> c_long;

#[inline]
fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

/// Deny: errno = EACCES, audit record; returns -1.
#[cold]
fn deny(st: &state::State, path: &[u8], rule: guard::EntryId, op: &[u8]) -> c_int {
    audit::deny(st, path, rule, op);
    sys::set_errno(libc::EACCES);
    -1
}

/// The common open path for fd-returning calls.
///
/// # Safety
/// `path` is null or a valid C string; `call` performs the real open.
#[inline(always)]
unsafe fn guarded_fd(
    op: &'static [u8],
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    let Some(st) = state::get() else {
        sys::set_errno(libc::EACCES); // re-entered during initialisation: fail closed
        return -1;
    };
    if !st.guarded() || path.is_null() {
        return call();
    }
    // SAFETY: non-null and a C string by the caller's contract.
    let p = unsafe { sys::cstr_bytes(path) };
    if st.light() {
        if let Some(rule) = guard::lexical(st, p) {
            return deny(st, p, rule, op);
        }
        let fd = call();
        if fd < 0 {
            audit_kernel_denial(st, dirfd, p, flags, op);
        }
        return fd;
    }
    if let Some(rule) = guard::pre_open(st, dirfd, p, flags, false) {
        return deny(st, p, rule, op);
    }
    let fd = call();
    if fd >= 0 {
        let checked = if guard::writeish(flags) {
            guard::check_fd(st, fd)
        } else {
            guard::check_fd_read(st, fd)
        };
        if let Some(rule) = checked {
            sys::close(fd);
            return deny(st, p, rule, op);
        }
    } else {
        audit_kernel_denial(st, dirfd, p, flags, op);
    }
    fd
}

/// The real call failed. When the kernel (the tool layer) refused a vault
/// entry, record it too: the slow path only, `errno` preserved.
#[cold]
fn audit_kernel_denial(st: &state::State, dirfd: c_int, p: &[u8], flags: c_int, op: &[u8]) {
    let e = sys::errno();
    if e == libc::EACCES || e == libc::EPERM {
        if let Some(rule) = guard::pre_open(st, dirfd, p, flags, true) {
            audit::deny_by_kernel(st, p, rule, op);
        }
        sys::set_errno(e);
    }
}

macro_rules! open_hook {
    ($name:ident, $sym:literal, $slot:path) => {
        /// Interposed; see the module documentation.
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
            let f = real!(static $slot, OpenFn);
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe {
                guarded_fd($sym.as_bytes(), libc::AT_FDCWD, path, flags, || {
                    if needs_mode(flags) {
                        f(path, flags, mode as c_uint)
                    } else {
                        f(path, flags)
                    }
                })
            }
        }
    };
}

macro_rules! openat_hook {
    ($name:ident, $sym:literal, $slot:path) => {
        /// Interposed; see the module documentation.
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            dirfd: c_int,
            path: *const c_char,
            flags: c_int,
            mode: mode_t,
        ) -> c_int {
            let f = real!(static $slot, OpenAtFn);
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe {
                guarded_fd($sym.as_bytes(), dirfd, path, flags, || {
                    if needs_mode(flags) {
                        f(dirfd, path, flags, mode as c_uint)
                    } else {
                        f(dirfd, path, flags)
                    }
                })
            }
        }
    };
}

macro_rules! open2_hook {
    ($name:ident, $sym:literal) => {
        /// Interposed (the `_FORTIFY_SOURCE` entry point).
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int) -> c_int {
            let f = real!($sym, Open2Fn);
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe {
                guarded_fd($sym.as_bytes(), libc::AT_FDCWD, path, flags, || {
                    f(path, flags)
                })
            }
        }
    };
}

macro_rules! openat2_fortify_hook {
    ($name:ident, $sym:literal) => {
        /// Interposed (the `_FORTIFY_SOURCE` entry point).
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
            let f = real!($sym, OpenAt2Fn);
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe {
                guarded_fd($sym.as_bytes(), dirfd, path, flags, || {
                    f(dirfd, path, flags)
                })
            }
        }
    };
}

macro_rules! creat_hook {
    ($name:ident, $sym:literal) => {
        /// Interposed; `creat` is `open(O_CREAT|O_WRONLY|O_TRUNC)`.
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: mode_t) -> c_int {
            let f = real!($sym, CreatFn);
            let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
            // SAFETY: arguments forwarded unchanged from our caller.
            unsafe {
                guarded_fd($sym.as_bytes(), libc::AT_FDCWD, path, flags, || {
                    f(path, mode)
                })
            }
        }
    };
}

// Resolved before a fork (`crate::real::BEFORE_EXEC`): a forked shell
// opens its redirections with these.
open_hook!(open, "open", crate::real::OPEN);
open_hook!(open64, "open64", crate::real::OPEN64);
openat_hook!(openat, "openat", crate::real::OPENAT);
openat_hook!(openat64, "openat64", crate::real::OPENAT64);
open2_hook!(__open_2, "__open_2");
open2_hook!(__open64_2, "__open64_2");
openat2_fortify_hook!(__openat_2, "__openat_2");
openat2_fortify_hook!(__openat64_2, "__openat64_2");
creat_hook!(creat, "creat");
creat_hook!(creat64, "creat64");

/// `openat2(2)`: glibc 2.36 has no wrapper; the raw system call is used when
/// `dlsym` finds none.
///
/// # Safety
/// `how` points to `size` readable bytes (a `struct open_how`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat2(
    dirfd: c_int,
    path: *const c_char,
    how: *mut c_void,
    size: usize,
) -> c_long {
    let flags = if how.is_null() || size < 8 {
        0
    } else {
        // SAFETY: `how` points to at least 8 readable bytes; `flags` is the
        // first u64 of `struct open_how`.
        unsafe { core::ptr::read_unaligned(how as *const u64) as c_int }
    };
    let real = real_opt!("openat2", Openat2SysFn);
    let call = || -> c_int {
        match real {
            // SAFETY: arguments forwarded unchanged from our caller.
            Some(f) => unsafe { f(dirfd, path, how, size) as c_int },
            None => {
                // SAFETY: arguments forwarded unchanged from our caller.
                let r = unsafe { sys::openat2(dirfd, path, how, size) };
                if r < 0 {
                    sys::set_errno((-r) as c_int);
                    -1
                } else {
                    r as c_int
                }
            }
        }
    };
    // SAFETY: `path` is the caller's C string.
    unsafe { guarded_fd(b"openat2", dirfd, path, flags, call) as c_long }
}

/// The open flags a `fopen` mode string means.
///
/// # Safety
/// `mode` is null or a valid C string.
unsafe fn fopen_flags(mode: *const c_char) -> c_int {
    if mode.is_null() {
        return libc::O_RDONLY;
    }
    // SAFETY: the caller's C string.
    let m = unsafe { sys::cstr_bytes(mode) };
    let plus = m.contains(&b'+');
    match m.first() {
        Some(b'w') => {
            libc::O_CREAT | libc::O_TRUNC | if plus { libc::O_RDWR } else { libc::O_WRONLY }
        }
        Some(b'a') => {
            libc::O_CREAT | libc::O_APPEND | if plus { libc::O_RDWR } else { libc::O_WRONLY }
        }
        _ if plus => libc::O_RDWR,
        _ => libc::O_RDONLY,
    }
}

/// The common path of `fopen` and `freopen`.
///
/// # Safety
/// `path` is null or a valid C string; `call` performs the real call.
#[inline(always)]
unsafe fn guarded_file(
    op: &'static [u8],
    path: *const c_char,
    mode: *const c_char,
    call: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    let Some(st) = state::get() else {
        sys::set_errno(libc::EACCES);
        return core::ptr::null_mut();
    };
    if !st.guarded() || path.is_null() {
        return call();
    }
    // SAFETY: `path` is non-null here and a C string, alive for the call
    // (the caller's contract).
    let p = unsafe { sys::cstr_bytes(path) };
    // SAFETY: `mode` is null or a C string, alive for the call (the caller's
    // contract).
    let flags = unsafe { fopen_flags(mode) };
    let light = st.light();
    let pre = if light {
        guard::lexical(st, p)
    } else {
        guard::pre_open(st, libc::AT_FDCWD, p, flags, false)
    };
    if let Some(rule) = pre {
        deny(st, p, rule, op);
        return core::ptr::null_mut();
    }
    let f = call();
    if f.is_null() {
        audit_kernel_denial(st, libc::AT_FDCWD, p, flags, op);
        return f;
    }
    if light {
        return f;
    }
    // SAFETY: `f` is the valid FILE the real call just returned.
    let fd = unsafe { libc::fileno(f) };
    let checked = if guard::writeish(flags) {
        guard::check_fd(st, fd)
    } else {
        guard::check_fd_read(st, fd)
    };
    if let Some(rule) = checked {
        let fclose = real!("fclose", FcloseFn);
        // SAFETY: `f` is ours to close (just opened, never returned).
        unsafe { fclose(f) };
        deny(st, p, rule, op);
        return core::ptr::null_mut();
    }
    f
}

macro_rules! fopen_hook {
    ($name:ident, $sym:literal) => {
        /// Interposed; see the module documentation.
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: *const c_char) -> *mut FILE {
            let f = real!($sym, FopenFn);
            // SAFETY: arguments forwarded unchanged.
            unsafe { guarded_file($sym.as_bytes(), path, mode, || f(path, mode)) }
        }
    };
}

macro_rules! freopen_hook {
    ($name:ident, $sym:literal) => {
        /// Interposed; a denial leaves `stream` closed (as a failed freopen does).
        ///
        /// # Safety
        /// C contract of the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            path: *const c_char,
            mode: *const c_char,
            stream: *mut FILE,
        ) -> *mut FILE {
            let f = real!($sym, FreopenFn);
            let Some(st) = state::get() else {
                sys::set_errno(libc::EACCES);
                return core::ptr::null_mut();
            };
            if st.guarded() && !path.is_null() {
                // SAFETY: non-null C strings by the caller's contract.
                let (p, flags) = unsafe { (sys::cstr_bytes(path), fopen_flags(mode)) };
                if let Some(rule) = guard::pre_open(st, libc::AT_FDCWD, p, flags, false) {
                    let fclose = real!("fclose", FcloseFn);
                    // SAFETY: freopen closes `stream` whatever happens; so do we.
                    unsafe { fclose(stream) };
                    deny(st, p, rule, $sym.as_bytes());
                    return core::ptr::null_mut();
                }
            }
            // SAFETY: arguments forwarded unchanged.
            unsafe { guarded_file($sym.as_bytes(), path, mode, || f(path, mode, stream)) }
        }
    };
}

fopen_hook!(fopen, "fopen");
fopen_hook!(fopen64, "fopen64");
freopen_hook!(freopen, "freopen");
freopen_hook!(freopen64, "freopen64");

/// Vet the path of a `posix_spawn` file action when it is registered: the
/// child opens it through glibc's internal `__open_nocancel`, which no hook
/// sees. Denied: returns `EACCES` (this call returns its errno).
///
/// # Safety
/// C contract of `posix_spawn_file_actions_addopen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn_file_actions_addopen(
    fa: *mut libc::posix_spawn_file_actions_t,
    fd: c_int,
    path: *const c_char,
    oflag: c_int,
    mode: mode_t,
) -> c_int {
    type F = unsafe extern "C" fn(
        *mut libc::posix_spawn_file_actions_t,
        c_int,
        *const c_char,
        c_int,
        mode_t,
    ) -> c_int;
    let f = real!("posix_spawn_file_actions_addopen", F);
    let Some(st) = state::get() else {
        return libc::EACCES;
    };
    if st.guarded() && !path.is_null() {
        // SAFETY: the caller's C string.
        let p = unsafe { sys::cstr_bytes(path) };
        if let Some(rule) = guard::pre_open(st, libc::AT_FDCWD, p, oflag, true) {
            audit::deny(st, p, rule, b"posix_spawn_file_actions_addopen");
            return libc::EACCES;
        }
    }
    // SAFETY: arguments forwarded unchanged.
    unsafe { f(fa, fd, path, oflag, mode) }
}
