//! Attacks through the file system's shape: other names for the credential
//! (symlinks, hard links, /proc/self/fd, `..`), moving it, opening it in a
//! posix_spawn file action, and truncating it.

use agent_vault_tests::scaffold::{python_tool, script};
use agent_vault_tests::*;
use std::fs;

#[test]
fn symlink_to_the_credential_is_denied_by_preload() {
    // Post-check: the fd's (dev, ino)/real path is the vault's, whatever the name.
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool(&format!("ln -s {} ./link && cat ./link", w.secret()));
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert!(
        w.preload_denials("\"path\":\"./link\"") >= 1,
        "{}",
        w.audit()
    );
}

#[test]
fn symlink_to_the_vault_dir_is_denied_by_preload() {
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool(&format!(
        "ln -s {} ./vl && cat ./vl/auth.json",
        w.vault.display()
    ));
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert!(
        w.preload_denials("\"path\":\"./vl/auth.json\"") >= 1,
        "{}",
        w.audit()
    );
}

#[test]
fn new_hard_link_to_the_credential_is_denied_by_landlock() {
    // link(2) needs access to the source: the tool layer refuses it.
    if skip_without_landlock(2) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!("ln {} ./hard; cat ./hard", w.secret()));
    w.assert_no_leak(&r);
    assert!(!w.ws.join("hard").exists(), "hard link was created: {r:?}");
}

#[test]
fn preexisting_hard_link_to_a_vault_file_is_denied_by_preload() {
    // A link made before the sandbox (say at image build) has another path;
    // the preload matches the inode of the `file` entry.
    let w = World::new();
    let link = w.ws.join("old-link");
    fs::hard_link(&w.cred_file, &link).unwrap();
    let r = w.tool(&format!("cat {}", link.display()));
    assert!(!r.all().contains("CRED-"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert!(w.preload_denials("test-cred-file") >= 1, "{}", w.audit());
}

#[test]
fn proc_self_fd_reopen_of_an_inherited_fd_is_stopped_by_the_exec_hook() {
    // The harness leaks an fd to the credential (no O_CLOEXEC) as fd 7; the
    // exec hook closes vault fds before the tool starts (Landlock does not
    // re-check reads on an fd that is already open).
    let w = World::new();
    let probe = "if [ -e /proc/self/fd/7 ]; then echo FD7_OPEN; else echo FD7_CLOSED; fi; cat /proc/self/fd/7; cat <&7";
    let r = w.harness(&["leakfd", w.secret(), "7", probe]);
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("FD7_CLOSED"), "{r:?}");
    // Control: a leaked fd to an ordinary file stays open.
    std::fs::write(w.ws.join("plain.txt"), "plain-content").unwrap();
    let plain = w.ws.join("plain.txt");
    let r = w.harness(&["leakfd", plain.to_str().unwrap(), "7", probe]);
    assert!(
        r.stdout.contains("FD7_OPEN") && r.stdout.contains("plain-content"),
        "{r:?}"
    );
}

#[test]
fn proc_self_fd_reopen_of_own_vault_dir_fd_is_denied_by_preload() {
    // An O_PATH fd to the vault dir cannot be had either: the preload denies
    // O_PATH opens of vault entries as well.
    let w = World::new();
    let r = w.tool(&format!(
        "/usr/bin/python3 -c 'import os; d=os.open(\"{}\", os.O_PATH); print(open(\"/proc/self/fd/%d/auth.json\" % d).read())'",
        w.vault.display()
    ));
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("PermissionError"), "{r:?}");
    assert!(w.preload_denials("test-vault") >= 1, "{}", w.audit());
}

#[test]
fn proc_harness_fd_reopen_is_denied_by_dumpable_and_landlock() {
    let w = World::new();
    let r = w.harness(&[
        "holdfd",
        w.secret(),
        "cat /proc/{HPID}/fd/{HFD}; ls /proc/{HPID}/fd/",
    ]);
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
}

#[test]
fn relative_path_with_dotdot_is_denied_by_preload() {
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool("cat ../vault/./auth.json; cd ../home && cat ../ws/../vault/auth.json");
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert!(
        w.preload_denials("\"path\":\"../vault/./auth.json\"") >= 1,
        "{}",
        w.audit()
    );
}

#[test]
fn rename_of_the_credential_is_denied_by_landlock() {
    if skip_without_landlock(2) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!("mv {} ./moved; cat ./moved", w.secret()));
    w.assert_no_leak(&r);
    assert!(!w.ws.join("moved").exists(), "{r:?}");
    w.assert_secret_intact();
}

