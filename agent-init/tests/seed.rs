//! Seeding (step 2), run as root with the harness as nobody.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn seed_policy(d: &Dir, src: &Path, dst: &Path) -> std::path::PathBuf {
    d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n\n[[seed]]\nsource = \"{}\"\ntarget = \"{}\"\nmode = \"copy-missing\"\n",
            dst.display(),
            src.display(),
            dst.display()
        ),
    )
}

#[test]
fn copy_missing_never_clobbers_and_owns() {
    if skip_unless_root("copy_missing_never_clobbers_and_owns") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("pi-agent");
    std::fs::create_dir_all(src.join("extensions")).unwrap();
    std::fs::write(src.join("auth.json"), "stale-seed").unwrap();
    std::fs::write(src.join("models.json"), "seed-models").unwrap();
    std::fs::set_permissions(
        src.join("models.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(src.join("extensions/x.js"), "ext").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", src.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../outside", src.join("extensions/rel-out")).unwrap();
    std::os::unix::fs::symlink("x.js", src.join("extensions/inside")).unwrap();
    // The target exists, root-owned (the Pi EACCES crash), with a newer token.
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(dst.join("auth.json"), "refreshed-token").unwrap();
    let p = seed_policy(&d, &src, &dst);
    let o = run_expecting(
        &p,
        &[],
        &[
            "/bin/sh",
            "-c",
            "mkdir \"$0/extensions2\" && cat \"$0/models.json\" && id -u",
            dst.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(stdout(&o), "seed-models65534\n");
    assert_eq!(
        std::fs::read_to_string(dst.join("auth.json")).unwrap(),
        "refreshed-token"
    );
    let m = std::fs::metadata(dst.join("models.json")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (NOBODY, NOBODY, 0o640)
    );
    assert_eq!(std::fs::metadata(&dst).unwrap().uid(), NOBODY);
    assert_eq!(
        std::fs::metadata(dst.join("extensions")).unwrap().uid(),
        NOBODY
    );
    assert!(
        std::fs::symlink_metadata(dst.join("abs-link")).is_err(),
        "absolute symlink copied"
    );
    assert!(
        std::fs::symlink_metadata(dst.join("extensions/rel-out")).is_err(),
        "escaping symlink copied"
    );
    assert_eq!(
        std::fs::read_link(dst.join("extensions/inside")).unwrap(),
        Path::new("x.js")
    );
    assert_stderr_contains(&o, "points outside the seed");
    // A second run keeps everything.
    std::fs::write(dst.join("models.json"), "edited").unwrap();
    run_expecting(&p, &[], &["/bin/true"], 0);
    assert_eq!(
        std::fs::read_to_string(dst.join("models.json")).unwrap(),
        "edited"
    );
}

#[test]
fn symlinked_target_is_refused() {
    if skip_unless_root("symlinked_target_is_refused") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    let dst = d.join("target");
    std::os::unix::fs::symlink(d.join("elsewhere"), &dst).unwrap();
    let p = seed_policy(&d, &src, &dst);
    let marker = d.join("started");
    let o = run_expecting(&p, &[], &["/bin/touch", marker.to_str().unwrap()], 1);
    assert_stderr_contains(&o, "is a symlink");
    assert!(!marker.exists());
    assert!(!d.join("elsewhere/a").exists());
}

#[test]
fn missing_source_is_fine() {
    if skip_unless_root("missing_source_is_fine") {
        return;
    }
    let d = Dir::new();
    let p = seed_policy(&d, &d.join("no-such-seed"), &d.join("pi"));
    let o = run_expecting(&p, &[], &["/bin/true"], 0);
    assert_stderr_contains(&o, "does not exist; nothing to copy");
    assert_eq!(std::fs::metadata(d.join("pi")).unwrap().uid(), NOBODY);
}

#[test]
fn read_only_target_stops_before_the_harness() {
    if skip_unless_root("read_only_target_stops_before_the_harness") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("auth.json"), "x").unwrap();
    let dst = d.join("ro");
    std::fs::create_dir_all(&dst).unwrap();
    let p = seed_policy(&d, &src, &dst);
    let marker = d.join("started");
    // A private mount namespace with the target bind-mounted read-only.
    let setup = format!(
        "mount --bind {dst} {dst} && mount -o remount,bind,ro {dst}",
        dst = dst.display()
    );
    let o = run_in_private_mounts(
        "0755",
        &setup,
        "",
        &p,
        &format!("/bin/touch {}", marker.display()),
        "off",
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err.lines().find(|l| l.contains("error")).unwrap();
    assert!(
        line.contains(dst.to_str().unwrap()) && line.contains("uid 65534") && line.contains("Fix:"),
        "{line}"
    );
    assert!(!marker.exists(), "the harness started");
}

#[test]
fn vault_file_with_two_links_is_refused() {
    if skip_unless_root("vault_file_with_two_links_is_refused") {
        return;
    }
    let d = Dir::new();
    let v = d.join("vault");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("auth.json"), "token").unwrap();
    std::fs::hard_link(v.join("auth.json"), d.join("innocent")).unwrap();
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!("[[vault.entry]]\nname = \"v\"\ndir = \"{}\"\n", v.display()),
    );
    let o = run_expecting(&p, &[], &["/bin/true"], 1);
    assert_stderr_contains(&o, "has 2 names (hard links)");
}

#[test]
fn kill_9_mid_seed_leaves_no_partial_file() {
    if skip_unless_root("kill_9_mid_seed_leaves_no_partial_file") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("target");
    std::fs::create_dir_all(&src).unwrap();
    let chunk = vec![7u8; 256 << 10];
    // More than one batch (256 files are synced, then named, at a time).
    for i in 0..300 {
        std::fs::write(src.join(format!("f{i:03}")), &chunk).unwrap();
    }
    let p = seed_policy(&d, &src, &dst);
    let mut child = run_cmd(&p, &[], &["/bin/true"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some files are there, then kill -9 in the middle.
    let t = std::time::Instant::now();
    loop {
        let n = std::fs::read_dir(&dst).map(|r| r.count()).unwrap_or(0);
        if n >= 1 || t.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let names: Vec<_> = std::fs::read_dir(&dst).unwrap().flatten().collect();
    assert!(
        names.len() < 300,
        "seed finished before the kill; make it bigger"
    );
    for e in &names {
        let len = e.metadata().unwrap().len();
        assert_eq!(len, 256 << 10, "partial file {:?}", e.file_name());
        assert!(
            !e.file_name()
                .to_string_lossy()
                .starts_with(".agent-vault-seed.")
        );
    }
    // A second run completes the seed.
    run_expecting(&p, &[], &["/bin/true"], 0);
    assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 300);
}

#[test]
fn newest_backup_restores_claude_json() {
    if skip_unless_root("newest_backup_restores_claude_json") {
        return;
    }
    let d = Dir::new();
    let b = d.join("claude/backups");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join(".claude.json.backup.1"), "old").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(b.join(".claude.json.backup.2"), "new").unwrap();
    let target = d.join("claude/.claude.json");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"c\"\ndir = \"{c}\"\n\n[[seed]]\nsource = \"{b}\"\ntarget = \"{t}\"\nmode = \"newest-backup\"\npattern = \".claude.json.backup.*\"\n",
            c = d.join("claude").display(),
            b = b.display(),
            t = target.display()
        ),
    );
    let o = run_expecting(&p, &[], &["/bin/cat", target.to_str().unwrap()], 0);
    assert_eq!(stdout(&o), "new");
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), NOBODY);
}

