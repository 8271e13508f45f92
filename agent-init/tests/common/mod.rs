//! Helpers for agent-init's integration tests: the binary, test policies in
//! temporary directories, and runs that do not depend on the vault preload
//! (`AGENT_VAULT_PRELOAD=off`). The tests run as root on a host with
//! Landlock and seccomp; a test that needs something missing fails unless
//! the skip is declared by name in `AGENT_VAULT_ALLOW_SKIP`
//! ([`declared_skip`]).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_agent-init");
/// The unprivileged user the harness runs as in these tests.
pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A test that cannot run here fails, unless the environment declares the
/// skip by name: `AGENT_VAULT_ALLOW_SKIP` is a comma-separated list of
/// names (`root`, `gcc`, `landlock-abi-6`, ...). CI declares none, so a
/// green run there tested everything. Returns true (after saying so) when
/// the skip is declared; panics with `why` and the way out when not.
#[track_caller]
pub fn declared_skip(name: &str, why: &str) -> bool {
    let declared = std::env::var("AGENT_VAULT_ALLOW_SKIP").unwrap_or_default();
    if declared.split(',').any(|n| n.trim() == name) {
        eprintln!("SKIP ({name}, declared in AGENT_VAULT_ALLOW_SKIP): {why}");
        return true;
    }
    panic!(
        "cannot run here: {why}. Fix the environment, or declare the skip: AGENT_VAULT_ALLOW_SKIP={name}"
    );
}

/// Skip (return true and say why) unless root, when the skip `root` is
/// declared ([`declared_skip`]); fails otherwise.
#[track_caller]
pub fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        return declared_skip(
            "root",
            &format!("{test} needs root (run the tests as root)"),
        );
    }
    false
}

/// Skip unless the program `cmd` (an absolute path) exists, when the skip
/// `name` is declared; fails otherwise.
#[track_caller]
pub fn skip_without(cmd: &str, name: &str) -> bool {
    if !has(cmd) {
        return declared_skip(name, &format!("{cmd} is not installed"));
    }
    false
}

pub fn has(cmd: &str) -> bool {
    Path::new(cmd).exists()
}

/// A temporary directory every user may enter (the harness runs as nobody).
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        let tmp = tempfile::Builder::new()
            .prefix("agent-init-test.")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir { tmp }
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }
    /// Write a policy file; `extra` is appended (vault entries, seeds...).
    pub fn policy(&self, user: &str, landlock: &str, seccomp: &str, extra: &str) -> PathBuf {
        let p = self.join("policy.toml");
        let text = policy::testing::policy_toml(
            user,
            &format!("secret_env = [\"AV_TEST_SECRET\"]\n{extra}"),
            "read_only = [\"/\"]\nexecutable = [\"/\"]\nread_write = [\"/tmp\", \"/dev\"]",
            &format!(
                "[landlock]\nmode = \"{landlock}\"\n[seccomp]\nmode = \"{seccomp}\"\n[audit]\nsink = \"off\""
            ),
        );
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// `agent-init run --policy P ARGS -- CMD...` with the preload off.
///
/// As root, agent-init writes its state to the one `/run/agent-vault` of the
/// machine, and nextest runs tests in parallel: each run gets a private mount
/// namespace with a fresh `/run` (a tmpfs, 0755 like a container's), so runs
/// never see each other's state. `unshare` (no `--fork`) and `sh` both exec,
/// so the pid spawned is agent-init's pid.
pub fn run_cmd(policy: &Path, args: &[&str], cmd: &[&str]) -> Command {
    let mut c = if is_root() {
        let mut u = Command::new("unshare");
        u.args(["--mount", "--propagation", "private", "/bin/sh", "-c"]);
        u.arg("mount -t tmpfs -o mode=0755 tmpfs /run && exec \"$0\" \"$@\"");
        u.arg(BIN);
        u
    } else {
        Command::new(BIN)
    };
    c.arg("run").arg("--policy").arg(policy);
    c.args(args).arg("--").args(cmd);
    c.env("AGENT_VAULT_PRELOAD", "off")
        .env("AGENT_VAULT_LOG", "debug");
    c.stdin(Stdio::null());
    c
}

pub fn output(mut c: Command) -> Output {
    c.output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// [`run_cmd`], run to the end; asserts its exit code (with stderr in the
/// failure message) and returns the output.
#[track_caller]
pub fn run_expecting(policy: &Path, args: &[&str], cmd: &[&str], code: i32) -> Output {
    let o = output(run_cmd(policy, args, cmd));
    assert_exit(&o, code);
    o
}

/// Assert the exit code (with stderr in the failure message).
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
}

/// Assert that stderr says `needle` (with stderr in the failure message).
#[track_caller]
pub fn assert_stderr_contains(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(err.contains(needle), "{}", err);
}

/// The lines of stderr that are not agent-init's step/info lines nor the
/// expected preload warning.
pub fn error_lines(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.contains("error"))
        .map(str::to_string)
        .collect()
}

