//! Adversarial review: what the harness user (or a previous run, or an
//! image) can plant before agent-init starts as root. Root must never
//! create, write, chown or chmod through a link someone else planted, nor
//! trust a state directory someone else could have filled.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

fn uid(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().uid()
}

/// The harness user's home (owned by it) holds `.local`, a symlink it made
/// to a root-owned tree. The vault dir `~/.local/share/opencode` must not be
/// created or chowned over there.
#[test]
fn seed_never_follows_a_planted_intermediate_symlink() {
    if skip_unless_root("seed_never_follows_a_planted_intermediate_symlink") {
        return;
    }
    let d = Dir::new();
    let home = d.join("home");
    let victim = d.join("victim");
    std::fs::create_dir_all(victim.join("share/opencode")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    chown(&home, NOBODY);
    std::os::unix::fs::symlink(&victim, home.join(".local")).unwrap();
    chown(&home.join(".local"), NOBODY);
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"o\"\ndir = \"{}\"\n",
            home.join(".local/share/opencode").display()
        ),
    );
    let marker = d.join("started");
    let o = run_expecting(&p, &[], &["/bin/touch", marker.to_str().unwrap()], 1);
    assert_stderr_contains(&o, "symlink");
    assert!(!marker.exists(), "the harness started");
    assert_eq!(
        uid(&victim.join("share/opencode")),
        0,
        "root chowned a directory through the planted link"
    );

    // Same with the directory missing: nothing is created over there.
    std::fs::remove_dir(victim.join("share/opencode")).unwrap();
    run_expecting(&p, &[], &["/bin/true"], 1);
    assert!(
        !victim.join("share/opencode").exists(),
        "root created a directory through the planted link"
    );
}

/// An image symlink made by root in a root-only directory is still followed.
#[test]
fn seed_follows_roots_own_symlinks() {
    if skip_unless_root("seed_follows_roots_own_symlinks") {
        return;
    }
    let d = Dir::new();
    std::fs::create_dir_all(d.join("real")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("alias")).unwrap();
    let v = d.join("alias/pi-agent");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n",
            v.display()
        ),
    );
    run_expecting(&p, &[], &["/bin/true"], 0);
    assert_eq!(uid(&d.join("real/pi-agent")), NOBODY);
}

fn backup_policy(d: &Dir, claude: &Path, target: &Path) -> std::path::PathBuf {
    d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"c\"\ndir = \"{c}\"\n\n[[seed]]\nsource = \"{c}/backups\"\ntarget = \"{t}\"\nmode = \"newest-backup\"\npattern = \".claude.json.backup.*\"\n",
            c = claude.display(),
            t = target.display()
        ),
    )
}

/// `~/.claude.json` is restored into the harness user's home. When that home
/// is not writable by it (a home of `/`, or a system directory), root must
/// not chown the home to it.
#[test]
fn newest_backup_never_chowns_the_home() {
    if skip_unless_root("newest_backup_never_chowns_the_home") {
        return;
    }
    let d = Dir::new();
    let home = d.join("home"); // root-owned 0755, like `/`
    let claude = home.join(".claude");
    std::fs::create_dir_all(claude.join("backups")).unwrap();
    std::fs::write(claude.join("backups/.claude.json.backup.1"), "{}").unwrap();
    let p = backup_policy(&d, &claude, &home.join(".claude.json"));
    let o = output(run_cmd(&p, &[], &["/bin/true"]));
    assert_eq!(uid(&home), 0, "the home was chowned to the harness user");
    assert_exit(&o, 1);
    assert_stderr_contains(&o, "not writable by the harness user");
}

