//! The next definition of an interposed libc symbol, via `dlsym(RTLD_NEXT)`.
//!
//! Resolved lazily and lock-free: the first caller looks it up and caches it
//! in an `AtomicPtr` (a benign race: every thread stores the same value). A
//! symbol that must exist and does not aborts the process (fail closed: a
//! hook that cannot reach the real function must not pretend to succeed).
//!
//! **Before a fork.** A lookup made in a forked child is lost with the
//! child, and it is the dearest place to make one: `dlsym` writes the
//! dynamic loader's state and a deep stack, so a child pays about 10
//! copy-on-write page faults and 25 µs for it (bench/RESULTS.md, run 10).
//! The functions a child calls between `fork` and `exec` (`BEFORE_EXEC`:
//! `execvpe` behind `execvp`, the `open` family for a shell's redirections)
//! are therefore resolved in the parent, once, by [`resolve_before_fork`]
//! (the constructor's `pthread_atfork` handler and the `vfork` hook).

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A looked-up symbol: null until looked up, then its address, or
/// `MISSING` when it does not exist (so a missing one is looked up once,
/// not at every call).
pub struct Real {
    ptr: AtomicPtr<c_void>,
    /// NUL-terminated.
    name: &'static [u8],
}

/// "Looked up, not there": never a function's address (a dangling pointer
/// is 1 for `c_void`, in the first page, which is never mapped).
const MISSING: *mut c_void = core::ptr::dangling_mut::<c_void>();

impl Real {
    /// `name` must end with a NUL.
    pub const fn new(name: &'static [u8]) -> Real {
        Real {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
            name,
        }
    }

    /// The next definition's address, or null when there is none.
    #[inline]
    pub fn get(&self) -> *mut c_void {
        let p = self.ptr.load(Ordering::Acquire);
        if p == MISSING {
            return core::ptr::null_mut();
        }
        if !p.is_null() {
            return p;
        }
        self.look_up()
    }

    #[cold]
    fn look_up(&self) -> *mut c_void {
        debug_assert!(self.name.last() == Some(&0));
        // SAFETY: `name` is a static NUL-terminated string; dlsym with
        // RTLD_NEXT does not keep the pointer.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr().cast()) };
        self.ptr
            .store(if p.is_null() { MISSING } else { p }, Ordering::Release);
        p
    }

    /// The name, without its NUL.
    pub fn name(&self) -> &'static [u8] {
        &self.name[..self.name.len() - 1]
    }
}

/// `execvpe`: `execvp` and `execvpe` reach it (the `PATH` search is libc's).
pub static EXECVPE: Real = Real::new(b"execvpe\0");
pub static OPEN: Real = Real::new(b"open\0");
pub static OPEN64: Real = Real::new(b"open64\0");
pub static OPENAT: Real = Real::new(b"openat\0");
pub static OPENAT64: Real = Real::new(b"openat64\0");

/// What a forked child calls before it execs, resolved in the parent.
static BEFORE_EXEC: [&Real; 5] = [&EXECVPE, &OPEN, &OPEN64, &OPENAT, &OPENAT64];

/// Look up `BEFORE_EXEC` now (in the parent, before a fork or vfork): a
/// few atomic loads once they are known.
pub fn resolve_before_fork() {
    for r in BEFORE_EXEC {
        r.get();
    }
}

/// The real function behind `$slot` (a [`Real`]), or a per-call-site
/// symbol `$name`, as a function pointer of type `$ty`; aborts when missing.
macro_rules! real {
    (static $slot:expr, $ty:ty) => {{
        let slot: &'static $crate::real::Real = &$slot;
        let p = slot.get();
        if p.is_null() {
            $crate::real::missing(slot.name())
        }
        // SAFETY: `p` is the non-null address of the libc function named
        // by the slot, whose C signature is `$ty`; function and data
        // pointers have the same size on every Linux target.
        unsafe { core::mem::transmute::<*mut core::ffi::c_void, $ty>(p) }
    }};
    ($name:literal, $ty:ty) => {{
        static SLOT: $crate::real::Real = $crate::real::Real::new(concat!($name, "\0").as_bytes());
        $crate::real::real!(static SLOT, $ty)
    }};
}

/// Like [`real!`] but `None` when the symbol does not exist (for `openat2`,
/// `execveat`: callers fall back to the raw system call).
macro_rules! real_opt {
    ($name:literal, $ty:ty) => {{
        static SLOT: $crate::real::Real = $crate::real::Real::new(concat!($name, "\0").as_bytes());
        let p = SLOT.get();
        if p.is_null() {
            None
        } else {
            // SAFETY: as in `real!`.
            Some(unsafe { core::mem::transmute::<*mut core::ffi::c_void, $ty>(p) })
        }
    }};
}

pub(crate) use {real, real_opt};

/// A required libc symbol is missing: say which, then abort.
#[cold]
pub fn missing(name: &[u8]) -> ! {
    crate::sys::write_all(2, b"agent-vault: libc symbol not found: ");
    crate::sys::write_all(2, name);
    crate::sys::write_all(2, b"\n");
    // SAFETY: abort takes no arguments and never returns.
    unsafe { libc::abort() }
}
