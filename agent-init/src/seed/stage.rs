//! Writing one seeded file so that a crash leaves no partial file and an
//! existing name is never replaced: an unnamed `O_TMPFILE` (or a
//! `.agent-vault-seed.*` temporary name where the file system lacks it),
//! owned and moded, synced, then named with `linkat` (or
//! `renameat2(RENAME_NOREPLACE)`).

use super::{Owner, SeedError};
use crate::error::{Call, CallResult, io_errno};
use crate::safe_path::is_type;
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, renameat2};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Temporary names (fallback when `O_TMPFILE` is unsupported) start with this.
pub const TMP_PREFIX: &str = ".agent-vault-seed.";

fn cstr(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// A file written (unnamed, or under a temporary name) and not yet named.
pub(super) struct Staged {
    tmp: OwnedFd,
    dir: Rc<OwnedFd>,
    name: OsString,
    tmp_name: Option<OsString>,
    path: PathBuf,
}

/// Write one regular file `src_dir/src_name` for `dst_dir/dst_name`: an
/// `O_TMPFILE` (or a temporary name), owned and moded. [`commit`] syncs and
/// names it. `None`: the source is not a regular file.
#[allow(clippy::too_many_arguments)]
pub(super) fn stage_file(
    src_dir: BorrowedFd<'_>,
    src_name: &OsStr,
    dst_rc: &Rc<OwnedFd>,
    dst_name: &OsStr,
    mode: u32,
    owner: Owner,
    dst_path: &Path,
    src_owner: Option<u32>,
    src_path: &Path,
) -> Result<Option<Staged>, SeedError> {
    let dst_dir = dst_rc.as_fd();
    // O_NONBLOCK: a FIFO swapped in after the caller's fstatat must not hang us.
    let src_fd = openat(
        src_dir,
        src_name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| SeedError::unreadable("open", src_path, e))?;
    let st = fstat(&src_fd).map_err(|e| SeedError::unreadable("fstat", src_path, e))?;
    if !is_type(&st, SFlag::S_IFREG) {
        return Ok(None);
    }
    if src_owner.is_some_and(|u| st.st_uid != u) {
        // Checked on the open file: a hard link swapped in is refused too.
        return Ok(None);
    }
    let (tmp, tmp_name) = create_unnamed(dst_dir, dst_name, owner, dst_path)?;
    if let Err(e) = fill(src_fd, &tmp, mode, owner) {
        if let Some(n) = &tmp_name {
            let _ = unlinkat(dst_dir, n.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        return Err(match e {
            FillError::Read(e) => SeedError::unreadable("read", src_path, e),
            FillError::Write(e) => Call::at("write", dst_path, e).into(),
        });
    }
    Ok(Some(Staged {
        tmp,
        dir: Rc::clone(dst_rc),
        name: dst_name.to_owned(),
        tmp_name,
        path: dst_path.to_path_buf(),
    }))
}

/// A file to write `dst_name`'s content into, not yet visible under that
/// name: an `O_TMPFILE` in `dst_dir`, or (where the file system lacks it) a
/// new `.agent-vault-seed.NAME.PID` beside it, whose name is returned too.
fn create_unnamed(
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
    owner: Owner,
    dst_path: &Path,
) -> Result<(OwnedFd, Option<OsString>), SeedError> {
    let cannot_create = |errno| SeedError::Create {
        path: dst_path.to_path_buf(),
        uid: owner.uid,
        errno,
    };
    match openat(
        dst_dir,
        ".",
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => Ok((fd, None)),
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL | Errno::ENOENT) => {
            let mut n = OsString::from(TMP_PREFIX);
            n.push(dst_name);
            n.push(format!(".{}", std::process::id()));
            let fd = openat(
                dst_dir,
                n.as_os_str(),
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(cannot_create)?;
            Ok((fd, Some(n)))
        }
        Err(errno) => Err(cannot_create(errno)),
    }
}

/// Which side of a copy failed: a read names the seed, a write the target.
enum FillError {
    Read(Errno),
    Write(Errno),
}

/// Copy the source's content into `tmp`, then owner and mode (set-id bits
/// dropped).
fn fill(src: OwnedFd, tmp: &OwnedFd, mode: u32, owner: Owner) -> Result<(), FillError> {
    use std::io::{Read as _, Write as _};
    let mut from = File::from(src);
    let mut to = File::from(
        tmp.try_clone()
            .map_err(|e| FillError::Write(io_errno(&e)))?,
    );
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FillError::Read(io_errno(&e))),
        };
        to.write_all(&buf[..n])
            .map_err(|e| FillError::Write(io_errno(&e)))?;
    }
    if owner.chown {
        fchown(
            tmp,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )
        .map_err(FillError::Write)?;
    }
    fchmod(tmp, Mode::from_bits_truncate(mode & 0o1777)).map_err(FillError::Write)
}

/// Drop staged files without naming them (a stop while seeding): an
/// `O_TMPFILE` vanishes with its descriptor; a temporary name is removed.
pub(super) fn discard(batch: &mut Vec<Staged>) {
    for s in batch.drain(..) {
        if let Some(n) = &s.tmp_name {
            let _ = unlinkat(s.dir.as_fd(), n.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Make the staged files durable (one `syncfs` per file system instead of
/// one `fsync` per file), then give each its name with `linkat` (or
/// `renameat2(RENAME_NOREPLACE)`): a name never points at unsynced data, and
/// an existing name is never replaced. Returns (named, kept).
pub(super) fn commit(batch: &mut Vec<Staged>) -> Result<(usize, usize), SeedError> {
    let mut synced: Vec<u64> = Vec::new();
    for s in batch.iter() {
        let dev = fstat(&s.tmp).map(|st| st.st_dev).unwrap_or(0);
        if !synced.contains(&dev) {
            sys::syncfs(s.tmp.as_fd()).call_at("syncfs", &s.path)?;
            synced.push(dev);
        }
    }
    let (mut copied, mut kept) = (0, 0);
    for s in batch.drain(..) {
        let dir = s.dir.as_fd();
        let cleanup = || {
            if let Some(n) = &s.tmp_name {
                let _ = unlinkat(dir, n.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        };
        let linked = match &s.tmp_name {
            None => sys::link_tmpfile(s.tmp.as_fd(), dir, &cstr(&s.name)).map_err(|e| io_errno(&e)),
            Some(n) => renameat2(
                dir,
                n.as_os_str(),
                dir,
                s.name.as_os_str(),
                RenameFlags::RENAME_NOREPLACE,
            ),
        };
        match linked {
            Ok(()) => copied += 1,
            Err(Errno::EEXIST) => {
                cleanup();
                kept += 1;
            }
            Err(e) => {
                cleanup();
                return Err(Call::at("link", &s.path, e).into());
            }
        }
    }
    Ok((copied, kept))
}
