//! The state directory: the one contract between agent-init (which writes
//! it), the preload (which reads it in every process), `agent-init
//! self-test` and the test suite's `World` (which builds one without
//! agent-init). Every name and mode of that contract is here and nowhere
//! else; `no_std` and allocation-free, so the preload uses it as is.
//!
//! Where: [`STATE_DIR`] (`/run/agent-vault`, root-owned, [`STATE_DIR_MODE`])
//! when agent-init runs as root; else [`HostStateDir`]: `/var/lib/agent-vault/UID`
//! when [`SHARED_STATE_ROOT`] is a root-owned directory that holds it or that
//! this uid can write (the images make it, mode 1777, so any uid, OpenShift's
//! arbitrary ones included, makes its own; a read-only root needs a tmpfs
//! there), else `/tmp/agent-vault-UID` (host mode). The state directory is a vault
//! entry for the tool layer, so its ancestors become list-only for tools: under
//! `/var/lib` that costs nothing, under `/tmp` it stops tools from creating
//! files in `/tmp`. What is in it, in the order agent-init writes it (step 3,
//! *record*), and who reads each file:
//!
//! | entry | mode | written | read by |
//! |---|---|---|---|
//! | [`PROBE_DIR`]`/`[`PROBE_FILE`] | 0755 / 0644 | at record, before the harness starts | the preload (tool-layer detection), self-test |
//! | [`POLICY_TOML`] | 0644 | at record | self-test, people |
//! | [`POLICY_IMAGE`] | 0644 | at record | the preload, in every process |
//! | [`AUDIT_FILE`] | 0600 | at record (created; when the sink is the default) | appended by agent-init only; read by people |
//! | [`AUDIT_SOCKET`] | 0666 | at record (bound; when the sink is a file or the log) | every process sends to it; agent-init receives |
//! | [`HARNESS_PID`] | 0644 | after the fork, before the harness execs; removed when the harness exits | the preload (who is the harness; is this session live), self-test |
//! | [`LAUNCH_SOCKET`] | 0600 (the harness's uid) | at record (bound; when `[harness] launches` names a file and Landlock is enforced) | a trusted process's child about to exec a launcher sends its [`LaunchRequest`]; agent-init receives |
//! | [`LAUNCHED_DIR`]`/<pid>` | 0755 / [`LAUNCHED_RECORD_MODE`] | emptied at record; one [`LaunchedRecord`] per accepted request, removed when that process exits | the preload (is this process a launched harness) |
//!
//! Every file is written by root (or, in host mode, agent-init's own uid)
//! and is never writable by anyone else; a reader refuses a file that is.
//!
//! Adding a file (say, a credential proxy's socket): add one [`StateFile`]
//! constant here with a doc comment saying who writes it, when, and who
//! reads it, add a row to the table above, and, when agent-init writes it
//! at record, return it from the `policy` crate's `Policy::session_files`.

use crate::FileId;

/// One file of the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFile {
    /// The subdirectory it lives in, or `None` for the state directory itself.
    pub dir: Option<StateSubdir>,
    /// Its file name.
    pub name: &'static str,
    /// Its permission bits.
    pub mode: u32,
}

/// A subdirectory of the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSubdir {
    pub name: &'static str,
    pub mode: u32,
}

/// The state directory of an agent-init started as root: root-owned, so
/// no tool can change what is in it.
pub const STATE_DIR: &str = "/run/agent-vault";

/// The mode of the state directory and of its subdirectories: writable by
/// its owner only (an existing one writable by others is refused).
pub const STATE_DIR_MODE: u32 = 0o755;

/// The host-mode state directory is this prefix followed by the uid in
/// decimal, when [`SHARED_STATE_ROOT`] is not there.
pub const HOST_STATE_PREFIX: &str = "/tmp/agent-vault-";

/// Where a non-root agent-init keeps its state, one `<uid>` directory each:
/// outside every `read_write` rule of the default policy, so the state
/// directory's vault entry takes no write access from tools. The images
/// create it with mode 1777 (sticky: no uid can remove or rename another's
/// directory). It counts when it is a directory (not a link) owned by root
/// and, for agent-init, writable by it or already holding `<uid>`; the
/// preload takes `<uid>` there when that exists, else the `/tmp` one.
pub const SHARED_STATE_ROOT: &str = "/var/lib/agent-vault";

