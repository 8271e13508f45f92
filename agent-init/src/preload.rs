//! Where the vault preload comes from for the harness and its tools: listed
//! in `/etc/ld.so.preload` (images: every process has it), or, in host mode,
//! found next to agent-init (or in [`PRELOAD_DIR`], or at
//! `AGENT_VAULT_PRELOAD`) and injected with `LD_PRELOAD`. Without it only
//! the kernel layers apply, and agent-init warns.

use crate::log::warning;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The preload's file name.
pub const PRELOAD_NAME: &str = "libvault_preload.so";
/// Where images install it.
pub const PRELOAD_DIR: &str = "/usr/lib/agent-vault";

/// Where the preload is, and whether /etc/ld.so.preload lists it.
pub enum Preload {
    /// /etc/ld.so.preload lists it: every process already has it.
    System(String),
    /// Host mode: injected with LD_PRELOAD.
    Injected(PathBuf),
    /// Not found: tools are not hidden from the vault.
    Missing(Vec<PathBuf>),
}

/// The environment variable that overrides where agent-init looks for the
/// preload in host mode: a path, or `off` (never inject; warned).
pub const PRELOAD_ENV: &str = "AGENT_VAULT_PRELOAD";

/// Where the preload is (step 7's decision; host mode injects `LD_PRELOAD`).
pub fn find_preload() -> Preload {
    if let Some(v) = std::env::var_os(PRELOAD_ENV) {
        if v == "off" {
            return Preload::Missing(Vec::new());
        }
        let p = PathBuf::from(v);
        return if p.is_file() {
            Preload::Injected(p)
        } else {
            Preload::Missing(vec![p])
        };
    }
    if let Ok(text) = std::fs::read_to_string("/etc/ld.so.preload")
        && let Some(line) = text
            .split_whitespace()
            .find(|w| !w.starts_with('#') && w.contains("vault_preload"))
    {
        return Preload::System(line.to_string());
    }
    let mut looked = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        looked.push(dir.join(PRELOAD_NAME));
    }
    looked.push(Path::new(PRELOAD_DIR).join(PRELOAD_NAME));
    match looked.iter().find(|p| p.is_file()) {
        Some(p) => Preload::Injected(p.clone()),
        None => Preload::Missing(looked),
    }
}

/// Give the harness's environment the preload when it must be injected;
/// returns the note for step 7's log line (and warns when there is none).
pub fn inject(env: &mut BTreeMap<OsString, OsString>) -> String {
    match find_preload() {
        Preload::System(p) => format!("preload {p} from /etc/ld.so.preload"),
        Preload::Injected(p) => {
            let mut v = p.as_os_str().to_owned();
            if let Some(old) = env.get(std::ffi::OsStr::new("LD_PRELOAD")) {
                v.push(":");
                v.push(old);
            }
            env.insert("LD_PRELOAD".into(), v);
            format!("host mode: LD_PRELOAD={}", p.display())
        }
        Preload::Missing(looked) => {
            let why = if looked.is_empty() {
                format!("{PRELOAD_ENV}=off")
            } else {
                format!(
                    "{} missing; not in /etc/ld.so.preload",
                    looked
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            warning!(
                "vault preload not used ({why}): tools are NOT kept out of the vault; only the kernel layers apply"
            );
            "WITHOUT the vault preload".to_string()
        }
    }
}
