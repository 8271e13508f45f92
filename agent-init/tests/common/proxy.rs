//! What the proxy tests share: the proxy binary next to agent-init, the
//! proxy's uid, the harness's interpreter, and the tool that looks for
//! secrets wherever the harness's uid can.

use super::BIN;
use std::path::{Path, PathBuf};
use std::process::Command;
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