/// The state directory of an agent-init started as a user that is not
/// root: `SHARED_STATE_ROOT/<uid>` or `HOST_STATE_PREFIX<uid>`, in a fixed
/// buffer.
#[derive(Clone, Copy)]
pub struct HostStateDir {
    buf: [u8; SHARED_STATE_ROOT.len() + 1 + 10],
    len: usize,
}

impl HostStateDir {
    /// `/var/lib/agent-vault/<uid>` when `shared_root` (the caller found
    /// [`SHARED_STATE_ROOT`] usable, as its doc says), else
    /// `/tmp/agent-vault-<uid>`.
    pub fn new(uid: u32, shared_root: bool) -> HostStateDir {
        let mut buf = [0u8; SHARED_STATE_ROOT.len() + 1 + 10];
        let prefix: &[u8] = if shared_root {
            buf[..SHARED_STATE_ROOT.len()].copy_from_slice(SHARED_STATE_ROOT.as_bytes());
            buf[SHARED_STATE_ROOT.len()] = b'/';
            &buf[..SHARED_STATE_ROOT.len() + 1]
        } else {
            buf[..HOST_STATE_PREFIX.len()].copy_from_slice(HOST_STATE_PREFIX.as_bytes());
            &buf[..HOST_STATE_PREFIX.len()]
        };
        let start = prefix.len();
        let len = put_decimal(u64::from(uid), &mut buf, start);
        HostStateDir { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was written.
        core::str::from_utf8(self.as_bytes()).unwrap_or(HOST_STATE_PREFIX)
    }
}

/// `probe/`: agent-init's tool-layer probe directory, made a vault entry
/// ([`PROBE_ENTRY`]) so the tool layer denies what is in it.
pub const PROBE_DIR: StateSubdir = StateSubdir {
    name: "probe",
    mode: STATE_DIR_MODE,
};

/// `probe/probe`: written by agent-init at record. The preload read-opens it
/// to tell whether a process is already under the tool layer (a vault
/// entry's directories stay listable under the tool layer; its files do
/// not); self-test does the same for its tool-layer row.
pub const PROBE_FILE: StateFile = StateFile {
    dir: Some(PROBE_DIR),
    name: "probe",
    mode: 0o644,
};

/// What [`PROBE_FILE`] holds (anything would do; the open is the test).
pub const PROBE_CONTENT: &[u8] = b"agent-vault tool-layer probe\n";

/// The name of the vault entry agent-init adds for [`PROBE_DIR`].
pub const PROBE_ENTRY: &str = "agent-vault-probe";

/// `policy.toml`: the effective policy, every path expanded (so no process's
/// environment can move the vault). Written by agent-init at record; read by
/// `agent-init self-test` and by people.
pub const POLICY_TOML: StateFile = StateFile {
    dir: None,
    name: "policy.toml",
    mode: 0o644,
};

/// `policy.bin`: the same policy as the policy image
/// ([`crate::image`]). Written by agent-init at record; read by the preload in
/// every process (a missing one means the built-in policy, a damaged one
/// means no tool runs).
pub const POLICY_IMAGE: StateFile = StateFile {
    dir: None,
    name: "policy.bin",
    mode: 0o644,
};

/// `harness.pid`: the harness record, [`HarnessRecord`]: one line, the
/// harness's pid and its start time (field 22 of `/proc/<pid>/stat`),
/// decimal, separated by one space: `"1234 567890\n"`. Written by agent-init
/// after the fork and before the harness execs (the child waits on a pipe),
/// so it always names the live harness, and removed by agent-init's serve
/// step when the harness has exited; read by the preload (which process is
/// the harness, and whether this state directory is a live session's) and
/// by self-test. A pid alone is never trusted: after the harness exits
/// another process may get its pid; the start time tells them apart.
pub const HARNESS_PID: StateFile = StateFile {
    dir: None,
    name: "harness.pid",
    mode: 0o644,
};

/// What [`HARNESS_PID`] holds: a process, named so that a later process
/// with the same pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HarnessRecord {
    /// The harness's pid (> 0).
    pub pid: i32,
    /// Its start time: field 22 of `/proc/<pid>/stat`, in clock ticks since boot.
    pub start: u64,
}

/// The longest [`HarnessRecord`] line: a 10-digit pid, a space, a
/// 20-digit start time, a newline.
pub const HARNESS_RECORD_MAX: usize = 32;

