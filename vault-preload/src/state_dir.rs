//! Where agent-init's state directory is, and who the harness is.
//!
//! A module of its own because this is the preload's half of the one
//! contract with agent-init (what it writes, where), and because it must be
//! found without trusting anything a tool controls: nothing in the
//! environment redirects it.
//! - `/run/agent-vault/` when it is a root-owned directory holding
//!   `harness.pid`, unless its recorded harness is gone and a host-mode
//!   directory exists ([`find`]: a stale root run never overrides a later
//!   session);
//! - else the host-mode directory, [`layout::HostStateDir`]:
//!   `/var/lib/agent-vault/<uid>/` when it exists and `/var/lib/agent-vault`
//!   is a root-owned directory (the images), else `/tmp/agent-vault-<uid>/`;
//!   used when owned by this uid or root and not group- or world-writable;
//! - else none (no session: the built-in policy, [`crate::builtin`]).
//!
//! The names come from the one contract, `policy_core::layout`, as byte
//! strings for the raw calls below.

use crate::sys;

use policy_core::layout::{self, HarnessRecord, LaunchedRecord};
use policy_core::{FileId, View};

/// agent-init's state directory when started as root ([`layout::STATE_DIR`]).
pub const STATE_DIR: &[u8] = layout::STATE_DIR.as_bytes();
/// The harness's pid, in the state directory ([`layout::HARNESS_PID`]).
pub const HARNESS_PID: &[u8] = layout::HARNESS_PID.name.as_bytes();
/// The policy image (`policy.bin`), in the state directory ([`layout::POLICY_IMAGE`]).
pub const POLICY_IMAGE: &[u8] = layout::POLICY_IMAGE.name.as_bytes();
/// The file agent-init puts in the tool-layer probe directory ([`layout::PROBE_FILE`]).
pub const PROBE_FILE: &[u8] = layout::PROBE_FILE.name.as_bytes();
/// The name of the vault entry that agent-init adds as the tool-layer probe
/// ([`layout::PROBE_ENTRY`]).
pub const PROBE_ENTRY: &[u8] = layout::PROBE_ENTRY.as_bytes();

/// A path in the state directory: short, so it takes a few stack bytes (a
/// 4 KiB path buffer would touch a fresh stack page, a page fault, in every
/// process).
#[derive(Clone, Copy)]
pub struct StatePath {
    buf: [u8; 64],
    len: usize,
}

