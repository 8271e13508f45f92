//! `agent-init health`: 0 while the harness runs under its layers, 1 with
//! one line otherwise (no session, a dead harness, a process that is not
//! agent-init's, a missing layer).

mod common;
use common::*;
use std::process::Output;

/// [`common::in_private_mounts`] with the release preload, run to completion.
fn in_private_mounts(script: &str) -> Output {
    let mut c = common::in_private_mounts(script);
    c.env("AGENT_VAULT_PRELOAD", built_preload())
        .env_remove("AGENT_VAULT_LOG");
    output(c)
}

#[test]
fn healthy_while_the_harness_runs_then_not() {
    if skip_unless_root("healthy_while_the_harness_runs_then_not") {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "required", "required", "");
    // Start a session; health turns 0 once the harness has exec'd (it may
    // be 1 for a moment before: harness.pid is written before the layers).
    let o = in_private_mounts(&format!(
        r#"$BIN run --policy {} -- /bin/sleep 30 & 
ok=1; for i in $(seq 100); do if $BIN health >/tmp/h.$$ 2>&1; then ok=0; break; fi; sleep 0.05; done
echo "first: $ok $(cat /tmp/h.$$)"
kill -KILL $(cut -d" " -f1 /run/agent-vault/harness.pid); wait
$BIN health; echo "after: $?"; rm -f /tmp/h.$$"#,
        p.display()
    ));
    let out = stdout(&o);
    let err = stderr(&o);
    assert!(
        out.contains("first: 0 healthy: harness pid ")
            && out.contains(
                "runs under no_new_privs, no capabilities, seccomp, not dumpable; landlock required"
            ),
        "{out}\n{err}"
    );
    assert!(out.contains("after: 1"), "{out}\n{err}");
    let line: Vec<&str> = err.lines().filter(|l| l.contains("unhealthy")).collect();
    assert_eq!(line.len(), 1, "{err}");
    // agent-init removes the record when the harness ends.
    assert!(line[0].contains("no harness recorded"), "{err}");
}

#[test]
fn no_session_is_unhealthy_in_one_line() {
    if skip_unless_root("no_session_is_unhealthy_in_one_line") {
        return;
    }
    let o = in_private_mounts("exec $BIN health");
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "agent-init: unhealthy: no agent-init session here (/run/agent-vault/policy.toml:"
        ),
        "{err}"
    );
}

/// A state directory naming a process agent-init did not start, or one
/// without the layers: each is refused with the layer named.
#[test]
fn a_process_without_the_layers_is_unhealthy() {
    if skip_unless_root("a_process_without_the_layers_is_unhealthy") {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "required", "required", "");
    // A shell named agent-init as the parent, so the layer checks are reached.
    let fake = d.join("agent-init");
    std::fs::copy("/bin/sh", &fake).unwrap();
    // `start` starts the process and writes its pid to harness.pid.
    let case = |start: &str| -> String {
        let o = in_private_mounts(&format!(
            r#"mkdir -p /run/agent-vault && cp {p} /run/agent-vault/policy.toml
{start}
sleep 0.3; $BIN health; echo "rc=$?"; kill -KILL $(cut -d" " -f1 /run/agent-vault/harness.pid) 2>/dev/null; true"#,
            p = p.display()
        ));
        assert!(
            stdout(&o).contains("rc=1"),
            "{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let lines: Vec<String> = stderr(&o)
            .lines()
            .filter(|l| l.contains("unhealthy"))
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 1, "{}", stderr(&o));
        lines[0].clone()
    };
    let pid_file = "/run/agent-vault/harness.pid";
    // A live process whose start time is not the recorded one (a reused pid).
    let line = case(&format!("/bin/sleep 30 & echo $! 1 > {pid_file}"));
    assert!(line.contains("is not running"), "{line}");
    let line = case(&format!(
        "/bin/sleep 30 & echo $! $(cut -d\\  -f22 /proc/$!/stat) > {pid_file}"
    ));
    assert!(
        line.contains("is not the harness agent-init started (its parent is \"sh\")"),
        "{line}"
    );
    let line = case(&format!(
        "{} -c '/bin/sleep 30 & echo $! $(cut -d\\  -f22 /proc/$!/stat) > {pid_file}; wait' &",
        fake.display()
    ));
    assert!(
        line.contains("is not under no_new_privs (NoNewPrivs: 0)"),
        "{line}"
    );
    let line = case(&format!(
        "{} -c 'setpriv --reuid 65534 --regid 65534 --clear-groups --no-new-privs /bin/sleep 30 & echo $! $(cut -d\\  -f22 /proc/$!/stat) > {pid_file}; wait' &",
        fake.display()
    ));
    assert!(
        line.contains("is not under its seccomp filter (Seccomp: 0)"),
        "{line}"
    );
}
