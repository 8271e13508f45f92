//! Step 3's harness record: `harness.pid` names the harness by pid and
//! start time while it runs, and is gone once it has exited (a later
//! process with its pid must not be taken for it).

mod common;
use common::*;
use std::process::{Command, Stdio};

#[test]
fn the_harness_record_is_its_pid_and_start_time_and_is_removed_at_exit_by_agent_init() {
    if skip_unless_root("the_harness_record_is_..._removed_at_exit_by_agent_init")
        || skip_without("/usr/bin/unshare", "unshare")
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
        || skip_without("/usr/bin/unshare", "unshare")
        || skip_without("/usr/bin/python3", "python3")
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

/// A policy with one vault entry, `pi` (a dir holding `auth.json`, the
/// harness user's), and `audit` in place of the test policy's
/// `[audit] sink = "off"` (empty: the policy says nothing of the audit,
/// and the default applies).
fn vault_policy(d: &Dir, audit: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let pi = d.join("st").join("pi");
    std::fs::create_dir_all(&pi).unwrap();
    let cred = pi.join("auth.json");
    std::fs::write(&cred, "TOPSECRET-VALUE").unwrap();
    for p in [&d.join("st"), &pi, &cred] {
        std::os::unix::fs::chown(p, Some(1000), Some(1000)).unwrap();
    }
    let p = d.policy(
        "1000:1000",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n",
            pi.display()
        ),
    );
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("[audit]\nsink = \"off\"", audit);
    assert!(!text.contains("sink = \"off\""), "{text}");
    std::fs::write(&p, text).unwrap();
    (p, cred)
}

/// The denial records on agent-init's stderr, each a JSON object to the
/// end of its line. Each is written whole, in one `write`, but the tools
/// share that stderr: one that writes a line of its own in pieces (cat's
/// `cat: <path>: Permission denied` is three writes) may have a record land
/// inside it, so a record starts anywhere in a line.
fn record_lines(err: &str) -> Vec<&str> {
    err.lines()
        .filter_map(|l| l.find("{\"time\":").map(|i| &l[i..]))
        .collect()
}

#[test]
fn by_default_a_tools_denial_is_one_json_line_on_agent_inits_stderr_with_the_kernels_pid() {
    if skip_unless_root("by_default_a_tools_denial_is_one_json_line_on_agent_inits_stderr")
        || skip_without("/usr/bin/unshare", "unshare")
    {
        return;
    }
    let so = built_preload();
    let d = Dir::new();
    let (policy, cred) = vault_policy(&d, "");
    // The harness (sh) starts a tool (sh) that says its pid and becomes
    // cat on the credential: the preload refuses and sends the record.
    let o = run_in_private_mounts(
        "0755",
        "true",
        "-q",
        &policy,
        &format!(
            r#"sh -c "echo REAL=\$\$; exec cat {}"; ls /run/agent-vault"#,
            cred.display()
        ),
        so.to_str().unwrap(),
    );
    let out = stdout(&o);
    let err = stderr(&o);
    let ctx = format!("stdout:\n{out}\nstderr:\n{err}");
    assert!(!out.contains("TOPSECRET"), "{ctx}");
    let real: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("REAL="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no REAL= line: {ctx}"));
    let recs: Vec<&str> = record_lines(&err)
        .into_iter()
        .filter(|l| l.contains("auth.json"))
        .collect();
    assert_eq!(recs.len(), 1, "one record on agent-init's stderr: {ctx}");
    let rec = recs[0];
    assert!(
        rec.contains(&format!(",\"pid\":{real},\"uid\":1000,\"gid\":1000,")),
        "the kernel's pid and ids: {rec}"
    );
    assert!(rec.contains("\"action\":\"deny\""), "{rec}");
    assert!(rec.contains("\"rule\":\"pi\""), "{rec}");
    assert!(rec.ends_with("}}"), "one whole line: {rec}");
    // Nothing else holds it: no audit file was made.
    assert!(!out.contains("audit.jsonl"), "{ctx}");
}

#[test]
fn the_log_sink_rate_limits_a_tool_looping_on_denials_and_reports_the_suppressed() {
    if skip_unless_root("the_log_sink_rate_limits_a_tool_looping_on_denials")
        || skip_without("/usr/bin/unshare", "unshare")
        || skip_without("/usr/bin/python3", "python3")
    {
        return;
    }
    let so = built_preload();
    let d = Dir::new();
    let (policy, cred) = vault_policy(&d, "[audit]\nsink = \"log\"");
    let tries = 100;
    let script = d.join("loop.py");
    std::fs::write(
        &script,
        format!(
            "import os\nn = 0\nfor _ in range({tries}):\n    try:\n        open({:?}).read()\n    except PermissionError:\n        n += 1\nprint('DENIED=%d' % n, flush=True)\n",
            cred.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(d.path(), Some(1000), Some(1000)).unwrap();
    let o = run_in_private_mounts(
        "0755",
        "true",
        "-q",
        &policy,
        &format!("/usr/bin/python3 {}; true", script.display()),
        so.to_str().unwrap(),
    );
    let out = stdout(&o);
    let err = stderr(&o);
    let ctx = format!("stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains(&format!("DENIED={tries}")), "{ctx}");
    let lines = record_lines(&err);
    let written = lines
        .iter()
        .filter(|l| l.contains("\"action\":\"deny\""))
        .count() as u64;
    let suppressed: u64 = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("{\"time\":\"")?
                .split_once("\",\"action\":\"suppressed\",\"suppressed\":")?
                .1
                .strip_suffix(",\"limit_per_second\":20}")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    // Every record is written or counted; at most 20 a second are written.
    assert!(suppressed > 0, "no suppressed line: {ctx}");
    assert_eq!(written + suppressed, tries, "{ctx}");
    assert!(written < tries, "{ctx}");
    assert_eq!(
        lines.len() as u64,
        written
            + lines
                .iter()
                .filter(|l| l.contains("\"suppressed\""))
                .count() as u64,
        "{ctx}"
    );
}
