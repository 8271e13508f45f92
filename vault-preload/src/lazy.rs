//! A value built on first use, in place in a static: the process state
//! ([`crate::state::get`]) and the vault identities it gives only to the
//! hooks that need them ([`crate::state::State::identities`]).
//!
//! A module of its own because it is the preload's one initialisation
//! protocol, and it must hold where a `Once` does not: no allocation, no
//! lock a fork can leave held (a fork during a build leaves the child
//! without the building thread: the child takes over), and a re-entry by
//! the building thread (a hook called while building) gets `None`, which
//! callers treat as "deny", instead of a deadlock.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicI64, AtomicPtr, Ordering};

use crate::sys;

/// A `T` built once, on first [`Lazy::get`], by the first caller.
pub struct Lazy<T> {
    slot: UnsafeCell<MaybeUninit<T>>,
    /// Null until the value is fully written; then `slot`, never again null.
    ptr: AtomicPtr<T>,
    /// 0: nobody is building; > 0: the tid of the thread building it.
    builder: AtomicI64,
}

// SAFETY: `slot` is written only by the thread that holds `builder`, before
// `ptr` is published (Release); it is read only through the published
// pointer (Acquire), and never written after publication.
unsafe impl<T> Sync for Lazy<T> {}

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy::new()
    }
}

impl<T> Lazy<T> {
    pub const fn new() -> Lazy<T> {
        Lazy {
            slot: UnsafeCell::new(MaybeUninit::uninit()),
            ptr: AtomicPtr::new(core::ptr::null_mut()),
            builder: AtomicI64::new(0),
        }
    }

    /// The value, built by `build` on first use. `build` gets the
    /// uninitialised slot and must initialise every field of it; it runs
    /// while this thread holds the builder role, so it may use other
    /// statics that only this build touches. `None` only when called again
    /// by the thread that is building it (re-entry): callers fail closed.
    #[inline]
    pub fn get(&'static self, build: impl FnOnce(*mut T)) -> Option<&'static T> {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null `ptr` points to `slot`, fully written
            // before publication and never written again.
            return Some(unsafe { &*p });
        }
        self.slow_get(build)
    }

    #[cold]
    fn slow_get(&'static self, build: impl FnOnce(*mut T)) -> Option<&'static T> {
        let me = i64::from(sys::gettid());
        let mut build = Some(build);
        loop {
            let p = self.ptr.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: as in `get`.
                return Some(unsafe { &*p });
            }
            match self
                .builder
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let slot = self.slot.get().cast::<T>();
                    // Taken once: this thread returns right after.
                    if let Some(b) = build.take() {
                        b(slot);
                    }
                    self.ptr.store(slot, Ordering::Release);
                    // SAFETY: just written by `build` and published.
                    return Some(unsafe { &*slot });
                }
                Err(owner) if owner == me => return None,
                Err(owner) => {
                    // Is the builder still a thread of this process? After a
                    // fork during initialisation it is not: take over.
                    if !sys::thread_exists(owner as i32) {
                        let _ = self.builder.compare_exchange(
                            owner,
                            0,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    } else {
                        // SAFETY: sched_yield has no arguments.
                        unsafe { libc::sched_yield() };
                    }
                }
            }
        }
    }
}
