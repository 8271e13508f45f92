//! What a built ruleset depends on, so that the harness's cached ruleset
//! ([`super::cache`]) can be re-validated with a few `stat`s instead of
//! walking again.
//!
//! Its own module because it is the cache's correctness argument: a
//! ruleset is reused only when every directory the walk listed has the same
//! identity and mtime (no entry added, removed or renamed), every base
//! rule path has the same identity, and every base rule path that did not
//! exist (a policy's `/workspace` in a container without one, a
//! `tool_exceptions` directory not created yet) still does not: it got no
//! rule, so a ruleset that predates it grants less, never more, and it is
//! rebuilt once the path appears.

use crate::sys;

/// Records what a built ruleset depends on: each listed directory (identity
/// and mtime: an entry added, removed or renamed changes it), each base
/// rule path (identity) and each missing base rule path (still missing).
/// Fixed capacity; overflow means "do not cache".
pub struct Recorder {
    arena: [u8; 16384],
    used: usize,
    entries: [Dep; 64],
    n: usize,
    /// Set when a dependency could not be recorded: do not cache.
    pub(super) overflow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Dep {
    off: u32,
    len: u32,
    state: DepState,
}

/// What a dependency's `stat` must still say.
///
/// `Absent` comes first (tag 0): an empty [`Recorder`] (the cache's
/// static) is then all zero bytes and stays in `.bss`, instead of adding
/// 20 KiB of initialised data to the library's file.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum DepState {
    /// A base rule path that did not exist: `stat` still fails with `ENOENT`.
    Absent,
    /// A listed directory: same identity, same mtime `(sec, nsec)`.
    Listed {
        dev: u64,
        ino: u64,
        mtime: (i64, i64),
    },
    /// A base rule path: same identity.
    Rule { dev: u64, ino: u64 },
}

impl Recorder {
    pub const fn new() -> Recorder {
        Recorder {
            arena: [0; 16384],
            used: 0,
            entries: [Dep {
                off: 0,
                len: 0,
                state: DepState::Absent,
            }; 64],
            n: 0,
            overflow: false,
        }
    }

    /// A listed directory (`listed`) or a base rule path, as `s` says it is.
    pub(super) fn record(&mut self, path: &[u8], s: &libc::stat, listed: bool) {
        let (dev, ino) = (s.st_dev, s.st_ino);
        let state = if listed {
            DepState::Listed {
                dev,
                ino,
                mtime: (s.st_mtime, s.st_mtime_nsec),
            }
        } else {
            DepState::Rule { dev, ino }
        };
        self.push(path, state);
    }

    /// A base rule path that does not exist (`ENOENT`).
    pub(super) fn record_absent(&mut self, path: &[u8]) {
        self.push(path, DepState::Absent);
    }

    fn push(&mut self, path: &[u8], state: DepState) {
        // The walk lists a directory once per base rule above it (`/` and
        // `~` both lead to `~/.claude`): one check per distinct dependency.
        if self.entries[..self.n]
            .iter()
            .any(|d| d.state == state && self.path_of(d) == Some(path))
        {
            return;
        }
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
            state,
        };
        self.n += 1;
        self.used += need;
    }

    /// A dependency's path, NUL-terminated; None when out of range (a torn
    /// read: a reader racing a writer, whose result the seqlock discards).
    fn path_nul(&self, d: &Dep) -> Option<&[u8]> {
        (d.off as usize)
            .checked_add(d.len as usize)
            .and_then(|end| self.arena.get(d.off as usize..end))
    }

    /// A dependency's path without its NUL.
    fn path_of(&self, d: &Dep) -> Option<&[u8]> {
        self.path_nul(d)
            .and_then(|p| p.split_last().map(|(_, p)| p))
    }

    /// Every dependency is unchanged.
    pub(super) fn still_valid(&self) -> bool {
        if self.overflow {
            return false;
        }
        self.entries[..self.n.min(self.entries.len())]
            .iter()
            .all(|d| {
                // Never index out of range on a torn entry.
                let Some(p) = self.path_nul(d) else {
                    return false;
                };
                let mut s = core::mem::MaybeUninit::uninit();
                // `fstatat` refuses a path without its NUL without a system
                // call: no errno left over from before may read as ENOENT.
                sys::set_errno(0);
                let now = sys::fstatat(libc::AT_FDCWD, p, 0, &mut s);
                match (d.state, now) {
                    (DepState::Absent, None) => sys::errno() == libc::ENOENT,
                    (DepState::Rule { dev, ino }, Some(s)) => s.st_dev == dev && s.st_ino == ino,
                    (DepState::Listed { dev, ino, mtime }, Some(s)) => {
                        s.st_dev == dev && s.st_ino == ino && mtime == (s.st_mtime, s.st_mtime_nsec)
                    }
                    _ => false,
                }
            })
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}
