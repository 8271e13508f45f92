//! The launch registry: agent-init's half of trusted launchers (the design
//! is [`crate::launchers`]'s module documentation). It binds the state
//! directory's launch socket at record ([`bind`]) and, in the serve step,
//! answers registrations on a thread of its own ([`Registry::serve`]):
//! a child of the harness (or of a launched harness), about to exec a
//! launcher, asks to be recorded; agent-init checks that
//! - the first descriptor it passed is the tool-layer probe file
//!   (`fstat` identity) opened for reading, not `O_PATH`: only a process
//!   outside the tool layer can open it, and every tool is inside;
//! - the second is a socket (where the reply goes);
//! - the launcher identity it names is one of the image's launchers;
//! - its parent (`/proc/<pid>/stat` field 4) is the harness or a recorded
//!   launched harness, each with its recorded start time;
//!
//! then opens a pidfd of the sender (it is waiting for the reply, so its
//! pid names it; its start time is read again after the open), writes
//! `launched/<pid>` ([`policy::layout::LaunchedRecord`]) and replies
//! [`LAUNCH_REPLY_OK`]. A record is removed as soon as its pidfd polls
//! readable (the process exited).
//!
//! Not bound when Landlock is not enforced: the probe then proves nothing
//! (every process can open it), so launchers are refused at start (a
//! warning, `run`'s `launch_step`) and every launched program runs as a
//! tool.

use crate::audit_sink::{Admit, LOG_RECORDS_PER_SECOND, RateLimit};
use crate::log::{info, warning};
use crate::state::{RecordError, StateDir};
use crate::{socket_file, sys};
use policy::FileId;
use policy::layout::{
    HarnessRecord, LAUNCH_REPLY_OK, LAUNCH_REQUEST_MAX, LAUNCH_SOCKET, LAUNCHED_RECORD_MAX,
    LAUNCHED_RECORD_MODE, LaunchRequest, LaunchedRecord, PROBE_FILE,
};
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Why the registry could not be set up.
#[derive(Debug)]
pub enum LaunchError {
    /// A call on the socket, the probe or `launched/` failed.
    Call {
        call: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    /// `launched/` could not be made or emptied.
    Record(RecordError),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Call { call, path, err } => {
                write!(f, "launch registry: {call} {}: {err}", path.display())
            }
            LaunchError::Record(e) => write!(f, "launch registry: {e}"),
        }
    }
}

impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LaunchError::Call { err, .. } => Some(err),
            LaunchError::Record(e) => Some(e),
        }
    }
}

fn call<'a>(call: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LaunchError + 'a {
    move |err| LaunchError::Call {
        call,
        path: path.to_path_buf(),
        err,
    }
}

/// Why one registration was refused (said in agent-init's log).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NoCredentials,
    Truncated,
    /// Not exactly two descriptors.
    Descriptors(usize),
    /// The first descriptor is not the probe file opened for reading.
    NotTheProbe,
    /// The second descriptor is not a socket.
    NoReplySocket,
    Malformed,
    NotALauncher(FileId),
    /// The sender's parent is neither the harness nor a launched harness.
    UntrustedParent {
        ppid: i32,
    },
    /// The sender is gone, or its `/proc` entry could not be read.
    Gone,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoCredentials => write!(f, "no sender credentials"),
            Refusal::Truncated => write!(f, "the request was cut"),
            Refusal::Descriptors(n) => write!(f, "{n} descriptors passed, not 2"),
            Refusal::NotTheProbe => write!(
                f,
                "no proof of being outside the tool layer (the first descriptor is not the probe file opened for reading)"
            ),
            Refusal::NoReplySocket => write!(f, "the second descriptor is not a socket"),
            Refusal::Malformed => write!(f, "not a launch request"),
            Refusal::NotALauncher(id) => write!(
                f,
                "device {} inode {} is not a launcher of the policy",
                id.dev, id.ino
            ),
            Refusal::UntrustedParent { ppid } => write!(
                f,
                "its parent (pid {ppid}) is neither the harness nor a launched harness"
            ),
            Refusal::Gone => write!(f, "the sender is gone"),
        }
    }
}

/// The bound launch socket and what a registration is checked against.
#[derive(Debug)]
pub struct Registry {
    socket: OwnedFd,
    socket_path: PathBuf,
    launched: OwnedFd,
    launched_path: PathBuf,
    probe: FileId,
    launchers: Vec<FileId>,
}

