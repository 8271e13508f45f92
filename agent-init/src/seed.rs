//! Step 2, seeding: make the harness's directories exist and be writable by
//! the harness user, copy the policy's seeds into them, and check that no
//! vault file has a second name.
//!
//! Rules (DESIGN.md, "Seeding"):
//! - never overwrite: a file that exists in the target is kept, even when the
//!   seed is newer (a stale seed must not roll back a refreshed token);
//!   `linkat`/`renameat2(RENAME_NOREPLACE)` keep that true against races;
//! - preserve modes (set-id bits dropped: the files change owner);
//! - never follow a symlink: every component below the source and target
//!   roots is opened `openat(dir, name, O_NOFOLLOW)`; a symlink in the source
//!   is recreated only when it points inside the source tree, a symlink in the
//!   target is never entered, and a target root that is a symlink is refused;
//! - each file is written as an unnamed `O_TMPFILE` (or, where the file system
//!   lacks it, a `.agent-vault-seed.*` temporary name), `fsync`ed, and only
//!   then linked under its name: a crash leaves no partial file;
//! - owned by the harness user;
//! - a missing source is fine (logged); a target that cannot be created or
//!   written stops agent-init with the path, the uid and the fix.

use crate::error::{Call, CallResult, io_errno};
use crate::log::{debug, info, warning};
use crate::safe_path::{self, WalkError};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, readlinkat, renameat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat};
use policy::load::{Policy, Seed, VaultKind};
use policy::model::SeedMode;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Temporary names (fallback when `O_TMPFILE` is unsupported) start with this.
pub const TMP_PREFIX: &str = ".agent-vault-seed.";

/// Who owns what seeding creates.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups are not needed for the write check beyond `gid`.
    /// `chown`: agent-init is root and changes ownership; otherwise files stay ours.
    pub chown: bool,
}

/// What went wrong while seeding, naming the call and the path.
#[derive(Debug)]
pub enum SeedError {
    /// A directory the harness needs cannot be created.
    Create {
        path: PathBuf,
        uid: u32,
        errno: Errno,
    },
    /// A directory the harness needs exists but the harness user cannot write it.
    NotWritable {
        path: PathBuf,
        uid: u32,
        owner: u32,
        mode: u32,
        why: Unwritable,
    },
    /// A target (or vault directory) is a symlink or not a directory.
    NotADirectory { path: PathBuf, what: &'static str },
    /// A vault file has more than one name.
    HardLinks { path: PathBuf, nlink: u64 },
    /// Any other call failed.
    Call(Call<Errno>),
}

/// Why a directory the harness needs stays unwritable, beyond its owner and mode.
#[derive(Debug)]
pub enum Unwritable {
    /// Owner and mode say so, and agent-init may not adopt it.
    Mode,
    /// `fchown` to the harness user failed.
    ChownFailed(Errno),
    /// The file system is mounted read-only.
    ReadOnly,
}

impl fmt::Display for Unwritable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unwritable::Mode => Ok(()),
            Unwritable::ChownFailed(errno) => {
                write!(f, " and chown to it failed ({})", errno.desc())
            }
            Unwritable::ReadOnly => f.write_str(", on a read-only file system"),
        }
    }
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedError::Create { path, uid, errno } => write!(
                f,
                "cannot create {} for the harness user (uid {uid}): {}. Fix: create it in the image (`install -d -o {uid} {}`) or mount a volume there that uid {uid} can write",
                path.display(),
                errno.desc(),
                path.display()
            ),
            SeedError::NotWritable {
                path,
                uid,
                owner,
                mode,
                why,
            } => write!(
                f,
                "{} is not writable by the harness user (uid {uid}): owner uid {owner}, mode {mode:04o}{why}. Fix: `chown -R {uid} {}` on the volume (or in the image), or mount it read-write",
                path.display(),
                path.display()
            ),
            SeedError::NotADirectory { path, what } => write!(
                f,
                "{} is {what}; agent-init only seeds into real directories and never follows symlinks. Fix: make it a directory, or point the policy at the real path",
                path.display()
            ),
            SeedError::HardLinks { path, nlink } => write!(
                f,
                "vault file {} has {nlink} names (hard links): a tool could read it under another name. Fix: remove the other links (`find / -xdev -samefile {}`) or copy the file",
                path.display(),
                path.display()
            ),
            SeedError::Call(c) => write!(f, "{c}"),
        }
    }
}

