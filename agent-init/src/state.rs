//! Step 3, recording the harness identity: the contract with the preload.
//!
//! The state directory is [`policy::STATE_DIR`] (`/run/agent-vault`,
//! root-owned, 0755) when agent-init runs as root, else
//! [`policy::host_state_dir`]`(uid)`. In it:
//! - `policy.toml` (0644): [`Policy::to_effective_toml`] of the policy after
//!   [`Policy::add_probe`]`(state/probe)`: every path expanded, so no
//!   process's environment can move the vault;
//! - `probe/` (0755, empty): the tool-layer probe (a vault entry);
//! - the audit file of `[audit] sink` when it is a file: parents created,
//!   mode 0622, root-owned when root; processes append to it;
//! - `harness.pid` (0644): written by agent-init after the fork and before
//!   the harness execs (the child waits on a pipe), so it always names the
//!   live harness.
//!
//! Every file is written to a temporary name and renamed into place.

use nix::errno::Errno;
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{Gid, Uid, fchown};
use policy::model::AuditSink;
use policy::{Policy, STATE_DIR, host_state_dir};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files of the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
    pub root: bool,
}

/// What failed, naming the call and path.
#[derive(Debug)]
pub enum RecordError {
    /// A call on a state file failed.
    Call {
        call: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    /// The state directory exists but someone else owns it (or it is a symlink).
    Untrusted { path: PathBuf, why: String },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Call { call, path, err } => {
                write!(f, "{call} {}: {err}", path.display())
            }
            RecordError::Untrusted { path, why } => write!(
                f,
                "state directory {} cannot be trusted: {why}. Fix: remove it (agent-init recreates it)",
                path.display()
            ),
        }
    }
}

fn io<'a>(call: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RecordError + 'a {
    move |err| RecordError::Call {
        call,
        path: path.to_path_buf(),
        err,
    }
}

impl StateDir {
    /// The state directory for this process.
    pub fn for_process() -> StateDir {
        let uid = nix::unistd::geteuid().as_raw();
        if uid == 0 {
            StateDir {
                dir: PathBuf::from(STATE_DIR),
                root: true,
            }
        } else {
            StateDir {
                dir: host_state_dir(uid),
                root: false,
            }
        }
    }

    pub fn probe(&self) -> PathBuf {
        self.dir.join("probe")
    }
    pub fn policy_file(&self) -> PathBuf {
        self.dir.join("policy.toml")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("harness.pid")
    }

    /// Create the directory (0755, ours), the probe, the effective policy
    /// and the audit file. `policy` must already have the probe added.
    pub fn prepare(&self, policy: &Policy) -> Result<(), RecordError> {
        make_dir(&self.dir, self.root)?;
        make_dir(&self.probe(), self.root)?;
        write_atomic(
            &self.policy_file(),
            policy.to_effective_toml().as_bytes(),
            0o644,
        )?;
        if let AuditSink::File(f) = &policy.audit {
            prepare_audit(f, self.root)?;
        }
        Ok(())
    }

    /// Write `harness.pid`.
    pub fn write_pid(&self, pid: i32) -> Result<(), RecordError> {
        write_atomic(&self.pid_file(), format!("{pid}\n").as_bytes(), 0o644)
    }
}

/// Create `dir` (and parents) 0755; check an existing one is ours and not a
/// symlink, and reset its mode.
fn make_dir(dir: &Path, root: bool) -> Result<(), RecordError> {
    if let Some(parent) = dir.parent() {
        if !parent.exists() {
            std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("mkdir", dir)(e)),
    }
    let md = std::fs::symlink_metadata(dir).map_err(io("lstat", dir))?;
    if !md.is_dir() {
        return Err(RecordError::Untrusted {
            path: dir.to_path_buf(),
            why: "it is not a directory (a symlink?)".into(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me {
        if root {
            std::os::unix::fs::lchown(dir, Some(0), Some(0)).map_err(io("chown", dir))?;
        } else {
            return Err(RecordError::Untrusted {
                path: dir.to_path_buf(),
                why: format!("owned by uid {}, not {me}", md.uid()),
            });
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io("chmod", dir))?;
    Ok(())
}

/// Write `data` to `path` via a temporary file and rename.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), RecordError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(data).map_err(io("write", &tmp))?;
    fchmod(&f, Mode::from_bits_truncate(mode)).map_err(|e| io("chmod", &tmp)(e.into()))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

/// The audit file: parents 0755, the file 0622 (anyone appends, only the
/// owner reads), root-owned when root.
fn prepare_audit(file: &Path, root: bool) -> Result<(), RecordError> {
    if let Some(parent) = file.parent() {
        if !parent.exists() {
            std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
            let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755));
        }
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o622)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(file)
        .map_err(io("open", file))?;
    if root {
        fchown(&f, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
            .map_err(|e: Errno| io("chown", file)(e.into()))?;
    }
    fchmod(&f, Mode::from_bits_truncate(0o622)).map_err(|e| io("chmod", file)(e.into()))?;
    Ok(())
}