/// Step 3 (record), after the probe is written: make (and empty)
/// `launched/`, bind `launch.sock` (replacing an earlier run's), owned by
/// the harness's uid with mode 0600. `None` when the policy has no
/// launcher file.
pub fn bind(
    state: &StateDir,
    policy: &policy::Policy,
    harness_uid: u32,
) -> Result<Option<Registry>, LaunchError> {
    let launchers: Vec<FileId> = policy.harness.launcher_files.iter().map(|l| l.id).collect();
    if launchers.is_empty() {
        return Ok(None);
    }
    let (launched_path, launched) = state.launched_dir().map_err(LaunchError::Record)?;
    let probe_path = state.probe().join(PROBE_FILE.name);
    let m = std::fs::metadata(&probe_path).map_err(call("stat", &probe_path))?;
    let probe = FileId {
        dev: m.dev(),
        ino: m.ino(),
    };
    let socket_path = state.dir.join(LAUNCH_SOCKET.name);
    let socket = socket_file::bind(&socket_path, LAUNCH_SOCKET.mode)
        .map_err(|f| call(f.call, &socket_path)(f.err))?;
    if state.root {
        std::os::unix::fs::lchown(&socket_path, Some(harness_uid), None)
            .map_err(call("chown", &socket_path))?;
    }
    Ok(Some(Registry {
        socket,
        socket_path,
        launched,
        launched_path,
        probe,
        launchers,
    }))
}

/// A recorded launched harness.
#[derive(Debug)]
struct Launched {
    start: u64,
    pidfd: OwnedFd,
}

impl Registry {
    /// Answer registrations and remove the records of exited processes,
    /// on a thread of its own, until agent-init exits. `harness`: the
    /// harness's record (the parent a registration must have, or a
    /// launched harness).
    pub fn serve(self, harness: HarnessRecord) -> Result<(), LaunchError> {
        sys::THREADED.store(true, Ordering::SeqCst);
        let path = self.socket_path.clone();
        std::thread::Builder::new()
            .name("launch-registry".into())
            .spawn(move || self.run(harness))
            .map_err(call("spawn a thread for", &path))?;
        Ok(())
    }

    fn run(self, harness: HarnessRecord) {
        let mut records: BTreeMap<i32, Launched> = BTreeMap::new();
        // Any process of the harness user can send to the socket: refusals
        // are logged at the audit log's rate, the rest counted.
        let mut refusals = RateLimit::new(LOG_RECORDS_PER_SECOND);
        loop {
            let mut fds: Vec<libc::pollfd> = std::iter::once(&self.socket)
                .chain(records.values().map(|l| &l.pidfd))
                .map(|fd| libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(fd),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            match sys::poll_readable(&mut fds) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warning!(
                        "launch registry: poll {}: {e}; no more launched harnesses are recorded",
                        self.socket_path.display()
                    );
                    return;
                }
            }
            let exited: Vec<i32> = records
                .iter()
                .zip(&fds[1..])
                .filter(|(_, p)| p.revents != 0)
                .map(|((&pid, _), _)| pid)
                .collect();
            for pid in exited {
                records.remove(&pid);
                self.remove(pid);
            }
            if fds[0].revents != 0 {
                self.drain(harness, &mut records, &mut refusals);
            }
        }
    }

    /// Every queued request, answered.
    fn drain(
        &self,
        harness: HarnessRecord,
        records: &mut BTreeMap<i32, Launched>,
        refusals: &mut RateLimit,
    ) {
        let mut buf = [0u8; LAUNCH_REQUEST_MAX + 1];
        loop {
            let got = match sys::recv_with_creds_and_fds(self.socket.as_fd(), &mut buf) {
                Ok(g) => g,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warning!(
                        "launch registry: receive on {}: {e}",
                        self.socket_path.display()
                    );
                    return;
                }
            };
            let sender = got.creds.map_or(0, |c| c.pid);
            let reply = got.fds.get(1).map(|f| f.as_fd());
            match self.accept(&got, &buf, harness, records) {
                Ok((record, pidfd)) => {
                    records.insert(
                        record.pid,
                        Launched {
                            start: record.start,
                            pidfd,
                        },
                    );
                    info!(
                        "launch registry: pid {} recorded as a launched harness (launcher device {} inode {})",
                        record.pid, record.launcher.dev, record.launcher.ino
                    );
                    if let Some(r) = reply
                        && let Err(e) = sys::send_now(r, LAUNCH_REPLY_OK)
                    {
                        // It stopped waiting (its time ran out) and went
                        // on as a tool: no record may name it.
                        warning!(
                            "launch registry: reply to pid {sender}: {e}; its record is removed (it runs as a tool)"
                        );
                        records.remove(&sender);
                        self.remove(sender);
                    }
                }
                Err(why) => match refusals.admit(Instant::now()) {
                    Admit::Write { suppressed } => {
                        if let Some(n) = suppressed {
                            warning!(
                                "launch registry: {n} more refusals in the last second, not logged"
                            );
                        }
                        warning!("launch registry: refused pid {sender}: {why}; it runs as a tool");
                    }
                    Admit::Suppress => {}
                },
            }
        }
    }

    /// The checks of the module documentation; the record written.
    fn accept(
        &self,
        got: &sys::Received,
        buf: &[u8],
        harness: HarnessRecord,
        records: &BTreeMap<i32, Launched>,
    ) -> Result<(LaunchedRecord, OwnedFd), Refusal> {
        let creds = got.creds.ok_or(Refusal::NoCredentials)?;
        if got.truncated || got.len > LAUNCH_REQUEST_MAX {
            return Err(Refusal::Truncated);
        }
        if got.fds.len() != 2 {
            return Err(Refusal::Descriptors(got.fds.len()));
        }
        if !is_probe_for_reading(got.fds[0].as_fd(), self.probe) {
            return Err(Refusal::NotTheProbe);
        }
        if !is_socket(got.fds[1].as_fd()) {
            return Err(Refusal::NoReplySocket);
        }
        let req = LaunchRequest::parse(&buf[..got.len]).ok_or(Refusal::Malformed)?;
        if !self.launchers.contains(&req.launcher) {
            return Err(Refusal::NotALauncher(req.launcher));
        }
        let pid = creds.pid;
        let (ppid, start) = parent_and_start(pid).ok_or(Refusal::Gone)?;
        let parent_trusted = (ppid == harness.pid
            && parent_and_start(ppid).is_some_and(|(_, s)| s == harness.start))
            || records
                .get(&ppid)
                .is_some_and(|l| parent_and_start(ppid).is_some_and(|(_, s)| s == l.start));
        if !parent_trusted {
            return Err(Refusal::UntrustedParent { ppid });
        }
        // The pidfd names this very process if it still has that start time
        // once the pidfd is open (a pid reused in between would not).
        let pidfd = sys::pidfd_open(pid).map_err(|_| Refusal::Gone)?;
        if parent_and_start(pid).map(|(_, s)| s) != Some(start) {
            return Err(Refusal::Gone);
        }
        let record = LaunchedRecord {
            pid,
            start,
            launcher: req.launcher,
            script_fd: req.script_fd,
        };
        self.write(&record).map_err(|e| {
            warning!("launch registry: {e}");
            Refusal::Gone
        })?;
        Ok((record, pidfd))
    }

    fn write(&self, r: &LaunchedRecord) -> Result<(), RecordError> {
        let mut buf = [0u8; LAUNCHED_RECORD_MAX];
        crate::state::write_at(
            self.launched.as_fd(),
            &self.launched_path,
            &r.pid.to_string(),
            r.format(&mut buf),
            LAUNCHED_RECORD_MODE,
        )
    }

    /// Remove `launched/<pid>`: the process exited.
    fn remove(&self, pid: i32) {
        let name = pid.to_string();
        match nix::unistd::unlinkat(
            self.launched.as_fd(),
            name.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => warning!(
                "launch registry: unlink {}: {e}; a later process with pid {pid} is still no launched harness (its start time differs)",
                self.launched_path.join(&name).display()
            ),
        }
    }
}

