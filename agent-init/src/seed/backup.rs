//! `newest-backup`: when the target file is missing, restore it from the
//! newest `PREFIX*` file in the source directory (Claude Code's
//! `~/.claude/backups`), taking only the harness user's own files from a
//! directory it can write.

use super::stage::{Staged, commit, stage_file};
use super::{Owner, SeedError, Stats, ensure_dir_as, open_source};
use crate::error::{Call, CallResult};
use crate::log::{debug, info};
use crate::safe_path::{self, is_type};
use crate::sys;
use nix::errno::Errno;
use nix::sys::stat::{SFlag, fstat, fstatat};
use policy::Seed;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

/// `newest-backup`: restore the target file from the newest `PREFIX*` file
/// in the source directory, when the target is missing.
pub(super) fn newest_backup(seed: &Seed, owner: Owner, stats: &mut Stats) -> Result<(), SeedError> {
    let prefix = seed.prefix.as_deref().unwrap_or_default();
    if std::fs::symlink_metadata(&seed.target).is_ok() {
        stats.kept += 1;
        debug!("seed: {} exists; kept", seed.target.display());
        return Ok(());
    }
    let src = match open_source(&seed.source) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            stats.missing_sources += 1;
            info!(
                "seed: no backup directory {}; {} not restored",
                seed.source.display(),
                seed.target.display()
            );
            return Ok(());
        }
        Err(e) => return Err(Call::at("open", &seed.source, e).into()),
    };
    // The backups live where the harness user writes (`~/.claude/backups`):
    // there, only its own files are restored, so a hard link to a file of
    // root's (or a stale inode of one) is never copied into its home.
    let src_st = fstat(&src).call_at("fstat", &seed.source)?;
    let src_owner = (!safe_path::dir_is_trusted(&src_st)).then_some(owner.uid);
    let Some((name, mode)) = newest(src.as_fd(), seed, prefix, src_owner, owner)? else {
        stats.missing_sources += 1;
        info!(
            "seed: no {prefix}* in {}; {} not restored",
            seed.source.display(),
            seed.target.display()
        );
        return Ok(());
    };
    let (Some(parent), Some(file)) = (seed.target.parent(), seed.target.file_name()) else {
        return Ok(());
    };
    // The parent is often the harness user's home: never chown it (it may
    // be `/` or a system directory); it must already be writable.
    let dst = Rc::new(ensure_dir_as(parent, owner, stats, false)?);
    let mut batch: Vec<Staged> = stage_file(
        src.as_fd(),
        &name,
        &dst,
        file,
        mode,
        owner,
        &seed.target,
        src_owner,
        &seed.source.join(&name),
    )?
    .into_iter()
    .collect();
    if commit(&mut batch)?.0 == 1 {
        stats.files_copied += 1;
        info!(
            "seed: restored {} from {}",
            seed.target.display(),
            seed.source.join(&name).display()
        );
    } else {
        stats.kept += 1;
    }
    Ok(())
}

/// The newest regular `PREFIX*` file in the backup directory `src` (by
/// mtime, then name), with its mode; with `src_owner`, only files that uid
/// owns count.
fn newest(
    src: BorrowedFd<'_>,
    seed: &Seed,
    prefix: &str,
    src_owner: Option<u32>,
    owner: Owner,
) -> Result<Option<(OsString, u32)>, SeedError> {
    let entries = sys::read_dir_fd(src).call_at("readdir", &seed.source)?;
    let mut best: Option<((i64, i64), OsString, u32)> = None;
    for e in entries {
        if !e.name.as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let Ok(st) = fstatat(
            src,
            e.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        if !is_type(&st, SFlag::S_IFREG) {
            continue;
        }
        if src_owner.is_some_and(|u| st.st_uid != u) {
            info!(
                "seed: ignored {}: owned by uid {}, not the harness user (uid {}), in a directory it can write",
                seed.source.join(&e.name).display(),
                st.st_uid,
                owner.uid
            );
            continue;
        }
        let key = (st.st_mtime, st.st_mtime_nsec);
        if best
            .as_ref()
            .is_none_or(|(k, n, _)| (key, &e.name) > (*k, n))
        {
            best = Some((key, e.name, st.st_mode));
        }
    }
    Ok(best.map(|(_, name, mode)| (name, mode)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::me;
    use policy::SeedMode;

    #[test]
    fn newest_backup_picks_newest() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("backups");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join(".claude.json.backup.1"), "old").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(b.join(".claude.json.backup.2"), "new").unwrap();
        std::fs::write(b.join("other"), "x").unwrap();
        let target = t.path().join("home/.claude.json");
        let seed = Seed {
            source: b,
            target: target.clone(),
            mode: SeedMode::NewestBackup,
            prefix: Some(".claude.json.backup.".into()),
        };
        let mut stats = Stats::default();
        newest_backup(&seed, me(), &mut stats).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        std::fs::write(&target, "refreshed").unwrap();
        newest_backup(&seed, me(), &mut stats).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "refreshed");
    }
}
