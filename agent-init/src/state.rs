//! Step 3, recording the harness identity: the contract with the preload.
//!
//! The names, modes and readers of every file are the contract in
//! [`policy::layout`]; what each file holds is [`Policy::session_files`] and
//! [`policy::session::harness_pid_file`]. The state directory is
//! [`policy::STATE_DIR`] (`/run/agent-vault`, root-owned, 0755) when
//! agent-init runs as root, else [`policy::host_state_dir`]`(uid)`. This
//! module does the privileged half: it writes those files in that order,
//! creates the audit file of `[audit] sink` when it is a file (parents
//! created, root-owned when root; processes append to it), and writes
//! `harness.pid` (the harness's pid and start time) after the fork and
//! before the harness execs (the child waits on a pipe), so it always names
//! the live harness; it removes a leftover `harness.pid` first and, once
//! the harness has exited, removes its own ([`StateDir::remove_pid`]).
//!
//! Every file is written to a temporary name and renamed into place, all
//! relative to a directory fd opened without following links: the harness
//! user must not be able to make root write, chown or chmod through a link
//! it planted. Every directory above the state directory must be trusted
//! (root's, or in host mode ours, and not writable by others unless
//! sticky), and an existing state directory must be ours and writable by
//! nobody else, or agent-init refuses to start (it would be trusting what
//! someone else put in it).

use crate::error::{Call, CallResult};
use crate::safe_path::{self, Create, Walk, WalkError};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};
use policy::layout::{
    self, AUDIT_FILE, HARNESS_PID, HarnessRecord, POLICY_TOML, PROBE_DIR, STATE_DIR_MODE,
};
use policy::session::{self, SessionFile};
use policy::{AuditSink, Policy};
use std::fmt;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The files of the state directory.
#[derive(Debug)]
pub struct StateDir {
    pub dir: PathBuf,
    pub root: bool,
    /// The directory, once [`StateDir::prepare`] opened it.
    fd: Option<OwnedFd>,
}

/// What failed, naming the call and path.
#[derive(Debug)]
pub enum RecordError {
    /// A call on a state file failed.
    Call(Call<std::io::Error>),
    /// The state directory exists but someone else owns it (or it is a symlink).
    Untrusted { path: PathBuf, why: String },
    /// The audit socket could not be bound, or the audit file opened.
    AuditSocket(crate::audit_sink::AuditSinkError),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Call(c) => write!(f, "{c}"),
            RecordError::Untrusted { path, why } => write!(
                f,
                "state directory {} cannot be trusted: {why}. Fix: remove it (agent-init recreates it), or make it and its parents writable only by root (a parent may be sticky, like a 1777 tmpfs)",
                path.display()
            ),
            RecordError::AuditSocket(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordError::Call(c) => Some(&c.source),
            RecordError::Untrusted { .. } => None,
            // Its message is this one's: its source is the next link.
            RecordError::AuditSocket(e) => e.source(),
        }
    }
}

impl From<Call<std::io::Error>> for RecordError {
    fn from(c: Call<std::io::Error>) -> RecordError {
        RecordError::Call(c)
    }
}

/// nix's errno, reported as the I/O error it is (`... (os error N)`).
impl From<Call<Errno>> for RecordError {
    fn from(c: Call<Errno>) -> RecordError {
        RecordError::Call(c.map(std::io::Error::from))
    }
}

impl StateDir {
    /// The state directory for this process.
    pub fn for_process() -> StateDir {
        let uid = nix::unistd::geteuid().as_raw();
        StateDir::at(session::state_dir_for(uid), uid == 0)
    }

    /// A state directory at `dir` (tests use a private one).
    pub fn at(dir: PathBuf, root: bool) -> StateDir {
        StateDir {
            dir,
            root,
            fd: None,
        }
    }

    pub fn probe(&self) -> PathBuf {
        self.dir.join(PROBE_DIR.name)
    }
    pub fn policy_file(&self) -> PathBuf {
        self.dir.join(POLICY_TOML.name)
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join(HARNESS_PID.name)
    }

