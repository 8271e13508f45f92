//! Opening directories as root without following a link someone else
//! planted.
//!
//! `open(path, O_NOFOLLOW)` only refuses a symlink in the *last* component;
//! every earlier one is followed. A harness user who can write an ancestor
//! (its home, a volume, a previous run's state) can turn `~/.local` into a
//! symlink to `/usr/local`, and root would then create, chown or write where
//! the harness user pointed. [`open_dir`] walks from `/` one component at a
//! time with `openat(O_NOFOLLOW | O_DIRECTORY)` and follows a symlink only
//! when it is *trusted*: owned by root, in a directory that only root can
//! change (root-owned and not group/other writable, or sticky). Image
//! symlinks such as `/var/run -> /run` keep working; anything the harness
//! user could have made is refused. The last component is never followed:
//! a directory agent-init seeds or records into must be a real directory.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, fchown};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Flags for every directory this module opens.
pub const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// At most this many symlinks are followed in one walk (the kernel's limit).
const MAX_LINKS: u32 = 40;

/// Why a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    /// A component is a symlink that is not trusted (see the module doc).
    UntrustedLink { link: PathBuf },
    /// A component exists and is not a directory.
    NotADirectory { path: PathBuf },
    /// A directory on the way is not trusted (only with `require_trusted`).
    UntrustedDir { path: PathBuf, uid: u32, mode: u32 },
    /// A call failed at `path`.
    Errno { path: PathBuf, errno: Errno },
}

impl WalkError {
    /// The errno a caller that only reports errnos should use.
    pub fn errno(&self) -> Errno {
        match self {
            WalkError::UntrustedLink { .. } => Errno::ELOOP,
            WalkError::NotADirectory { .. } => Errno::ENOTDIR,
            WalkError::UntrustedDir { .. } => Errno::EPERM,
            WalkError::Errno { errno, .. } => *errno,
        }
    }
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkError::UntrustedLink { link } => {
                write!(f, "{}: an untrusted symlink, not followed", link.display())
            }
            WalkError::NotADirectory { path } => write!(f, "{}: not a directory", path.display()),
            WalkError::UntrustedDir { path, uid, mode } => write!(
                f,
                "{}: owned by uid {uid}, mode {mode:04o}: not trusted",
                path.display()
            ),
            WalkError::Errno { path, errno } => write!(f, "{}: {}", path.display(), errno.desc()),
        }
    }
}

impl std::error::Error for WalkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalkError::Errno { errno, .. } => Some(errno),
            _ => None,
        }
    }
}

/// How to create missing directories.
#[derive(Debug, Clone, Copy)]
pub struct Create {
    pub mode: u32,
    /// `Some((uid, gid))`: `fchown` each created directory (root only).
    pub owner: Option<(u32, u32)>,
}

/// Options of a walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walk {
    /// Create missing components.
    pub create: Option<Create>,
    /// `Some(uid)`: every directory *above* the result must be trusted:
    /// owned by root or `uid`, and not group/other writable unless sticky.
    /// Used for the state directory, which the harness user must not be
    /// able to rename or replace.
    pub require_trusted: Option<u32>,
    /// Follow a trusted symlink in the last component too (seed sources,
    /// which the image provides). Targets never follow it.
    pub follow_last: bool,
}

/// What the walk produced.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    /// Directories this walk created.
    pub created: usize,
}

/// Is `st` of file type `t` (`S_IFDIR`, `S_IFREG`, `S_IFLNK`...)?
pub fn is_type(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == t
}

/// Only root can change this directory's entries (sticky: only their owners).
pub fn dir_is_trusted(st: &FileStat) -> bool {
    dir_is_trusted_for(st, 0)
}

/// Only root or `uid` can change this directory's entries (sticky: only
/// their owners).
pub fn dir_is_trusted_for(st: &FileStat, uid: u32) -> bool {
    (st.st_uid == 0 || st.st_uid == uid) && (st.st_mode & 0o022 == 0 || st.st_mode & 0o1000 != 0)
}