#[test]
fn rename_of_the_vault_dir_is_denied_by_landlock() {
    if skip_without_landlock(2) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "mv {v} {v}-moved; mv {v} ./vmoved; cat {v}-moved/auth.json ./vmoved/auth.json",
        v = w.vault.display()
    ));
    w.assert_no_leak(&r);
    assert!(w.vault.is_dir(), "the vault dir was moved: {r:?}");
    w.assert_secret_intact();
}

#[test]
fn posix_spawn_file_action_open_is_denied_by_preload() {
    // glibc performs the open inside the child with an internal call no hook
    // sees, so the path is vetted when the action is registered.
    let w = World::new();
    let r = w.tool(&format!(
        "/usr/bin/python3 -c 'import os; os.posix_spawn(\"/bin/cat\", [\"cat\"], {{}}, file_actions=[(os.POSIX_SPAWN_OPEN, 0, \"{}\", os.O_RDONLY, 0)]); os.wait()'",
        w.secret()
    ));
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("PermissionError"), "{r:?}");
    assert!(
        w.preload_denials("\"op\":\"posix_spawn_file_actions_addopen\"") >= 1,
        "{}",
        w.audit()
    );
}

#[test]
fn truncation_attempts_leave_the_credential_unchanged() {
    // Pre-check by path and by the resolved file, before the real call: no
    // O_TRUNC ever reaches the kernel (and the tool layer denies write/truncate).
    let w = World::new();
    let s = w.secret();
    let cmds = [
        format!(": > {s}"),
        format!("truncate -s 0 {s}"),
        format!("dd if=/dev/null of={s} status=none"),
        format!("cp /dev/null {s}"),
        format!("/usr/bin/python3 -c 'open(\"{s}\", \"w\")'"),
        format!("/usr/bin/python3 -c 'import os; os.open(\"{s}\", os.O_WRONLY|os.O_TRUNC)'"),
        format!("ln -s {s} ./t && : > ./t"),
        format!("cd {} && : > auth.json", w.vault.display()),
        format!("echo x >> {s}"),
    ];
    for c in &cmds {
        let r = w.tool(c);
        assert_ne!(r.code, 0, "{c}: {r:?}");
        w.assert_secret_intact();
    }
    assert!(w.audit_denials("test-vault") >= 5, "{}", w.audit());
}

#[test]
fn truncation_with_landlock_off_is_stopped_by_the_preload_alone() {
    // The preload's pre-check on its own (landlock = "off" in the policy).
    let w = World::with_policy_extra("off", "");
    let s = w.secret();
    for c in [
        format!(": > {s}"),
        format!("/usr/bin/python3 -c 'open(\"{s}\", \"w\")'"),
        format!("ln -s {s} ./t2 && : > ./t2"),
        format!("cd {} && : > auth.json", w.vault.display()),
    ] {
        let r = w.tool(&c);
        assert_ne!(r.code, 0, "{c}: {r:?}");
        w.assert_secret_intact();
    }
}

#[test]
fn creating_a_new_file_in_the_vault_is_denied_by_preload() {
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool(&format!(
        "echo planted > {v}/new.json; ln -s {v} ./vl2 && echo planted > ./vl2/new2.json",
        v = w.vault.display()
    ));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!w.vault.join("new.json").exists());
    assert!(!w.vault.join("new2.json").exists());
    assert!(w.preload_denials("test-vault") >= 2, "{}", w.audit());
}

