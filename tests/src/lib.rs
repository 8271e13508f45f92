//! Shared helpers for the integration tests.
//!
//! The preload tests run on this host as root. Each test writes its own
//! state directory the way agent-init does (`harness.pid`, the effective
//! `policy.toml`, `probe/`, the audit file) and starts every process of the
//! test in a private mount namespace where a tmpfs covers `/run` and that
//! directory is bind-mounted at `/run/agent-vault`: tests run in parallel
//! (nextest) and nothing else on the machine that uses `/run/agent-vault`
//! (agent-init's own tests) can disturb them. The test harness
//! (`av-harness`) runs as uid 1000 with `LD_PRELOAD`; its pid is written to
//! `harness.pid` in the forked child before it execs, as agent-init does.

use policy::layout;

pub mod audit_sink;
pub mod scaffold;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The uid and gid the harness and its tools run as.
pub const HARNESS_UID: u32 = 1000;
/// The state directory agent-init uses when started as root (inside each
/// test's mount namespace: the test's own `state` directory).
pub const STATE: &str = layout::STATE_DIR;
/// The secret environment variable the test policy names.
pub const SECRET_ENV: &str = "AV_TEST_SECRET_TOKEN";
/// Where each test's world (vault, workspace) is created.
pub const TEST_ROOT: &str = "/var/lib/agent-vault-tests";
/// PATH for the harness and its tools.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The workspace root (this crate's parent directory).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// An exclusive `flock` on a file; released on drop.
pub struct FileLock(#[allow(dead_code)] fs::File);

impl FileLock {
    pub fn take(path: &str) -> FileLock {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {path}");
        FileLock(f)
    }
}

/// Where built helper programs go (readable and executable by the harness
/// user): one folder per checkout, so two checkouts testing at once never
/// load each other's preload or helpers.
pub fn bin_dir() -> PathBuf {
    let d = PathBuf::from(format!("/tmp/agent-vault-test-bin-{:016x}", checkout_id()));
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A name for this checkout (FNV-1a of its path).
fn checkout_id() -> u64 {
    workspace()
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The lock that serializes this checkout's builds of helpers.
fn build_lock() -> String {
    format!("/tmp/agent-vault-test-build-{:016x}.lock", checkout_id())
}

/// The preload, built in release mode (`cargo build --release -p vault-preload`),
/// copied where uid 1000 can map it. `AV_PRELOAD_SO` overrides it.
pub fn preload_so() -> PathBuf {
    if let Some(p) = std::env::var_os("AV_PRELOAD_SO") {
        return PathBuf::from(p);
    }
    let _l = FileLock::take(&build_lock());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "-q", "-p", "vault-preload"])
        .current_dir(workspace())
        .status()
        .expect("run cargo build");
    assert!(st.success(), "cargo build -p vault-preload failed");
    let src = target_dir().join("release/libvault_preload.so");
    let dst = bin_dir().join("libvault_preload.so");
    copy_if_changed(&src, &dst);
    dst
}

fn copy_if_changed(src: &Path, dst: &Path) {
    let new = fs::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    if fs::read(dst).ok().as_deref() != Some(&new[..]) {
        let tmp = dst.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, &new).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, dst).unwrap();
    }
}

/// The test harness binary, copied where uid 1000 can run it.
pub fn harness_bin() -> PathBuf {
    // Integration tests live in target/<profile>/deps/; cargo builds the
    // package's binaries into target/<profile>/ before running them.
    // (a binary of this package, like av-bench, sits next to it).
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    let src = dir.join("av-harness");
    let dst = bin_dir().join("av-harness");
    let _l = FileLock::take(&build_lock());
    copy_if_changed(&src, &dst);
    dst
}

