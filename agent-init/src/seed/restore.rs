//! Restoring the vault's owner and modes at every start.
//!
//! Why: Landlock has no right for chmod, chown, utimes or extended
//! attributes, and a tool runs as the harness user, who owns the vault. A
//! tool that bypasses the preload (a static binary, a raw system call) can
//! `chmod 000 /pi-agent` and break the harness for this session and every
//! later one. agent-init, before the harness starts, gives every vault
//! entry back to the harness user: owner and group (when root), and `u+rw`
//! on files, `u+rwx` on directories (set-id bits dropped). Nothing is
//! followed: every entry is opened `O_PATH | O_NOFOLLOW` relative to its
//! directory, changed through that fd (`fchownat(AT_EMPTY_PATH)`, and
//! `chmod` of `/proc/self/fd/N`, which names the inode itself), and a
//! directory is entered only through `openat(O_NOFOLLOW | O_DIRECTORY)`.
//! Symlinks keep their mode (Linux has none for them) and get the owner.
//! A non-directory with more than one link is left alone: it may be a hard
//! link to someone else's file (root's), which a chown would hand to the
//! harness user; the step's link check ([`crate::vault_links`]) then
//! refuses the start.

use super::{Owner, SeedError, Stats};
use crate::error::{Call, CallResult};
use crate::log::{info, warning};
use crate::safe_path;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmodat, fstat};
use nix::unistd::{Gid, Uid, fchownat};
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// Deeper than this, a vault tree is left as it is below (and logged).
const MAX_DEPTH: usize = 256;

/// Give the vault entry at `path` (a directory and everything under it, or
/// one file) back to the harness user. A missing entry is fine.
pub(super) fn entry(path: &Path, owner: Owner, stats: &mut Stats) -> Result<(), SeedError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let opts = safe_path::Walk {
        create: None,
        require_trusted: None,
        follow_last: true,
    };
    let dir = match safe_path::open_dir(parent, opts) {
        Ok(o) => o.fd,
        Err(e) if e.errno() == Errno::ENOENT => return Ok(()),
        Err(e) => return Err(super::walk_error(e, owner)),
    };
    let before = stats.restored;
    node(&dir, name, path, owner, stats, 0)?;
    if stats.restored > before {
        info!(
            "seed: restored the owner or mode of {} entries of {} (a tool changed them)",
            stats.restored - before,
            path.display()
        );
    }
    Ok(())
}

/// One entry `name` of the directory `dir` (`path` for messages), then,
/// for a directory, everything in it.
fn node(
    dir: &OwnedFd,
    name: &OsStr,
    path: &Path,
    owner: Owner,
    stats: &mut Stats,
    depth: usize,
) -> Result<(), SeedError> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(SeedError::Call(Call::at("openat(O_PATH)", path, errno))),
    };
    let st = fstat(&fd).call_at("fstat", path)?;
    if let Ok(vfs) = nix::sys::statvfs::fstatvfs(&fd)
        && vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
    {
        // Nothing can change it (a tool neither): the checks that follow
        // say whether the harness can use it.
        return Ok(());
    }
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    fix(&fd, &st, kind, path, owner, stats)?;
    if kind != SFlag::S_IFDIR {
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        warning!(
            "seed: {} is more than {MAX_DEPTH} directories deep; not restoring below it",
            path.display()
        );
        return Ok(());
    }
    let d = openat(dir, name, safe_path::DIR_FLAGS, Mode::empty()).call_at("openat", path)?;
    let entries = crate::sys::read_dir_fd(d.as_fd())
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        .call_at("readdir", path)?;
    for e in entries {
        crate::stop::check()?;
        let n = e.name.as_os_str();
        node(&d, n, &path.join(n), owner, stats, depth + 1)?;
    }
    Ok(())
}

/// Owner and mode of one entry, through its `O_PATH` fd.
fn fix(
    fd: &OwnedFd,
    st: &FileStat,
    kind: SFlag,
    path: &Path,
    owner: Owner,
    stats: &mut Stats,
) -> Result<(), SeedError> {
    if kind != SFlag::S_IFDIR && st.st_nlink > 1 {
        return Ok(());
    }
    let mut changed = false;
    if owner.chown && (st.st_uid != owner.uid || st.st_gid != owner.gid) {
        fchownat(
            fd,
            "",
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
            AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .call_at("fchownat(AT_EMPTY_PATH)", path)?;
        changed = true;
    }
    let want = if kind == SFlag::S_IFDIR { 0o700 } else { 0o600 };
    let mode = st.st_mode & 0o7777;
    let ours = owner.chown || st.st_uid == nix::unistd::getuid().as_raw();
    if kind != SFlag::S_IFLNK && ours && (mode & want != want || mode & 0o6000 != 0) {
        let new = (mode | want) & !0o6000;
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        fchmodat(
            nix::fcntl::AT_FDCWD,
            proc.as_str(),
            Mode::from_bits_truncate(new),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .call_at("chmod", path)?;
        changed = true;
    }
    if changed {
        stats.restored += 1;
    }
    Ok(())
}
