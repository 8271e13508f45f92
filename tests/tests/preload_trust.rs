//! Trust and identity: who the preload takes for the harness, which state
//! directory it believes, and what the tool-layer probe infers from a
//! refused open. Each test tries the attack and sees it fail.

use agent_vault_tests::*;

/// A shell line that records the current shell (`$$`) as the harness in
/// the mounted state directory: its pid and start time, as agent-init's
/// record step writes them (`policy_core::layout::HarnessRecord`).
const RECORD_SELF: &str =
    r#"echo "$$ $(cut -d' ' -f22 /proc/$$/stat)" > /run/agent-vault/harness.pid"#;

/// `setpriv` to the harness user with a clean environment and the preload.
fn as_tool(cmd: &str) -> String {
    format!(
        "setpriv --reuid={HARNESS_UID} --regid={HARNESS_UID} --clear-groups env -i PATH={PATH} HOME=/ LD_PRELOAD=\"$PRELOAD\" {cmd}"
    )
}

#[test]
fn a_process_given_the_stale_harness_pid_is_a_tool_by_preload() {
    if skip_without("setpriv", "util-linux") || skip_without("unshare", "util-linux") {
        return;
    }
    let w = World::new();
    let secret = w.secret();
    // In a private pid namespace (its own /proc): the harness is pid 2; it
    // records itself, reads the vault (it is the harness) and exits. Then
    // `ns_last_pid` makes the next process pid 2 again: a tool that
    // inherits the stale record's pid. It must not be the harness.
    let harness = format!(
        "sh -c '{}; exec {}'",
        RECORD_SELF.replace('\'', r"'\''"),
        as_tool(&format!("cat {secret}"))
    );
    let script = format!(
        r#"set -e
# No host-mode session of uid {HARNESS_UID} may stand in for this one.
if [ -e /tmp/agent-vault-{HARNESS_UID} ]; then mount -t tmpfs -o mode=1777 tmpfs /tmp/agent-vault-{HARNESS_UID}; fi
exec unshare --pid --fork --mount-proc sh -c '
  {harness} && echo "HARNESS=$(cut -d" " -f1 /run/agent-vault/harness.pid)"
  sleep 0.05  # a later clock tick: the start times differ
  echo 1 > /proc/sys/kernel/ns_last_pid
  {tool} || true
'"#,
        harness = harness.replace('\'', r"'\''"),
        tool = as_tool(&format!("sh -c \"echo TOOL=\\$\\$; exec cat {secret}\""))
            .replace('\'', r"'\''"),
    );
    let r = w.root_in_session(&script);
    // The recorded harness read the vault (the record works)...
    assert_eq!(r.stdout.matches(&w.secret_text).count(), 1, "{r:?}");
    assert!(r.stdout.contains("HARNESS=2"), "{r:?}");
    // ...and the later process with its pid is a tool: denied.
    assert!(r.stdout.contains("TOOL=2"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    let tail = r.stdout.split("TOOL=2").nth(1).unwrap_or("");
    assert!(
        !tail.contains(&w.secret_text),
        "the stale pid read the vault: {r:?}"
    );
    w.assert_secret_intact();
}

#[test]
fn a_stale_root_state_dir_is_not_used_by_a_later_session_by_preload() {
    if skip_without("setpriv", "util-linux") {
        return;
    }
    // The earlier run: a root session (state at /run/agent-vault) whose
    // harness is gone but whose record was left behind.
    let earlier = World::new();
    // The later run: a host-mode session of uid 1000 with its own vault,
    // its state directory mounted at /tmp/agent-vault-1000 in this test's
    // namespace only (over a private tmpfs on /tmp).
    let host_dir = policy::host_state_dir(HARNESS_UID);
    let later = World::with_state_at("required", "", host_dir.to_str().unwrap());
    chown_r(&later.state, HARNESS_UID);
    // The helper programs and the preload copy live in /tmp: kept visible
    // under the private tmpfs.
    let bin = bin_dir();
    let script = format!(
        r#"set -e
sh -c '{record}'
mkdir /run/keep && mount --bind /tmp /run/keep
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir {bin} && mount --bind /run/keep/{bin_name} {bin}
mkdir {host} && mount --bind {later_state} {host}
{tool} || true
"#,
        record = RECORD_SELF.replace('\'', r"'\''"),
        bin = bin.display(),
        bin_name = bin.file_name().unwrap().to_str().unwrap(),
        host = host_dir.display(),
        later_state = later.state.display(),
        tool = as_tool(&format!("cat {}", later.secret())),
    );
    let r = earlier.root_in_session(&script);
    later.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert!(
        later.audit().contains(later.secret()),
        "the later session's audit file has no record of the denial: {r:?}"
    );
    later.assert_secret_intact();
}

#[test]
fn a_stale_root_state_dir_yields_to_the_shared_root_session_beside_the_proxy_dir_by_preload() {
    // The images' layout: /var/lib/agent-vault root-owned and sticky 1777
    // (the non-root state root) holding vault-proxy's state_dir `proxy`
    // (uid 64990, 0700) beside a non-root session's `<uid>`. A stale root
    // run's state must not override that session, and the lookup must find
    // `/var/lib/agent-vault/1000`, not stop at the `proxy` entry or fall back
    // to /tmp. All of it in this test's mount namespace (a tmpfs on /var/lib).
    if skip_without("setpriv", "util-linux") {
        return;
    }
    let earlier = World::new();
    let shared = format!("{}/{HARNESS_UID}", policy::layout::SHARED_STATE_ROOT);
    let later = World::with_state_at("required", "", &shared);
    chown_r(&later.state, HARNESS_UID);
    // the worlds' folder under /var/lib, kept visible under the tmpfs
    let worlds = later
        .state
        .strip_prefix("/var/lib")
        .expect("the test worlds live under /var/lib")
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_owned();
    let worlds = std::path::Path::new(&worlds);
    let script = format!(
        r#"set -e
sh -c '{record}'
mkdir /run/keep && mount --bind /var/lib /run/keep
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir /var/lib/{worlds} && mount --bind /run/keep/{worlds} /var/lib/{worlds}
install -d -o 0 -g 0 -m 1777 {root}
install -d -o 64990 -g 64990 -m 0700 {root}/proxy
mkdir {shared} && mount --bind {later_state} {shared}
test ! -e /tmp/agent-vault-{uid}
{tool} || true
"#,
        record = RECORD_SELF.replace('\'', r"'\''"),
        root = policy::layout::SHARED_STATE_ROOT,
        uid = HARNESS_UID,
        worlds = worlds.display(),
        later_state = later.state.display(),
        tool = as_tool(&format!("cat {}", later.secret())),
    );
    let r = earlier.root_in_session(&script);
    later.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert!(
        later.audit().contains(later.secret()),
        "the shared-root session's audit file has no record of the denial: {r:?}"
    );
    later.assert_secret_intact();
}

#[test]
fn the_access_check_ignores_landlock_but_not_file_modes_by_kernel() {
    // The probe's inference (vault-preload tool_layer/probe.rs): an open
    // refused while faccessat2(R_OK, AT_EACCESS) allows the read was
    // refused by Landlock; one the access check refuses too was refused by
    // the file's modes. Both halves, on this kernel.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let raw = c_program("rawopen", &["-O2", "-static"]);
    let raw = raw.display();
    // A tool is under the tool layer: Landlock refuses the open, the
    // access check (file modes: 0600, the tool's own uid) allows it.
    let r = w.tool(&format!(
        "{raw} openat {s}; {raw} access {s}",
        s = w.secret()
    ));
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
    assert!(r.stdout.contains("ACCESS OK"), "{r:?}");
    // Without Landlock, a file of another owner with mode 0600: both refuse.
    let foreign = w.dir.path().join("foreign");
    std::fs::write(&foreign, "FOREIGN").unwrap();
    std::os::unix::fs::chown(&foreign, Some(0), Some(0)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run_without_session(
        std::path::Path::new("/nonexistent-no-preload"),
        &format!("{raw} openat {f}; {raw} access {f}", f = foreign.display()),
        &[],
    );
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
    assert!(r.stdout.contains("ACCESS Permission denied"), "{r:?}");
}

#[test]
fn a_foreign_0700_vault_dir_does_not_pass_for_the_tool_layer_by_preload_and_landlock() {
    // No session: the built-in policy. Its first vault directory (pi's,
    // `${PI_CODING_AGENT_DIR:-/pi-agent}`) exists with mode 0700 and
    // another owner, as `/pi-agent` does on a machine where root set it up:
    // the probe's open of it is refused by the file modes, not by Landlock.
    // Taking that for "already under the tool layer" would apply no layer,
    // and a static reader (no preload hooks) would read the other
    // credentials.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let root = w.dir.path();
    let pi = root.join("pi-agent");
    let home = root.join("home");
    let cfg = root.join("cfg");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::create_dir_all(&pi).unwrap();
    std::fs::write(pi.join("auth.json"), "PI-SECRET").unwrap();
    std::fs::write(home.join(".claude/.credentials.json"), "HOME-CLAUDE-SECRET").unwrap();
    std::fs::write(cfg.join(".credentials.json"), "CFG-CLAUDE-SECRET").unwrap();
    chown_r(root, HARNESS_UID);
    chown_r(&pi, 0);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o700)).unwrap();
    let raw = c_program("rawopen", &["-O2", "-static"]);
    let r = run_without_session(
        &w.so,
        &format!(
            "{raw} openat $CLAUDE_CONFIG_DIR/.credentials.json; {raw} openat $HOME/.claude/.credentials.json",
            raw = raw.display()
        ),
        &[
            ("HOME", home.to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", cfg.to_str().unwrap()),
            ("PI_CODING_AGENT_DIR", pi.to_str().unwrap()),
        ],
    );
    assert!(!r.all().contains("CLAUDE-SECRET"), "{r:?}");
    assert_eq!(
        r.stdout.matches("DENIED Permission denied").count(),
        2,
        "{r:?}"
    );
}