impl HarnessRecord {
    /// Parse `"<pid> <start>\n"`; `None` for anything else (an old
    /// pid-only file included: an unproven pid is no harness).
    pub fn parse(bytes: &[u8]) -> Option<HarnessRecord> {
        let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let sp = line.iter().position(|&b| b == b' ')?;
        let pid = parse_decimal(&line[..sp])?;
        let start = parse_decimal(&line[sp + 1..])?;
        let pid = i32::try_from(pid).ok().filter(|&p| p > 0)?;
        Some(HarnessRecord { pid, start })
    }

    /// The file's content, in `buf`.
    pub fn format<'a>(&self, buf: &'a mut [u8; HARNESS_RECORD_MAX]) -> &'a [u8] {
        let mut n = put_decimal(u64::from(self.pid.unsigned_abs()), buf, 0);
        buf[n] = b' ';
        n = put_decimal(self.start, buf, n + 1);
        buf[n] = b'\n';
        &buf[..=n]
    }
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The second field,
/// the command name in parentheses, may hold spaces and parentheses
/// itself, so the count starts after the last `)`.
pub fn stat_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    // After ") ": field 3 (state) is the first; field 22 is the 20th.
    let mut fields = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    parse_decimal(fields.nth(19)?.trim_ascii_end())
}

/// A non-empty run of ASCII digits, without overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &d| {
        d.is_ascii_digit()
            .then(|| v.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .flatten()
    })
}

/// Write `v` in decimal at `buf[at..]`; returns the end.
fn put_decimal(v: u64, buf: &mut [u8], at: usize) -> usize {
    let mut digits = [0u8; 20];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let d = &digits[i..];
    buf[at..at + d.len()].copy_from_slice(d);
    at + d.len()
}

/// `launch.sock`: an `AF_UNIX` `SOCK_DGRAM` socket, bound by agent-init at
/// record when `[harness] launches` names a file and Landlock is enforced;
/// owned by the harness's uid, mode 0600 (root keeps its access). A child
/// of the harness (or of a launched harness), in the preload's exec hook
/// before it execs a launcher, sends one [`LaunchRequest`] to it with, as
/// `SCM_RIGHTS`, a read descriptor of [`PROBE_FILE`] (only a process outside
/// the tool layer can open one) and one end of a `SOCK_SEQPACKET` pair for
/// the reply ([`LAUNCH_REPLY_OK`]); the kernel adds its pid
/// (`SCM_CREDENTIALS`). agent-init checks all of it and writes the
/// sender's [`LaunchedRecord`].
pub const LAUNCH_SOCKET: StateFile = StateFile {
    dir: None,
    name: "launch.sock",
    mode: 0o600,
};

/// `launched/`: agent-init's records of the launched harnesses, one file
/// per process, named by its pid in decimal ([`LaunchedRecord`]).
/// Root-owned (agent-init's uid in host mode); emptied at record (an
/// earlier run's records name processes that are gone).
pub const LAUNCHED_DIR: StateSubdir = StateSubdir {
    name: "launched",
    mode: STATE_DIR_MODE,
};

/// The mode of a file in [`LAUNCHED_DIR`].
pub const LAUNCHED_RECORD_MODE: u32 = 0o644;

/// A launcher's owner and mode as they must be to run trusted: root's and
/// writable by no one else (agent-init refuses any other at start; the
/// preload checks again at each launch and in the launched image, since
/// the device and inode alone could be a file a tool made under a freed
/// inode number).
pub const fn launcher_owner_and_mode_fit(uid: u32, mode: u32) -> bool {
    uid == 0 && mode & 0o022 == 0
}

/// How long the child waits for agent-init's reply before it gives up and
/// runs the program as a tool.
pub const LAUNCH_REPLY_TIMEOUT_MS: i32 = 5000;

/// agent-init's reply to an accepted [`LaunchRequest`] (a refusal is
/// anything else, or the reply socket closed without a word).
pub const LAUNCH_REPLY_OK: &[u8] = b"ok";

/// What a process becoming a launched harness proves about itself, in
/// `launched/<pid>`: one line, decimal fields separated by one space,
/// `"<pid> <start> <dev> <ino>\n"` for a binary launcher and
/// `"<pid> <start> <dev> <ino> <fd>\n"` for a script launcher.
///
/// - `pid` and `start`: the process, as [`HarnessRecord`] names the harness
///   (a later process with the same pid has another start time);
/// - `launcher`: the launcher file agent-init checked (one of the policy
///   image's launchers) and the child then executed by descriptor;
/// - `script_fd`: for a script (`#!`), the descriptor number through which
///   the kernel hands the script to its interpreter (`/dev/fd/<fd>`, open
///   without close-on-exec). A binary's image is checked by
///   `/proc/self/exe`; a script's image is its interpreter's, so the
///   preload checks the still-open script descriptor instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchedRecord {
    pub pid: i32,
    pub start: u64,
    pub launcher: FileId,
    pub script_fd: Option<u32>,
}

