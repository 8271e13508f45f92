//! Errors that name the real cause and its fix: agent-init started by a
//! container init, missing capabilities, a read-only root without a volume,
//! an unknown `--user`, an unreadable seed file. Each is reproduced on the
//! host, as root, in a private mount namespace.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

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

/// [`common::in_private_mounts`], run to completion.
fn in_private_mounts(script: &str) -> Output {
    output(common::in_private_mounts(script))
}

fn the_error_line(o: &Output) -> String {
    let lines = error_lines(o);
    assert_eq!(lines.len(), 1, "expected one error line: {}", stderr(o));
    lines[0].clone()
}

#[test]
fn started_by_a_container_init_names_it_and_the_fix() {
    if skip_unless_root("started_by_a_container_init_names_it_and_the_fix") {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "required", "required", "");
    // A parent named like Docker's `--init` (a shell that stays: `; exit`).
    let init = d.join("docker-init");
    std::fs::copy("/bin/sh", &init).unwrap();
    let marker = d.join("started");
    let o = in_private_mounts(&format!(
        "{} -c \"$BIN run --policy {} -- /bin/touch {}; exit \\$?\"",
        init.display(),
        p.display(),
        marker.display()
    ));
    assert_exit(&o, 1);
    let line = the_error_line(&o);
    assert!(
        line.contains("agent-init is not PID 1")
            && line.contains("started by \"docker-init\"")
            && line.contains("Fix: remove --init (docker/podman run) or `init: true` (compose)"),
        "{line}"
    );
    assert!(!marker.exists());

    // Host mode (not root) under the same parent is legitimately not PID 1.
    let o = in_private_mounts(&format!(
        "cd / && setpriv --reuid 65534 --regid 65534 --clear-groups {} -c \"$BIN run --policy {} -- /bin/true; exit \\$?\"",
        init.display(),
        p.display()
    ));
    assert_exit(&o, 0);
    // So is a root run from an ordinary shell (sudo, a service manager).
    let o = in_private_mounts(&format!(
        "/bin/sh -c \"$BIN run --policy {} -- /bin/true; exit \\$?\"",
        p.display()
    ));
    assert_exit(&o, 0);
}

#[test]
fn cap_drop_all_names_the_missing_capabilities() {
    if skip_unless_root("cap_drop_all_names_the_missing_capabilities") {
        return;
    }
    if skip_without("/usr/bin/setpriv", "setpriv") {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "required", "required", "");
    // --cap-drop=ALL: root with an empty bounding set has no capability.
    let o = in_private_mounts(&format!(
        "exec setpriv --bounding-set -all --inh-caps -all $BIN run --policy {} -- /bin/true",
        p.display()
    ));
    assert_exit(&o, 1);
    let line = the_error_line(&o);
    assert!(
        line.contains("missing capabilities CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID, SETPCAP, KILL (")
            && line.contains("Fix: --cap-add=CHOWN --cap-add=DAC_OVERRIDE --cap-add=FOWNER --cap-add=SETUID --cap-add=SETGID --cap-add=SETPCAP --cap-add=KILL"),
        "{line}"
    );
    // One line, before any step.
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    // Only SETPCAP missing: said by name, not as a bare prctl EPERM.
    let o = in_private_mounts(&format!(
        "exec setpriv --bounding-set -setpcap $BIN run --policy {} -- /bin/true",
        p.display()
    ));
    assert_exit(&o, 1);
    let line = the_error_line(&o);
    assert!(
        line.contains("missing capabilities SETPCAP (") && line.contains("Fix: --cap-add=SETPCAP"),
        "{line}"
    );
    assert!(!line.contains("PR_CAPBSET_DROP"), "{line}");
}

#[test]
fn an_unreadable_seed_names_the_source_and_the_missing_capability() {
    if skip_unless_root("an_unreadable_seed_names_the_source_and_the_missing_capability") {
        return;
    }
    if skip_without("/usr/bin/setpriv", "setpriv") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("pi");
    std::fs::create_dir(&src).unwrap();
    let secret = src.join("auth.json");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let p = seed_policy(&d, &src, &dst);
    let o = in_private_mounts(&format!(
        "exec setpriv --bounding-set -dac_override,-dac_read_search $BIN run --policy {} -- /bin/true",
        p.display()
    ));
    assert_exit(&o, 1);
    assert_stderr_contains(&o, "warning: missing capabilities DAC_OVERRIDE (");
    let line = the_error_line(&o);
    assert!(
        line.contains("step 2 (seed): missing capabilities DAC_OVERRIDE (")
            && line.contains(&format!(
                "seeding failed without them: cannot read the seed {} (open: Permission denied)",
                secret.display()
            ))
            && line.matches("Fix:").count() == 1,
        "{line}"
    );
    assert!(
        !line.contains(&dst.join("auth.json").display().to_string()),
        "{line}"
    );
}

#[test]
fn a_read_only_root_asks_for_a_volume_not_a_chown() {
    if skip_unless_root("a_read_only_root_asks_for_a_volume_not_a_chown") {
        return;
    }
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("pi");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("models.json"), "m").unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::os::unix::fs::chown(&dst, Some(NOBODY), Some(NOBODY)).unwrap();
    let p = seed_policy(&d, &src, &dst);
    // The owner is already right; the mount is read-only.
    let o = in_private_mounts(&format!(
        "mount --bind {0} {0} && mount -o remount,bind,ro {0} && exec $BIN run --policy {1} -- /bin/true",
        dst.display(),
        p.display()
    ));
    assert_exit(&o, 1);
    let line = the_error_line(&o);
    assert!(
        line.contains("read-only file system")
            && line.contains(&format!(
                "Fix: mount a volume or a tmpfs at {}",
                dst.display()
            )),
        "{line}"
    );
    assert!(!line.contains("chown"), "{line}");
}

#[test]
fn an_unknown_user_is_named_even_when_the_policy_uses_tilde() {
    let d = Dir::new();
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        "[[vault.entry]]\nname = \"ssh\"\ndir = \"~/.ssh\"\n",
    );
    let marker = d.join("started");
    let o = run_expecting(
        &p,
        &["--user", "nosuch"],
        &["/bin/touch", marker.to_str().unwrap()],
        2,
    );
    let line = the_error_line(&o);
    assert!(
        line.contains("no user 'nosuch' in /etc/passwd; use a name from it or uid:gid"),
        "{line}"
    );
    assert!(!line.contains('~'), "{line}");
    assert!(!marker.exists());
}

#[test]
fn an_unreadable_seed_names_the_source_and_its_fix() {
    if skip_unless_root("an_unreadable_seed_names_the_source_and_its_fix") {
        return;
    }
    if skip_without("/usr/bin/setpriv", "setpriv") {
        return;
    }
    // Host mode (uid 65534): a seed file only root may read.
    let d = Dir::new();
    let src = d.join("seed");
    let dst = d.join("pi");
    std::fs::create_dir(&src).unwrap();
    let secret = src.join("auth.json");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::os::unix::fs::chown(&dst, Some(NOBODY), Some(NOBODY)).unwrap();
    let p = seed_policy(&d, &src, &dst);
    let o = in_private_mounts(&format!(
        "cd / && exec setpriv --reuid 65534 --regid 65534 --clear-groups $BIN run --policy {} -- /bin/true",
        p.display()
    ));
    assert_exit(&o, 1);
    let line = the_error_line(&o);
    assert!(
        line.contains(&format!(
            "step 2 (seed): cannot read the seed {} (open: Permission denied). Fix: make it readable by agent-init",
            secret.display()
        )),
        "{line}"
    );
    assert!(!dst.join("auth.json").exists());
}
