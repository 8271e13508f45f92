//! Step 3's harness record: `harness.pid` names the harness by pid and
//! start time while it runs, and is gone once it has exited (a later
//! process with its pid must not be taken for it).

mod common;
use common::*;
use std::process::{Command, Stdio};

#[test]
fn the_harness_record_is_its_pid_and_start_time_and_is_removed_at_exit_by_agent_init() {
    if skip_unless_root("the_harness_record_is_..._removed_at_exit_by_agent_init")
        || !has("/usr/bin/unshare")
    {
        return;
    }
    let d = Dir::new();
    let policy = d.policy("65534:65534", "off", "off", "");
    // A leftover record from an earlier run is removed before the harness
    // starts; the harness sees its own; after agent-init exits, none.
    let script = format!(
        r#"mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/agent-vault && echo "7 7" > /run/agent-vault/harness.pid && {BIN} run --policy {} -- /bin/sh -c 'echo "SELF=$$ $(cut -d" " -f22 /proc/$$/stat)"; echo "RECORD=$(cat /run/agent-vault/harness.pid)"'; if [ -e /run/agent-vault/harness.pid ]; then echo LEFT; else echo GONE; fi"#,
        policy.display()
    );
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ])
        .env("AGENT_VAULT_PRELOAD", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    let line = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} line: {out}\n{}", stderr(&o)))
            .to_string()
    };
    assert_eq!(line("SELF="), line("RECORD="), "{}", stderr(&o));
    assert!(out.contains("GONE"), "{out}\n{}", stderr(&o));
}
