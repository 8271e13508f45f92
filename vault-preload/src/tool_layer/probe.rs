//! Detection: is this process already under the tool layer?
//!
//! Landlock rights on a directory are inherited by everything beneath it,
//! and the tool layer grants `read_dir` on every ancestor of a vault entry,
//! so a vault *directory* stays listable under the tool layer: opening
//! agent-init's probe directory proves nothing. What the tool layer denies
//! is reading a *file* inside a vault entry. So the probe opens agent-init's
//! probe file (`probe/probe`) by name or, when that is not there, lists the
//! candidate directories (agent-init's probe dir first, then each vault
//! directory) and opens the first regular file in one read-only with a raw
//! `openat`: success means "not yet"; `EACCES` (or `EPERM`) means "already
//! under the tool layer" only when the file's mode bits would have allowed
//! the read (`refused_by`): a file the process may not read anyway (say a
//! 0700 `/pi-agent` of another owner) proves nothing, and is skipped like a
//! candidate that is missing or holds no regular file. When no candidate is conclusive (no file anywhere in the vault
//! yet) the constructor applies no layer: there is nothing on disk to hide,
//! and the open hooks still deny by path (documented fallback). agent-init
//! therefore puts a world-readable file in `probe/` so that detection never
//! depends on the vault's content.
//!
//! Its own module because it runs in every tool's constructor (small stack
//! buffers, a few system calls) and decides nothing but this one question.

use crate::state::State;
use crate::state_dir::{PROBE_FILE, StatePath};
use crate::sys;

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

/// Ask the probe file, then each candidate directory, until one answers.
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
pub fn probe_file(dir: &[u8]) -> Probe {
    // A short buffer: this runs in every tool's constructor, on a fresh stack.
    let Some(p) = StatePath::new(&[dir, b"/", PROBE_FILE]) else {
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
        return refused_by(libc::AT_FDCWD, p.with_nul());
    }
    Probe::Nothing // not there (or a symlink): list the candidates
}

/// Who refused the read-open of `dirfd`/`path` (NUL-terminated): Landlock
/// (under the tool layer) or the file's own permissions (inconclusive)?
/// Landlock does not take part in access checks, the file permissions do
/// (`the_access_check_ignores_landlock_but_not_file_modes_by_kernel` in the
/// test suite checks this on the running kernel): when `faccessat2(R_OK,
/// AT_EACCESS)` says this process may read it, the refusal was Landlock's.
/// One more system call, made only after a refused probe.
fn refused_by(dirfd: i32, path: &[u8]) -> Probe {
    if sys::faccessat2(
        dirfd,
        path,
        libc::R_OK,
        libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW,
    ) == 0
    {
        Probe::Under
    } else {
        Probe::Nothing
    }
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
        return refused_by(libc::AT_FDCWD, dir);
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
            let mut s = core::mem::MaybeUninit::uninit();
            if sys::fstatat(dfd, name, libc::AT_SYMLINK_NOFOLLOW, &mut s)
                .is_none_or(|s| s.st_mode & libc::S_IFMT != libc::S_IFREG)
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
                verdict = refused_by(dfd, name);
                if verdict == Probe::Under {
                    break 'outer;
                }
            }
        }
    }
    sys::close(dfd);
    verdict
}
