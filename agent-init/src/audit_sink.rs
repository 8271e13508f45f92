//! The audit sink: agent-init alone writes the audit file. Every process
//! sends its denial records to the state directory's audit socket
//! ([`policy::layout::AUDIT_SOCKET`], `SO_PASSCRED`), and agent-init writes
//! each one with the sender's pid, uid and gid as the kernel gives them
//! (`SCM_CREDENTIALS`) and the exe and comm it reads from `/proc/<pid>` at
//! receipt; what the sender said about itself is written as claimed
//! ([`policy::audit::record_line`]). Before, every process appended to the
//! file itself, so any tool could write a record in another's name.
//!
//! Two steps: [`bind`] at record (before the harness starts, so no record
//! is sent to a socket that is not there yet), and [`AuditSocket::serve`]
//! in the serve step, after agent-init has dropped its privileges: the
//! receiving thread inherits the dropped state and reads nothing but
//! datagrams and `/proc`. It is agent-init's only thread, started after
//! the harness's fork ([`crate::sys::fork`] refuses after it); the serve
//! loop's later proxy restarts fork with [`crate::sys::fork_for_exec`], a
//! child that makes only async-signal-safe calls. When the
//! harness has exited, [`Running::flush`] writes what is still queued.

use crate::sys;
use policy::audit::{Sender, SenderProc, record_line};
use policy::layout::{AUDIT_DATAGRAM_MAX, AUDIT_SOCKET};
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The bound socket and the open audit file, ready to serve.
#[derive(Debug)]
pub struct AuditSocket {
    inner: Arc<Inner>,
}

/// The serving sink: [`Running::flush`] writes what is still queued.
#[derive(Debug)]
pub struct Running {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    socket: OwnedFd,
    /// Held while records are received and written, so a flush waits for
    /// a batch in progress and then takes the rest.
    file: Mutex<File>,
    path: PathBuf,
}

/// What failed, naming the call and path.
#[derive(Debug)]
pub enum AuditSinkError {
    Call {
        call: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

impl fmt::Display for AuditSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditSinkError::Call { call, path, err } => {
                write!(f, "audit sink: {call} {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for AuditSinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuditSinkError::Call { err, .. } => Some(err),
        }
    }
}

fn call<'a>(
    call: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> AuditSinkError + 'a {
    move |err| AuditSinkError::Call {
        call,
        path: path.to_path_buf(),
        err,
    }
}

/// Bind `<state_dir>/audit.sock` (replacing an earlier run's), mode 0666
/// (anyone may send), and open `audit_file` (created at record) for appending.
pub fn bind(state_dir: &Path, audit_file: &Path) -> Result<AuditSocket, AuditSinkError> {
    let path = state_dir.join(AUDIT_SOCKET.name);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(call("unlink", &path)(e)),
    }
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| call("bind", &path)(std::io::ErrorKind::InvalidInput.into()))?;
    let socket = sys::bind_unix_dgram(&c).map_err(call("bind", &path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(AUDIT_SOCKET.mode))
        .map_err(call("chmod", &path))?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(audit_file)
        .map_err(call("open", audit_file))?;
    Ok(AuditSocket {
        inner: Arc::new(Inner {
            socket,
            file: Mutex::new(file),
            path,
        }),
    })
}

impl AuditSocket {
    /// Receive and write records on agent-init's one thread until agent-init exits.
    pub fn serve(self) -> Result<Running, AuditSinkError> {
        sys::THREADED.store(true, Ordering::SeqCst);
        let inner = self.inner.clone();
        std::thread::Builder::new()
            .name("audit-sink".into())
            .spawn(move || inner.run())
            .map_err(call("spawn a thread for", &self.inner.path))?;
        Ok(Running { inner: self.inner })
    }
}

impl Running {
    /// Write every record already queued (before agent-init exits: the
    /// harness's last denials must not be lost with the thread).
    pub fn flush(&self) {
        if let Err(e) = self.inner.drain() {
            crate::log::warning!("audit sink: receive on {}: {e}", self.inner.path.display());
        }
    }
}

impl Inner {
    fn run(&self) {
        loop {
            match sys::wait_readable(self.socket.as_fd(), -1).and_then(|_| self.drain()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    crate::log::warning!(
                        "audit sink: receive on {}: {e}; no more denial records are written",
                        self.path.display()
                    );
                    return;
                }
            }
        }
    }

    /// Receive and write every queued datagram, without waiting; `Ok` once
    /// the queue is empty.
    fn drain(&self) -> std::io::Result<()> {
        // A poisoned lock: a write panicked; the file is still usable.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = vec![0u8; AUDIT_DATAGRAM_MAX];
        loop {
            let (n, creds) = match sys::recv_with_creds(self.socket.as_fd(), &mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            // SO_PASSCRED is set: the kernel always attaches them.
            let Some(c) = creds else { continue };
            let line = record_line(
                std::time::SystemTime::now(),
                Sender {
                    pid: c.pid,
                    uid: c.uid,
                    gid: c.gid,
                },
                &read_proc(c.pid),
                &buf[..n],
            );
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// The sender's exe and comm, from `/proc/<pid>` now (it may be gone, or
/// its exe unreadable to agent-init once privileges are dropped).
fn read_proc(pid: i32) -> SenderProc {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    SenderProc {
        exe: std::fs::read_link(dir.join("exe"))
            .ok()
            .map(|p| p.into_os_string().into_encoded_bytes()),
        comm: std::fs::read(dir.join("comm")).ok().map(|mut c| {
            if c.last() == Some(&b'\n') {
                c.pop();
            }
            c
        }),
    }
}
