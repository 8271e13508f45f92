//! Logs that fit a log pipeline: quiet by default (one line per start),
//! `-v` for the steps, JSON with timestamps, unknown settings refused, the
//! setting kept from the harness, and a signal death said as such.

mod common;
use common::*;

fn full(d: &Dir) -> std::path::PathBuf {
    d.policy("65534:65534", "required", "required", "")
}

/// stderr lines that are not the expected "preload off" warning.
fn lines_but_preload_warning(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| !l.contains("vault preload not used"))
        .map(str::to_string)
        .collect()
}

#[test]
fn default_is_one_line_per_start() {
    if skip_unless_root("default_is_one_line_per_start") {
        return;
    }
    let d = Dir::new();
    let mut c = run_cmd(&full(&d), &[], &["/bin/true"]);
    c.env_remove("AGENT_VAULT_LOG");
    let o = output(c);
    assert_exit(&o, 0);
    let lines = lines_but_preload_warning(&o);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("agent-init: harness /bin/true started as pid")
            && lines[0].contains("under landlock, seccomp"),
        "{lines:#?}"
    );
    // -v adds the steps.
    let mut c = run_cmd(&full(&d), &["-v"], &["/bin/true"]);
    c.env_remove("AGENT_VAULT_LOG");
    let o = output(c);
    assert_exit(&o, 0);
    for n in 1..=8 {
        assert_stderr_contains(&o, &format!("[{n}/8]"));
    }
}

#[test]
fn json_lines_have_a_timestamp_level_and_message() {
    if skip_unless_root("json_lines_have_a_timestamp_level_and_message") {
        return;
    }
    let d = Dir::new();
    for (flags, env) in [
        (&["-v"][..], "json"),
        (&["-v", "--log-format", "json"][..], ""),
    ] {
        let mut c = run_cmd(&full(&d), flags, &["/bin/true"]);
        c.env("AGENT_VAULT_LOG", env);
        let o = output(c);
        assert_exit(&o, 0);
        let err = stderr(&o);
        let mut levels = Vec::new();
        for line in err.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}\n{err}"));
            let ts = v["ts"].as_str().expect("ts");
            assert!(
                ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
                "{ts}"
            );
            assert!(v["msg"].as_str().is_some(), "{line}");
            levels.push(v["level"].as_str().unwrap().to_string());
        }
        assert!(levels.iter().any(|l| l == "info"), "{err}");
        assert!(levels.iter().any(|l| l == "warning"), "{err}");
        assert!(err.contains("[7/8] start"), "{err}");
    }
}

#[test]
fn unknown_setting_is_refused_in_one_line() {
    let o = std::process::Command::new(BIN)
        .args(["check", "--policy", "/nonexistent"])
        .env("AGENT_VAULT_LOG", "verbose")
        .output()
        .unwrap();
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("AGENT_VAULT_LOG=\"verbose\"")
            && err.contains("accepted: quiet, info, debug, text, json"),
        "{err}"
    );
}

#[test]
fn the_harness_does_not_see_the_setting() {
    if skip_unless_root("the_harness_does_not_see_the_setting") {
        return;
    }
    let d = Dir::new();
    let o = run_expecting(
        &full(&d),
        &[],
        &["/bin/sh", "-c", "echo \"${AGENT_VAULT_LOG-unset}\""],
        0,
    );
    assert_eq!(stdout(&o), "unset\n");
}

#[test]
fn a_signal_death_is_named() {
    if skip_unless_root("a_signal_death_is_named") {
        return;
    }
    let d = Dir::new();
    let mut c = run_cmd(&full(&d), &[], &["/bin/sh", "-c", "kill -TERM $$"]);
    c.env_remove("AGENT_VAULT_LOG");
    let o = output(c);
    assert_exit(&o, 143);
    assert_stderr_contains(
        &o,
        "agent-init: exit: harness killed by SIGTERM (agent-init exits 143)",
    );
    assert!(!stderr(&o).contains("code 143"), "{}", stderr(&o));
}