impl StatePath {
    /// The concatenation of `parts`; `None` if it holds a NUL or does not fit.
    pub fn new(parts: &[&[u8]]) -> Option<StatePath> {
        let mut p = StatePath {
            buf: [0; 64],
            len: 0,
        };
        for part in parts {
            let end = p.len + part.len();
            if end >= p.buf.len() || part.contains(&0) {
                return None;
            }
            p.buf[p.len..end].copy_from_slice(part);
            p.len = end;
        }
        Some(p)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// With the terminating NUL (the buffer past `len` is zero).
    pub fn with_nul(&self) -> &[u8] {
        &self.buf[..=self.len]
    }
}

/// `dir/name`.
pub fn join(dir: &StatePath, name: &[u8]) -> Option<StatePath> {
    StatePath::new(&[dir.bytes(), b"/", name])
}

/// A state directory's harness record: read, or left for whoever needs it.
#[derive(Clone, Copy)]
pub enum Record {
    /// Read (`None`: none, malformed, or writable by someone else).
    Read(Option<HarnessRecord>),
    /// Not read yet: [`find`] chose the directory without it. A program
    /// that starts under the tool layer never needs it (its harness pid is
    /// 0 whatever the record says: the harness and a launched harness are
    /// never under the tool layer), so the constructor does not read it.
    Unread,
}

impl Record {
    /// The record of `dir`, reading it when not read yet.
    pub fn get(self, dir: &StatePath, uid: u32) -> Option<HarnessRecord> {
        match self {
            Record::Read(r) => r,
            Record::Unread => harness_record(dir, None, uid),
        }
    }
}

/// What [`find`] gives: the state directory and its harness record.
pub type Found = Option<(StatePath, Record)>;

/// The state directory, found without trusting the environment.
///
/// A root state directory whose recorded harness is gone (agent-init died
/// without removing `harness.pid`, or the record is unreadable) belongs to
/// an earlier run: when a host-mode session of this uid exists, that
/// session is the one in force and the stale directory is ignored. Without
/// one, the stale directory's policy still applies (fail closed: its vault
/// stays hidden), with no process trusted as the harness ([`harness_pid`]).
/// So the record is read here only when both directories exist, and the
/// liveness check (one read of `/proc/<pid>/stat`) is made only then too;
/// every other process pays the host directory's lookup (`host_dir`: two
/// `lstat`s, three when `<root>/<uid>` exists) and the root directory's
/// two `lstat`s, and reads the record when it needs it ([`Record::get`]).
pub fn find(uid: u32) -> Found {
    let run = StatePath::new(&[STATE_DIR])?;
    let host = host_dir(uid);
    if let Some(st) = sys::lstat(run.with_nul())
        && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && st.st_uid == 0
        && let Some(pidf) = join(&run, HARNESS_PID)
        && let Some(pid_st) = sys::lstat(pidf.with_nul())
    {
        let Some(h) = host else {
            return Some((run, Record::Unread));
        };
        let record = harness_record(&run, Some(pid_st), uid);
        if !record.is_some_and(|r| alive(&r)) {
            return Some((h, Record::Unread));
        }
        return Some((run, Record::Read(record)));
    }
    let h = host?;
    Some((h, Record::Unread))
}

/// The host-mode directory agent-init chose
/// (`policy::session::host_state_dir`): the shared root's `<uid>` when it
/// made one there and the root is a root-owned directory, else
/// `/tmp/agent-vault-<uid>`; either only when it is a directory owned by
/// this uid or root and not group- or world-writable.
fn host_dir(uid: u32) -> Option<StatePath> {
    let root = StatePath::new(&[layout::SHARED_STATE_ROOT.as_bytes()])?;
    let shared = StatePath::new(&[layout::HostStateDir::new(uid, true).as_bytes()])?;
    // The root is looked at only when `<root>/<uid>` exists: without it
    // (the common case) this costs two `lstat`s, not three.
    let root_ok = || {
        sys::lstat(root.with_nul())
            .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_uid == 0)
    };
    let (host, st) = match sys::lstat(shared.with_nul()) {
        Some(st) if root_ok() => (shared, st),
        _ => {
            let tmp = StatePath::new(&[layout::HostStateDir::new(uid, false).as_bytes()])?;
            let st = sys::lstat(tmp.with_nul())?;
            (tmp, st)
        }
    };
    let ok = st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && (st.st_uid == uid || st.st_uid == 0)
        && st.st_mode & 0o022 == 0;
    ok.then_some(host)
}

/// The harness record in `<dir>/harness.pid` (`None`: none, malformed, or
/// writable by someone else). `known`: its `lstat`, when [`find`] made one.
fn harness_record(dir: &StatePath, known: Option<libc::stat>, uid: u32) -> Option<HarnessRecord> {
    let p = join(dir, HARNESS_PID)?;
    let st = known.or_else(|| sys::lstat(p.with_nul()))?;
    // The pid file must not be writable by anyone but its owner (root or us).
    if st.st_mode & 0o022 != 0 || (st.st_uid != 0 && st.st_uid != uid) {
        return None;
    }
    let mut buf = [0u8; layout::HARNESS_RECORD_MAX];
    HarnessRecord::parse(sys::read_file(p.with_nul(), &mut buf).ok()?)
}

/// The start time (field 22) in the `/proc/.../stat` file at `path`.
fn start_time(path: &[u8]) -> Option<u64> {
    // A stat line is a few hundred bytes (the command name is at most 64).
    let mut buf = [0u8; 512];
    layout::stat_start_time(sys::read_file(path, &mut buf).ok()?)
}