/// Open the directory `path` (absolute) without following an untrusted
/// symlink anywhere on the way. See [`Walk`].
pub fn open_dir(path: &Path, opts: Walk) -> Result<Opened, WalkError> {
    if !path.is_absolute() {
        return Err(WalkError::Errno {
            path: path.to_path_buf(),
            errno: Errno::EINVAL,
        });
    }
    let mut links = 0u32;
    let mut created = 0usize;
    // The components still to walk, in reverse (pop from the end).
    let mut todo: Vec<OsString> = components_rev(path);
    let root_path = PathBuf::from("/");
    let mut cur =
        nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(|errno| WalkError::Errno {
            path: root_path.clone(),
            errno,
        })?;
    // The path of `cur` as walked (for messages and relative links).
    let mut here = root_path;
    while let Some(name) = todo.pop() {
        let last = todo.is_empty();
        let at = here.join(&name);
        if name.as_bytes() == b".." {
            let fd = openat(&cur, "..", DIR_FLAGS, Mode::empty())
                .map_err(|errno| WalkError::Errno { path: at, errno })?;
            cur = fd;
            here.pop();
            continue;
        }
        if let Some(uid) = opts.require_trusted {
            let st = fstat(&cur).map_err(|errno| WalkError::Errno {
                path: here.clone(),
                errno,
            })?;
            if !dir_is_trusted_for(&st, uid) {
                return Err(WalkError::UntrustedDir {
                    path: here,
                    uid: st.st_uid,
                    mode: st.st_mode & 0o7777,
                });
            }
        }
        match openat(&cur, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => {
                cur = fd;
                here = at;
            }
            Err(Errno::ENOENT) if opts.create.is_some() => {
                let c = opts.create.unwrap_or(Create {
                    mode: 0o755,
                    owner: None,
                });
                match mkdirat(&cur, name.as_os_str(), Mode::from_bits_truncate(c.mode)) {
                    Ok(()) => created += 1,
                    Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(WalkError::Errno { path: at, errno }),
                }
                let fd =
                    openat(&cur, name.as_os_str(), DIR_FLAGS, Mode::empty()).map_err(|errno| {
                        match errno {
                            Errno::ELOOP => WalkError::UntrustedLink { link: at.clone() },
                            Errno::ENOTDIR => WalkError::NotADirectory { path: at.clone() },
                            _ => WalkError::Errno {
                                path: at.clone(),
                                errno,
                            },
                        }
                    })?;
                if let Some((uid, gid)) = c.owner {
                    fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(
                        |errno| WalkError::Errno {
                            path: at.clone(),
                            errno,
                        },
                    )?;
                }
                cur = fd;
                here = at;
            }
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let st = fstatat(&cur, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(
                    |errno| WalkError::Errno {
                        path: at.clone(),
                        errno,
                    },
                )?;
                if !is_type(&st, SFlag::S_IFLNK) {
                    return Err(WalkError::NotADirectory { path: at });
                }
                let dir_st = fstat(&cur).map_err(|errno| WalkError::Errno {
                    path: here.clone(),
                    errno,
                })?;
                links += 1;
                if (last && !opts.follow_last)
                    || st.st_uid != 0
                    || !dir_is_trusted(&dir_st)
                    || links > MAX_LINKS
                {
                    return Err(WalkError::UntrustedLink { link: at });
                }
                let target =
                    readlinkat(&cur, name.as_os_str()).map_err(|errno| WalkError::Errno {
                        path: at.clone(),
                        errno,
                    })?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    cur = nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(|errno| {
                        WalkError::Errno {
                            path: PathBuf::from("/"),
                            errno,
                        }
                    })?;
                    here = PathBuf::from("/");
                }
                todo.extend(components_rev(&target));
            }
            Err(errno) => return Err(WalkError::Errno { path: at, errno }),
        }
    }
    Ok(Opened { fd: cur, created })
}

/// The normal and `..` components of `p`, last first.
fn components_rev(p: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from_vec(b"..".to_vec())),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn plain_and_created_dirs() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a/b/c");
        let opts = Walk {
            create: Some(Create {
                mode: 0o700,
                owner: None,
            }),
            require_trusted: None,
            follow_last: false,
        };
        let o = open_dir(&p, opts).unwrap();
        assert_eq!(o.created, 3);
        assert!(p.is_dir());
        let o = open_dir(&p, Walk::default()).unwrap();
        assert_eq!(o.created, 0);
    }

    #[test]
    fn untrusted_intermediate_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        std::fs::create_dir_all(t.path().join("elsewhere/share")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), home.join(".local")).unwrap();
        if root() {
            // A link the harness user made: owned by it.
            std::os::unix::fs::lchown(home.join(".local"), Some(65534), Some(65534)).unwrap();
        }
        let e = open_dir(&home.join(".local/share/opencode"), Walk::default()).unwrap_err();
        assert!(matches!(e, WalkError::UntrustedLink { .. }), "{e:?}");
        let opts = Walk {
            create: Some(Create {
                mode: 0o755,
                owner: None,
            }),
            require_trusted: None,
            follow_last: false,
        };
        let e = open_dir(&home.join(".local/share/opencode"), opts).unwrap_err();
        assert!(matches!(e, WalkError::UntrustedLink { .. }), "{e:?}");
        assert!(!t.path().join("elsewhere/share/opencode").exists());
    }

    #[test]
    fn trusted_symlink_is_followed() {
        if !root() {
            return;
        }
        // Root's own link in a root-only directory: followed.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("real/x")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("alias")).unwrap();
        let md = std::fs::metadata(t.path()).unwrap();
        assert_eq!(md.uid(), 0);
        let o = open_dir(&t.path().join("alias/x"), Walk::default()).unwrap();
        let st = fstat(&o.fd).unwrap();
        assert_eq!(
            st.st_ino,
            std::fs::metadata(t.path().join("real/x")).unwrap().ino()
        );
    }

    #[test]
    fn require_trusted_rejects_a_world_writable_ancestor() {
        let t = tempfile::tempdir().unwrap();
        let open = t.path().join("open");
        std::fs::create_dir_all(open.join("state")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let opts = Walk {
            create: None,
            require_trusted: Some(0),
            follow_last: false,
        };
        let e = open_dir(&open.join("state"), opts).unwrap_err();
        assert!(matches!(e, WalkError::UntrustedDir { .. }), "{e:?}");
    }
}
