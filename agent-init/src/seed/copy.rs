//! `copy-missing`: the seed's source tree into its target, keeping every
//! name that exists (a file is never overwritten, a symlink in the target is
//! never entered), recreating only symlinks that stay inside the seed.

use super::stage::{Staged, TMP_PREFIX, commit, discard, stage_file};
use super::{Owner, SeedError, Stats, ensure_dir, open_source};
use crate::error::{Call, CallResult};
use crate::log::{debug, info};
use crate::safe_path::{DIR_FLAGS, is_type};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat};
use policy::Seed;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::rc::Rc;

/// `copy-missing`: the source tree into the target, keeping what exists.
pub(super) fn copy_missing(seed: &Seed, owner: Owner, stats: &mut Stats) -> Result<(), SeedError> {
    let src = match open_source(&seed.source) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            stats.missing_sources += 1;
            info!(
                "seed: source {} does not exist; nothing to copy into {}",
                seed.source.display(),
                seed.target.display()
            );
            return Ok(());
        }
        Err(e) => return Err(SeedError::unreadable("open", &seed.source, e)),
    };
    let dst = ensure_dir(&seed.target, owner, stats)?;
    let mut walk = Walk {
        owner,
        stats,
        src_root: &seed.source,
        dst_root: &seed.target,
        batch: Vec::with_capacity(BATCH),
    };
    let dst = Rc::new(dst);
    if let Err(e) = walk.dir(src.as_fd(), &dst, Path::new("")) {
        // Stopped (or failed): what is staged is never named.
        discard(&mut walk.batch);
        return Err(e);
    }
    walk.flush()?;
    fsync(&*dst).call_at("fsync", &seed.target)?;
    Ok(())
}

/// Files written and synced in one batch before they get their names.
const BATCH: usize = 256;

struct Walk<'a> {
    owner: Owner,
    stats: &'a mut Stats,
    src_root: &'a Path,
    dst_root: &'a Path,
    batch: Vec<Staged>,
}