/// A vault directory of a harness this container does not run, which cannot
/// be created (read-only root, no volume there), is a warning, and so is the
/// target of a seed whose source is not mounted (images/all names every
/// harness's login mount); the target of a seed with a source that cannot be
/// created still stops the start.
#[test]
fn an_uncreatable_vault_dir_warns_unless_it_is_a_seed_target() {
    if skip_unless_root("an_uncreatable_vault_dir_warns_unless_it_is_a_seed_target") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("pi-agent");
    let ro = d.join("ro");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    let other = ro.join("codex");
    // Like a read-only root without a volume: a read-only tmpfs, mounted in
    // the private mount namespace of this one run.
    let setup = format!("mount -t tmpfs -o ro,mode=0755 tmpfs {}", ro.display());
    let run =
        |policy: &Path, cmd: &str| run_in_private_mounts("0755", &setup, "", policy, cmd, "off");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{dst}\"\n[[vault.entry]]\nname = \"codex\"\ndir = \"{other}\"\n\n[[seed]]\nsource = \"{src}\"\ntarget = \"{dst}\"\nmode = \"copy-missing\"\n",
            dst = dst.display(),
            other = other.display(),
            src = src.display(),
        ),
    );
    let o = run(&p, "/bin/true");
    assert_exit(&o, 0);
    assert_stderr_contains(&o, "cannot be created");
    assert_stderr_contains(&o, "(codex)");

    // The same impossible directory as the target of a seed whose source is
    // not there: nothing to copy, so only the warning.
    let p = seed_policy(&d, &d.join("not-mounted"), &other);
    let o = run(&p, "/bin/echo started");
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("started"), "{}", stderr(&o));
    assert_stderr_contains(&o, "cannot be created");

    // The same impossible directory as the harness's own seed target: no start.
    let p = seed_policy(&d, &src, &other);
    let o = run(&p, "/bin/echo started");
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("started"));
    assert_stderr_contains(&o, other.to_str().unwrap());
}