    /// Create the directory (0755, ours), the probe, the effective policy
    /// and the audit file. `policy` must already have the probe added.
    pub fn prepare(&mut self, policy: &Policy) -> Result<(), RecordError> {
        let dir = open_state_dir(&self.dir)?;
        // An earlier run's record, should one be left: until this run's
        // harness is recorded, no process is the harness.
        match unlinkat(dir.as_fd(), HARNESS_PID.name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Call::at("unlink", &self.pid_file(), e).into()),
        }
        // In [`Policy::session_files`]'s order: the probe (the preload
        // detects the tool layer by reading a file in it: a vault entry's
        // directories stay listable under the tool layer), the effective
        // policy, and the same policy as the image the preload reads.
        for f in policy.session_files() {
            match f.file.dir {
                None => write_file(dir.as_fd(), &self.dir, &f)?,
                Some(sub) => {
                    let subdir = make_subdir(dir.as_fd(), &self.dir, sub)?;
                    write_file(subdir.as_fd(), &self.dir.join(sub.name), &f)?;
                }
            }
        }
        self.fd = Some(dir);
        if let AuditSink::File(f) = &policy.audit {
            prepare_audit(f, self.root)?;
        }
        Ok(())
    }

    /// Write `harness.pid`: the harness's pid and start time (read from
    /// `/proc/<pid>/stat` now, while the child waits to exec).
    pub fn write_pid(&self, pid: i32) -> Result<HarnessRecord, RecordError> {
        let dir = self.dir_fd()?;
        let start = start_time(pid)?;
        let record = HarnessRecord { pid, start };
        write_file(dir, &self.dir, &session::harness_pid_file(record))?;
        Ok(record)
    }

    /// `launched/` ([`layout::LAUNCHED_DIR`]), made (0755, ours) and
    /// emptied: an earlier run's records name processes that are gone, and
    /// a later process with one of their pids must not find one.
    pub fn launched_dir(&self) -> Result<(PathBuf, OwnedFd), RecordError> {
        let dir = self.dir_fd()?;
        let path = self.dir.join(layout::LAUNCHED_DIR.name);
        let fd = make_subdir(dir, &self.dir, layout::LAUNCHED_DIR)?;
        for e in crate::sys::read_dir_fd(fd.as_fd()).call_at("list", &path)? {
            match unlinkat(fd.as_fd(), e.name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e2) => return Err(Call::at("unlink", &path.join(&e.name), e2).into()),
            }
        }
        Ok((path, fd))
    }

    /// Remove `harness.pid`: the harness has exited, and the state
    /// directory no longer names a live session (a later process with its
    /// pid must not be taken for it, nor this directory for a live one).
    pub fn remove_pid(&self) -> Result<(), RecordError> {
        let dir = self.dir_fd()?;
        match unlinkat(dir, HARNESS_PID.name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Call::at("unlink", &self.pid_file(), e).into()),
        }
    }

    fn dir_fd(&self) -> Result<BorrowedFd<'_>, RecordError> {
        match &self.fd {
            Some(fd) => Ok(fd.as_fd()),
            None => Err(Call::at("open", &self.dir, Errno::EBADF).into()),
        }
    }
}

/// Field 22 of `/proc/<pid>/stat`: when `pid` started, in clock ticks
/// since boot (what tells it from a later process with the same pid).
fn start_time(pid: i32) -> Result<u64, RecordError> {
    // /proc must be this pid namespace's, or /proc/<pid> is another process.
    let own = Path::new("/proc/self/stat");
    let me = std::fs::read(own).call_at("read", own)?;
    let first = me.split(|&b| b == b' ').next().unwrap_or_default();
    if first != std::process::id().to_string().as_bytes() {
        return Err(Call::at(
            "check",
            own,
            std::io::Error::other(format!(
            "it names pid {}, not {}: /proc is another pid namespace's; mount a proc for this one (unshare --mount-proc, or run agent-init as the container's PID 1)",
            String::from_utf8_lossy(first),
                std::process::id()
            )),
        )
        .into());
    }
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = std::fs::read(&path).call_at("read", &path)?;
    layout::stat_start_time(&stat).ok_or_else(|| {
        Call::at(
            "parse",
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no start time (field 22)"),
        )
        .into()
    })
}

fn walk_err(e: WalkError) -> RecordError {
    match e {
        WalkError::UntrustedLink { link } => RecordError::Untrusted {
            path: link,
            why: "it is a symlink".into(),
        },
        WalkError::NotADirectory { path } => RecordError::Untrusted {
            path,
            why: "it is not a directory".into(),
        },
        WalkError::UntrustedDir { path, uid, mode } => RecordError::Untrusted {
            path,
            why: format!(
                "this ancestor is owned by uid {uid} with mode {mode:04o}: others could rename the state directory"
            ),
        },
        WalkError::Errno { path, errno } => Call::at("open", &path, errno).into(),
    }
}

fn is_type(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == t
}

/// Open (creating when missing) the state directory: every ancestor
/// trusted, the directory itself a real directory, ours, and writable by
/// nobody else; then mode 0755.
fn open_state_dir(dir: &Path) -> Result<OwnedFd, RecordError> {
    let me = nix::unistd::geteuid().as_raw();
    let opened = safe_path::open_dir(
        dir,
        Walk {
            create: Some(Create {
                mode: STATE_DIR_MODE,
                owner: None,
            }),
            require_trusted: Some(me),
            follow_last: false,
        },
    )
    .map_err(walk_err)?;
    let st = fstat(&opened.fd).call_at("fstat", dir)?;
    if st.st_uid != me {
        return Err(RecordError::Untrusted {
            path: dir.to_path_buf(),
            why: format!("owned by uid {}, not {me}", st.st_uid),
        });
    }
    if st.st_mode & 0o022 != 0 {
        return Err(RecordError::Untrusted {
            path: dir.to_path_buf(),
            why: format!(
                "mode {:04o}: others could have put files in it",
                st.st_mode & 0o7777
            ),
        });
    }
    fchmod(&opened.fd, Mode::from_bits_truncate(STATE_DIR_MODE)).call_at("chmod", dir)?;
    Ok(opened.fd)
}