/// The longest [`LaunchedRecord`] line.
pub const LAUNCHED_RECORD_MAX: usize = 96;

impl LaunchedRecord {
    /// Parse the record's line; `None` for anything else.
    pub fn parse(bytes: &[u8]) -> Option<LaunchedRecord> {
        let line = bytes.strip_suffix(b"\n")?;
        let mut f = line.split(|&b| b == b' ');
        let pid = i32::try_from(parse_decimal(f.next()?)?)
            .ok()
            .filter(|&p| p > 0)?;
        let start = parse_decimal(f.next()?)?;
        let dev = parse_decimal(f.next()?)?;
        let ino = parse_decimal(f.next()?)?;
        let script_fd = match f.next() {
            None => None,
            Some(fd) => Some(u32::try_from(parse_decimal(fd)?).ok()?),
        };
        if f.next().is_some() {
            return None;
        }
        Some(LaunchedRecord {
            pid,
            start,
            launcher: FileId { dev, ino },
            script_fd,
        })
    }

    /// The file's content, in `buf`.
    pub fn format<'a>(&self, buf: &'a mut [u8; LAUNCHED_RECORD_MAX]) -> &'a [u8] {
        let mut n = put_decimal(u64::from(self.pid.unsigned_abs()), buf, 0);
        for v in [self.start, self.launcher.dev, self.launcher.ino]
            .into_iter()
            .chain(self.script_fd.map(u64::from))
        {
            buf[n] = b' ';
            n = put_decimal(v, buf, n + 1);
        }
        buf[n] = b'\n';
        &buf[..=n]
    }
}

/// What a child sends to [`LAUNCH_SOCKET`]: [`LaunchRequest::MAGIC`], then
/// the launcher's device and inode and the script descriptor (`-` for a
/// binary), each decimal and ended by a NUL. Claims, all checked by
/// agent-init: the identity must be a launcher of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchRequest {
    pub launcher: FileId,
    pub script_fd: Option<u32>,
}

/// The longest [`LaunchRequest`].
pub const LAUNCH_REQUEST_MAX: usize = 96;

impl LaunchRequest {
    /// The first field (a format version).
    pub const MAGIC: &'static [u8] = b"agent-vault-launch-1";

    /// Parse a received request; `None` when it is not in this format.
    pub fn parse(bytes: &[u8]) -> Option<LaunchRequest> {
        let mut f = bytes.split(|&b| b == 0);
        if f.next()? != Self::MAGIC {
            return None;
        }
        let dev = parse_decimal(f.next()?)?;
        let ino = parse_decimal(f.next()?)?;
        let script_fd = match f.next()? {
            b"-" => None,
            fd => Some(u32::try_from(parse_decimal(fd)?).ok()?),
        };
        (f.next() == Some(&[][..]) && f.next().is_none()).then_some(LaunchRequest {
            launcher: FileId { dev, ino },
            script_fd,
        })
    }

    /// The bytes to send, in `buf`.
    pub fn encode<'a>(&self, buf: &'a mut [u8; LAUNCH_REQUEST_MAX]) -> &'a [u8] {
        let m = Self::MAGIC.len();
        buf[..m].copy_from_slice(Self::MAGIC);
        buf[m] = 0;
        let mut n = put_decimal(self.launcher.dev, buf, m + 1);
        buf[n] = 0;
        n = put_decimal(self.launcher.ino, buf, n + 1);
        buf[n] = 0;
        n = match self.script_fd {
            Some(fd) => put_decimal(u64::from(fd), buf, n + 1),
            None => {
                buf[n + 1] = b'-';
                n + 2
            }
        };
        buf[n] = 0;
        &buf[..=n]
    }
}

/// `audit.jsonl`: the default `[audit] sink`, denial records as JSON lines.
/// Created by agent-init at record (root-owned when root); written by
/// agent-init alone, from what arrives on [`AUDIT_SOCKET`], and read by
/// none but its owner. A policy may move it elsewhere: then only the mode
/// applies.
pub const AUDIT_FILE: StateFile = StateFile {
    dir: None,
    name: "audit.jsonl",
    mode: 0o600,
};