impl Walk<'_> {
    /// Sync and name the staged files.
    fn flush(&mut self) -> Result<(), SeedError> {
        let (copied, kept) = commit(&mut self.batch)?;
        self.stats.files_copied += copied;
        self.stats.kept += kept;
        Ok(())
    }

    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst_rc: &Rc<OwnedFd>,
        rel: &Path,
    ) -> Result<(), SeedError> {
        let dst = dst_rc.as_fd();
        let src_path = self.src_root.join(rel);
        let dst_path = self.dst_root.join(rel);
        let entries = sys::read_dir_fd(src).map_err(|e| {
            SeedError::unreadable(
                "readdir",
                &src_path,
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        // A crash of the fallback path leaves `.agent-vault-seed.*` names; remove them.
        if let Ok(existing) = sys::read_dir_fd(dst) {
            for e in existing {
                if e.name.as_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                    let _ = unlinkat(dst, e.name.as_os_str(), UnlinkatFlags::NoRemoveDir);
                }
            }
        }
        for e in entries {
            // A stop between two files: the caller drops what is staged.
            crate::stop::check()?;
            let name: &OsStr = &e.name;
            if name.as_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                continue;
            }
            let st = fstatat(src, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .call_at("fstatat", &src_path.join(name))?;
            let existing = match fstatat(dst, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(s) => Some(s),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(Call::at("fstatat", &dst_path.join(name), e).into()),
            };
            let child_rel = rel.join(name);
            if is_type(&st, SFlag::S_IFDIR) {
                self.subdir(src, dst, name, &st, existing.as_ref(), &child_rel)?;
            } else if is_type(&st, SFlag::S_IFREG) {
                if existing.is_some() {
                    self.stats.kept += 1;
                    debug!(
                        "seed: kept {} (exists; never overwritten)",
                        dst_path.join(name).display()
                    );
                } else {
                    if let Some(staged) = stage_file(
                        src,
                        name,
                        dst_rc,
                        name,
                        st.st_mode,
                        self.owner,
                        &dst_path.join(name),
                        None,
                        &src_path.join(name),
                    )? {
                        self.batch.push(staged);
                        if self.batch.len() >= BATCH {
                            self.flush()?;
                        }
                    }
                }
            } else if is_type(&st, SFlag::S_IFLNK) {
                self.symlink(src, dst, name, existing.is_some(), rel)?;
            } else {
                self.stats.skipped += 1;
                info!(
                    "seed: skipped {}: not a file, directory or symlink",
                    src_path.join(name).display()
                );
            }
        }
        Ok(())
    }

    fn subdir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        st: &FileStat,
        existing: Option<&FileStat>,
        rel: &Path,
    ) -> Result<(), SeedError> {
        let dst_path = self.dst_root.join(rel);
        let created = match existing {
            Some(e) if is_type(e, SFlag::S_IFDIR) => false,
            Some(_) => {
                self.stats.skipped += 1;
                info!(
                    "seed: skipped {}: the target has a non-directory (or symlink) there; not followed",
                    dst_path.display()
                );
                return Ok(());
            }
            None => {
                mkdirat(dst, name, Mode::from_bits_truncate(0o700)).map_err(|errno| {
                    SeedError::Create {
                        path: dst_path.clone(),
                        uid: self.owner.uid,
                        errno,
                    }
                })?;
                self.stats.dirs_created += 1;
                true
            }
        };
        let s = openat(src, name, DIR_FLAGS, Mode::empty())
            .map_err(|e| SeedError::unreadable("open", &self.src_root.join(rel).join(name), e))?;
        let d = openat(dst, name, DIR_FLAGS, Mode::empty()).call_at("open", &dst_path)?;
        let d = Rc::new(d);
        let walked = self.dir(s.as_fd(), &d, rel);
        if let Err(SeedError::Stopped(_)) = walked {
            // A stop inside: the directory we made still gets its owner and
            // mode, so the next start (which keeps it, as it exists) fills
            // it as the harness user's; its staged files are dropped.
            if created {
                discard(&mut self.batch);
                self.finish_dir(&d, st, &dst_path)?;
            }
            return walked;
        }
        walked?;
        if created {
            // Name the files inside before the directory gets its final mode.
            self.flush()?;
            self.finish_dir(&d, st, &dst_path)?;
        }
        Ok(())
    }

    /// A directory this walk created gets the harness user as owner and the
    /// source's mode (it was made 0700, root's, while being filled).
    fn finish_dir(&self, d: &OwnedFd, st: &FileStat, dst_path: &Path) -> Result<(), SeedError> {
        if self.owner.chown {
            fchown(
                d,
                Some(Uid::from_raw(self.owner.uid)),
                Some(Gid::from_raw(self.owner.gid)),
            )
            .call_at("fchown", dst_path)?;
        }
        fchmod(d, Mode::from_bits_truncate(st.st_mode & 0o1777)).call_at("fchmod", dst_path)?;
        Ok(())
    }

    fn symlink(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        exists: bool,
        rel: &Path,
    ) -> Result<(), SeedError> {
        let src_path = self.src_root.join(rel).join(name);
        let target = readlinkat(src, name).call_at("readlink", &src_path)?;
        if !stays_inside(rel, Path::new(&target)) {
            self.stats.skipped += 1;
            info!(
                "seed: skipped symlink {} -> {}: it points outside the seed",
                src_path.display(),
                Path::new(&target).display()
            );
            return Ok(());
        }
        if exists {
            self.stats.kept += 1;
            return Ok(());
        }
        let dst_path = self.dst_root.join(rel).join(name);
        nix::unistd::symlinkat(target.as_os_str(), dst, name).call_at("symlink", &dst_path)?;
        if self.owner.chown {
            // Chown the link we made through an O_PATH fd of it, never by
            // name: the harness user owns this directory and could swap the
            // name for a hard link to someone else's file in between.
            let fd = openat(
                dst,
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .call_at("open", &dst_path)?;
            let st = fstat(&fd).call_at("fstat", &dst_path)?;
            if !is_type(&st, SFlag::S_IFLNK) {
                return Err(Call::at("lchown", &dst_path, Errno::ELOOP).into());
            }
            nix::unistd::fchownat(
                &fd,
                "",
                Some(Uid::from_raw(self.owner.uid)),
                Some(Gid::from_raw(self.owner.gid)),
                nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .call_at("lchown", &dst_path)?;
        }
        self.stats.files_copied += 1;
        Ok(())
    }
}

/// Does a symlink in directory `rel` (relative to the seed root) with this
/// target stay inside the seed? Absolute targets never do.
pub fn stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() || target.as_os_str().is_empty() {
        return false;
    }
    let mut depth = rel.components().count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::me;
    use policy::SeedMode;

    #[test]
    fn symlink_containment() {
        assert!(stays_inside(Path::new(""), Path::new("a/b")));
        assert!(stays_inside(Path::new("x"), Path::new("../y")));
        assert!(!stays_inside(Path::new(""), Path::new("../y")));
        assert!(!stays_inside(Path::new("x"), Path::new("../../y")));
        assert!(!stays_inside(Path::new("x"), Path::new("/etc/passwd")));
        assert!(stays_inside(Path::new("x/y"), Path::new("./../z")));
    }

    #[test]
    fn copy_keeps_existing_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let dst = t.path().join("dst");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a"), "seed-a").unwrap();
        std::fs::write(src.join("sub/b"), "seed-b").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(dst.join("a"), "newer").unwrap();
        let seed = Seed {
            source: src,
            target: dst.clone(),
            mode: SeedMode::CopyMissing,
            prefix: None,
        };
        let mut stats = Stats::default();
        copy_missing(&seed, me(), &mut stats).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("a")).unwrap(), "newer");
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/b")).unwrap(),
            "seed-b"
        );
        assert_eq!(stats.files_copied, 1);
        assert_eq!(stats.kept, 1);
    }
}
