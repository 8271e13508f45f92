//! What a session's state directory holds, as bytes: the pure half of
//! agent-init's *record* step. agent-init writes these files (privileged,
//! relative to a directory fd, never following links); the test suite's
//! `World` writes the same files into its own state directory, so the
//! preload is tested against exactly what agent-init writes. The names and
//! modes are the contract in [`policy_core::layout`].

use crate::Policy;
use policy_core::layout::{
    self, HARNESS_PID, HarnessRecord, HostStateDir, POLICY_IMAGE, POLICY_TOML, PROBE_CONTENT,
    PROBE_FILE, StateFile,
};
use std::path::{Path, PathBuf};

/// One file to write: where in the state directory (and with which mode),
/// and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFile {
    pub file: StateFile,
    pub bytes: Vec<u8>,
}

/// The state directory of an agent-init started as `uid` (not root):
/// `/var/lib/agent-vault/<uid>` when [`layout::SHARED_STATE_ROOT`] is a
/// root-owned directory (not a link) that holds `<uid>` already or that this
/// process can write (the images; a read-only root needs a tmpfs there),
/// else `/tmp/agent-vault-<uid>`. The preload looks in the same two places,
/// in the same order.
pub fn host_state_dir(uid: u32) -> PathBuf {
    let shared = HostStateDir::new(uid, true);
    if shared_state_root_is_usable(Path::new(shared.as_str())) {
        PathBuf::from(shared.as_str())
    } else {
        PathBuf::from(HostStateDir::new(uid, false).as_str())
    }
}

fn shared_state_root_is_usable(mine: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = Path::new(layout::SHARED_STATE_ROOT);
    let owned_by_root =
        std::fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_dir() && m.uid() == 0);
    owned_by_root && (std::fs::symlink_metadata(mine).is_ok() || writable(root))
}

/// `access(path, W_OK)`: false on a read-only file system too.
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The state directory of an agent-init running as `euid`: [`layout::STATE_DIR`]
/// for root, else [`host_state_dir`].
pub fn state_dir_for(euid: u32) -> PathBuf {
    if euid == 0 {
        PathBuf::from(layout::STATE_DIR)
    } else {
        host_state_dir(euid)
    }
}

/// `harness.pid` for the harness `record` (its pid and start time).
pub fn harness_pid_file(record: HarnessRecord) -> SessionFile {
    let mut buf = [0u8; layout::HARNESS_RECORD_MAX];
    SessionFile {
        file: HARNESS_PID,
        bytes: record.format(&mut buf).to_vec(),
    }
}

impl Policy {
    /// The files agent-init writes at record, in the order it writes them:
    /// the probe file, the effective policy, the policy image. `self` must
    /// already hold the probe entry ([`Policy::add_probe`]).
    pub fn session_files(&self) -> Vec<SessionFile> {
        vec![
            SessionFile {
                file: PROBE_FILE,
                bytes: PROBE_CONTENT.to_vec(),
            },
            SessionFile {
                file: POLICY_TOML,
                bytes: self.to_effective_toml().into_bytes(),
            },
            SessionFile {
                file: POLICY_IMAGE,
                bytes: self.to_image(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExpandContext;

    #[test]
    fn the_session_is_probe_toml_image_and_the_image_decodes() {
        let mut p = Policy::builtin(&ExpandContext {
            home: Some("/home/agent".into()),
            env: Default::default(),
        })
        .unwrap();
        p.add_probe(PathBuf::from(layout::STATE_DIR).join(layout::PROBE_DIR.name));
        let files = p.session_files();
        let names: Vec<_> = files
            .iter()
            .map(|f| (f.file.dir.map(|d| d.name), f.file.name, f.file.mode))
            .collect();
        assert_eq!(
            names,
            vec![
                (Some("probe"), "probe", 0o644),
                (None, "policy.toml", 0o644),
                (None, "policy.bin", 0o644),
            ]
        );
        let v = policy_core::View::decode(&files[2].bytes).unwrap();
        assert_eq!(
            v.probe.map(|d| d.bytes().to_vec()),
            Some(b"/run/agent-vault/probe".to_vec())
        );
        let again = crate::load_str(
            std::str::from_utf8(&files[1].bytes).unwrap(),
            "policy.toml",
            &ExpandContext::default(),
        )
        .unwrap();
        assert_eq!(again.vault, p.vault);
        assert_eq!(
            harness_pid_file(HarnessRecord { pid: 42, start: 9 }).bytes,
            b"42 9\n"
        );
    }

    #[test]
    fn state_dir_for_root_and_host_mode() {
        assert_eq!(state_dir_for(0), PathBuf::from("/run/agent-vault"));
        // this host has no /var/lib/agent-vault (the images do)
        let host = if Path::new(layout::SHARED_STATE_ROOT).exists() {
            "/var/lib/agent-vault/1000"
        } else {
            "/tmp/agent-vault-1000"
        };
        assert_eq!(state_dir_for(1000), PathBuf::from(host));
    }
}
