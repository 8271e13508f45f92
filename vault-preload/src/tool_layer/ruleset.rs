//! Building a tool-layer ruleset: a Landlock ruleset fd that grants what the
//! base layer grants except the vault (`policy_core::walk` decides; this
//! module lists directories and adds rules with raw system calls).
//!
//! Handled rights: `Access::ALL` ∩ what the kernel's ABI supports; scopes
//! `SIGNAL | ABSTRACT_UNIX_SOCKET` from ABI 6. Its own module because it is
//! the expensive part (a walk over the vault's ancestors), which the cache
//! exists to avoid; with a [`Recorder`] it notes what the result depends on.

use super::error::LandlockError;
use super::recorder::Recorder;
use crate::state::State;
use crate::sys;
use core::ffi::c_int;
use core::mem::MaybeUninit;
use policy_core::pathbuf::FixedPath;
use policy_core::walk::{DirEntry, EntryKind, FsView, RuleSink, tool_layer};
use policy_core::{Access, FileId};

struct RawFs;

impl FsView for RawFs {
    type Error = LandlockError;
    fn list(
        &mut self,
        dir: &[u8],
        f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), LandlockError>,
    ) -> Result<(), LandlockError> {
        let Some(d) = FixedPath::from_bytes(dir) else {
            return Ok(()); // unnameable: no rules below it, so no access
        };
        let dfd = sys::openat(
            libc::AT_FDCWD,
            d.as_bytes_with_nul(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        );
        if dfd < 0 {
            // Missing or unlistable ancestor: no sibling rules (deny by default).
            return Ok(());
        }
        let mut buf = [0u8; 8192];
        let mut res = Ok(());
        'outer: loop {
            let n = sys::getdents64(dfd, &mut buf);
            if n < 0 {
                res = Err(LandlockError {
                    what: "listing a vault ancestor",
                    errno: (-n) as i32,
                });
                break;
            }
            if n == 0 {
                break;
            }
            for name_nul in sys::dirents(&buf[..n as usize]) {
                let name = &name_nul[..name_nul.len() - 1];
                if name == b"." || name == b".." {
                    continue;
                }
                let mut s = MaybeUninit::uninit();
                let Some(s) = sys::fstatat(dfd, name_nul, libc::AT_SYMLINK_NOFOLLOW, &mut s) else {
                    continue; // vanished
                };
                let kind = match s.st_mode & libc::S_IFMT {
                    libc::S_IFDIR => EntryKind::Dir,
                    libc::S_IFLNK => EntryKind::Symlink,
                    _ => EntryKind::Other,
                };
                // `st_nlink` is a u64 on x86_64 and a u32 on aarch64.
                #[allow(clippy::useless_conversion)]
                let nlink = u64::from(s.st_nlink);
                let e = DirEntry {
                    name,
                    kind,
                    nlink,
                    id: FileId {
                        dev: s.st_dev,
                        ino: s.st_ino,
                    },
                };
                if let Err(e) = f(&e) {
                    res = Err(e);
                    break 'outer;
                }
            }
        }
        sys::close(dfd);
        res
    }
}

struct RawSink<'a> {
    ruleset: c_int,
    handled: Access,
    rec: Option<&'a mut Recorder>,
}

impl RuleSink for RawSink<'_> {
    type Error = LandlockError;
    fn add(
        &mut self,
        path: &[u8],
        is_dir: Option<bool>,
        access: Access,
    ) -> Result<(), LandlockError> {
        let mut a = access.intersect(self.handled);
        if a.is_empty() {
            return Ok(());
        }
        let Some(p) = FixedPath::from_bytes(path) else {
            return Ok(());
        };
        // Siblings found by the walk: never follow a symlink swapped in since.
        let nofollow = if is_dir.is_some() {
            libc::O_NOFOLLOW
        } else {
            0
        };
        let fd = sys::openat(
            libc::AT_FDCWD,
            p.as_bytes_with_nul(),
            libc::O_PATH | libc::O_CLOEXEC | nofollow,
            0,
        );
        if fd < 0 {
            if is_dir.is_none()
                && let Some(rec) = self.rec.as_deref_mut()
            {
                if fd == -libc::ENOENT {
                    // No rule; the cache is rebuilt once the path appears.
                    rec.record_absent(path);
                } else {
                    rec.overflow = true; // cannot tell what it will be: do not cache
                }
            }
            return Ok(()); // a base path that does not exist (or vanished): no rule
        }
        let mut s = MaybeUninit::uninit();
        let s = match sys::fstat(fd, &mut s) {
            Ok(s) => s,
            Err(errno) => {
                sys::close(fd);
                return Err(LandlockError {
                    what: "fstat of a rule path",
                    errno,
                });
            }
        };
        if is_dir.is_none()
            && let Some(rec) = self.rec.as_deref_mut()
        {
            rec.record(path, s, false);
        }
        let fmt = s.st_mode & libc::S_IFMT;
        let dir = fmt == libc::S_IFDIR;
        if fmt == libc::S_IFLNK || is_dir.is_some_and(|d| d != dir) {
            sys::close(fd);
            return Ok(()); // changed under us: no rule
        }
        if !dir {
            a = a.intersect(Access::FILE_ONLY);
        }
        let r = if a.is_empty() {
            0
        } else {
            sys::landlock_add_path_rule(self.ruleset, fd, a.bits())
        };
        sys::close(fd);
        if r < 0 {
            return Err(LandlockError {
                what: "landlock_add_rule",
                errno: -r,
            });
        }
        Ok(())
    }
}

