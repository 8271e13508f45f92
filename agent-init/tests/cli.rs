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
    assert!(
        line.contains("no user 'no-such-user-av' in /etc/passwd"),
        "{line}"
    );
    assert!(!marker.exists());
    let p = d.policy("65534:65534", "required", "required", "");
    let o = run_expecting(
        &p,
        &["--user", "nope-nobody-av"],
        &["/bin/touch", marker.to_str().unwrap()],
        2,
    );
    assert!(one_error_line(&o).contains("no user 'nope-nobody-av' in /etc/passwd"));
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
    let json = s.lines().next().unwrap_or_default();
    let row = |check: &str| json_row(json, check);
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
    let p = self_test_policy(d);
    let pi = d.join("st").join("pi");
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

/// The policy of [`self_test_scenario`], with its vault dir and credential.
fn self_test_policy(d: &Dir) -> std::path::PathBuf {
    let st = d.join("st");
    let pi = st.join("pi");
    std::fs::create_dir_all(&pi).unwrap();
    std::fs::write(pi.join("auth.json"), "TOPSECRET-VALUE").unwrap();
    for p in [&st, &pi, &pi.join("auth.json")] {
        std::os::unix::fs::chown(p, Some(1000), Some(1000)).unwrap();
    }
    d.policy(
        "1000:1000",
        "required",
        "required",
        &format!(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"{}\"\n",
            pi.display()
        ),
    )
}

/// self-test's JSON object, parsed.
fn report(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("self-test --json: {e}: {s}"))
}

/// The JSON row whose check starts with `check`, as compact JSON text.
fn json_row(s: &str, check: &str) -> String {
    let r = report(s);
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["check"].as_str().unwrap().starts_with(check))
        .unwrap_or_else(|| panic!("{check} missing: {s}"))
        .to_string()
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
    assert_eq!(report(&s)["ok"], true, "{s}");
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
    assert_eq!(report(&s)["ok"], false, "{s}");
    let row = json_row(&s, "tool layer (probe file denied)");
    assert!(row.contains("\"status\":\"FAIL\""), "{row}");
    assert!(row.contains("NOT under the tool layer"), "{row}");
    for check in ["raw openat ", "create file in "] {
        let row = json_row(&s, check);
        assert!(row.contains("\"status\":\"FAIL\""), "{row}");
    }
}

#[test]
fn check_json_is_the_policy_as_data() {
    let d = Dir::new();
    let v = d.join("vault");
    let p = d.policy(
        "root",
        "required",
        "best-effort",
        &format!("[[vault.entry]]\nname = \"v\"\ndir = \"{}\"\n", v.display()),
    );
    let o = Command::new(BIN)
        .args(["check", "--json", "--policy"])
        .arg(&p)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("check --json parses");
    assert_eq!(j["valid"], true);
    assert_eq!(j["source"], p.display().to_string());
    assert_eq!(j["harness"]["user"], "root");
    assert_eq!(j["harness"]["uid"], 0);
    assert_eq!(j["harness"]["home"], "/root");
    assert_eq!(j["landlock"], "required");
    assert_eq!(j["seccomp"]["mode"], "best-effort");
    assert_eq!(j["audit"]["sink"], "off");
    let vault = j["vault"].as_array().unwrap();
    assert!(
        vault.iter().any(|e| e["name"] == "v"
            && e["kind"] == "dir"
            && e["path"] == v.display().to_string()),
        "{j}"
    );
    assert_eq!(j["secret_env"], serde_json::json!(["AV_TEST_SECRET"]));
    assert_eq!(j["proxy"]["mode"], "off", "{j}");
    assert!(j["proxy"]["routes"].is_array(), "{j}");

    // An invalid policy: still one object, with the error, exit 1.
    std::fs::write(&p, "[harness]\nuser = 5\n").unwrap();
    let o = Command::new(BIN)
        .args(["check", "--json", "--policy"])
        .arg(&p)
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("invalid parses");
    assert_eq!(j["valid"], false);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .starts_with(&p.display().to_string()),
        "{j}"
    );
}

