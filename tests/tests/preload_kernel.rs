//! Attacks that no libc hook can see: raw system calls, static binaries,
//! io_uring, an attacker's own LD_PRELOAD. The tool layer (Landlock, applied
//! by the harness's spawn hooks) stops them; the audit file stays empty,
//! which proves the preload's hooks were not involved.

use agent_vault_tests::*;
use std::os::unix::fs::PermissionsExt;

fn static_raw() -> std::path::PathBuf {
    c_program("rawopen", &["-static", "-O2"])
}

fn denied_by_landlock(w: &World, r: &Run) {
    w.assert_no_leak(r);
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
    assert_eq!(w.audit_denials("test-vault"), 0, "{}", w.audit());
}

#[test]
fn static_binary_raw_openat_is_denied_by_landlock() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!("{} openat {}", static_raw().display(), w.secret()));
    denied_by_landlock(&w, &r);
}

#[test]
fn static_binary_openat2_is_denied_by_landlock() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "{} openat2 {}",
        static_raw().display(),
        w.secret()
    ));
    denied_by_landlock(&w, &r);
}

#[test]
fn static_binary_io_uring_openat_is_denied_by_landlock() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "{} io_uring {}",
        static_raw().display(),
        w.secret()
    ));
    if r.code == 3
        && declared_skip(
            "io_uring",
            &format!("io_uring unavailable here: {}", r.stdout.trim()),
        )
    {
        return;
    }
    denied_by_landlock(&w, &r);
}

#[test]
fn static_binary_positive_control_reads_the_workspace() {
    // The same program reads a workspace file: the denials above are about the vault.
    let w = World::new();
    std::fs::write(w.ws.join("note.txt"), "hello-workspace").unwrap();
    for how in ["openat", "openat2", "io_uring"] {
        let r = w.tool(&format!("{} {how} note.txt", static_raw().display()));
        if r.code == 3 {
            continue;
        }
        assert!(r.stdout.contains("READ hello-workspace"), "{how}: {r:?}");
    }
}

#[test]
fn python_ctypes_raw_syscall_is_denied_by_landlock() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "/usr/bin/python3 -c 'import ctypes,os; l=ctypes.CDLL(None, use_errno=True); fd=l.syscall(257, -100, b\"{}\", 0, 0); print(\"DENIED\", os.strerror(ctypes.get_errno())) if fd < 0 else print(\"READ\", os.read(fd, 100))'",
        w.secret()
    ));
    denied_by_landlock(&w, &r);
}

#[test]
fn attackers_own_ld_preload_calling_raw_syscall_is_denied_by_landlock() {
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let evil = c_program("evil", &["-shared", "-fPIC", "-O2"]);
    // The attacker's library comes first, so its `open` wins over the preload's.
    let r = w.tool(&format!(
        "LD_PRELOAD={}:$LD_PRELOAD cat {} && echo READ",
        evil.display(),
        w.secret()
    ));
    w.assert_no_leak(&r);
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    assert_eq!(w.audit_denials("test-vault"), 0, "{}", w.audit());
}

#[test]
fn dlsym_of_libc_open_is_denied_by_landlock() {
    // ctypes.CDLL("libc.so.6").open resolves libc's own symbol, not the hook.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::new();
    let r = w.tool(&format!(
        "/usr/bin/python3 -c 'import ctypes,os; l=ctypes.CDLL(\"libc.so.6\", use_errno=True); fd=l.open(b\"{}\", 0); print(\"DENIED\", os.strerror(ctypes.get_errno())) if fd < 0 else print(\"READ\", os.read(fd, 100))'",
        w.secret()
    ));
    w.assert_no_leak(&r);
    assert!(r.stdout.contains("DENIED Permission denied"), "{r:?}");
}

/// A seed mount (root's, world-readable, so only Landlock stands in the
/// way) with a key, and its sibling, under one parent outside the World.
struct SeedMount {
    parent: std::path::PathBuf,
    key: std::path::PathBuf,
    sibling: std::path::PathBuf,
    text: String,
}