impl std::error::Error for SeedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SeedError::Create { errno, .. } => Some(errno),
            SeedError::NotWritable {
                why: Unwritable::ChownFailed(errno),
                ..
            } => Some(errno),
            SeedError::Call(c) => Some(&c.source),
            _ => None,
        }
    }
}

impl From<Call<Errno>> for SeedError {
    fn from(c: Call<Errno>) -> SeedError {
        SeedError::Call(c)
    }
}

/// Calls that report an I/O error name its errno (`EIO` when it has none).
impl From<Call<std::io::Error>> for SeedError {
    fn from(c: Call<std::io::Error>) -> SeedError {
        SeedError::Call(c.map(|e| io_errno(&e)))
    }
}

/// Counts for the step's log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub dirs_created: usize,
    pub files_copied: usize,
    pub kept: usize,
    pub skipped: usize,
    pub missing_sources: usize,
    pub chowned: usize,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files copied, {} kept (already there), {} skipped, {} dirs created, {} missing sources",
            self.files_copied, self.kept, self.skipped, self.dirs_created, self.missing_sources
        )
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn cstr(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// `st_nlink` is u64 on x86_64 and u32 on aarch64.
#[allow(clippy::unnecessary_cast)]
fn nlink(st: &FileStat) -> u64 {
    st.st_nlink as u64
}

fn is_type(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == t
}

/// The whole step: vault directories, seeds, vault files' link counts.
/// `create_missing`: create missing vault directories (root) or only those
/// whose parent we can write (host mode).
pub fn run(policy: &Policy, owner: Owner, create_missing: bool) -> Result<Stats, SeedError> {
    let mut stats = Stats::default();
    for e in policy.vault.iter().filter(|e| e.kind == VaultKind::Dir) {
        if e.name == policy::PROBE_ENTRY {
            continue;
        }
        // The harness's own directories (seed targets) must exist and be
        // writable, or the harness crashes later (Pi's `EACCES: mkdir
        // '/pi-agent/extensions'`). Another harness's vault directory that
        // cannot be created (a read-only root without a volume there) is
        // only a warning: it stays missing, and tools cannot create it either.
        let needed = policy.seeds.iter().any(|s| match s.mode {
            SeedMode::CopyMissing => s.target == e.path,
            SeedMode::NewestBackup => s.target.parent() == Some(e.path.as_path()),
        });
        match std::fs::symlink_metadata(&e.path) {
            Ok(_) => {
                ensure_dir(&e.path, owner, &mut stats)?;
            }
            Err(_) if create_missing || parent_writable(&e.path) => {
                match ensure_dir(&e.path, owner, &mut stats) {
                    Ok(_) => {}
                    Err(
                        err @ SeedError::Create {
                            errno: Errno::EROFS | Errno::EACCES | Errno::EPERM,
                            ..
                        },
                    ) if !needed && std::fs::symlink_metadata(&e.path).is_err() => {
                        warning!(
                            "vault dir {} ({}) cannot be created: {err}; it stays missing (mount a volume there if this harness is used)",
                            e.path.display(),
                            e.name
                        );
                    }
                    Err(err) => return Err(err),
                }
            }
            Err(_) => debug!(
                "vault dir {} does not exist and is not created (host mode)",
                e.path.display()
            ),
        }
    }
    for s in &policy.seeds {
        match s.mode {
            SeedMode::CopyMissing => copy_missing(s, owner, &mut stats)?,
            SeedMode::NewestBackup => newest_backup(s, owner, &mut stats)?,
        }
    }
    check_links(policy)?;
    Ok(stats)
}

fn parent_writable(p: &Path) -> bool {
    p.parent()
        .is_some_and(|parent| nix::unistd::access(parent, nix::unistd::AccessFlags::W_OK).is_ok())
}

/// Open `path` as a directory, creating it (and missing parents, all owned
/// by the harness user) when missing; then make sure the harness user can
/// write it (chown when root and needed).
pub fn ensure_dir(path: &Path, owner: Owner, stats: &mut Stats) -> Result<OwnedFd, SeedError> {
    ensure_dir_as(path, owner, stats, true)
}

/// [`ensure_dir`]; `adopt`: chown an existing directory the harness user
/// cannot write (only for directories the policy names as the harness's:
/// vault dirs and copy-missing targets, never a mere parent such as the
/// harness user's home, which may be `/`).
fn ensure_dir_as(
    path: &Path,
    owner: Owner,
    stats: &mut Stats,
    adopt: bool,
) -> Result<OwnedFd, SeedError> {
    let fd = open_or_create_dir(path, owner, stats)?;
    let st = fstat(&fd).call_at("fstat", path)?;
    if !writable_by(&st, owner) {
        if owner.chown && adopt {
            fchown(
                &fd,
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )
            .map_err(|errno| SeedError::NotWritable {
                path: path.to_path_buf(),
                uid: owner.uid,
                owner: st.st_uid,
                mode: st.st_mode & 0o7777,
                why: Unwritable::ChownFailed(errno),
            })?;
            stats.chowned += 1;
            info!(
                "seed: {} was owned by uid {}; now owned by the harness user (uid {})",
                path.display(),
                st.st_uid,
                owner.uid
            );
        } else {
            return Err(SeedError::NotWritable {
                path: path.to_path_buf(),
                uid: owner.uid,
                owner: st.st_uid,
                mode: st.st_mode & 0o7777,
                why: Unwritable::Mode,
            });
        }
    }
    if let Ok(vfs) = nix::sys::statvfs::fstatvfs(&fd)
        && vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
    {
        return Err(SeedError::NotWritable {
            path: path.to_path_buf(),
            uid: owner.uid,
            owner: st.st_uid,
            mode: st.st_mode & 0o7777,
            why: Unwritable::ReadOnly,
        });
    }
    Ok(fd)
}

fn writable_by(st: &FileStat, owner: Owner) -> bool {
    let m = st.st_mode;
    if owner.uid == 0 {
        return true;
    }
    if st.st_uid == owner.uid {
        m & 0o300 == 0o300
    } else if st.st_gid == owner.gid {
        m & 0o030 == 0o030
    } else {
        m & 0o003 == 0o003
    }
}

fn walk_error(e: WalkError, owner: Owner) -> SeedError {
    match e {
        WalkError::UntrustedLink { link } => SeedError::NotADirectory {
            path: link,
            what: "a symlink (the harness user could have planted it)",
        },
        WalkError::NotADirectory { path } => SeedError::NotADirectory {
            path,
            what: "not a directory",
        },
        WalkError::UntrustedDir { path, .. } => {
            SeedError::Call(Call::at("open", &path, Errno::EPERM))
        }
        WalkError::Errno { path, errno } => match errno {
            Errno::EACCES | Errno::EROFS | Errno::EPERM | Errno::ENOSPC | Errno::EDQUOT => {
                SeedError::Create {
                    path,
                    uid: owner.uid,
                    errno,
                }
            }
            _ => SeedError::Call(Call::at("open", &path, errno)),
        },
    }
}

/// Open `path` as a directory, creating it and missing parents (owned by
/// the harness user), without following any symlink the harness user could
/// have planted on the way ([`safe_path::open_dir`]).
fn open_or_create_dir(path: &Path, owner: Owner, stats: &mut Stats) -> Result<OwnedFd, SeedError> {
    let opts = safe_path::Walk {
        create: Some(safe_path::Create {
            mode: 0o755,
            owner: owner.chown.then_some((owner.uid, owner.gid)),
        }),
        require_trusted: None,
        follow_last: false,
    };
    let opened = safe_path::open_dir(path, opts).map_err(|e| walk_error(e, owner))?;
    if opened.created > 0 {
        stats.dirs_created += opened.created;
        debug!("seed: created {}", path.display());
    }
    Ok(opened.fd)
}

/// Open a seed source directory without following a symlink the harness
/// user could have planted (`~/.claude/backups -> /root/...`): root would
/// otherwise read wherever it points.
fn open_source(path: &Path) -> Result<OwnedFd, Errno> {
    let opts = safe_path::Walk {
        create: None,
        require_trusted: None,
        follow_last: true,
    };
    safe_path::open_dir(path, opts)
        .map(|o| o.fd)
        .map_err(|e| e.errno())
}

/// `copy-missing`: the source tree into the target, keeping what exists.
fn copy_missing(seed: &Seed, owner: Owner, stats: &mut Stats) -> Result<(), SeedError> {
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
        Err(e) => return Err(Call::at("open", &seed.source, e).into()),
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
    walk.dir(src.as_fd(), &dst, Path::new(""))?;
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
        let entries = sys::read_dir_fd(src)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
            .call_at("readdir", &src_path)?;
        // A crash of the fallback path leaves `.agent-vault-seed.*` names; remove them.
        if let Ok(existing) = sys::read_dir_fd(dst) {
            for e in existing {
                if e.name.as_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                    let _ = unlinkat(dst, e.name.as_os_str(), UnlinkatFlags::NoRemoveDir);
                }
            }
        }
        for e in entries {
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
            .call_at("open", &self.src_root.join(rel))?;
        let d = openat(dst, name, DIR_FLAGS, Mode::empty()).call_at("open", &dst_path)?;
        let d = Rc::new(d);
        self.dir(s.as_fd(), &d, rel)?;
        if created {
            // Name the files inside before the directory gets its final mode.
            self.flush()?;
            let d = &*d;
            if self.owner.chown {
                fchown(
                    d,
                    Some(Uid::from_raw(self.owner.uid)),
                    Some(Gid::from_raw(self.owner.gid)),
                )
                .call_at("fchown", &dst_path)?;
            }
            fchmod(d, Mode::from_bits_truncate(st.st_mode & 0o1777))
                .call_at("fchmod", &dst_path)?;
        }
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

/// A file written (unnamed, or under a temporary name) and not yet named.
struct Staged {
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
fn stage_file(
    src_dir: BorrowedFd<'_>,
    src_name: &OsStr,
    dst_rc: &Rc<OwnedFd>,
    dst_name: &OsStr,
    mode: u32,
    owner: Owner,
    dst_path: &Path,
    src_owner: Option<u32>,
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
    .call_at("open", dst_path)?;
    let st = fstat(&src_fd).call_at("fstat", dst_path)?;
    if !is_type(&st, SFlag::S_IFREG) {
        return Ok(None);
    }
    if src_owner.is_some_and(|u| st.st_uid != u) {
        // Checked on the open file: a hard link swapped in is refused too.
        return Ok(None);
    }
    let (tmp, tmp_name) = match openat(
        dst_dir,
        ".",
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => (fd, None),
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
            .map_err(|errno| SeedError::Create {
                path: dst_path.to_path_buf(),
                uid: owner.uid,
                errno,
            })?;
            (fd, Some(n))
        }
        Err(errno) => {
            return Err(SeedError::Create {
                path: dst_path.to_path_buf(),
                uid: owner.uid,
                errno,
            });
        }
    };
    let cleanup = |n: &Option<OsString>| {
        if let Some(n) = n {
            let _ = unlinkat(dst_dir, n.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
    };
    let result = (|| {
        let mut from = File::from(src_fd);
        let mut to = File::from(tmp.try_clone().map_err(|e| io_errno(&e))?);
        std::io::copy(&mut from, &mut to).map_err(|e| io_errno(&e))?;
        if owner.chown {
            fchown(
                &tmp,
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )?;
        }
        fchmod(&tmp, Mode::from_bits_truncate(mode & 0o1777))
    })();
    if let Err(e) = result {
        cleanup(&tmp_name);
        return Err(Call::at("write", dst_path, e).into());
    }
    Ok(Some(Staged {
        tmp,
        dir: Rc::clone(dst_rc),
        name: dst_name.to_owned(),
        tmp_name,
        path: dst_path.to_path_buf(),
    }))
}

/// Make the staged files durable (one `syncfs` per file system instead of
/// one `fsync` per file), then give each its name with `linkat` (or
/// `renameat2(RENAME_NOREPLACE)`): a name never points at unsynced data, and
/// an existing name is never replaced. Returns (named, kept).
fn commit(batch: &mut Vec<Staged>) -> Result<(usize, usize), SeedError> {
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

/// `newest-backup`: restore the target file from the newest `PREFIX*` file
/// in the source directory, when the target is missing.
fn newest_backup(seed: &Seed, owner: Owner, stats: &mut Stats) -> Result<(), SeedError> {
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
    let entries = sys::read_dir_fd(src.as_fd()).call_at("readdir", &seed.source)?;
    let mut best: Option<((i64, i64), OsString, u32)> = None;
    for e in entries {
        if !e.name.as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let Ok(st) = fstatat(
            &src,
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
    let Some((_, name, mode)) = best else {
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

/// Refuse a vault file (a `file` entry, or a file inside a `dir` entry) that
/// has more than one link.
fn check_links(policy: &Policy) -> Result<(), SeedError> {
    for e in &policy.vault {
        match e.kind {
            VaultKind::File => {
                if let Ok(st) = nix::sys::stat::lstat(&e.path)
                    && is_type(&st, SFlag::S_IFREG)
                    && st.st_nlink > 1
                {
                    return Err(SeedError::HardLinks {
                        path: e.path.clone(),
                        nlink: nlink(&st),
                    });
                }
            }
            VaultKind::Dir => {
                if let Ok(fd) = nix::fcntl::open(&e.path, DIR_FLAGS, Mode::empty()) {
                    let mut budget = 100_000usize;
                    links_in(fd.as_fd(), &e.path, 0, &mut budget)?;
                }
            }
        }
    }
    Ok(())
}

fn links_in(
    dir: BorrowedFd<'_>,
    path: &Path,
    depth: u32,
    budget: &mut usize,
) -> Result<(), SeedError> {
    if depth > 32 {
        return Ok(());
    }
    let Ok(entries) = sys::read_dir_fd(dir) else {
        return Ok(());
    };
    for e in entries {
        if *budget == 0 {
            warning!(
                "seed: stopped checking hard links in {} after 100000 entries",
                path.display()
            );
            return Ok(());
        }
        *budget -= 1;
        let Ok(st) = fstatat(
            dir,
            e.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        if is_type(&st, SFlag::S_IFREG) && st.st_nlink > 1 {
            return Err(SeedError::HardLinks {
                path: path.join(&e.name),
                nlink: nlink(&st),
            });
        }
        if is_type(&st, SFlag::S_IFDIR)
            && let Ok(fd) = openat(dir, e.name.as_os_str(), DIR_FLAGS, Mode::empty())
        {
            links_in(fd.as_fd(), &path.join(&e.name), depth + 1, budget)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_containment() {
        assert!(stays_inside(Path::new(""), Path::new("a/b")));
        assert!(stays_inside(Path::new("x"), Path::new("../y")));
        assert!(!stays_inside(Path::new(""), Path::new("../y")));
        assert!(!stays_inside(Path::new("x"), Path::new("../../y")));
        assert!(!stays_inside(Path::new("x"), Path::new("/etc/passwd")));
        assert!(stays_inside(Path::new("x/y"), Path::new("./../z")));
    }

    fn me() -> Owner {
        Owner {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            chown: false,
        }
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
