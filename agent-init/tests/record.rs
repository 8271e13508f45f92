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

/// The audit sink as a file, in the state directory.
fn audit_policy(d: &Dir) -> std::path::PathBuf {
    let p = d.policy("65534:65534", "required", "required", "");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("sink = \"off\"", "sink = \"/run/agent-vault/audit.jsonl\"");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_forged_audit_record_gets_the_senders_real_pid_by_agent_init() {
    if skip_unless_root("a_forged_audit_record_gets_the_senders_real_pid_by_agent_init")
        || !has("/usr/bin/unshare")
        || !has("/usr/bin/python3")
    {
        return;
    }
    let d = Dir::new();
    let policy = audit_policy(&d);
    // A tool (the harness's child; the harness exits right after it, and
    // agent-init writes what is still queued before it exits) tries both ways to put a record in
    // another's name: appending a line to the audit file itself, and
    // sending agent-init a datagram that claims pid 1 and /sbin/init.
    let forge = r#"
import os, socket
print("REAL=%d" % os.getpid(), flush=True)
try:
    with open("/run/agent-vault/audit.jsonl", "a") as f:
        f.write('{"time":"2026-01-01T00:00:00.000Z","pid":1,"exe":"/sbin/init","path":"/forged-by-append","rule":"pi","op":"open","action":"deny"}\n')
    print("APPENDED", flush=True)
except OSError as e:
    print("APPEND-REFUSED %s" % e.strerror, flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"agent-vault-audit-2\x00" + b"1\x000\x00/sbin/init\x00open\x00pi\x00/forged-by-datagram\x00preload\x00", "/run/agent-vault/audit.sock")
print("SENT", flush=True)
"#;
    std::fs::write(d.join("forge.py"), forge).unwrap();
    let script = format!(
        r#"mount -t tmpfs -o mode=0755 tmpfs /run && {BIN} run --policy {} -- /bin/sh -c '/usr/bin/python3 {}; true'; cat /run/agent-vault/audit.jsonl"#,
        policy.display(),
        d.join("forge.py").display()
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
    let ctx = format!("{out}\n{}", stderr(&o));
    let real: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("REAL="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no REAL= line: {ctx}"));
    assert!(
        out.contains("APPEND-REFUSED"),
        "the tool appended to the audit file: {ctx}"
    );
    assert!(out.contains("SENT"), "{ctx}");
    let forged: Vec<&str> = out.lines().filter(|l| l.contains("/forged-by")).collect();
    assert_eq!(forged.len(), 1, "{ctx}");
    let rec = forged[0];
    // The kernel's pid and uid lead the record; the claim is labelled.
    assert!(
        rec.contains(&format!(",\"pid\":{real},\"uid\":65534,\"gid\":65534,")),
        "{rec}"
    );
    assert!(
        rec.contains("\"claimed\":{\"pid\":\"1\",\"dropped\":\"0\",\"exe\":\"/sbin/init\""),
        "{rec}"
    );
    assert!(!rec.contains("\"pid\":1,"), "{rec}");
}
