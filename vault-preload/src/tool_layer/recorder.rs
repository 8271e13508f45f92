//! What a built ruleset depends on, so that the harness's cached ruleset
//! ([`super::cache`]) can be re-validated with a few `stat`s instead of
//! walking again.
//!
//! Its own module because it is the cache's correctness argument: a
//! ruleset is reused only when every directory the walk listed has the same
//! identity and mtime (no entry added, removed or renamed) and every base
//! rule path has the same identity.

use crate::sys;

/// Records what a built ruleset depends on: each listed directory (identity
/// and mtime: an entry added, removed or renamed changes it) and each base
/// rule path (identity). Fixed capacity; overflow means "do not cache".
pub struct Recorder {
    arena: [u8; 16384],
    used: usize,
    entries: [Dep; 64],
    n: usize,
    /// Set when a dependency could not be recorded: do not cache.
    pub(super) overflow: bool,
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

    pub(super) fn record(&mut self, path: &[u8], s: &libc::stat, listed: bool) {
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
    pub(super) fn still_valid(&self) -> bool {
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
                let mut s = core::mem::MaybeUninit::uninit();
                sys::fstatat(libc::AT_FDCWD, p, 0, &mut s).is_some_and(|s| {
                    s.st_dev == d.dev
                        && s.st_ino == d.ino
                        && d.mtime.is_none_or(|m| m == (s.st_mtime, s.st_mtime_nsec))
                })
            })
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}