#[test]
fn explain_json_and_the_harness_users_tilde() {
    let d = Dir::new();
    let p = d.policy(
        "root",
        "required",
        "required",
        "[[vault.entry]]\nname = \"ssh\"\ndir = \"~/.ssh\"\n",
    );
    let o = Command::new(BIN)
        .args(["explain", "--json", "--policy"])
        .arg(&p)
        .args(["~/.ssh/id_ed25519", "/usr/bin/cat"])
        .current_dir("/tmp")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("explain --json parses");
    let paths = j["paths"].as_array().unwrap();
    assert_eq!(paths[0]["path"], "/root/.ssh/id_ed25519", "{j}");
    assert_eq!(paths[0]["tool"]["access"], serde_json::json!([]), "{j}");
    assert!(paths[0]["proxy_routes"].is_array(), "{j}");
    assert!(
        paths[0]["vault_rule"].as_str().unwrap().contains("ssh"),
        "{j}"
    );
    let cat = &paths[1];
    assert_eq!(cat["path"], "/usr/bin/cat");
    let harness: Vec<&str> = cat["harness"]["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        harness.contains(&"execute") && harness.contains(&"read_file"),
        "{j}"
    );
    // The text form expands it the same way.
    let o = Command::new(BIN)
        .args(["explain", "--policy"])
        .arg(&p)
        .arg("~/.ssh")
        .current_dir("/tmp")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("\n/root/.ssh\n"), "{}", stdout(&o));
}

/// The rows a tool sees, all holding: what both documented container
/// commands must print.
#[track_caller]
fn assert_tool_rows_hold(o: &std::process::Output) {
    let s = stdout(o);
    assert!(!s.contains("TOPSECRET"), "a secret was printed");
    assert_eq!(o.status.code(), Some(0), "{s}\n{}", stderr(o));
    let r = report(&s);
    assert_eq!(r["ok"], true, "{s}");
    for check in [
        "vault preload loaded",
        "base layer restricts this process",
        "tool layer (probe file denied)",
        "filter mode",
        "capabilities empty",
        "no_new_privs",
        "harness non-dumpable",
        "raw openat ",
        "ptrace attach to the harness",
    ] {
        let row = json_row(&s, check);
        assert!(row.contains("\"status\":\"pass\""), "{row}");
    }
    assert!(!s.contains("this process IS the harness"), "{s}");
}

/// `podman run --rm --entrypoint agent-init IMAGE self-test`: self-test is
/// PID 1, as root, with no session; it starts one and tests as its tool.
#[test]
fn self_test_as_pid_1_starts_a_session_and_passes() {
    if skip_unless_root("self_test_as_pid_1_starts_a_session_and_passes") {
        return;
    }
    let so = built_preload().expect("build the preload first (cargo build -p vault-preload)");
    let d = Dir::new();
    let p = self_test_policy(&d);
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs /run && exec {BIN} self-test --json --policy {}",
        p.display()
    );
    let o = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
        ])
        .args(["/bin/sh", "-c", &script])
        .env("AGENT_VAULT_PRELOAD", &so)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_tool_rows_hold(&o);
    assert!(
        stderr(&o).contains("self-test: PID 1 with no session: starting one"),
        "{}",
        stderr(&o)
    );
}

/// `podman run --rm IMAGE agent-init self-test`: self-test is the harness
/// (`agent-init run -- agent-init self-test`); it runs itself as a tool.
#[test]
fn self_test_as_the_harness_runs_itself_as_a_tool_and_passes() {
    if skip_unless_root("self_test_as_the_harness_runs_itself_as_a_tool_and_passes") {
        return;
    }
    let so = built_preload().expect("build the preload first (cargo build -p vault-preload)");
    let d = Dir::new();
    let p = self_test_policy(&d);
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs /run && exec {BIN} run --policy {} -- {BIN} self-test --json",
        p.display()
    );
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ])
        .env("AGENT_VAULT_PRELOAD", &so)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_tool_rows_hold(&o);
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