/// `dir/sub`: a real directory of ours, with `sub`'s mode.
fn make_subdir(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    sub: layout::StateSubdir,
) -> Result<OwnedFd, RecordError> {
    let name = sub.name;
    let path = dir_path.join(name);
    match mkdirat(dir, name, Mode::from_bits_truncate(sub.mode)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Call::at("mkdir", &path, e).into()),
    }
    let fd = openat(dir, name, safe_path::DIR_FLAGS, Mode::empty()).map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => RecordError::Untrusted {
            path: path.clone(),
            why: "it is not a directory (a symlink?)".into(),
        },
        e => Call::at("open", &path, e).into(),
    })?;
    let st = fstat(&fd).call_at("fstat", &path)?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        return Err(RecordError::Untrusted {
            path,
            why: format!("owned by uid {}, not {me}", st.st_uid),
        });
    }
    fchmod(&fd, Mode::from_bits_truncate(sub.mode)).call_at("chmod", &path)?;
    Ok(fd)
}

/// Write a session file into `dir` (the directory it belongs in).
fn write_file(dir: BorrowedFd<'_>, dir_path: &Path, f: &SessionFile) -> Result<(), RecordError> {
    write_at(dir, dir_path, f.file.name, &f.bytes, f.file.mode)
}

/// Write `data` to `dir/name` via a temporary name and rename, all
/// relative to `dir`.
pub fn write_at(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), RecordError> {
    let tmp = format!(".{name}.tmp.{}", std::process::id());
    let tmp_path = dir_path.join(&tmp);
    let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .call_at("create", &tmp_path)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data).call_at("write", &tmp_path)?;
    fchmod(&f, Mode::from_bits_truncate(mode)).call_at("chmod", &tmp_path)?;
    drop(f);
    renameat(dir, tmp.as_str(), dir, name).map_err(|e| {
        let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        Call::at("rename", &dir_path.join(name), e).into()
    })
}

/// The audit file: parents 0755, the file [`AUDIT_FILE`]'s mode 0600
/// (agent-init alone writes it, [`crate::audit_sink`]; only its owner
/// reads it), root-owned when root. Opened relative to its parent
/// without following links; an existing name that is not a regular file
/// with exactly one link is refused before any chown or chmod (a hard link
/// planted there would otherwise make, say, `/etc/shadow` ours).
fn prepare_audit(file: &Path, root: bool) -> Result<(), RecordError> {
    let (Some(parent), Some(name)) = (file.parent(), file.file_name()) else {
        return Err(Call::at("open", file, Errno::EINVAL).into());
    };
    let opened = safe_path::open_dir(
        parent,
        Walk {
            create: Some(Create {
                mode: 0o755,
                owner: None,
            }),
            require_trusted: None,
            follow_last: true,
        },
    )
    .map_err(walk_err)?;
    let pfd = opened.fd;
    if let Ok(st) = fstatat(&pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        check_audit_file(&st, file)?;
    }
    let fd = openat(
        &pfd,
        name,
        OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(AUDIT_FILE.mode),
    )
    .map_err(|e| match e {
        Errno::ELOOP => RecordError::Untrusted {
            path: file.to_path_buf(),
            why: "the audit file is a symlink".into(),
        },
        e => Call::at("open", file, e).into(),
    })?;
    let st = fstat(&fd).call_at("fstat", file)?;
    check_audit_file(&st, file)?;
    if root {
        fchown(&fd, Some(Uid::from_raw(0)), Some(Gid::from_raw(0))).call_at("chown", file)?;
    }
    fchmod(&fd, Mode::from_bits_truncate(AUDIT_FILE.mode)).call_at("chmod", file)?;
    Ok(())
}

/// `st_nlink` is u64 on x86_64 and u32 on aarch64.
#[allow(clippy::unnecessary_cast)]
fn check_audit_file(st: &FileStat, file: &Path) -> Result<(), RecordError> {
    if !is_type(st, SFlag::S_IFREG) {
        return Err(RecordError::Untrusted {
            path: file.to_path_buf(),
            why: "the audit file is not a regular file".into(),
        });
    }
    if st.st_nlink as u64 != 1 {
        return Err(RecordError::Untrusted {
            path: file.to_path_buf(),
            why: format!(
                "the audit file has {} names (hard links); it may be another file",
                st.st_nlink
            ),
        });
    }
    Ok(())
}