/// `agent-init run RUN_ARGS --policy P -- /bin/sh -c CMD` as root in a private
/// mount namespace whose `/run` is a fresh tmpfs of mode `run_mode`, after
/// `setup` (shell, run in that namespace) prepared it; the preload as
/// `preload` (a path, or `off`). Returns the output.
pub fn run_in_private_mounts(
    run_mode: &str,
    setup: &str,
    run_args: &str,
    policy: &Path,
    cmd: &str,
    preload: &str,
) -> Output {
    let script = format!(
        "mount -t tmpfs -o mode={run_mode} tmpfs /run && {setup} && exec {BIN} run {run_args} --policy {} -- /bin/sh -c '{cmd}'",
        policy.display()
    );
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ])
        .env("AGENT_VAULT_PRELOAD", preload)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The release vault preload the tests load (`AV_PRELOAD_SO` overrides it).
/// Release only: the debug build cannot be loaded (it needs the unwinder's
/// `rust_eh_personality`, which only the release profile links statically).
pub fn built_preload() -> PathBuf {
    if let Some(p) = std::env::var_os("AV_PRELOAD_SO") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let so = target.join("release/libvault_preload.so");
    assert!(
        so.exists(),
        "{} is missing: build it first (cargo build --release -p vault-preload)",
        so.display()
    );
    so
}

/// `sh -c SCRIPT` as root in a private mount namespace with a fresh `/run`
/// (so `/run/agent-vault` is this test's alone); `$BIN` in SCRIPT is
/// agent-init. The preload is off and the log verbose unless the caller
/// sets `AGENT_VAULT_PRELOAD` / `AGENT_VAULT_LOG` itself.
pub fn in_private_mounts(script: &str) -> Command {
    let script = format!("mount -t tmpfs -o mode=0755 tmpfs /run || exit 99\nBIN={BIN}\n{script}");
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        &script,
    ])
    .env("AGENT_VAULT_PRELOAD", "off")
    .env("AGENT_VAULT_LOG", "debug")
    .stdin(Stdio::null());
    c
}

/// `tests/src/c/<name>.c` built static into `d` (no libc open, no
/// preload: raw system calls only); `None` when gcc is missing and the
/// skip `gcc` is declared.
pub fn static_helper(d: &Dir, name: &str) -> Option<PathBuf> {
    if !has("/usr/bin/gcc") && declared_skip("gcc", &format!("the static helper {name} needs gcc"))
    {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/src/c/{name}.c"));
    let out = d.join(name);
    let o = Command::new("gcc")
        .args(["-static", "-O2"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run gcc");
    assert!(
        o.status.success(),
        "gcc {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(out)
}

/// [`static_helper`] `rawopen`: a tool's raw `openat`.
pub fn rawopen(d: &Dir) -> Option<PathBuf> {
    static_helper(d, "rawopen")
}