/// The pid of `parent`'s child (from /proc), waiting up to 10 s for it.
fn child_of(parent: u32) -> i32 {
    let t = std::time::Instant::now();
    loop {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if rest.split_whitespace().nth(1) == Some(&parent.to_string()) {
                return pid;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no child of {parent}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn sigterm_mid_seed_stops_the_start_by_agent_init() {
    if skip_unless_root("sigterm_mid_seed_stops_the_start_by_agent_init") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("target");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = out.join("harness-started");
    // 3000 files in one subdirectory: seeding takes long enough to be
    // stopped in the middle, and the stop lands inside the directory it
    // created (files are named 256 at a time, so some are there by then).
    let chunk = vec![5u8; 16 << 10];
    let sub = src.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o750)).unwrap();
    for i in 0..3000 {
        std::fs::write(sub.join(format!("f{i:04}")), &chunk).unwrap();
    }
    let p = seed_policy(&d, &src, &dst);
    // agent-init as PID 1 of a new PID namespace, as in a container: there
    // the kernel drops a signal PID 1 neither handles nor blocks, which is
    // how a TERM during seeding was lost.
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs /run && mount -t proc proc /proc && exec {BIN} run --policy {} -- /bin/sh -c 'touch {}'",
        p.display(),
        marker.display()
    );
    let unshare = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ])
        .env("AGENT_VAULT_PRELOAD", "off")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let init = child_of(unshare.id());
    // Some files are there: seeding is under way.
    let t = std::time::Instant::now();
    while count_files(&dst) < 1 {
        assert!(t.elapsed() < Duration::from_secs(30), "seeding never began");
        std::thread::sleep(Duration::from_millis(1));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = unshare.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert!(
        !marker.exists(),
        "the harness started after the stop: {err}"
    );
    let copied = count_files(&dst);
    assert!(
        copied < 3000,
        "seeding finished before the stop; make it bigger"
    );
    // No partial file, no temporary name; the directory made is the
    // harness user's, with the source's mode (not root's 0700 as while it
    // was being filled: the next start keeps an existing directory as is).
    for sub in std::fs::read_dir(&dst).unwrap().flatten() {
        let md = sub.metadata().unwrap();
        assert!(md.is_dir(), "{:?}", sub.path());
        assert_eq!(md.uid(), NOBODY, "{:?}", sub.path());
        assert_eq!(md.mode() & 0o7777, 0o750, "{:?}", sub.path());
        for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".agent-vault-seed."), "{name}");
            assert_eq!(f.metadata().unwrap().len(), 16 << 10, "partial {name}");
        }
    }
    // The next start copies what is missing: the stopped tree is not taken
    // as complete.
    run_expecting(&p, &[], &["/bin/true"], 0);
    assert_eq!(count_files(&dst), 3000);
}

/// Regular files under `dir`, one level of subdirectories deep.
fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| std::fs::read_dir(e.path()).map(|r| r.count()).unwrap_or(0))
        .sum()
}

#[test]
fn a_raw_chmod_000_of_the_vault_is_undone_by_agent_init_at_the_next_start() {
    if skip_unless_root("a_raw_chmod_000_of_the_vault_is_undone_by_agent_init_at_the_next_start") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("pi-agent");
    std::fs::create_dir_all(src.join("sessions")).unwrap();
    std::fs::write(src.join("auth.json"), "token").unwrap();
    std::fs::write(src.join("sessions/s.jsonl"), "session").unwrap();
    let p = seed_policy(&d, &src, &dst);
    let dst_s = dst.to_str().unwrap();
    // Session 1: raw chmod and chown calls (no preload here: like a static
    // tool's, which only the kernel sees, and Landlock has no right for them).
    run_expecting(
        &p,
        &[],
        &[
            "/bin/sh",
            "-c",
            "chmod 000 \"$0/sessions/s.jsonl\" \"$0/sessions\" \"$0/auth.json\" && chmod 4000 \"$0\"",
            dst_s,
        ],
        0,
    );
    assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o4000);
    // A link the harness user planted to root's file: never followed.
    let root_only = d.join("root-only");
    std::fs::write(&root_only, "root").unwrap();
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o400)).unwrap();
    std::os::unix::fs::symlink(&root_only, dst.join("link")).unwrap();
    // Session 2: agent-init gives everything back before the harness starts.
    let o = run_expecting(
        &p,
        &[],
        &[
            "/bin/sh",
            "-c",
            "cat \"$0/auth.json\" \"$0/sessions/s.jsonl\" && touch \"$0/new\"",
            dst_s,
        ],
        0,
    );
    assert_eq!(stdout(&o), "tokensession");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&dst), 0o700, "u+rwx, set-id dropped");
    assert_eq!(mode(&dst.join("sessions")), 0o700);
    assert_eq!(mode(&dst.join("auth.json")), 0o600);
    assert_eq!(mode(&dst.join("sessions/s.jsonl")), 0o600);
    let m = std::fs::metadata(&root_only).unwrap();
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (0, 0o400),
        "followed the link"
    );
    assert_eq!(
        std::fs::symlink_metadata(dst.join("link")).unwrap().uid(),
        NOBODY
    );
    assert!(
        stderr(&o).contains("restored the owner or mode of 5 entries"),
        "{}",
        stderr(&o)
    );
}
