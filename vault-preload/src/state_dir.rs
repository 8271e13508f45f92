//! Where agent-init's state directory is, and who the harness is.
//!
//! A module of its own because this is the preload's half of the one
//! contract with agent-init (what it writes, where), and because it must be
//! found without trusting anything a tool controls: nothing in the
//! environment redirects it.
//! - `/run/agent-vault/` when it is a root-owned directory holding
//!   `harness.pid`;
//! - else the host-mode directory, [`layout::HostStateDir`]:
//!   `/var/lib/agent-vault/<uid>/` when it exists and `/var/lib/agent-vault`
//!   is a root-owned directory (the images), else `/tmp/agent-vault-<uid>/`;
//!   used when owned by this uid or root and not group- or world-writable;
//! - else none (no session: the built-in policy, [`crate::builtin`]).
//!
//! The names come from the one contract, `policy_core::layout`, as byte
//! strings for the raw calls below.

use crate::sys;

use policy_core::layout;

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

/// The state directory, found without trusting the environment, and the
/// `lstat` of its `harness.pid` when that was needed to find it.
pub fn find(uid: u32) -> Option<(StatePath, Option<libc::stat>)> {
    let run = StatePath::new(&[STATE_DIR])?;
    if let Some(st) = sys::lstat(run.with_nul())
        && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && st.st_uid == 0
        && let Some(pidf) = join(&run, HARNESS_PID)
        && let Some(pid_st) = sys::lstat(pidf.with_nul())
    {
        return Some((run, Some(pid_st)));
    }
    // agent-init's choice (`policy::session::host_state_dir`): the shared
    // root's `<uid>` when it made one there, else the one under /tmp.
    let root = StatePath::new(&[layout::SHARED_STATE_ROOT.as_bytes()])?;
    let root_ok = sys::lstat(root.with_nul())
        .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_uid == 0);
    let shared = StatePath::new(&[layout::HostStateDir::new(uid, true).as_bytes()])?;
    let (host, st) = match sys::lstat(shared.with_nul()) {
        Some(st) if root_ok => (shared, st),
        _ => {
            let tmp = StatePath::new(&[layout::HostStateDir::new(uid, false).as_bytes()])?;
            let st = sys::lstat(tmp.with_nul())?;
            (tmp, st)
        }
    };
    let ok = st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && (st.st_uid == uid || st.st_uid == 0)
        && st.st_mode & 0o022 == 0;
    ok.then_some((host, None))
}

fn parse_pid(bytes: &[u8]) -> i32 {
    let s = bytes.trim_ascii();
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    s.iter().fold(0i32, |v, d| v * 10 + i32::from(d - b'0'))
}

/// The harness's pid from `<dir>/harness.pid` (0: none, or not trustworthy).
/// `known`: its `lstat`, when [`find`] made one.
pub fn harness_pid(dir: &StatePath, known: Option<libc::stat>, uid: u32) -> i32 {
    let Some(p) = join(dir, HARNESS_PID) else {
        return 0;
    };
    let Some(st) = known.or_else(|| sys::lstat(p.with_nul())) else {
        return 0;
    };
    // The pid file must not be writable by anyone but its owner (root or us).
    if st.st_mode & 0o022 != 0 || (st.st_uid != 0 && st.st_uid != uid) {
        return 0;
    }
    let mut buf = [0u8; 32];
    sys::read_file(p.with_nul(), &mut buf).map_or(0, parse_pid)
}
