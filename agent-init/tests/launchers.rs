//! `[harness] launches` at start: agent-init identifies each launcher's
//! file (device and inode, never its name) and the policy image in the
//! state directory carries it; a launcher a tool could rewrite in place
//! stops the start, naming the file and the fix.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

/// A policy whose `[harness]` launches `launches`.
fn launcher_policy(d: &Dir, launches: &[&Path]) -> std::path::PathBuf {
    let p = d.policy("65534:65534", "off", "off", "");
    let list: Vec<String> = launches
        .iter()
        .map(|l| format!("\"{}\"", l.display()))
        .collect();
    let text = std::fs::read_to_string(&p).unwrap().replacen(
        "user = \"65534:65534\"\n",
        &format!("user = \"65534:65534\"\nlaunches = [{}]\n", list.join(", ")),
        1,
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn program(d: &Dir, name: &str, mode: u32) -> std::path::PathBuf {
    let p = d.join(name);
    std::fs::write(&p, b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn the_policy_image_carries_each_launchers_file_and_leaves_out_a_missing_one() {
    if skip_unless_root("the_policy_image_carries_each_launchers_file_and_leaves_out_a_missing_one")
        || !has("/usr/bin/unshare")
    {
        return;
    }
    let d = Dir::new();
    let pi = program(&d, "pi", 0o755);
    let link = d.join("pi-link");
    std::os::unix::fs::symlink(&pi, &link).unwrap();
    let other = program(&d, "other", 0o755);
    let gone = d.join("gone");
    let policy = launcher_policy(&d, &[&link, &gone]);
    let out = d.join("policy.bin");
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs /run && {BIN} run --policy {} -- /bin/true && cp /run/agent-vault/policy.bin {} && cat /run/agent-vault/policy.toml",
        policy.display(),
        out.display()
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(&script)
        .env("AGENT_VAULT_PRELOAD", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_stderr_contains(&o, &format!("nothing at {} at start", gone.display()));
    let effective = stdout(&o);
    assert!(
        effective.contains(&format!(
            "launches = [\"{}\", \"{}\"]",
            link.display(),
            gone.display()
        )),
        "{effective}"
    );
    let bytes = std::fs::read(&out).unwrap();
    let v = policy::View::decode(&bytes).unwrap();
    let m = std::fs::metadata(&pi).unwrap();
    let id = policy::FileId {
        dev: m.dev(),
        ino: m.ino(),
    };
    let got: Vec<_> = v
        .launchers()
        .map(|(p, id)| (String::from_utf8_lossy(p.bytes()).into_owned(), id))
        .collect();
    assert_eq!(
        got,
        [(link.display().to_string(), id)],
        "the symlink's target"
    );
    let o = std::fs::metadata(&other).unwrap();
    assert!(
        !v.is_launcher(policy::FileId {
            dev: o.dev(),
            ino: o.ino()
        }),
        "an unlisted program in the same directory is no launcher"
    );
}

#[test]
fn a_launcher_others_could_rewrite_stops_the_start_and_names_the_fix() {
    if skip_unless_root("a_launcher_others_could_rewrite_stops_the_start_and_names_the_fix")
        || !has("/usr/bin/unshare")
    {
        return;
    }
    let d = Dir::new();
    let pi = program(&d, "pi", 0o775);
    let policy = launcher_policy(&d, &[&pi]);
    let o = run_expecting(&policy, &[], &["/bin/echo", "STARTED"], 1);
    assert!(
        !stdout(&o).contains("STARTED"),
        "the harness must not start"
    );
    assert_stderr_contains(
        &o,
        &format!("{} is owned by uid 0 with mode 775", pi.display()),
    );
    assert_stderr_contains(&o, "chmod go-w");
}

/// `agent-init run -- agent-init self-test`: the launchers row names each
/// launcher with the file identified at start, and says the file is still
/// the one there.
#[test]
fn self_test_shows_each_launcher_and_its_file_at_start() {
    if skip_unless_root("self_test_shows_each_launcher_and_its_file_at_start")
        || !has("/usr/bin/unshare")
    {
        return;
    }
    let so = built_preload();
    let d = Dir::new();
    let pi = program(&d, "pi", 0o755);
    let gone = d.join("gone");
    let policy = launcher_policy(&d, &[&pi, &gone]);
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs /run && exec {BIN} run --policy {} -- {BIN} self-test --json",
        policy.display()
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(&script)
        .env("AGENT_VAULT_PRELOAD", &so)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = stdout(&o);
    let m = std::fs::metadata(&pi).unwrap();
    let want = format!(
        "{}: device {} inode {}, unchanged; {}: not identified at start",
        pi.display(),
        m.dev(),
        m.ino(),
        gone.display()
    );
    assert!(s.contains(&want), "{want}\n{s}\n{}", stderr(&o));
}