#[test]
fn a_file_moved_into_the_vault_after_a_cached_read_is_denied_by_preload() {
    // Without Landlock the preload remembers files it found outside the
    // vault, keyed by inode and change time (`vault-preload/src/outside.rs`).
    // One process reads two workspace files (remembered); then one is moved
    // into the vault (its ctime changes), and the other's directory is moved
    // there and the file rewritten from outside (ctime again). Reads through
    // names outside the vault (symlinks) must be checked again: denied.
    let w = World::with_policy_extra("off", "");
    let v = w.vault.display();
    let script = script(&format!(
        r#"
os.makedirs("d", exist_ok=True)
open("f.txt", "w").write("one")
open("d/g.txt", "w").write("two")
print("READ", open("f.txt").read(), open("d/g.txt").read(), flush=True)
os.rename("f.txt", "{v}/moved.txt")
os.symlink("{v}/moved.txt", "lf")
try:
    print("LEAK1", open("lf").read())
except PermissionError:
    print("DENIED1")
os.rename("d", "{v}/d")
os.symlink("{v}/d/g.txt", "lg")
open("ready", "w").close()
wait_for("go")
try:
    print("LEAK2", open("lg").read())
except PermissionError:
    print("DENIED2")
"#
    ));
    chown_r(&w.ws, HARNESS_UID);
    // The harness's part, from outside the tool: rewrite the moved file.
    let (ws, vault) = (w.ws.clone(), w.vault.clone());
    let writer = std::thread::spawn(move || {
        for _ in 0..500 {
            if ws.join("ready").exists() {
                std::fs::write(vault.join("d/g.txt"), "SECRET-NEW").unwrap();
                std::fs::write(ws.join("go"), "").unwrap();
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    });
    let r = python_tool(&w, "cache.py", &script);
    assert!(writer.join().unwrap(), "the tool never got ready: {r:?}");
    assert!(r.stdout.contains("READ one two"), "{r:?}");
    assert!(r.stdout.contains("DENIED1"), "{r:?}");
    assert!(r.stdout.contains("DENIED2"), "{r:?}");
    assert!(!r.stdout.contains("LEAK"), "{r:?}");
}

#[test]
fn inherited_vault_fds_are_closed_by_the_exec_hook_under_any_fd_limit() {
    // The exec hook finds the harness child's open fds with poll(2) over
    // its fd table when the table is small (up to 4096 numbers, whatever
    // the limit) and by listing /proc/self/fd when it is larger: a leaked
    // credential fd is closed either way, at a low number, at the edges of
    // the table sizes, and near the top of the limit.
    let w = World::new();
    // The hook polls the fd table's size, found by probing 64, 128, 256...
    // (the smallest table is 64, larger ones multiples of 128): a leaked fd
    // on either side of each size tried, and one past the largest polled
    // table (4096: then /proc/self/fd is listed).
    for (nofile, fd) in [
        (1024u64, "7"),
        (1024, "63"),
        (1024, "64"),
        (1024, "1000"),
        (8192, "7"),
        (8192, "127"),
        (8192, "128"),
        (8192, "4095"),
        (8192, "4096"),
        (8192, "5000"),
    ] {
        let probe = format!(
            "if [ -e /proc/self/fd/{fd} ]; then echo FD_OPEN; else echo FD_CLOSED; fi; cat /proc/self/fd/{fd}"
        );
        let r = w.harness_with_nofile(&["leakfd", w.secret(), fd, &probe], nofile);
        w.assert_no_leak(&r);
        assert!(
            r.stdout.contains("FD_CLOSED"),
            "limit {nofile}, fd {fd}: {r:?}"
        );
        // Control: a leaked fd to an ordinary file stays open.
        std::fs::write(w.ws.join("plain.txt"), "plain-content").unwrap();
        let plain = w.ws.join("plain.txt");
        let r = w.harness_with_nofile(&["leakfd", plain.to_str().unwrap(), fd, &probe], nofile);
        assert!(
            r.stdout.contains("FD_OPEN") && r.stdout.contains("plain-content"),
            "limit {nofile}, fd {fd}: {r:?}"
        );
    }
    // An fd above a soft limit lowered after it was opened: still in the
    // table, so polled and closed.
    let probe = "if [ -e /proc/self/fd/3000 ]; then echo FD_OPEN; else echo FD_CLOSED; fi; cat /proc/self/fd/3000";
    let r = w.harness_with_nofile(&["leakfd-lowered", w.secret(), "3000", "1024", probe], 8192);
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("FD_CLOSED"), "lowered limit: {r:?}");
}

#[test]
fn posix_spawn_without_unshare_still_keeps_vault_fds_from_the_child() {
    // Docker's default seccomp profile refuses unshare(2) without
    // CAP_SYS_ADMIN, so the posix_spawn helper thread cannot take a private
    // fd table: it marks the harness's vault fds close-on-exec instead. The
    // spawned program does not get the credential fd; the harness keeps it.
    let w = World::new();
    let probe = "if [ -e /proc/self/fd/7 ]; then echo FD7_OPEN; else echo FD7_CLOSED; fi; cat <&7";
    let r = w.harness(&["nounshare-leakfd", w.secret(), "7", probe]);
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("FD7_CLOSED"), "{r:?}");
    assert!(r.stdout.contains("HARNESS_FD_KEPT"), "{r:?}");
    // Control: an ordinary file's fd is inherited.
    std::fs::write(w.ws.join("plain.txt"), "plain-content").unwrap();
    let plain = w.ws.join("plain.txt");
    let r = w.harness(&["nounshare-leakfd", plain.to_str().unwrap(), "7", probe]);
    assert!(
        r.stdout.contains("FD7_OPEN") && r.stdout.contains("plain-content"),
        "{r:?}"
    );
}