/// The Landlock ABI of this kernel (0: none).
pub fn abi() -> u32 {
    let v = sys::landlock_abi();
    if v < 0 { 0 } else { v as u32 }
}

/// Build a fresh tool-layer ruleset (an fd), recording its dependencies in `rec`.
pub(super) fn build(st: &State, rec: Option<&mut Recorder>) -> Result<c_int, LandlockError> {
    let abi = abi();
    if abi == 0 {
        return Err(LandlockError {
            what: "Landlock is not available on this kernel",
            errno: libc::EOPNOTSUPP,
        });
    }
    let handled = Access::ALL.intersect(Access::supported_by_abi(abi));
    let attr = sys::RulesetAttr {
        handled_access_fs: handled.bits(),
        handled_access_net: 0,
        scoped: if abi >= 6 {
            sys::LANDLOCK_SCOPE_SIGNAL | sys::LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
        } else {
            0
        },
    };
    let size = if abi >= 6 {
        24
    } else if abi >= 4 {
        16
    } else {
        8
    };
    let rs = sys::landlock_create_ruleset(&attr, size);
    if rs < 0 {
        return Err(LandlockError {
            what: "landlock_create_ruleset",
            errno: -rs,
        });
    }
    // The vault's identities: built on first use; `None` only on re-entry
    // while building them (cannot happen here: their build makes no hook call).
    let Some(vault_ids) = st.identities().map(|i| i.vault_ids()) else {
        sys::close(rs);
        return Err(LandlockError {
            what: "reading the vault entries' identities (re-entered)",
            errno: libc::EDEADLK,
        });
    };
    // With a recorder, the walk's view and sink share it, borrowed in turn.
    let r = match rec {
        Some(r) => {
            let cell = core::cell::RefCell::new(r);
            tool_layer(
                &st.policy,
                vault_ids,
                &mut SharedFs(&cell),
                &mut SharedSink(&cell, rs, handled),
            )
        }
        None => tool_layer(
            &st.policy,
            vault_ids,
            &mut RawFs,
            &mut RawSink {
                ruleset: rs,
                handled,
                rec: None,
            },
        ),
    };
    if let Err(e) = r {
        sys::close(rs);
        return Err(e);
    }
    Ok(rs)
}

/// Never happens (the view releases the recorder before calling the sink);
/// an error rather than a panic if it ever did.
const BORROW: LandlockError = LandlockError {
    what: "internal: recorder borrowed twice",
    errno: libc::EINVAL,
};

/// Adapters that share one recorder between the walk's view and sink.
struct SharedFs<'a, 'b>(&'a core::cell::RefCell<&'b mut Recorder>);
struct SharedSink<'a, 'b>(&'a core::cell::RefCell<&'b mut Recorder>, c_int, Access);

impl FsView for SharedFs<'_, '_> {
    type Error = LandlockError;
    fn list(
        &mut self,
        dir: &[u8],
        f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), LandlockError>,
    ) -> Result<(), LandlockError> {
        // The sink is called from inside `f`: hold the borrow only to record.
        match self.0.try_borrow_mut() {
            Ok(mut r) => record_dir(&mut r, dir),
            Err(_) => return Err(BORROW),
        }
        RawFs.list(dir, f)
    }
}

fn record_dir(rec: &mut Recorder, dir: &[u8]) {
    let Some(d) = FixedPath::from_bytes(dir) else {
        rec.overflow = true;
        return;
    };
    let mut s = MaybeUninit::uninit();
    match sys::fstatat(libc::AT_FDCWD, d.as_bytes_with_nul(), 0, &mut s) {
        Some(s) => rec.record(dir, s, true),
        None => rec.overflow = true,
    }
}

impl RuleSink for SharedSink<'_, '_> {
    type Error = LandlockError;
    fn add(
        &mut self,
        path: &[u8],
        is_dir: Option<bool>,
        access: Access,
    ) -> Result<(), LandlockError> {
        let Ok(mut r) = self.0.try_borrow_mut() else {
            return Err(BORROW);
        };
        let mut sink = RawSink {
            ruleset: self.1,
            handled: self.2,
            rec: Some(&mut **r),
        };
        sink.add(path, is_dir, access)
    }
}