impl SeedMount {
    fn new() -> SeedMount {
        use std::os::unix::fs::PermissionsExt;
        // nextest runs each test in a process of its own.
        let parent = std::path::Path::new(TEST_ROOT).join(format!("seeds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        for d in ["seed", "other"] {
            std::fs::create_dir_all(parent.join(d)).unwrap();
        }
        let text = format!("SEED-KEY-{}", std::process::id());
        let key = parent.join("seed/auth.json");
        let sibling = parent.join("other/readme");
        std::fs::write(&key, &text).unwrap();
        std::fs::write(&sibling, "SIBLING-OK").unwrap();
        for f in [&key, &sibling] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        SeedMount {
            parent,
            key,
            sibling,
            text,
        }
    }

    /// The policy's `[[seed]]` for it (the World runs no seeding: the
    /// policy alone decides).
    fn policy(&self) -> String {
        format!(
            "[[seed]]\nsource = \"{}\"\ntarget = \"{}\"\nmode = \"copy-missing\"\n",
            self.parent.join("seed").display(),
            self.parent.join("target").display()
        )
    }
}

impl Drop for SeedMount {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.parent);
    }
}

#[test]
fn a_seed_source_is_out_of_reach_of_tools_and_outsiders() {
    // The tool layer hides seed sources as it hides the vault: a tool (cat,
    // a static raw openat) and a process that gets only the tool layer (a
    // dynamically linked `docker exec`) read neither; the sibling stays.
    if skip_without_landlock(1) {
        return;
    }
    let m = SeedMount::new();
    let w = World::with_policy_extra("required", &m.policy());
    let raw = static_raw();
    for r in [
        w.tool(&format!("cat {}", m.key.display())),
        w.tool(&format!("{} openat {}", raw.display(), m.key.display())),
        w.outsider(&format!("cat {}", m.key.display())),
    ] {
        assert!(!r.all().contains(&m.text), "the seed leaked:\n{r:?}");
        assert!(r.all().contains("Permission denied"), "{r:?}");
    }
    for r in [
        w.tool(&format!("cat {}", m.sibling.display())),
        w.outsider(&format!("cat {}", m.sibling.display())),
    ] {
        assert_eq!(r.stdout, "SIBLING-OK", "{r:?}");
    }
}

#[test]
fn a_tools_write_into_the_harness_program_prefix_is_denied_by_landlock() {
    // `agent-vault/claude` installs Claude Code into the harness user's home;
    // a tool that replaces it runs as the trusted harness at the next start.
    // The preload has no check for tool_read_only paths: a denial is Landlock's.
    if skip_without_landlock(1) {
        return;
    }
    let w = World::with_fs_keys("tool_read_only = [\"{ws}/prog\"]");
    let bin = w.ws.join("prog/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("claude"), "#!/bin/sh\necho REAL_CLAUDE\n").unwrap();
    std::fs::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(w.ws.join("prog"), Some(HARNESS_UID), Some(HARNESS_UID)).unwrap();
    std::os::unix::fs::chown(&bin, Some(HARNESS_UID), Some(HARNESS_UID)).unwrap();
    std::os::unix::fs::chown(bin.join("claude"), Some(HARNESS_UID), Some(HARNESS_UID)).unwrap();
    let r = w.tool(
        "prog/bin/claude; \
         (echo 'echo EVIL' > prog/bin/claude) 2>/dev/null && echo WROTE; \
         rm -f prog/bin/claude 2>/dev/null && echo REMOVED; \
         mv prog prog.old 2>/dev/null && echo RENAMED; \
         mkdir prog/bin/x 2>/dev/null && echo MKDIR; \
         mkdir elsewhere 2>/dev/null && echo WS_ROOT_WRITE; \
         ls prog/bin",
    );
    assert!(
        r.stdout.contains("REAL_CLAUDE"),
        "tools still run it: {r:?}"
    );
    for bad in ["WROTE", "REMOVED", "RENAMED", "MKDIR"] {
        assert!(!r.stdout.contains(bad), "{bad}: {r:?}");
    }
    assert!(
        !r.stdout.contains("WS_ROOT_WRITE"),
        "its parent is list-only for tools: {r:?}"
    );
    assert!(r.stdout.contains("claude"), "tools may list it: {r:?}");
    assert_eq!(
        std::fs::read_to_string(bin.join("claude")).unwrap(),
        "#!/bin/sh\necho REAL_CLAUDE\n"
    );
    // The harness keeps write there (it updates itself).
    let o = w
        .harness_cmd(
            std::path::Path::new("/bin/sh"),
            &[
                "-c",
                "echo 'echo UPDATED' >> prog/bin/claude && echo HARNESS_WROTE",
            ],
        )
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("HARNESS_WROTE"),
        "{o:?}"
    );
}
