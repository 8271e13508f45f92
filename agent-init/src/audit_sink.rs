//! The audit sink: agent-init alone writes denial records. Every process
//! sends its records to the state directory's audit socket
//! ([`policy::layout::AUDIT_SOCKET`], `SO_PASSCRED`), and agent-init writes
//! each one with the sender's pid, uid and gid as the kernel gives them
//! (`SCM_CREDENTIALS`) and the exe and comm it reads from `/proc/<pid>` at
//! receipt; what the sender said about itself is written as claimed
//! ([`policy::audit::record_line`]). Before, every process appended to the
//! file itself, so any tool could write a record in another's name.
//!
//! Where the lines go ([`Target`]): agent-init's own stderr (the `log`
//! sink: PID 1's stderr is the container log), at most
//! [`LOG_RECORDS_PER_SECOND`] records a second and then one line saying how
//! many were suppressed ([`RateLimit`]), so a tool looping on denials
//! cannot flood the log; or a file, renamed to `<file>.1` (replacing the
//! previous one) once the next line would take it past `max_bytes`
//! ([`RotatingFile`]), so it cannot fill the disk.
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

use crate::{socket_file, sys};
use policy::audit::{Sender, SenderProc, record_line, suppressed_line};
use policy::layout::{AUDIT_DATAGRAM_MAX, AUDIT_FILE, AUDIT_SOCKET};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The `log` sink's bound: records written a second; the rest are counted
/// and reported in one line when the second is over.
pub const LOG_RECORDS_PER_SECOND: u32 = 20;

/// The rate limit's window.
const WINDOW: Duration = Duration::from_secs(1);

/// Where agent-init writes the records it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// agent-init's own stderr (the container log), rate-limited.
    Log,
    /// A file (created at record), rotated past `max_bytes`.
    File { path: PathBuf, max_bytes: u64 },
}

/// The bound socket and the open output, ready to serve.
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
    out: Mutex<Output>,
    path: PathBuf,
}

