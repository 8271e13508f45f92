//! Attacks: ordinary programs reading the credential from a tool.
//!
//! Each test names the layer expected to stop it. "preload" means the open
//! hooks deny the call (an audit record names the path); the tool layer
//! (Landlock) would stop it too, and the raw-syscall tests in
//! `preload_kernel.rs` prove that layer alone.

use agent_vault_tests::scaffold::python_tool;
use agent_vault_tests::*;

/// Assert: the tool failed, nothing leaked, and the preload recorded a denial.
fn denied_by_preload(w: &World, r: &Run) {
    w.assert_no_leak(r);
    assert!(
        r.all().contains("Permission denied") || r.all().contains("EACCES") || r.code != 0,
        "expected a denial:\n{r:?}"
    );
    assert!(
        w.preload_denials("test-vault") >= 1,
        "expected an audit record from the preload; audit:\n{}\n{r:?}",
        w.audit()
    );
}

#[test]
fn cat_is_denied_by_preload() {
    let w = World::new();
    let r = w.tool(&format!("cat {}", w.secret()));
    denied_by_preload(&w, &r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    let rec = w.audit();
    let line = rec.lines().next().unwrap_or_default();
    for field in [
        "\"time\":\"20",
        "\"pid\":",
        "\"exe\":",
        "\"rule\":\"test-vault\"",
        "\"action\":\"deny\"",
        "\"layer\":\"preload\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(
        line.contains(&format!("\"path\":\"{}\"", w.secret())),
        "{line}"
    );
    assert!(rec.contains("\"op\":\"open\""), "{rec}");
    assert!(rec.contains("\"exe\":\"/usr/bin/cat\""), "{rec}");
}

#[test]
fn bash_input_redirect_is_denied_by_preload() {
    let w = World::new();
    let r = w.tool(&format!(
        "bash -c 'read -r x < {}; echo \"$x\"'",
        w.secret()
    ));
    denied_by_preload(&w, &r);
}

#[test]
fn bash_dollar_redirect_is_denied_by_preload() {
    let w = World::new();
    let r = w.tool(&format!("bash -c 'echo \"$(<{})\"'", w.secret()));
    denied_by_preload(&w, &r);
}

#[test]
fn cp_is_denied_by_preload() {
    let w = World::new();
    let r = w.tool(&format!("cp {} ./stolen && cat ./stolen", w.secret()));
    denied_by_preload(&w, &r);
    assert!(
        !w.ws.join("stolen").exists()
            || std::fs::read_to_string(w.ws.join("stolen"))
                .unwrap()
                .is_empty()
    );
}

#[test]
fn dd_is_denied_by_preload() {
    let w = World::new();
    let r = w.tool(&format!("dd if={} status=none", w.secret()));
    denied_by_preload(&w, &r);
}

#[test]
fn grep_recursive_is_denied_by_preload() {
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool(&format!("grep -r SECRET {}", w.dir.path().display()));
    w.assert_no_leak(&r);
    assert!(r.all().contains("Permission denied"), "{r:?}");
    assert!(w.preload_denials("test-vault") >= 1, "{}", w.audit());
}

#[test]
fn tar_is_denied_by_preload() {
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool(&format!(
        "tar -cf - -C {} vault | tar -xOf - 2>&1",
        w.dir.path().display()
    ));
    denied_by_preload(&w, &r);
}

#[test]
fn python_open_is_denied_by_preload() {
    let w = World::new();
    let r = w.tool(&format!(
        "/usr/bin/python3 -c 'print(open(\"{}\").read())'",
        w.secret()
    ));
    denied_by_preload(&w, &r);
    assert!(r.stderr.contains("PermissionError"), "{r:?}");
}

#[test]
fn python_os_open_dir_fd_is_denied_by_preload() {
    // The vault dir itself cannot be opened (it is an entry), so the attack
    // goes through its parent: os.open("vault/auth.json", dir_fd=parent).
    // Landlock off: the preload is the only layer, so the refusal is its own.
    let w = World::with_policy_extra("off", "");
    let r = w.tool(&format!(
        "/usr/bin/python3 -c 'import os; d=os.open(\"{}\", os.O_RDONLY); fd=os.open(\"vault/auth.json\", os.O_RDONLY, dir_fd=d); print(os.read(fd, 100))'",
        w.dir.path().display()
    ));
    denied_by_preload(&w, &r);
    assert!(r.stderr.contains("PermissionError"), "{r:?}");
}

#[test]
fn node_read_file_sync_is_denied_by_preload() {
    if skip_without("node", "nodejs") {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "node -e 'console.log(require(\"fs\").readFileSync(\"{}\", \"utf8\"))'",
        w.secret()
    ));
    denied_by_preload(&w, &r);
    assert!(r.stderr.contains("EACCES"), "{r:?}");
}

