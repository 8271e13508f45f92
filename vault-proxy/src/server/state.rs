//! The proxy's durable state: one `STATE_DIR/<route>.json` per OAuth route,
//! holding the session the proxy owns after its first refresh.
//!
//! Refresh tokens rotate and are single-use, so a rotated token that is lost
//! (crash, restart) ends the session. Each save therefore writes a temp file,
//! fsyncs it, renames it over the old one and fsyncs the directory, all
//! before the new token is used; files are mode 0600 in a 0700 directory.
//!
//! The record names the seed it descends from (SHA-256 of the seed's refresh
//! token), which is how a start tells "the same login I already rotated" (keep
//! the stored session) from "a newer login on the host" (take the seed). See
//! [`crate::oauth::merge_seed`].

use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One route's stored OAuth session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSession {
    /// Hex SHA-256 of the seed refresh token this session descends from.
    pub seed_sha256: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at_ms: u64,
}

/// A state operation failed: the call, the path, the cause.
#[derive(Debug)]
pub enum StateError {
    CreateDir {
        path: PathBuf,
        err: io::Error,
    },
    NotADirectory {
        path: PathBuf,
    },
    /// Other uids could enter it, or another uid owns it.
    Exposed {
        path: PathBuf,
        mode: u32,
        owner: u32,
    },
    Read {
        path: PathBuf,
        err: io::Error,
    },
    Parse {
        path: PathBuf,
        err: serde_json::Error,
    },
    Write {
        call: &'static str,
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::CreateDir { path, err } => {
                write!(
                    f,
                    "mkdir {}: {err}. Fix: make state_dir writable by the proxy's uid",
                    path.display()
                )
            }
            StateError::NotADirectory { path } => {
                write!(f, "state_dir {} is not a directory", path.display())
            }
            StateError::Exposed { path, mode, owner } => write!(
                f,
                "state_dir {} is mode {mode:o} owned by uid {owner}: it must be 0700 and owned by the proxy's uid {}, it will hold the rotated OAuth tokens. Fix: chown the directory to the proxy's uid and chmod 700",
                path.display(),
                crate::sys::uid()
            ),
            StateError::Read { path, err } => write!(f, "read {}: {err}", path.display()),
            StateError::Parse { path, err } => write!(
                f,
                "parse {}: {err}. Fix: remove the file to start again from the config's seed",
                path.display()
            ),
            StateError::Write { call, path, err } => write!(f, "{call} {}: {err}", path.display()),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::CreateDir { err, .. }
            | StateError::Read { err, .. }
            | StateError::Write { err, .. } => Some(err),
            StateError::Parse { err, .. } => Some(err),
            StateError::NotADirectory { .. } | StateError::Exposed { .. } => None,
        }
    }
}

/// Hex SHA-256 of a seed refresh token (identifies the login, reveals nothing).
pub fn seed_sha256(refresh: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, refresh.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// Open `dir`, creating it 0700 if missing; refuse one other uids can
    /// enter or that another uid owns.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                let mode = m.permissions().mode() & 0o7777;
                if mode & 0o077 != 0 || m.uid() != crate::sys::uid() {
                    return Err(StateError::Exposed {
                        path: dir.to_path_buf(),
                        mode,
                        owner: m.uid(),
                    });
                }
            }
            Ok(_) => {
                return Err(StateError::NotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|err| StateError::CreateDir {
                        path: dir.to_path_buf(),
                        err,
                    })?;
            }
            Err(err) => {
                return Err(StateError::Read {
                    path: dir.to_path_buf(),
                    err,
                });
            }
        }
        Ok(StateStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `STATE_DIR/<route>.json`.
    pub fn path(&self, route: &str) -> PathBuf {
        self.dir.join(format!("{route}.json"))
    }

    /// The stored session, if any.
    pub fn load(&self, route: &str) -> Result<Option<StoredSession>, StateError> {
        let path = self.path(route);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(StateError::Read { path, err }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|err| StateError::Parse { path, err })
    }

    /// Store durably: temp file (0600), fsync, rename, fsync the directory.
    pub fn save(&self, route: &str, s: &StoredSession) -> Result<(), StateError> {
        let path = self.path(route);
        let tmp = self.dir.join(format!(".{route}.json.tmp"));
        let werr = |call: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |err| StateError::Write { call, path: p, err }
        };
        let text = serde_json::to_vec(s).map_err(|e| StateError::Write {
            call: "serialize",
            path: path.clone(),
            err: io::Error::other(e),
        })?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(werr("open", &tmp))?;
        // A temp file left by an older run may have other bits.
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(werr("fchmod", &tmp))?;
        f.write_all(&text).map_err(werr("write", &tmp))?;
        f.sync_all().map_err(werr("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(werr("rename", &path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(werr("fsync", &self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_with_mode_0600() {
        let d = tempfile::tempdir().unwrap();
        let st = StateStore::open(&d.path().join("state")).unwrap();
        let s = StoredSession {
            seed_sha256: seed_sha256("r0"),
            access_token: Secret::new("a1"),
            refresh_token: Secret::new("r1"),
            expires_at_ms: 5,
        };
        st.save("anthropic", &s).unwrap();
        assert_eq!(st.load("anthropic").unwrap(), Some(s));
        let m = fs::metadata(st.path("anthropic")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let dm = fs::metadata(st.dir()).unwrap();
        assert_eq!(dm.permissions().mode() & 0o777, 0o700);
        assert_eq!(st.load("other").unwrap(), None);
    }

    #[test]
    fn a_state_dir_others_can_enter_is_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = StateStore::open(d.path()).unwrap_err().to_string();
        assert!(e.contains("mode 755") && e.contains("chmod 700"), "{e}");
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
        StateStore::open(d.path()).unwrap();
    }

    #[test]
    fn corrupt_state_names_the_file_and_the_fix() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let st = StateStore::open(d.path()).unwrap();
        fs::write(st.path("x"), "{").unwrap();
        let e = st.load("x").unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("remove the file"), "{e}");
    }

    #[test]
    fn seed_hash_is_sha256_hex() {
        assert_eq!(
            seed_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