/// `audit.sock`: an `AF_UNIX` `SOCK_DGRAM` socket, bound by agent-init at
/// record when the audit sink is a file or agent-init's log; every process sends its denial
/// records to it ([`AuditDatagram`]), and agent-init (`SO_PASSCRED`)
/// writes each with the sender's pid, uid and gid as the kernel gives them
/// (`SCM_CREDENTIALS`), so no process can pass for another. Anyone may
/// send (mode 0666); what a process says about itself is written as
/// claimed.
pub const AUDIT_SOCKET: StateFile = StateFile {
    dir: None,
    name: "audit.sock",
    mode: 0o666,
};

/// The largest datagram sent to [`AUDIT_SOCKET`]; longer ones are cut.
pub const AUDIT_DATAGRAM_MAX: usize = 8192;

/// What a process sends to [`AUDIT_SOCKET`]: [`AuditDatagram::MAGIC`],
/// then the claimed fields, each ended by a NUL: pid (decimal), dropped
/// (decimal: how many of its records this process could not send before
/// this one), exe, op, rule, path, layer (`preload`: the hooks refused by
/// their own check; `kernel`: the real call failed). Every field is the
/// sender's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditDatagram<'a> {
    pub pid: &'a [u8],
    pub dropped: &'a [u8],
    pub exe: &'a [u8],
    pub op: &'a [u8],
    pub rule: &'a [u8],
    pub path: &'a [u8],
    pub layer: &'a [u8],
}

impl<'a> AuditDatagram<'a> {
    /// The first field of every datagram (a format version).
    pub const MAGIC: &'static [u8] = b"agent-vault-audit-2";

    /// Split a received datagram; `None` when it is not in this format.
    pub fn parse(bytes: &'a [u8]) -> Option<AuditDatagram<'a>> {
        let mut f = bytes.split(|&b| b == 0);
        if f.next()? != Self::MAGIC {
            return None;
        }
        let d = AuditDatagram {
            pid: f.next()?,
            dropped: f.next()?,
            exe: f.next()?,
            op: f.next()?,
            rule: f.next()?,
            path: f.next()?,
            layer: f.next()?,
        };
        // Exactly the seven fields, the last one ended by its NUL.
        (f.next() == Some(&[][..]) && f.next().is_none()).then_some(d)
    }

    /// Write it into `buf` (each field cut to what fits); the bytes to send.
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        let mut n = 0;
        for field in [
            Self::MAGIC,
            self.pid,
            self.dropped,
            self.exe,
            self.op,
            self.rule,
            self.path,
            self.layer,
        ] {
            // Leave room for this field's NUL; a field never holds one.
            let room = buf.len().saturating_sub(n + 1);
            let field = &field[..field.len().min(room)];
            let field = field.split(|&b| b == 0).next().unwrap_or(&[]);
            if n + field.len() >= buf.len() {
                break;
            }
            buf[n..n + field.len()].copy_from_slice(field);
            n += field.len();
            buf[n] = 0;
            n += 1;
        }
        &buf[..n]
    }
}