/// Build a C helper from `tests/src/c/NAME.c` with `gcc ARGS`; cached by content.
pub fn c_program(name: &str, args: &[&str]) -> PathBuf {
    let src = workspace().join("tests/src/c").join(format!("{name}.c"));
    let text = fs::read(&src).unwrap();
    let key = {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in text.iter().chain(args.join(" ").as_bytes()) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        h
    };
    let out = bin_dir().join(format!("{name}-{key:016x}"));
    let _l = FileLock::take(&build_lock());
    if !out.exists() {
        let tmp = out.with_extension("tmp");
        let o = Command::new("gcc")
            .args(args)
            .arg(&src)
            .arg("-o")
            .arg(&tmp)
            .output()
            .expect("run gcc (apt package gcc, libc6-dev)");
        assert!(
            o.status.success(),
            "gcc {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// True when `prog` is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The output of a run, as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One test's world: a state directory, a vault with a secret, a workspace.
pub struct World {
    pub dir: tempfile::TempDir,
    /// The state directory on the host (mounted at [`STATE`] for the test's processes).
    pub state: PathBuf,
    /// The vault directory (a `dir` entry).
    pub vault: PathBuf,
    /// The credential inside it.
    pub secret: PathBuf,
    /// Its content.
    pub secret_text: String,
    /// A `file` vault entry (outside the vault directory).
    pub cred_file: PathBuf,
    /// A workspace the tools may use.
    pub ws: PathBuf,
    pub so: PathBuf,
    pub harness: PathBuf,
    /// Receives the records the preload sends, as agent-init would.
    pub audit_sink: audit_sink::Sink,
}

/// Write one of agent-init's session files into the state directory
/// `state`, with the contract's name and mode (root-owned: the tests run
/// as root).
pub fn write_session_file(state: &Path, f: &policy::SessionFile) {
    let dir = match f.file.dir {
        Some(sub) => {
            let d = state.join(sub.name);
            if !d.exists() {
                fs::create_dir(&d).unwrap();
            }
            fs::set_permissions(&d, fs::Permissions::from_mode(sub.mode)).unwrap();
            d
        }
        None => state.to_path_buf(),
    };
    let path = dir.join(f.file.name);
    fs::write(&path, &f.bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(f.file.mode)).unwrap();
}

pub fn chown_r(p: &Path, uid: u32) {
    chown(p, Some(uid), Some(uid)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in fs::read_dir(p).unwrap() {
            chown_r(&e.unwrap().path(), uid);
        }
    }
}

impl World {
    /// A fresh world with the default test policy (landlock "required",
    /// or, on a kernel without Landlock and only when the skip
    /// `landlock-abi-1` is declared, "best-effort"; audit to a file).
    #[track_caller]
    pub fn new() -> World {
        let mode = if landlock_abi() >= 1 {
            "required"
        } else {
            assert!(
                skip_declared("landlock-abi-1"),
                "no Landlock on this kernel: the tests would run without the tool layer; declare AGENT_VAULT_ALLOW_SKIP=landlock-abi-1 to run them with the preload alone"
            );
            eprintln!(
                "NOTE: no Landlock on this kernel (declared): policy landlock = \"best-effort\""
            );
            "best-effort"
        };
        World::with_policy_extra(mode, "")
    }

    /// `landlock`: the policy's landlock mode; `extra`: TOML appended to `[vault]` entries.
    pub fn with_policy_extra(landlock: &str, extra: &str) -> World {
        World::with_policy(landlock, "", extra, "")
    }

    /// [`World::with_policy_extra`] for a session whose state directory is
    /// mounted at `mounted_at` (a host-mode one, `/tmp/agent-vault-UID`,
    /// in a test that mounts it there itself): the policy's probe and audit
    /// file name it.
    pub fn with_state_at(landlock: &str, extra: &str, mounted_at: &str) -> World {
        World::with_policy_at(landlock, "", extra, "", mounted_at)
    }

    /// [`World::new`]'s Landlock mode, with `keys` (TOML) added to `[vault]`
    /// after `secret_env`.
    pub fn with_vault_keys(keys: &str) -> World {
        let mode = if landlock_abi() >= 1 {
            "required"
        } else {
            "best-effort"
        };
        World::with_policy(mode, keys, "", "")
    }

    /// [`World::new`]'s Landlock mode, with `keys` (TOML, `{ws}` replaced
    /// by the workspace path) added to `[filesystem]`.
    pub fn with_fs_keys(keys: &str) -> World {
        let mode = if landlock_abi() >= 1 {
            "required"
        } else {
            "best-effort"
        };
        World::with_policy(mode, "", "", keys)
    }

    /// `landlock`: the policy's landlock mode; `vault_keys`: TOML keys of
    /// `[vault]`; `extra`: TOML appended to `[vault]` entries; `fs_keys`:
    /// TOML keys of `[filesystem]` (`{ws}`: the workspace path).
    pub fn with_policy(landlock: &str, vault_keys: &str, extra: &str, fs_keys: &str) -> World {
        World::with_policy_at(landlock, vault_keys, extra, fs_keys, STATE)
    }

    /// [`World::with_policy`] with the state directory mounted at `mounted_at`.
    pub fn with_policy_at(
        landlock: &str,
        vault_keys: &str,
        extra: &str,
        fs_keys: &str,
        mounted_at: &str,
    ) -> World {
        assert_eq!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() },
            0,
            "the preload tests run as root (they create /run/agent-vault and switch to uid 1000)"
        );
        let so = preload_so();
        let harness = harness_bin();
        // Not under /tmp: a vault's ancestors are list-only for tools (no new
        // entries directly in them), so the test vault, like the images'
        // top-level /pi-agent, keeps /tmp a plain read-write sibling.
        fs::create_dir_all(TEST_ROOT).unwrap();
        fs::set_permissions(TEST_ROOT, fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("av-test-")
            .tempdir_in(TEST_ROOT)
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let vault = dir.path().join("vault");
        let ws = dir.path().join("ws");
        let home = dir.path().join("home");
        fs::create_dir(&vault).unwrap();
        fs::create_dir(&ws).unwrap();
        fs::create_dir(&home).unwrap();
        let secret_text = format!("SECRET-{}-{}", std::process::id(), nanos());
        let secret = vault.join("auth.json");
        fs::write(&secret, &secret_text).unwrap();
        let cred_file = home.join(".cred.json");
        fs::write(&cred_file, format!("CRED-{secret_text}")).unwrap();
        fs::set_permissions(&vault, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&cred_file, fs::Permissions::from_mode(0o600)).unwrap();
        chown_r(dir.path(), HARNESS_UID);

        // The state directory, as agent-init writes it (root-owned). It sits
        // in a root-only directory: a rule the tool layer puts on a sibling of
        // the vault must not land on the very directory that is mounted at
        // /run/agent-vault (rules attach to the directory, not the path).
        let private = dir.path().join("private");
        fs::create_dir(&private).unwrap();
        let state = private.join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(layout::STATE_DIR_MODE)).unwrap();
        let audit_file = layout::AUDIT_FILE;
        fs::write(state.join(audit_file.name), "").unwrap();
        fs::set_permissions(
            state.join(audit_file.name),
            fs::Permissions::from_mode(audit_file.mode),
        )
        .unwrap();
        let audit = format!("{mounted_at}/{}", audit_file.name);
        let policy = policy::testing::policy_toml(
            &format!("{HARNESS_UID}:{HARNESS_UID}"),
            &format!(
                r#"secret_env = ["{SECRET_ENV}"]
{vault_keys}
[[vault.entry]]
name = "test-vault"
dir = "{vault}"
[[vault.entry]]
name = "test-cred-file"
file = "{cred}"
{extra}"#,
                vault = vault.display(),
                cred = cred_file.display(),
            ),
            &format!(
                r#"read_only = ["/"]
executable = ["/"]
read_write = ["/tmp", "/var/tmp", "/dev", "{ws}"]
{fs_keys}"#,
                ws = ws.display(),
                fs_keys = fs_keys.replace("{ws}", &ws.display().to_string()),
            ),
            &format!(
                "[landlock]\nmode = \"{landlock}\"\n[seccomp]\nmode = \"off\"\n[audit]\nsink = \"{audit}\""
            ),
        );
        // As agent-init's record step does: the probe entry, then the files
        // it writes (the probe, the effective policy, the policy image).
        let mut session =
            policy::load_str(&policy, "policy.toml", &policy::ExpandContext::default())
                .unwrap_or_else(|e| panic!("test policy: {e}"));
        session.add_probe(Path::new(mounted_at).join(layout::PROBE_DIR.name));
        for f in session.session_files() {
            write_session_file(&state, &f);
        }
        chown(&private, Some(0), Some(0)).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
        // Until a test starts its harness, the recorded "harness" is the test
        // process itself: alive for the whole test (the preload trusts a
        // state directory's record only while that process runs) and never
        // one of the test's preloaded processes.
        write_session_file(&state, &policy::session::harness_pid_file(own_record()));
        let audit_sink = audit_sink::Sink::start(
            &state.join(layout::AUDIT_SOCKET.name),
            &state.join(audit_file.name),
        );
        World {
            audit_sink,
            dir,
            state,
            vault,
            secret,
            secret_text,
            cred_file,
            ws,
            so,
            harness,
        }
    }

    /// The command that runs `program args` as the harness: uid 1000, no
    /// capabilities, `LD_PRELOAD`, its pid recorded in `harness.pid` before exec.
    pub fn harness_cmd(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", &self.ws)
            .env("LD_PRELOAD", &self.so)
            .env(SECRET_ENV, "sk-test-env-secret")
            .env("LANG", "C.UTF-8")
            .current_dir(&self.ws)
            .stdin(Stdio::null());
        become_harness_user(&mut c, &self.state, true);
        c
    }

    /// Run the test harness with `args` and wait.
    pub fn harness(&self, args: &[&str]) -> Run {
        let o = self
            .harness_cmd(&self.harness, args)
            .output()
            .expect("run harness");
        Run::from(o)
    }

    /// [`World::harness`] with the soft and hard `RLIMIT_NOFILE` set to
    /// `nofile` (the preload enumerates fds with `poll(2)` under a small
    /// limit and by listing `/proc/self/fd` above it).
    pub fn harness_with_nofile(&self, args: &[&str], nofile: u64) -> Run {
        let mut c = self.harness_cmd(&self.harness, args);
        let lim = libc::rlimit {
            rlim_cur: nofile,
            rlim_max: nofile,
        };
        let hook = move || {
            if child::setrlimit_nofile(&lim) {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        // SAFETY: the hook runs in the forked child before exec and makes one
        // async-signal-safe system call on a value copied into the closure.
        unsafe { c.pre_exec(hook) };
        Run::from(c.output().expect("run harness"))
    }

    /// A tool: `/bin/sh -c cmd` spawned by the harness with fork + execve.
    pub fn tool(&self, cmd: &str) -> Run {
        self.harness(&["fork", cmd])
    }

    /// A process outside the harness tree (like `docker exec`): uid 1000,
    /// `LD_PRELOAD`, not the recorded pid.
    pub fn outsider(&self, cmd: &str) -> Run {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", cmd])
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", &self.ws)
            .env("LD_PRELOAD", &self.so)
            .env(SECRET_ENV, "sk-test-env-secret")
            .current_dir(&self.ws)
            .stdin(Stdio::null());
        become_harness_user(&mut c, &self.state, false);
        let o = c.output().expect("run outsider");
        Run::from(o)
    }

    /// Remove agent-init's `probe/probe`: detection then lists the probe
    /// directory and the vault directories.
    pub fn remove_probe_file(&self) {
        let probe = layout::PROBE_FILE;
        let dir = probe.dir.map_or("", |d| d.name);
        fs::remove_file(self.state.join(dir).join(probe.name)).unwrap();
    }

    /// Put a world-readable file of another name in agent-init's probe
    /// directory (found by listing it).
    pub fn add_probe_marker(&self) {
        let m = self.state.join(layout::PROBE_DIR.name).join("marker");
        fs::write(&m, "").unwrap();
        fs::set_permissions(&m, fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// The audit file's content (once every record already sent is in it).
    pub fn audit(&self) -> String {
        self.audit_sink.drain();
        fs::read_to_string(self.state.join(layout::AUDIT_FILE.name)).unwrap_or_default()
    }

    /// Audit records that name `path` (as given) and the rule.
    pub fn audit_denials(&self, needle: &str) -> usize {
        self.audit().lines().filter(|l| l.contains(needle)).count()
    }

    /// Audit records with `needle` where the preload refused by its own
    /// check (`"layer":"preload"`), not the kernel: what a `_by_preload`
    /// test must see.
    pub fn preload_denials(&self, needle: &str) -> usize {
        self.audit()
            .lines()
            .filter(|l| l.contains(needle) && l.contains("\"layer\":\"preload\""))
            .count()
    }

    pub fn secret(&self) -> &str {
        self.secret.to_str().unwrap()
    }

    /// The credential is byte-for-byte what the test wrote.
    pub fn assert_secret_intact(&self) {
        assert_eq!(
            fs::read_to_string(&self.secret).expect("vault file still there"),
            self.secret_text,
            "vault file changed"
        );
    }

    /// Assert the run did not reveal the secret.
    pub fn assert_no_leak(&self, r: &Run) {
        assert!(
            !r.all().contains(&self.secret_text),
            "the secret leaked:\n{r:?}"
        );
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// This process as a harness record: its pid and start time.
pub fn own_record() -> layout::HarnessRecord {
    let stat = fs::read("/proc/self/stat").unwrap();
    layout::HarnessRecord {
        pid: std::process::id() as i32,
        start: layout::stat_start_time(&stat).expect("field 22 of /proc/self/stat"),
    }
}

/// Run `/bin/sh -c cmd` as uid 1000 with `LD_PRELOAD` and no agent-init
/// session anywhere: a private mount namespace with an empty tmpfs on
/// `/run`, and a world-writable one over uid 1000's host-mode state
/// directory (`policy::host_state_dir`) if that exists (the preload refuses
/// such a state directory). `env` is added to
/// a clean environment.
pub fn run_without_session(so: &Path, cmd: &str, env: &[(&str, &str)]) -> Run {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", cmd])
        .env_clear()
        .env("PATH", PATH)
        .env("LD_PRELOAD", so)
        .current_dir("/")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let root = CString::new("/").unwrap();
    let run = CString::new("/run").unwrap();
    let tmp = CString::new(
        policy::host_state_dir(HARNESS_UID)
            .into_os_string()
            .into_vec(),
    )
    .unwrap();
    let tmpfs = CString::new("tmpfs").unwrap();
    let opts = CString::new("mode=1777").unwrap();
    let hook = move || {
        let private = child::unshare_mounts() && child::make_private(&root);
        let empty = |dir: &CString| child::mount(Some(&tmpfs), dir, Some(&tmpfs), 0, Some(&opts));
        if !private
            || !empty(&run)
            || (child::exists(&tmp) && !empty(&tmp))
            || !child::become_user(HARNESS_UID)
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only makes
    // async-signal-safe system calls on C strings prepared before the fork.
    unsafe { c.pre_exec(hook) };
    Run::from(c.output().expect("run without a session"))
}

impl World {
    /// `/bin/sh -c script` as root, in this world's mount namespace (its
    /// state directory at [`STATE`]) but with no harness recorded and no
    /// uid change: for attack tests that set up more (a pid namespace, more
    /// mounts) and then drop to the harness user themselves (`setpriv`).
    /// `PRELOAD` in the script's environment is the preload's path.
    pub fn root_in_session(&self, script: &str) -> Run {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script])
            .env_clear()
            .env("PATH", PATH)
            .env("PRELOAD", &self.so)
            .current_dir("/")
            .stdin(Stdio::null());
        enter_session(&mut c, &self.state, false, None);
        Run::from(c.output().expect("run root_in_session"))
    }
}

/// In `c`'s forked child, as root: enter a private mount namespace with a
/// tmpfs on `/run` and `state` bind-mounted at [`STATE`]; write the child's
/// pid and start time to `harness.pid` when `record_pid` (the way agent-init
/// records the harness before it starts); then switch to uid/gid 1000
/// (which clears every capability).
pub fn become_harness_user(c: &mut Command, state: &Path, record_pid: bool) {
    enter_session(c, state, record_pid, Some(HARNESS_UID));
}

/// [`become_harness_user`], switching to `user` when given (else staying root).
fn enter_session(c: &mut Command, state: &Path, record_pid: bool, user: Option<u32>) {
    let pidfile = CString::new(format!("{STATE}/{}", layout::HARNESS_PID.name)).unwrap();
    let self_stat = CString::new("/proc/self/stat").unwrap();
    let src = CString::new(state.as_os_str().as_encoded_bytes()).unwrap();
    let run = CString::new("/run").unwrap();
    let target = CString::new(STATE).unwrap();
    let root = CString::new("/").unwrap();
    let tmpfs = CString::new("tmpfs").unwrap();
    let opts = CString::new("mode=755").unwrap();
    let hook = move || {
        if !child::unshare_mounts()
            || !child::make_private(&root)
            || !child::mount(Some(&tmpfs), &run, Some(&tmpfs), 0, Some(&opts))
            || !child::mkdir(&target, 0o755)
            || !child::mount(Some(&src), &target, None, libc::MS_BIND, None)
        {
            return Err(std::io::Error::last_os_error());
        }
        if record_pid {
            let mut stat = [0u8; 512];
            let start = child::read_file(&self_stat, &mut stat)
                .and_then(layout::stat_start_time)
                .ok_or_else(|| std::io::Error::other("no start time in /proc/self/stat"))?;
            let record = layout::HarnessRecord {
                pid: std::process::id() as i32,
                start,
            };
            let mut buf = [0u8; layout::HARNESS_RECORD_MAX];
            if !child::write_file(&pidfile, record.format(&mut buf)) {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(uid) = user
            && !child::become_user(uid)
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only makes
    // async-signal-safe system calls (unshare, mount, mkdir, open/write/close,
    // setgroups/setgid/setuid) on C strings prepared before the fork.
    unsafe { c.pre_exec(hook) };
}

/// System calls for a forked child before exec: each async-signal-safe, on
/// C strings prepared before the fork; `false` means failed (errno is set).
mod child {
    use std::ffi::CString;

    pub fn setrlimit_nofile(lim: &libc::rlimit) -> bool {
        // SAFETY: `lim` is a live reference for the duration of the call.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) == 0 }
    }

    pub fn unshare_mounts() -> bool {
        // SAFETY: no pointer arguments.
        unsafe { libc::unshare(libc::CLONE_NEWNS) == 0 }
    }

    /// Make every mount below `root` private to this namespace.
    pub fn make_private(root: &CString) -> bool {
        mount(None, root, None, libc::MS_REC | libc::MS_PRIVATE, None)
    }

    pub fn mount(
        src: Option<&CString>,
        target: &CString,
        fstype: Option<&CString>,
        flags: libc::c_ulong,
        data: Option<&CString>,
    ) -> bool {
        let ptr = |s: Option<&CString>| s.map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: every pointer is NULL or a NUL-terminated string borrowed
        // from the caller for the duration of the call.
        unsafe {
            libc::mount(
                ptr(src),
                target.as_ptr(),
                ptr(fstype),
                flags,
                ptr(data).cast(),
            ) == 0
        }
    }

    pub fn mkdir(path: &CString, mode: libc::mode_t) -> bool {
        // SAFETY: `path` is NUL-terminated and borrowed for the call.
        unsafe { libc::mkdir(path.as_ptr(), mode) == 0 }
    }

    pub fn exists(path: &CString) -> bool {
        // SAFETY: `path` is NUL-terminated and borrowed for the call.
        unsafe { libc::access(path.as_ptr(), libc::F_OK) == 0 }
    }

    /// Read `path` into `buf` (one `read`: enough for a `/proc` file); the bytes read.
    pub fn read_file<'a>(path: &CString, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        // SAFETY: `path` is NUL-terminated and borrowed for the call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        // SAFETY: `fd` was opened above and is closed once.
        unsafe { libc::close(fd) };
        usize::try_from(n).ok().map(|n| &buf[..n])
    }

    /// Truncate the existing file `path` and write `bytes` into it.
    pub fn write_file(path: &CString, bytes: &[u8]) -> bool {
        // SAFETY: `path` is NUL-terminated and borrowed for the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return false;
        }
        // SAFETY: `bytes` is a live slice of `bytes.len()` bytes.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        // SAFETY: `fd` was opened above and is closed once.
        unsafe { libc::close(fd) };
        n == bytes.len() as isize
    }

    /// Switch to `uid` with gid and the one supplementary group `uid`.
    pub fn become_user(uid: libc::uid_t) -> bool {
        let g = [uid as libc::gid_t];
        // SAFETY: `g` is a live array of one gid.
        let groups = unsafe { libc::setgroups(1, g.as_ptr()) == 0 };
        // SAFETY: no pointer arguments.
        groups && unsafe { libc::setgid(uid) == 0 } && unsafe { libc::setuid(uid) == 0 }
    }
}

/// Landlock ABI of this kernel (0: none).
pub fn landlock_abi() -> i64 {
    // SAFETY: the documented version query (NULL attr, size 0, flag 1).
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if r < 0 { 0 } else { r }
}

/// A test that cannot run here fails, unless the environment declares the
/// skip by name: `AGENT_VAULT_ALLOW_SKIP` is a comma-separated list of
/// names (`root`, `landlock-abi-6`, `io_uring`, `node`, `git`, `bwrap`,
/// ...). CI declares none, so a green run there tested everything. Returns
/// true (after saying so) when the skip is declared; panics with `why` and
/// the way out when not.
#[track_caller]
pub fn declared_skip(name: &str, why: &str) -> bool {
    if skip_declared(name) {
        eprintln!("SKIP ({name}, declared in AGENT_VAULT_ALLOW_SKIP): {why}");
        return true;
    }
    panic!(
        "cannot run here: {why}. Fix the environment, or declare the skip: AGENT_VAULT_ALLOW_SKIP={name}"
    );
}

/// Is `name` listed in `AGENT_VAULT_ALLOW_SKIP`?
pub fn skip_declared(name: &str) -> bool {
    std::env::var("AGENT_VAULT_ALLOW_SKIP")
        .unwrap_or_default()
        .split(',')
        .any(|n| n.trim() == name)
}

/// Skip when the kernel's Landlock ABI is below `min_abi`, if the skip
/// `landlock-abi-MIN_ABI` is declared; fails otherwise.
#[track_caller]
pub fn skip_without_landlock(min_abi: i64) -> bool {
    let abi = landlock_abi();
    if abi < min_abi {
        return declared_skip(
            &format!("landlock-abi-{min_abi}"),
            &format!("Landlock ABI {abi} < {min_abi} on this kernel"),
        );
    }
    false
}

/// Skip when a program is missing, if the skip named after the program is
/// declared; fails otherwise (naming the package that provides it).
#[track_caller]
pub fn skip_without(prog: &str, package: &str) -> bool {
    if !have(prog) {
        return declared_skip(
            prog,
            &format!("{prog} not installed (apt package {package})"),
        );
    }
    false
}