/// The harness user links a root-only file into its backups directory
/// (here root makes the link, as `fs.protected_hardlinks=0` would let the
/// user do). Root must not copy it into the user's `.claude.json`.
#[test]
fn newest_backup_ignores_a_planted_hard_link() {
    if skip_unless_root("newest_backup_ignores_a_planted_hard_link") {
        return;
    }
    let d = Dir::new();
    let claude = d.join("claude");
    std::fs::create_dir_all(claude.join("backups")).unwrap();
    chown(&claude, NOBODY);
    chown(&claude.join("backups"), NOBODY);
    let secret = d.join("root-only");
    std::fs::write(&secret, "ROOT-SECRET").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::hard_link(&secret, claude.join("backups/.claude.json.backup.9")).unwrap();
    let target = claude.join(".claude.json");
    let p = backup_policy(&d, &claude, &target);
    // (The vault link check then refuses to start; the copy came first.)
    let _ = output(run_cmd(&p, &[], &["/bin/true"]));
    assert!(
        std::fs::read_to_string(&target).map_or(true, |s| !s.contains("ROOT-SECRET")),
        "root copied a file the harness user could not read"
    );
    // Its own backups are still restored.
    std::fs::remove_file(claude.join("backups/.claude.json.backup.9")).unwrap();
    let _ = std::fs::remove_file(&target);
    std::fs::write(claude.join("backups/.claude.json.backup.1"), "mine").unwrap();
    chown(&claude.join("backups/.claude.json.backup.1"), NOBODY);
    run_expecting(&p, &[], &["/bin/true"], 0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
}

/// `~/.claude/backups` replaced by the harness user with a symlink to a
/// directory only root can read: root must not read through it.
#[test]
fn newest_backup_source_symlink_is_not_followed() {
    if skip_unless_root("newest_backup_source_symlink_is_not_followed") {
        return;
    }
    let d = Dir::new();
    let claude = d.join("claude");
    std::fs::create_dir_all(&claude).unwrap();
    chown(&claude, NOBODY);
    let private = d.join("private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(private.join(".claude.json.backup.1"), "ROOT-SECRET").unwrap();
    std::os::unix::fs::symlink(&private, claude.join("backups")).unwrap();
    chown(&claude.join("backups"), NOBODY);
    let target = claude.join(".claude.json");
    let p = backup_policy(&d, &claude, &target);
    let _ = output(run_cmd(&p, &[], &["/bin/true"]));
    assert!(
        std::fs::read_to_string(&target).map_or(true, |s| !s.contains("ROOT-SECRET")),
        "root read through the planted symlink"
    );
}

/// A symlink copied from the seed is chowned as a link, never by name.
#[test]
fn seeded_symlinks_are_owned_by_the_harness() {
    if skip_unless_root("seeded_symlinks_are_owned_by_the_harness") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    std::os::unix::fs::symlink("a", src.join("b")).unwrap();
    let dst = d.join("dst");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{t}\"\n\n[[seed]]\nsource = \"{s}\"\ntarget = \"{t}\"\nmode = \"copy-missing\"\n",
            s = src.display(),
            t = dst.display()
        ),
    );
    run_expecting(&p, &[], &["/bin/true"], 0);
    assert_eq!(uid(&dst.join("b")), NOBODY);
    assert_eq!(uid(&d.join("seed/a")), 0);
}

/// Run agent-init as root with a private `/run` of mode `run_mode`, after `setup`.
fn in_private_run(run_mode: &str, setup: &str, policy: &Path, cmd: &str) -> std::process::Output {
    run_in_private_mounts(run_mode, setup, "", policy, cmd, "off")
}

fn audit_policy(d: &Dir) -> std::path::PathBuf {
    let p = d.policy("65534:65534", "required", "required", "");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("sink = \"off\"", "sink = \"/run/agent-vault/audit.jsonl\"");
    std::fs::write(&p, text).unwrap();
    p
}

/// A state directory that exists before agent-init and is not root's (the
/// image or a `docker exec` made it) is refused, not adopted: whatever is
/// in it was put there by someone else.
#[test]
fn state_dir_owned_by_someone_else_is_refused() {
    if skip_unless_root("state_dir_owned_by_someone_else_is_refused")
        || skip_without("/usr/bin/unshare", "unshare")
    {
        return;
    }
    let d = Dir::new();
    let p = audit_policy(&d);
    let o = in_private_run(
        "0755",
        "mkdir /run/agent-vault && echo 999 > /run/agent-vault/harness.pid && chown -R 65534:65534 /run/agent-vault",
        &p,
        "echo STARTED",
    );
    assert!(!stdout(&o).contains("STARTED"), "{}", stderr(&o));
    assert_exit(&o, 1);
    assert_stderr_contains(&o, "/run/agent-vault cannot be trusted");
}

