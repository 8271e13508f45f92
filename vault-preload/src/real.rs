//! The next definition of an interposed libc symbol, via `dlsym(RTLD_NEXT)`.
//!
//! Resolved lazily and lock-free: the first caller looks it up and caches it
//! in an `AtomicPtr` (a benign race: every thread stores the same value). A
//! symbol that must exist and does not aborts the process (fail closed: a
//! hook that cannot reach the real function must not pretend to succeed).

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Look up `name` (NUL-terminated) with `RTLD_NEXT`, caching in `slot`.
/// Returns null when the symbol does not exist.
pub fn lookup(slot: &AtomicPtr<c_void>, name: &'static [u8]) -> *mut c_void {
    let p = slot.load(Ordering::Acquire);
    if !p.is_null() {
        return p;
    }
    debug_assert!(name.last() == Some(&0));
    // SAFETY: `name` is a static NUL-terminated string; dlsym with
    // RTLD_NEXT does not keep the pointer.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if !p.is_null() {
        slot.store(p, Ordering::Release);
    }
    p
}

/// The real function `$name` as a function pointer of type `$ty`; aborts when missing.
macro_rules! real {
    ($name:literal, $ty:ty) => {{
        static SLOT: core::sync::atomic::AtomicPtr<core::ffi::c_void> =
            core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
        let p = $crate::real::lookup(&SLOT, concat!($name, "\0").as_bytes());
        if p.is_null() {
            $crate::real::missing($name.as_bytes())
        }
        // SAFETY: `p` is the non-null address of the libc function `$name`,
        // whose C signature is `$ty`; function and data pointers have the
        // same size on every Linux target.
        unsafe { core::mem::transmute::<*mut core::ffi::c_void, $ty>(p) }
    }};
}

/// Like [`real!`] but `None` when the symbol does not exist (for `openat2`,
/// `execveat`: callers fall back to the raw system call).
macro_rules! real_opt {
    ($name:literal, $ty:ty) => {{
        static SLOT: core::sync::atomic::AtomicPtr<core::ffi::c_void> =
            core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
        let p = $crate::real::lookup(&SLOT, concat!($name, "\0").as_bytes());
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
