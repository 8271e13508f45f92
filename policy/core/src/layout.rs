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
//! | [`AUDIT_FILE`] | 0622 | at record (created; when the sink is the default) | appended by every process; read by people |
//! | [`HARNESS_PID`] | 0644 | after the fork, before the harness execs | the preload (who is the harness), self-test |
//!
//! Every file is written by root (or, in host mode, agent-init's own uid)
//! and is never writable by anyone else; a reader refuses a file that is.
//!
//! Adding a file (say, a credential proxy's socket): add one [`StateFile`]
//! constant here with a doc comment saying who writes it, when, and who
//! reads it, add a row to the table above, and, when agent-init writes it
//! at record, return it from the `policy` crate's `Policy::session_files`.

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
        let mut digits = [0u8; 10];
        let mut n = uid;
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
        let len = start + d.len();
        buf[start..len].copy_from_slice(d);
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

/// `harness.pid`: the harness's pid, one decimal line. Written by agent-init
/// after the fork and before the harness execs (the child waits on a pipe),
/// so it always names the live harness; read by the preload (which process
/// is the harness) and by self-test.
pub const HARNESS_PID: StateFile = StateFile {
    dir: None,
    name: "harness.pid",
    mode: 0o644,
};

/// `audit.jsonl`: the default `[audit] sink`, denial records as JSON lines.
/// Created by agent-init at record (root-owned when root); every process
/// appends to it and none but its owner reads it. A policy may move it
/// elsewhere: then only the mode applies.
pub const AUDIT_FILE: StateFile = StateFile {
    dir: None,
    name: "audit.jsonl",
    mode: 0o622,
};

/// [`AUDIT_FILE`] in [`STATE_DIR`]: the default audit sink.
pub const DEFAULT_AUDIT_FILE: &str = "/run/agent-vault/audit.jsonl";

#[cfg(test)]
mod tests {
    use super::*;

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
}