/// [`AUDIT_FILE`] in [`STATE_DIR`]: the default audit sink.
pub const DEFAULT_AUDIT_FILE: &str = "/run/agent-vault/audit.jsonl";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launched_record_round_trips_and_a_malformed_one_is_refused() {
        let id = FileId {
            dev: u64::MAX,
            ino: u64::MAX,
        };
        for script_fd in [None, Some(u32::MAX), Some(3)] {
            let r = LaunchedRecord {
                pid: i32::MAX,
                start: u64::MAX,
                launcher: id,
                script_fd,
            };
            let mut buf = [0u8; LAUNCHED_RECORD_MAX];
            let line = r.format(&mut buf);
            assert_eq!(LaunchedRecord::parse(line), Some(r));
        }
        assert_eq!(
            LaunchedRecord::parse(b"42 7 1 2\n"),
            Some(LaunchedRecord {
                pid: 42,
                start: 7,
                launcher: FileId { dev: 1, ino: 2 },
                script_fd: None
            })
        );
        for bad in [
            &b"42 7\n"[..],
            b"42 7 1 2",
            b"0 7 1 2\n",
            b"42 7 1 2 3 4\n",
            b"42 7 1 x\n",
            b"42 7 1 2 \n",
            b"42 7 1 2 4294967296\n",
        ] {
            assert_eq!(LaunchedRecord::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_launch_request_round_trips_and_a_malformed_one_is_refused() {
        for script_fd in [None, Some(0), Some(u32::MAX)] {
            let r = LaunchRequest {
                launcher: FileId {
                    dev: u64::MAX,
                    ino: 1,
                },
                script_fd,
            };
            let mut buf = [0u8; LAUNCH_REQUEST_MAX];
            assert_eq!(LaunchRequest::parse(r.encode(&mut buf)), Some(r));
        }
        for bad in [
            &b"agent-vault-launch-1\x001\x002\x00-"[..],
            b"agent-vault-launch-1\x001\x002\x00-\x00x\x00",
            b"agent-vault-launch-0\x001\x002\x00-\x00",
            b"agent-vault-launch-1\x001\x00\x00-\x00",
        ] {
            assert_eq!(LaunchRequest::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_state_dir_is_the_prefix_and_the_uid() {
        assert_eq!(HostStateDir::new(0, false).as_str(), "/tmp/agent-vault-0");
        assert_eq!(
            HostStateDir::new(1000, false).as_str(),
            "/tmp/agent-vault-1000"
        );
        assert_eq!(
            HostStateDir::new(u32::MAX, false).as_bytes(),
            b"/tmp/agent-vault-4294967295"
        );
    }

    #[test]
    fn shared_state_dir_is_the_root_and_the_uid() {
        assert_eq!(
            HostStateDir::new(1000, true).as_str(),
            "/var/lib/agent-vault/1000"
        );
        assert_eq!(
            HostStateDir::new(1000650000, true).as_str(),
            "/var/lib/agent-vault/1000650000"
        );
        assert_eq!(
            HostStateDir::new(u32::MAX, true).as_bytes(),
            b"/var/lib/agent-vault/4294967295"
        );
    }

    #[test]
    fn the_default_audit_file_is_in_the_state_dir() {
        let (dir, name) = DEFAULT_AUDIT_FILE.rsplit_once('/').unwrap();
        assert_eq!((dir, name), (STATE_DIR, AUDIT_FILE.name));
    }

    #[test]
    fn an_audit_datagram_round_trips_and_a_bad_one_is_refused() {
        let d = AuditDatagram {
            pid: b"42",
            dropped: b"0",
            exe: b"/bin/cat",
            op: b"open",
            rule: b"pi",
            path: b"/pi-agent/auth.json",
            layer: b"preload",
        };
        let mut buf = [0u8; AUDIT_DATAGRAM_MAX];
        let bytes = d.encode(&mut buf);
        assert_eq!(AuditDatagram::parse(bytes), Some(d));
        assert_eq!(AuditDatagram::parse(&bytes[..bytes.len() - 1]), None);
        assert_eq!(AuditDatagram::parse(b"x\0a\0b\0c\0d\0e\0f\0g\0"), None);
        // Cut to fit: still parses.
        let mut small = [0u8; 40];
        let cut = d.encode(&mut small);
        assert!(cut.len() <= 40 && cut.ends_with(&[0]));
    }

    #[test]
    fn a_harness_record_round_trips_and_a_bare_pid_is_refused() {
        let r = HarnessRecord {
            pid: 4_194_304,
            start: u64::MAX,
        };
        let mut buf = [0u8; HARNESS_RECORD_MAX];
        let line = r.format(&mut buf);
        assert_eq!(line, b"4194304 18446744073709551615\n");
        assert_eq!(HarnessRecord::parse(line), Some(r));
        assert_eq!(
            HarnessRecord::parse(b"42 7"),
            Some(HarnessRecord { pid: 42, start: 7 })
        );
        for bad in [
            &b"42\n"[..],
            b"0 7\n",
            b"-1 7\n",
            b"42  7\n",
            b" 42 7",
            b"42 x\n",
            b"",
        ] {
            assert_eq!(HarnessRecord::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_start_time_is_field_22_even_when_the_name_holds_parentheses() {
        extern crate std;
        use std::format;
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 21 22\n";
        assert_eq!(
            stat_start_time(format!("42 (sh) {tail}").as_bytes()),
            Some(987_654)
        );
        assert_eq!(
            stat_start_time(format!("42 (a) b) (c) {tail}").as_bytes()),
            Some(987_654)
        );
        assert_eq!(stat_start_time(b"42 (sh) S 1 2"), None);
    }
}