/// The recorded harness still runs: `/proc/<pid>/stat` exists and shows
/// the recorded start time (a later process with the same pid started later).
fn alive(r: &HarnessRecord) -> bool {
    let mut d = [0u8; 20];
    let pid = sys::fmt_u64(u64::from(r.pid.unsigned_abs()), &mut d);
    StatePath::new(&[b"/proc/", pid, b"/stat"])
        .and_then(|p| start_time(p.with_nul()))
        .is_some_and(|s| s == r.start)
}

/// The harness's pid as this process image must see it (0: none). A
/// process whose pid is the recorded one is the harness only if it also
/// started at the recorded time (`/proc/self/stat`): after the harness
/// exits another process may get its pid. Every other process gets 0 and
/// pays nothing: it is not the harness, and neither is any child it forks
/// ([`crate::state::State::guarded`]).
pub fn harness_pid(record: Option<HarnessRecord>, my_pid: i32) -> i32 {
    match record {
        Some(r) if r.pid == my_pid && start_time(b"/proc/self/stat\0") == Some(r.start) => r.pid,
        _ => 0,
    }
}

/// Whether this process image is a launched harness: its pid as the
/// harness pid, or 0. Called only when the policy has launchers (every
/// other process pays nothing). It is one when all hold:
/// - `<dir>/launched/<pid>` is a [`LaunchedRecord`] written by agent-init
///   (owned by root or this uid, writable by no one else) for this pid;
/// - its start time is this process's (`/proc/self/stat`): a later process
///   with the same pid is not the one agent-init recorded;
/// - its launcher is one of the policy image's;
/// - this image runs that launcher: a binary's `/proc/self/exe` is that
///   file, or, for a script, the descriptor the kernel handed to its
///   interpreter (`/dev/fd/<fd>`) still is.
pub fn launched_pid(dir: &StatePath, uid: u32, my_pid: i32, policy: &View<'_>) -> i32 {
    let mut d = [0u8; 20];
    let pid = sys::fmt_u64(u64::from(my_pid.unsigned_abs()), &mut d);
    let Some(p) = StatePath::new(&[
        dir.bytes(),
        b"/",
        layout::LAUNCHED_DIR.name.as_bytes(),
        b"/",
        pid,
    ]) else {
        return 0;
    };
    let Some(st) = sys::lstat(p.with_nul()) else {
        return 0;
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_mode & 0o022 != 0
        || (st.st_uid != 0 && st.st_uid != uid)
    {
        return 0;
    }
    let mut buf = [0u8; layout::LAUNCHED_RECORD_MAX];
    let Some(r) = sys::read_file(p.with_nul(), &mut buf)
        .ok()
        .and_then(LaunchedRecord::parse)
    else {
        return 0;
    };
    let id_of = |s: &libc::stat| {
        fit_launcher(s).then_some(FileId {
            dev: s.st_dev,
            ino: s.st_ino,
        })
    };
    let runs_launcher = match r.script_fd {
        None => sys::stat(b"/proc/self/exe\0").and_then(|s| id_of(&s)),
        Some(fd) => {
            let mut b = core::mem::MaybeUninit::uninit();
            sys::fstat(fd as i32, &mut b).ok().and_then(id_of)
        }
    } == Some(r.launcher);
    if r.pid == my_pid
        && policy.is_launcher(r.launcher)
        && runs_launcher
        && start_time(b"/proc/self/stat\0") == Some(r.start)
    {
        my_pid
    } else {
        0
    }
}

/// A launcher's file as it must be to run trusted: a regular file owned by
/// root and writable by no one else (as agent-init checked at start). The
/// device and inode alone are not enough: an inode number freed by
/// deleting the launcher can come back as a file a tool creates.
pub fn fit_launcher(s: &libc::stat) -> bool {
    s.st_mode & libc::S_IFMT == libc::S_IFREG
        && layout::launcher_owner_and_mode_fit(s.st_uid, s.st_mode)
}
