//! Step 2, seeding: make the harness's directories exist and be writable by
//! the harness user, and copy the policy's seeds into them ([`copy`]:
//! `copy-missing`, [`backup`]: `newest-backup`, both through [`stage`]:
//! unnamed, synced, then named without replacing). The step's last check,
//! that no vault file has a second name, is [`crate::vault_links`].
//!
//! Rules (DESIGN.md, "Seeding and the vault's integrity"):
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
//! - a TERM or INT ([`crate::stop`]) is taken between files: the files
//!   staged but not yet named are dropped, the directories created so far
//!   get their owner and mode, and the next start's `copy-missing` copies
//!   only what is missing (a stopped tree is never taken as complete, since
//!   each file is checked by name);
//! - owned by the harness user;
//! - a missing source is fine (logged); a target that cannot be created or
//!   written stops agent-init with the path, the uid and the fix.

mod backup;
mod copy;
mod restore;
mod stage;

use crate::error::{Call, CallResult, io_errno};
use crate::log::{debug, info, warning};
use crate::safe_path::{self, WalkError};
use crate::vault_links::HardLinks;
use nix::errno::Errno;
use nix::sys::stat::{FileStat, fstat};
use nix::unistd::{Gid, Uid, fchown};
use policy::{Policy, SeedMode, VaultEntry, VaultKind};
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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
    /// A seed (the source side) cannot be read: named, with the call.
    Unreadable {
        call: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// A vault file has more than one name ([`crate::vault_links`]).
    HardLinks(HardLinks),
    /// Any other call failed.
    Call(Call<Errno>),
    /// TERM or INT arrived between two files; every file named so far is
    /// complete, and nothing staged was named.
    Stopped(crate::stop::Stopped),
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
            SeedError::Create {
                path,
                uid,
                errno: Errno::EROFS,
            } => write!(
                f,
                "cannot create {} for the harness user (uid {uid}): the file system is read-only. Fix: mount a volume or a tmpfs there (`--tmpfs {}:uid={uid}` or `-v NAME:{}`)",
                path.display(),
                path.display(),
                path.display()
            ),
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
                why: Unwritable::ReadOnly,
                ..
            } => write!(
                f,
                "{} is not writable by the harness user (uid {uid}): it is on a read-only file system (a read-only root without a volume there). Fix: mount a volume or a tmpfs at {} (`--tmpfs {}:uid={uid}` or `-v NAME:{}`)",
                path.display(),
                path.display(),
                path.display(),
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
            SeedError::Unreadable { call, path, errno } => write!(
                f,
                "cannot read the seed {} ({call}: {}). Fix: make it readable by agent-init (root in a container: check the mount, e.g. NFS root_squash or a secret's mode) or remove it from the seed source",
                path.display(),
                errno.desc()
            ),
            SeedError::HardLinks(h) => write!(f, "{h}"),
            SeedError::Call(c) => write!(f, "{c}"),
            SeedError::Stopped(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for SeedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SeedError::Create { errno, .. } | SeedError::Unreadable { errno, .. } => Some(errno),
            SeedError::NotWritable {
                why: Unwritable::ChownFailed(errno),
                ..
            } => Some(errno),
            SeedError::Call(c) => Some(&c.source),
            SeedError::Stopped(s) => Some(s),
            _ => None,
        }
    }
}

impl SeedError {
    /// `call` on the seed's `path` failed.
    pub fn unreadable(call: &'static str, path: &Path, errno: Errno) -> SeedError {
        SeedError::Unreadable {
            call,
            path: path.to_path_buf(),
            errno,
        }
    }
}

impl From<HardLinks> for SeedError {
    fn from(h: HardLinks) -> SeedError {
        SeedError::HardLinks(h)
    }
}

impl From<crate::stop::Stopped> for SeedError {
    fn from(s: crate::stop::Stopped) -> SeedError {
        SeedError::Stopped(s)
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
    /// Vault entries whose owner or mode was given back to the harness user.
    pub restored: usize,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files copied, {} kept (already there), {} skipped, {} dirs created, {} missing sources, {} vault entries restored",
            self.files_copied,
            self.kept,
            self.skipped,
            self.dirs_created,
            self.missing_sources,
            self.restored
        )
    }
}

/// Seeding, in order: the vault directories, then each seed.
/// `create_missing`: create missing vault directories (root) or only those
/// whose parent we can write (host mode).
pub fn run(policy: &Policy, owner: Owner, create_missing: bool) -> Result<Stats, SeedError> {
    let mut stats = Stats::default();
    vault_dirs(policy, owner, create_missing, &mut stats)?;
    seeds(policy, owner, &mut stats)?;
    Ok(stats)
}

/// Every `dir` entry of the vault (but agent-init's probe) exists and the
/// harness user can write it, where it can be made so; every existing entry
/// (and everything in it) has the harness user's owner and `u+rw(x)`
/// ([`restore`]).
fn vault_dirs(
    policy: &Policy,
    owner: Owner,
    create_missing: bool,
    stats: &mut Stats,
) -> Result<(), SeedError> {
    for e in &policy.vault {
        if e.name == policy::PROBE_ENTRY {
            continue;
        }
        crate::stop::check()?;
        restore::entry(&e.path, owner, stats)?;
    }
    for e in policy.vault.iter().filter(|e| e.kind == VaultKind::Dir) {
        if e.name == policy::PROBE_ENTRY {
            continue;
        }
        crate::stop::check()?;
        vault_dir(policy, e, owner, create_missing, stats)?;
    }
    Ok(())
}

fn vault_dir(
    policy: &Policy,
    e: &VaultEntry,
    owner: Owner,
    create_missing: bool,
    stats: &mut Stats,
) -> Result<(), SeedError> {
    // The harness's own directories (targets of a seed that has something
    // to copy) must exist and be writable, or the harness crashes later
    // (Pi's `EACCES: mkdir '/pi-agent/extensions'`). Another harness's
    // vault directory that cannot be created (a read-only root without a
    // volume there) is only a warning: it stays missing, and tools cannot
    // create it either. So is the target of a seed whose source is not
    // there: an image for several harnesses (images/all) names every
    // harness's login mount, and a start mounts only those it uses.
    let needed = policy.seeds.iter().any(|s| {
        let target = match s.mode {
            SeedMode::CopyMissing => s.target == e.path,
            SeedMode::NewestBackup => s.target.parent() == Some(e.path.as_path()),
        };
        target && std::fs::symlink_metadata(&s.source).is_ok()
    });
    match std::fs::symlink_metadata(&e.path) {
        Ok(_) => {
            ensure_dir(&e.path, owner, stats)?;
        }
        Err(_) if create_missing || parent_writable(&e.path) => {
            match ensure_dir(&e.path, owner, stats) {
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
    Ok(())
}

/// Each seed, in the policy's order.
fn seeds(policy: &Policy, owner: Owner, stats: &mut Stats) -> Result<(), SeedError> {
    for s in &policy.seeds {
        crate::stop::check()?;
        match s.mode {
            SeedMode::CopyMissing => copy::copy_missing(s, owner, stats)?,
            SeedMode::NewestBackup => backup::newest_backup(s, owner, stats)?,
        }
    }
    Ok(())
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
    // Read-only first: on a read-only root neither owner nor mode is the
    // cause, and a chown would fail with EROFS.
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

/// The user running the tests, as the owner of what seeding creates.
#[cfg(test)]
fn me() -> Owner {
    Owner {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        chown: false,
    }
}