/// The open output.
#[derive(Debug)]
enum Output {
    Log(RateLimit),
    File(RotatingFile),
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
/// (anyone may send), and open the target: a file (created at record)
/// for appending, or agent-init's stderr.
pub fn bind(state_dir: &Path, target: &Target) -> Result<AuditSocket, AuditSinkError> {
    let path = state_dir.join(AUDIT_SOCKET.name);
    let socket =
        socket_file::bind(&path, AUDIT_SOCKET.mode).map_err(|f| call(f.call, &path)(f.err))?;
    let out = match target {
        Target::Log => Output::Log(RateLimit::new(LOG_RECORDS_PER_SECOND)),
        Target::File { path, max_bytes } => {
            Output::File(RotatingFile::open(path.clone(), *max_bytes)?)
        }
    };
    Ok(AuditSocket {
        inner: Arc::new(Inner {
            socket,
            out: Mutex::new(out),
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
    /// Write every record already queued, and the count of those the
    /// rate limit suppressed (before agent-init exits: the harness's last
    /// denials must not be lost with the thread).
    pub fn flush(&self) {
        if let Err(e) = self.inner.drain() {
            crate::log::warning!("audit sink: receive on {}: {e}", self.inner.path.display());
        }
        let mut out = self.inner.lock();
        if let Output::Log(limit) = &mut *out
            && let Some(n) = limit.take_suppressed()
        {
            write_log(&suppressed_line(SystemTime::now(), n, limit.per_window));
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        // A poisoned lock: a write panicked; the output is still usable.
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        loop {
            // With records suppressed, wake when their window ends to say so.
            let timeout = match &*self.lock() {
                Output::Log(l) => l.report_due_in(Instant::now()),
                Output::File(_) => None,
            };
            let timeout_ms = timeout.map_or(-1, |d| d.as_millis().min(1000) as i32 + 1);
            match sys::wait_readable(self.socket.as_fd(), timeout_ms).and_then(|_| self.drain()) {
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
        let mut out = self.lock();
        if let Output::Log(limit) = &mut *out
            && let Some(n) = limit.report(Instant::now())
        {
            write_log(&suppressed_line(SystemTime::now(), n, limit.per_window));
        }
        let mut buf = vec![0u8; AUDIT_DATAGRAM_MAX];
        loop {
            // Descriptors a sender passed are dropped (closed) with `got`.
            let got = match sys::recv_with_creds_and_fds(self.socket.as_fd(), &mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            // SO_PASSCRED is set: the kernel always attaches them.
            let Some(c) = got.creds else { continue };
            let n = got.len;
            let line = || {
                record_line(
                    SystemTime::now(),
                    Sender {
                        pid: c.pid,
                        uid: c.uid,
                        gid: c.gid,
                    },
                    &read_proc(c.pid),
                    &buf[..n],
                )
            };
            match &mut *out {
                Output::Log(limit) => match limit.admit(Instant::now()) {
                    Admit::Write { suppressed } => {
                        if let Some(n) = suppressed {
                            write_log(&suppressed_line(SystemTime::now(), n, limit.per_window));
                        }
                        write_log(&line());
                    }
                    Admit::Suppress => {}
                },
                Output::File(f) => f.write_line(line().as_bytes()),
            }
        }
    }
}

/// One line on agent-init's stderr, whole (the lock keeps agent-init's
/// own log lines from interleaving with it).
fn write_log(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The `log` sink's rate limit: at most `per_window` records in each
/// window of [`WINDOW`] (it starts at the first record after the last one
/// ended); the rest are counted, and the count is written once, when the
/// window is over (at the next record, when the receiving thread wakes
/// for it, or at the flush).
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_window: u32,
    window_start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// What [`RateLimit::admit`] decided for one record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Write it, after a line for the records suppressed in the window
    /// that has just ended, if any were.
    Write { suppressed: Option<u64> },
    /// Over the limit: counted, not written.
    Suppress,
}

impl RateLimit {
    pub(crate) fn new(per_window: u32) -> RateLimit {
        RateLimit {
            per_window,
            window_start: None,
            written: 0,
            suppressed: 0,
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        let ended = self.report(now);
        if self.window_start.is_none() {
            self.window_start = Some(now);
        }
        if self.written < self.per_window {
            self.written += 1;
            Admit::Write { suppressed: ended }
        } else {
            self.suppressed += 1;
            Admit::Suppress
        }
    }

    /// When the window is over at `now`: start afresh, and return how
    /// many records it suppressed, if any.
    fn report(&mut self, now: Instant) -> Option<u64> {
        match self.window_start {
            Some(start) if now.duration_since(start) >= WINDOW => {
                self.window_start = None;
                self.written = 0;
                self.take_suppressed()
            }
            _ => None,
        }
    }

    fn take_suppressed(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.suppressed);
        (n > 0).then_some(n)
    }

    /// With records suppressed: how long until their window ends.
    fn report_due_in(&self, now: Instant) -> Option<Duration> {
        let start = self.window_start?;
        (self.suppressed > 0).then(|| (start + WINDOW).saturating_duration_since(now))
    }
}

/// The file sink: appended to, and rotated before a line would take it
/// past `max_bytes` (a line longer than that still goes, alone, to a
/// fresh file).
#[derive(Debug)]
struct RotatingFile {
    file: File,
    path: PathBuf,
    size: u64,
    max_bytes: u64,
}

impl RotatingFile {
    /// Open the file prepared at record (it exists: 0600, agent-init's).
    fn open(path: PathBuf, max_bytes: u64) -> Result<RotatingFile, AuditSinkError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(call("open", &path))?;
        let size = file.metadata().map_err(call("fstat", &path))?.len();
        Ok(RotatingFile {
            file,
            path,
            size,
            max_bytes,
        })
    }

    fn write_line(&mut self, line: &[u8]) {
        let len = line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate();
        }
        if self.file.write_all(line).is_ok() {
            self.size += len;
        }
    }

    /// `<file>` becomes `<file>.1` (replacing the previous one) and a new,
    /// empty `<file>` (0600) is started. Should that fail, the file is
    /// emptied instead: the bound holds, the older records are lost, and a
    /// warning says why.
    fn rotate(&mut self) {
        let old = rotated_path(&self.path);
        let fresh = std::fs::rename(&self.path, &old)
            .map_err(call("rename", &self.path))
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .mode(AUDIT_FILE.mode)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&self.path)
                    .map_err(call("create", &self.path))
            });
        match fresh {
            Ok(f) => self.file = f,
            Err(e) => {
                crate::log::warning!("{e}; emptying the audit file in place to keep its bound");
                if let Err(e) = self.file.set_len(0) {
                    crate::log::warning!(
                        "audit sink: truncate {}: {e}; the audit file grows past max_bytes",
                        self.path.display()
                    );
                }
            }
        }
        self.size = 0;
    }
}

/// `<file>.1`.
fn rotated_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_writes_n_a_window_then_reports_the_rest_once() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(3);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for i in 0..3 {
            assert_eq!(l.admit(at(i)), Admit::Write { suppressed: None });
        }
        for i in 3..10 {
            assert_eq!(l.admit(at(i)), Admit::Suppress);
        }
        assert_eq!(l.report(at(500)), None, "the window is not over");
        assert_eq!(l.report_due_in(at(500)), Some(Duration::from_millis(500)));
        // The next record after the window: the count of 7 comes first.
        assert_eq!(
            l.admit(at(1000)),
            Admit::Write {
                suppressed: Some(7)
            }
        );
        assert_eq!(l.report_due_in(at(1000)), None, "nothing suppressed");
        // Or the receiving thread wakes at the window's end and reports.
        for i in 1..3 {
            assert_eq!(l.admit(at(1000 + i)), Admit::Write { suppressed: None });
        }
        assert_eq!(l.admit(at(1003)), Admit::Suppress);
        assert_eq!(l.report(at(2000)), Some(1));
        assert_eq!(l.report(at(3000)), None, "reported once");
        // The flush takes what is counted, window over or not.
        for i in 0..4 {
            l.admit(at(4000 + i));
        }
        assert_eq!(l.take_suppressed(), Some(1));
        assert_eq!(l.take_suppressed(), None);
    }

    #[test]
    fn the_file_rotates_past_max_bytes_to_dot_1() {
        let dir = std::env::temp_dir().join(format!("av-audit-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        std::fs::write(&path, b"").unwrap();
        std::fs::write(rotated_path(&path), b"an older rotation\n").unwrap();
        let mut f = RotatingFile::open(path.clone(), 100).unwrap();
        let line = |i: u32| format!("{{\"record\":{i:04},\"pad\":\"{}\"}}\n", "x".repeat(15));
        assert_eq!(line(0).len(), 40);
        for i in 0..5 {
            f.write_line(line(i).as_bytes());
        }
        // 0 and 1 (80 bytes) filled the first file; 2 would take it to
        // 120: rotated, the older .1 replaced; 2, 3 in the second; 4 in a third.
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), line(4));
        assert_eq!(read(&rotated_path(&path)), line(2) + &line(3));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // Nothing past the bound, whatever was written.
        for i in 5..50 {
            f.write_line(line(i).as_bytes());
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert_eq!(read(&path), line(48) + &line(49));
        assert!(!dir.join("audit.jsonl.2").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