#[test]
fn node_fs_promises_with_io_uring_is_denied_by_landlock() {
    // With UV_USE_IO_URING=1, libuv may open through io_uring, which no
    // libc hook sees: the tool layer (Landlock) is what stops it.
    if skip_without("node", "nodejs") || skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "UV_USE_IO_URING=1 node -e 'require(\"fs\").promises.readFile(\"{}\", \"utf8\").then(s => console.log(\"READ\", s), e => {{ console.log(\"ERR\", e.code); process.exit(1) }})'",
        w.secret()
    ));
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("ERR EACCES"), "{r:?}");
}

#[test]
fn git_hash_object_is_denied_by_preload() {
    if skip_without("git", "git") {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "git hash-object {s} && git hash-object --stdin < /dev/null && cat {s}",
        s = w.secret()
    ));
    denied_by_preload(&w, &r);
    // Prove the hash of the secret was not computed: compare with the real one.
    let real = std::process::Command::new("git")
        .args(["hash-object", w.secret()])
        .output()
        .unwrap();
    let h = String::from_utf8_lossy(&real.stdout).trim().to_string();
    assert!(!h.is_empty() && !r.stdout.contains(&h), "{r:?}");
}

#[test]
fn fortified_c_program_is_denied_by_preload() {
    let w = World::new();
    let prog = c_program("fortify", &["-O2", "-D_FORTIFY_SOURCE=2"]);
    let nm = std::process::Command::new("nm")
        .arg("-D")
        .arg(&prog)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&nm.stdout).contains("__open_2"),
        "the fortified program must call __open_2"
    );
    let r = w.tool(&format!("{} {} 0", prog.display(), w.secret()));
    denied_by_preload(&w, &r);
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
    assert!(
        w.preload_denials("\"op\":\"__open_2\"") >= 1,
        "{}",
        w.audit()
    );
}

#[test]
fn every_hooked_libc_entry_point_denies_with_landlock_off() {
    // The preload alone (landlock = "off"): each exported open-family symbol,
    // called through the global namespace as a program would, returns
    // EACCES/NULL and writes an audit record naming the call.
    let w = World::with_policy_extra("off", "");
    let script = format!(
        r#"
import ctypes, os
l = ctypes.CDLL(None, use_errno=True)
p = b"{s}"
l.fopen.restype = l.fopen64.restype = l.freopen.restype = l.freopen64.restype = ctypes.c_void_p
l.fdopen.restype = ctypes.c_void_p
how = (ctypes.c_uint64 * 3)(0, 0, 0)
calls = {{
  "open": lambda: l.open(p, 0), "open64": lambda: l.open64(p, 0),
  "openat": lambda: l.openat(-100, p, 0), "openat64": lambda: l.openat64(-100, p, 0),
  "__open_2": lambda: l.__open_2(p, 0), "__open64_2": lambda: l.__open64_2(p, 0),
  "__openat_2": lambda: l.__openat_2(-100, p, 0), "__openat64_2": lambda: l.__openat64_2(-100, p, 0),
  "creat": lambda: l.creat(p, 0o600), "creat64": lambda: l.creat64(p, 0o600),
  "openat2": lambda: l.openat2(-100, p, ctypes.byref(how), 24),
  "fopen": lambda: l.fopen(p, b"r") or -1, "fopen64": lambda: l.fopen64(p, b"r") or -1,
  "freopen": lambda: l.freopen(p, b"r", l.fdopen(os.dup(0), b"r")) or -1,
  "freopen64": lambda: l.freopen64(p, b"r", l.fdopen(os.dup(0), b"r")) or -1,
}}
for name, f in calls.items():
    ctypes.set_errno(0)
    r = f()
    print(name, "DENIED" if r == -1 and ctypes.get_errno() == 13 else "NOT_DENIED r=%s errno=%s" % (r, ctypes.get_errno()))
"#,
        s = w.secret()
    );
    let r = python_tool(&w, "calls.py", &script);
    w.assert_no_leak(&r);
    assert!(!r.stdout.contains("NOT_DENIED"), "{r:?}");
    let audit = w.audit();
    for op in [
        "open",
        "open64",
        "openat",
        "openat64",
        "__open_2",
        "__open64_2",
        "__openat_2",
        "__openat64_2",
        "creat",
        "creat64",
        "openat2",
        "fopen",
        "fopen64",
        "freopen",
        "freopen64",
    ] {
        assert!(r.stdout.contains(&format!("{op} DENIED")), "{op}: {r:?}");
        assert!(audit.contains(&format!("\"op\":\"{op}\"")), "{op}: {audit}");
    }
    w.assert_secret_intact();
}