/// `/run` writable by everyone without the sticky bit: the harness user
/// could rename `/run/agent-vault` and put its own harness.pid and policy
/// there. Refused. (Docker's default tmpfs mode 1777, sticky, is fine.)
#[test]
fn state_dir_under_a_world_writable_parent_is_refused() {
    if skip_unless_root("state_dir_under_a_world_writable_parent_is_refused")
        || skip_without("/usr/bin/unshare", "unshare")
    {
        return;
    }
    let d = Dir::new();
    let p = audit_policy(&d);
    let o = in_private_run("0777", "true", &p, "echo STARTED");
    assert!(!stdout(&o).contains("STARTED"), "{}", stderr(&o));
    assert_exit(&o, 1);
    assert_stderr_contains(&o, "/run");
    let o = in_private_run("1777", "true", &p, "echo STARTED");
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("STARTED"));
}

/// The audit file name is a hard link to a root-only file: root must not
/// chmod that file 0622 (world-writable) nor append to it.
#[test]
fn audit_file_hard_link_is_refused() {
    if skip_unless_root("audit_file_hard_link_is_refused")
        || skip_without("/usr/bin/unshare", "unshare")
    {
        return;
    }
    let d = Dir::new();
    let p = audit_policy(&d);
    let o = in_private_run(
        "0755",
        "mkdir -m 0755 /run/agent-vault && echo secret > /run/victim && chmod 0600 /run/victim && ln /run/victim /run/agent-vault/audit.jsonl",
        &p,
        "stat -c %a /run/victim; echo STARTED",
    );
    assert!(!stdout(&o).contains("STARTED"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("622"), "victim made 0622");
    assert_exit(&o, 1);
    assert_stderr_contains(&o, "hard links");
}

/// A root harness (uid 0, no capabilities) would own the state files and
/// could rewrite harness.pid wherever Landlock does not stop it. Refused
/// before anything starts.
#[test]
fn root_harness_is_refused() {
    if skip_unless_root("root_harness_is_refused") {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "off", "off", "");
    let marker = d.join("started");
    let o = run_expecting(
        &p,
        &["--user", "0:0"],
        &["/bin/touch", marker.to_str().unwrap()],
        2,
    );
    assert_stderr_contains(&o, "harness user is root");
    assert!(!marker.exists());
}

/// agent-init's environment holds the harness's secrets. In host mode the
/// harness and its tools share its uid, so it is non-dumpable from its first
/// instruction, not only once the harness runs. Here agent-init (as nobody)
/// blocks reading its policy from a FIFO while another nobody process
/// tries /proc/<agent-init>/environ.
#[test]
fn agent_init_environ_is_closed_from_the_start() {
    if skip_unless_root("agent_init_environ_is_closed_from_the_start")
        || skip_without("/usr/bin/setpriv", "setpriv")
    {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "off", "off", "");
    let text = std::fs::read_to_string(&p).unwrap();
    let fifo = d.join("policy.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let as_nobody = ["--reuid", "65534", "--regid", "65534", "--clear-groups"];
    let mut child = Command::new("setpriv")
        .args(as_nobody)
        .args([
            BIN,
            "run",
            "--policy",
            fifo.to_str().unwrap(),
            "--",
            "/bin/true",
        ])
        .env("AV_TEST_SECRET", "TOPSECRET-ENV")
        .env("AGENT_VAULT_PRELOAD", "off")
        .env("HOME", "/tmp")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until agent-init (not setpriv) blocks in open() on the FIFO.
    let pid = child.id();
    for _ in 0..200 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if exe.to_string_lossy().contains("agent-init") && wchan.contains("fifo") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let peek = Command::new("setpriv")
        .args(as_nobody)
        .args(["cat", &format!("/proc/{pid}/environ")])
        .output()
        .unwrap();
    std::fs::write(&fifo, text).unwrap();
    let _ = child.wait();
    assert!(
        !String::from_utf8_lossy(&peek.stdout).contains("TOPSECRET-ENV"),
        "a same-uid process read agent-init's environment"
    );
}
