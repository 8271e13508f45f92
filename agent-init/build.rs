//! Records the commit agent-init is built from, for `agent-init --version`:
//! `AGENT_VAULT_REVISION` when set (images/build.sh passes it into image
//! builds, which have no .git), else `git rev-parse --short HEAD`, else
//! "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=AGENT_VAULT_REVISION");
    let revision = match std::env::var("AGENT_VAULT_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => {
            // HEAD's reflog changes with every commit and checkout.
            if let Some(log) = git(&["rev-parse", "--git-path", "logs/HEAD"]) {
                println!("cargo:rerun-if-changed={log}");
            }
            git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=AGENT_VAULT_REVISION={revision}");
}
