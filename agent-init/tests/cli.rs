//! Bad input (one clear line, the right exit code, nothing started), and
//! `check`, `explain`, `self-test`, `--help`.

mod common;
use common::*;
use std::process::Command;

fn one_error_line(o: &std::process::Output) -> String {
    let lines = error_lines(o);
    assert_eq!(lines.len(), 1, "expected one error line: {}", stderr(o));
    lines[0].clone()
}

#[test]
fn broken_policy_is_one_line_exit_2_nothing_started() {
    let d = Dir::new();
    let p = d.join("broken.toml");
    std::fs::write(
        &p,
        "[harness]\nuser = \"1000:1000\"\nshell = \"bash\"\n[vault]\n[filesystem]\n",
    )
    .unwrap();
    let marker = d.join("started");
    let o = run_expecting(&p, &[], &["/bin/touch", marker.to_str().unwrap()], 2);
    let line = stderr(&o);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(&format!(
            "agent-init: error: {}:3:1: unknown field `shell`",
            p.display()
        )),
        "{line}"
    );
    assert!(!marker.exists());
    // check says the same and exits 1.
    let o = Command::new(BIN)
        .args(["check", "--policy"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{}:3:1: ", p.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_user_is_one_line_exit_2() {
    let d = Dir::new();
    let p = d.policy("no-such-user-av", "required", "required", "");
    let marker = d.join("started");
    let o = run_expecting(&p, &[], &["/bin/touch", marker.to_str().unwrap()], 2);
    let line = one_error_line(&o);
    assert!(line.contains("unknown user \"no-such-user-av\""), "{line}");
    assert!(!marker.exists());
    let p = d.policy("65534:65534", "required", "required", "");
    let o = run_expecting(
        &p,
        &["--user", "nope-nobody-av"],
        &["/bin/touch", marker.to_str().unwrap()],
        2,
    );
    assert!(one_error_line(&o).contains("unknown user \"nope-nobody-av\""));
    assert!(!marker.exists());
}

#[test]
fn missing_command_is_127_and_starts_nothing() {
    let d = Dir::new();
    let seeded = d.join("pi");
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n",
            seeded.display()
        ),
    );
    let o = run_expecting(&p, &[], &["no-such-command-av"], 127);
    assert!(one_error_line(&o).contains("no-such-command-av: command not found"));
    assert!(!seeded.exists(), "seeding ran for a missing command");
    run_expecting(&p, &[], &["/no/such/path"], 127);
}