/// `fd` is the probe file, opened for reading (an `O_PATH` descriptor can
/// be opened under the tool layer too, so it proves nothing).
fn is_probe_for_reading(fd: BorrowedFd<'_>, probe: FileId) -> bool {
    let Ok(flags) = sys::status_flags(fd) else {
        return false;
    };
    if flags & libc::O_PATH != 0 || flags & libc::O_ACCMODE == libc::O_WRONLY {
        return false;
    }
    nix::sys::stat::fstat(fd).is_ok_and(|st| {
        st.st_mode & libc::S_IFMT == libc::S_IFREG
            && st.st_dev == probe.dev
            && st.st_ino == probe.ino
    })
}

fn is_socket(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// `pid`'s parent and start time (fields 4 and 22 of `/proc/<pid>/stat`).
fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let start = policy::layout::stat_start_time(&stat)?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let ppid = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(1)?;
    let ppid = std::str::from_utf8(ppid).ok()?.parse().ok()?;
    Some((ppid, start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn parent_and_start_of_this_process_match_proc() {
        let (ppid, start) = parent_and_start(std::process::id() as i32).unwrap();
        assert_eq!(ppid, nix::unistd::getppid().as_raw());
        assert!(start > 0);
    }

    #[test]
    fn an_o_path_descriptor_of_the_probe_is_no_proof() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("probe");
        std::fs::write(&p, b"x").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        let id = FileId {
            dev: m.dev(),
            ino: m.ino(),
        };
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        let path_fd = nix::fcntl::open(
            c.as_c_str(),
            nix::fcntl::OFlag::O_PATH,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        assert!(!is_probe_for_reading(path_fd.as_fd(), id));
        let read_fd = std::fs::File::open(&p).unwrap();
        assert!(is_probe_for_reading(read_fd.as_fd(), id));
        let other = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(!is_probe_for_reading(other.as_fd(), id));
    }
}
