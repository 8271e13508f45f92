//! Files already found outside the vault, for the open checks without
//! Landlock (`landlock = "off"`, or a kernel without it).
//!
//! There, every open of a file on a device that hosts a vault entry costs a
//! `readlink` of `/proc/self/fd/N` to learn where the file is. This cache
//! remembers, per process, the files whose real path was found outside the
//! vault, keyed by `(dev, ino)` and the inode's change time (`ctime`).
//!
//! Why a hit is safe: a file's path changes only by a rename or link of the
//! file (which sets its `ctime`) or by a rename of a directory above it
//! (which does not). In the second case the file's content and metadata are
//! what they were when this process read the file outside the vault (a
//! write sets `ctime` too), so a hit gives away nothing this process did not
//! already have. With coarse timestamps a rename and a write in the same
//! clock tick as the check could go unseen; this mode is the preload's
//! best effort in any case (a static binary bypasses it), and Landlock, when
//! present, does not use this cache at all.
//!
//! Lock-free and fork-safe: a direct-mapped table of slots, each behind its
//! own sequence number (odd while written). A reader that sees an odd or
//! changed number treats the slot as empty; a writer that finds a slot being
//! written (another thread, or a fork in the middle of a write) leaves it.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const SLOTS: usize = 64;

struct Slot {
    seq: AtomicU32,
    dev: AtomicU64,
    ino: AtomicU64,
    ctime_sec: AtomicU64,
    ctime_nsec: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // a template for the array below
const EMPTY: Slot = Slot {
    seq: AtomicU32::new(0),
    dev: AtomicU64::new(0),
    ino: AtomicU64::new(0),
    ctime_sec: AtomicU64::new(0),
    ctime_nsec: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// The key of a file: identity and change time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub dev: u64,
    pub ino: u64,
    pub ctime_sec: u64,
    pub ctime_nsec: u64,
}

impl Key {
    pub fn of(s: &libc::stat) -> Key {
        Key {
            dev: s.st_dev,
            ino: s.st_ino,
            ctime_sec: s.st_ctime as u64,
            ctime_nsec: s.st_ctime_nsec as u64,
        }
    }

    fn slot(&self) -> &'static Slot {
        let h = self.dev.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.ino;
        &TABLE[(h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SLOTS]
    }
}

/// This exact file (same inode, same change time) was found outside the vault.
pub fn known(k: Key) -> bool {
    let s = k.slot();
    let v1 = s.seq.load(Ordering::Acquire);
    if v1 == 0 || v1 % 2 == 1 {
        return false;
    }
    let got = Key {
        dev: s.dev.load(Ordering::Acquire),
        ino: s.ino.load(Ordering::Acquire),
        ctime_sec: s.ctime_sec.load(Ordering::Acquire),
        ctime_nsec: s.ctime_nsec.load(Ordering::Acquire),
    };
    s.seq.load(Ordering::Acquire) == v1 && got == k
}

/// Remember that this file was found outside the vault.
pub fn remember(k: Key) {
    let s = k.slot();
    let v = s.seq.load(Ordering::Acquire);
    if v % 2 == 1
        || s.seq
            .compare_exchange(v, v.wrapping_add(1), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return; // being written: leave it
    }
    s.dev.store(k.dev, Ordering::Release);
    s.ino.store(k.ino, Ordering::Release);
    s.ctime_sec.store(k.ctime_sec, Ordering::Release);
    s.ctime_nsec.store(k.ctime_nsec, Ordering::Release);
    // Never back to 0 (0 means "never written").
    let next = v.wrapping_add(2);
    s.seq
        .store(if next == 0 { 2 } else { next }, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(ino: u64, ctime: u64) -> Key {
        Key {
            dev: 7,
            ino,
            ctime_sec: ctime,
            ctime_nsec: 5,
        }
    }

    #[test]
    fn a_changed_inode_is_not_known() {
        assert!(!known(k(1000, 1)));
        remember(k(1000, 1));
        assert!(known(k(1000, 1)));
        assert!(!known(k(1000, 2)), "ctime changed: check again");
        assert!(!known(k(1001, 1)));
    }

    #[test]
    fn a_slot_being_written_reads_as_empty() {
        let key = k(2000, 1);
        remember(key);
        let s = key.slot();
        let v = s.seq.load(Ordering::Acquire);
        s.seq.store(v + 1, Ordering::Release); // a writer stopped mid-way (a fork)
        assert!(!known(key));
        remember(key); // leaves the slot alone
        assert!(!known(key));
        s.seq.store(v, Ordering::Release);
        assert!(known(key));
    }
}