#[test]
fn not_executable_is_126() {
    if skip_unless_root("not_executable_is_126") {
        return;
    }
    let d = Dir::new();
    let f = d.join("script");
    std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
    let p = d.policy("65534:65534", "required", "required", "");
    let o = run_expecting(&p, &[], &[f.to_str().unwrap()], 126);
    assert!(
        one_error_line(&o).contains("cannot execute"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn best_effort_policies_start() {
    // The refusal on kernels below ABI 6 is a unit test of landlock_layer
    // (this kernel has ABI 7).
    let d = Dir::new();
    let p = d.policy("65534:65534", "best-effort", "best-effort", "");
    if skip_unless_root("best_effort_policies_start") {
        return;
    }
    run_expecting(&p, &[], &["/bin/true"], 0);
}

#[test]
fn check_prints_the_builtin_policy_in_words() {
    let o = Command::new(BIN).arg("check").output().unwrap();
    assert_exit(&o, 0);
    let s = stdout(&o);
    for want in [
        "Policy:",
        "Vault",
        "pi ",
        "ANTHROPIC_API_KEY",
        "Seccomp",
        "io_uring_setup",
        "Seeds",
        "copy /pi-agent-ro",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
}

#[test]
fn explain_names_the_rule() {
    let o = Command::new(BIN)
        .args(["explain", "/pi-agent/auth.json", "/usr/bin/cat"])
        .env("PI_CODING_AGENT_DIR", "/pi-agent")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let s = stdout(&o);
    assert!(s.contains("vault entry: pi"), "{s}");
    assert!(s.contains("a tool may:  nothing"), "{s}");
    assert!(
        s.contains("/usr/bin/cat\n  harness may: read, execute"),
        "{s}"
    );
}

#[test]
fn help_teaches_the_commands() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    let s = stdout(&o);
    for want in [
        "run",
        "check",
        "explain",
        "self-test",
        "AGENT_VAULT_LOG",
        "ENTRYPOINT",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    let o = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let s = stdout(&o);
    for want in [
        "--policy",
        "--user",
        "--process-group",
        "--grace",
        "126",
        "127",
        "seccomp",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
}

#[test]
fn self_test_under_run_reports_the_kernel_layers() {
    if skip_unless_root("self_test_under_run_reports_the_kernel_layers") {
        return;
    }
    let d = Dir::new();
    let v = d.join("vault");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("auth.json"), "TOPSECRET-VALUE").unwrap();
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        &format!("[[vault.entry]]\nname = \"v\"\ndir = \"{}\"\n", v.display()),
    );
    // self-test as a tool: a child of the harness `sh`. A private mount
    // namespace gives this agent-init its own /run/agent-vault (other tests
    // running in parallel as root write theirs to the host's).
    let cmd = format!("{BIN} self-test --json; echo rc=$?");
    let o = run_in_private_mounts("0755", "true", "", &p, &cmd, "off");
    let s = stdout(&o);
    assert!(!s.contains("TOPSECRET"), "a secret was printed");
    let row = |check: &str| -> String {
        let i = s
            .find(&format!("\"check\":\"{check}"))
            .unwrap_or_else(|| panic!("{check} missing: {s}"));
        let j = s[i..].find('}').unwrap();
        s[i..i + j].to_string()
    };
    for ok in [
        "base layer restricts this process",
        "filter mode",
        "capabilities empty",
        "no_new_privs",
        "io_uring_setup -> EPERM",
        "clone3 -> ENOSYS",
        "ioctl TIOCSTI -> EPERM",
        "unshare user namespace",
        "ptrace attach to the harness",
        "/tmp writable",
        "harness owns",
        "secret env AV_TEST_SECRET absent",
    ] {
        assert!(row(ok).contains("\"status\":\"pass\""), "{}", row(ok));
    }
    // Without the preload there is no tool layer and the harness stays
    // dumpable: self-test says so (vault readable by raw openat, harness
    // memory readable) and fails.
    assert!(row("vault preload loaded").contains("FAIL"));
    assert!(row("harness non-dumpable").contains("FAIL"));
    assert!(row("raw openat").contains("FAIL"));
    assert!(row("tool layer (probe file denied)").contains("FAIL"));
    assert!(s.contains("rc=1"), "{s}");
}

/// The newest built vault preload (`target/{debug,release}`), if any.
fn built_preload() -> Option<std::path::PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("libvault_preload.so"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
}

/// `agent-init run` (harness user 1000:1000, vault dir `<d>/st/pi` holding
/// `auth.json`) with `/bin/sh -c 'agent-init self-test --json'` as the
/// harness, so self-test runs as a tool; in a private mount namespace with
/// a fresh `/run`. `preload`: the value of `AGENT_VAULT_PRELOAD`.
fn self_test_scenario(d: &Dir, preload: &str) -> (Option<i32>, String) {
    let st = d.join("st");
    let pi = st.join("pi");
    std::fs::create_dir_all(&pi).unwrap();
    std::fs::write(pi.join("auth.json"), "TOPSECRET-VALUE").unwrap();
    for p in [&st, &pi, &pi.join("auth.json")] {
        std::os::unix::fs::chown(p, Some(1000), Some(1000)).unwrap();
    }
    let p = d.policy(
        "1000:1000",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n",
            pi.display()
        ),
    );
    let o = run_in_private_mounts(
        "0755",
        "true",
        "-q",
        &p,
        &format!("{BIN} self-test --json"),
        preload,
    );
    let s = stdout(&o);
    assert!(!s.contains("TOPSECRET"), "a secret was printed");
    assert!(
        pi.join("auth.json").is_file(),
        "the attacks moved the credential"
    );
    (o.status.code(), s)
}

/// The JSON row whose check starts with `check`.
fn json_row(s: &str, check: &str) -> String {
    let i = s
        .find(&format!("\"check\":\"{check}"))
        .unwrap_or_else(|| panic!("{check} missing: {s}"));
    let j = s[i..].find('}').unwrap();
    s[i..i + j].to_string()
}

#[test]
fn self_test_agrees_with_the_preload_tool_layer() {
    if skip_unless_root("self_test_agrees_with_the_preload_tool_layer") {
        return;
    }
    let Some(so) = built_preload() else {
        panic!(
            "no target/{{debug,release}}/libvault_preload.so: build it first (cargo build -p vault-preload)"
        );
    };
    // Under the tool layer: every row holds, exit 0.
    let d = Dir::new();
    let (code, s) = self_test_scenario(&d, so.to_str().unwrap());
    assert_eq!(code, Some(0), "preload {}: {s}", so.display());
    assert!(s.starts_with("{\"ok\":true,"), "{s}");
    assert!(!s.contains("\"status\":\"FAIL\""), "{s}");
    for check in [
        "vault preload loaded",
        "tool layer (probe file denied)",
        "harness non-dumpable",
        "libc open ",
        "raw openat ",
        "openat2 ",
        "io_uring ",
        "hard link ",
        "rename ",
        "create file in ",
        "ptrace attach to the harness",
        "harness followed by the spawn hooks",
    ] {
        let row = json_row(&s, check);
        assert!(row.contains("\"status\":\"pass\""), "{row}");
    }
    // The per-file attacks target the file inside the vault dir.
    assert!(json_row(&s, "raw openat ").contains("/st/pi/auth.json (pi)"));
    assert!(json_row(&s, "create file in ").contains("blocked: EACCES"));

    // Without the preload: no tool layer, and self-test says so.
    let d = Dir::new();
    let (code, s) = self_test_scenario(&d, "off");
    assert_eq!(code, Some(1), "{s}");
    assert!(s.starts_with("{\"ok\":false,"), "{s}");
    let row = json_row(&s, "tool layer (probe file denied)");
    assert!(row.contains("\"status\":\"FAIL\""), "{row}");
    assert!(row.contains("NOT under the tool layer"), "{row}");
    for check in ["raw openat ", "create file in "] {
        let row = json_row(&s, check);
        assert!(row.contains("\"status\":\"FAIL\""), "{row}");
    }
}

#[test]
fn a_tool_calling_the_harness_loopback_server_lacks_its_password_by_agent_init_and_the_preload() {
    // `opencode serve` on 127.0.0.1 answers any local process; with
    // OPENCODE_SERVER_PASSWORD set it requires basic auth. agent-init gives
    // the harness a fresh random value; the policy makes it a secret
    // variable, which the preload strips from every tool.
    if skip_unless_root(
        "a_tool_calling_the_harness_loopback_server_lacks_its_password_by_agent_init_and_the_preload",
    ) {
        return;
    }
    let d = Dir::new();
    let p = d.policy("65534:65534", "required", "required", "");
    let text = std::fs::read_to_string(&p).unwrap().replacen(
        "user = \"65534:65534\"",
        "user = \"65534:65534\"\nrandom_env = [\"AV_TEST_SERVER_PASSWORD\"]",
        1,
    );
    std::fs::write(&p, text).unwrap();
    let show = ["/bin/sh", "-c", "printf %s \"$AV_TEST_SERVER_PASSWORD\""];
    let a = stdout(&run_expecting(&p, &[], &show, 0));
    let b = stdout(&run_expecting(&p, &[], &show, 0));
    assert_eq!(a.len(), 64, "{a:?}");
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a:?}");
    assert_ne!(a, b, "a fresh value each start");
    // A value the environment sets is kept.
    let mut c = run_cmd(&p, &[], &show);
    c.env("AV_TEST_SERVER_PASSWORD", "set-by-the-user");
    assert_eq!(stdout(&output(c)), "set-by-the-user");
    // Secret for tools: in the image's secret variables.
    let pol = policy::load_file(&p, &policy::ExpandContext::default()).unwrap();
    assert!(
        pol.secret_env
            .iter()
            .any(|s| s == "AV_TEST_SERVER_PASSWORD")
    );
    let image = pol.to_image();
    let v = policy::View::decode(&image).unwrap();
    assert!(v.is_secret_env(b"AV_TEST_SERVER_PASSWORD"));
}
