//! What the proxy tests share: the proxy binary next to agent-init, the
//! proxy's uid, the harness's interpreter, the scripted upstream process,
//! canaries and the root-only files that hold them, the policy's seed and
//! proxy tables, and the tool that looks for secrets wherever the
//! harness's uid can.

use super::BIN;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The harness's interpreter (a system path the harness user can execute).
pub const PYTHON: &str = "/usr/bin/python3";

/// The uid:gid the proxy runs as in these tests.
pub const PROXY_UID: u32 = 64990;

/// vault-proxy next to agent-init (where agent-init looks first): built
/// once per test process, so `cargo nextest run -p agent-init` needs no
/// separate build step.
pub fn ensure_proxy_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let st = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-q",
                    "-p",
                    "agent-vault-proxy",
                    "--bin",
                    "vault-proxy",
                ])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .expect("run cargo build -p agent-vault-proxy");
            assert!(st.success(), "cargo build -p agent-vault-proxy failed");
            let p = Path::new(BIN).with_file_name("vault-proxy");
            assert!(p.exists(), "{} missing after the build", p.display());
            p
        })
        .clone()
}

/// The tool: as the harness's uid, read every file it can under the vault,
/// the proxy's state directory and the seed, and every `/proc/*/environ`
/// it can; print it all.
pub const TOOL_PY: &str = r#"
import os, sys
out = []
for root in sys.argv[1:]:
    for dp, dn, fn in os.walk(root):
        for f in fn:
            p = os.path.join(dp, f)
            try:
                out.append("FILE %s\n%s" % (p, open(p, "rb").read().decode("latin-1")))
            except OSError as e:
                out.append("DENIED %s %s" % (p, e.errno))
    if not os.access(root, os.R_OK | os.X_OK):
        out.append("DENIED %s" % root)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            out.append("ENVIRON %s\n%s" % (pid, open("/proc/%s/environ" % pid, "rb").read().decode("latin-1")))
        except OSError:
            pass
print("\n".join(out))
"#;

/// Run `cmd` (`agent-init run` with a harness that prints one JSON object):
/// it must exit 0; returns the harness's JSON and agent-init's stderr.
pub fn run_harness_json(cmd: Command) -> (serde_json::Value, String) {
    let o = super::output(cmd);
    super::assert_exit(&o, 0);
    let out = super::stdout(&o);
    let err = super::stderr(&o);
    let v = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("harness output {out:?}: {e}\n{err}"));
    (v, err)
}

/// A scripted HTTP server on 127.0.0.1: a Python script that logs every
/// request (one JSON object a line) to the file named by its first
/// argument and prints its port as its first line of output. Killed when
/// dropped.
pub struct ScriptedServer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    log: PathBuf,
}

impl ScriptedServer {
    /// Start `script` (the scripted `what`) with `log`, then `args`, as its
    /// arguments; returns once it has printed its port.
    pub fn start(what: &str, script: &str, log: PathBuf, args: &[&str]) -> ScriptedServer {
        let mut child = Command::new(PYTHON)
            .args(["-c", script])
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 for the scripted {what}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{what} port {line:?}: {e}"));
        ScriptedServer { child, port, log }
    }

    /// Every request it has logged, oldest first.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What makes a test run's canaries unique: this process and the time.
pub fn canary_nonce() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Fail the test when any of `secrets` is in `text` (`what` names where it came from).
pub fn assert_no_secret<S: AsRef<str>>(
    secrets: impl IntoIterator<Item = S>,
    what: &str,
    text: &str,
) {
    for s in secrets {
        let s = s.as_ref();
        assert!(!text.contains(s), "secret {s} found in {what}:\n{text}");
    }
}

/// Create `dir` readable by root alone (mode 0700), as a host's mounted
/// login is.
pub fn create_root_only_dir(dir: &Path) {
    std::fs::create_dir(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// Write `v` to `path` (its directories created), mode 0600.
pub fn write_0600(path: &Path, v: &serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, v.to_string()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Policy text: the vault entry `name` at `vault`, seeded from `seed`
/// (copy-missing).
pub fn seeded_vault_entry(name: &str, vault: &Path, seed: &Path) -> String {
    format!(
        r#"[[vault.entry]]
name = "{name}"
dir = "{vault}"

[[seed]]
source = "{seed}"
target = "{vault}"
mode = "copy-missing"
"#,
        vault = vault.display(),
        seed = seed.display(),
    )
}

/// Policy text: the proxy on, as [`PROXY_UID`], its state in `state`.
pub fn proxy_on(state: &Path) -> String {
    format!(
        r#"[proxy]
mode = "on"
user = "{PROXY_UID}:{PROXY_UID}"
state_dir = "{state}"
"#,
        state = state.display(),
    )
}
