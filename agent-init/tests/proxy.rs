//! The proxy step, as root in a private mount namespace: agent-init starts
//! vault-proxy as its own uid, the harness (nobody) sees only placeholders
//! and reaches a scripted upstream on 127.0.0.1 through the proxy, which
//! injects the real credentials. Canary credentials are planted in every
//! kind of source and searched for wherever the harness's uid can look.

mod common;
use common::proxy::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scripted upstream on 127.0.0.1 ([`start_upstream`]): answers every
/// request 200 and logs its method, path, headers and body.
const UPSTREAM_PY: &str = r#"
import http.server, json, sys
log = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n).decode("latin-1")
        log.write(json.dumps({"method": self.command, "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}) + "\n")
        log.flush()
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn start_upstream(d: &Dir) -> ScriptedServer {
    ScriptedServer::start("upstream", UPSTREAM_PY, d.join("upstream.jsonl"), &[])
}

/// Canary credentials, unique per test run.
struct Canaries {
    env_key: String,
    pi_oauth_access: String,
    pi_oauth_refresh: String,
    pi_api_key: String,
}

impl Canaries {
    fn new() -> Canaries {
        let n = canary_nonce();
        Canaries {
            env_key: format!("sk-ant-api03-CANARYENV{n}"),
            pi_oauth_access: format!("sk-ant-oat01-CANARYACCESS{n}"),
            pi_oauth_refresh: format!("sk-ant-ort01-CANARYREFRESH{n}"),
            pi_api_key: format!("sk-CANARYPIKEY{n}"),
        }
    }
    fn all(&self) -> [&str; 4] {
        [
            &self.env_key,
            &self.pi_oauth_access,
            &self.pi_oauth_refresh,
            &self.pi_api_key,
        ]
    }
}

/// The harness: sends one request per route with what it sees (its
/// variable, its auth.json) through the base URL it was given, runs the
/// tool, prints one JSON object.
const HARNESS_PY: &str = r#"
import json, os, subprocess, sys, urllib.request
pi, tool = sys.argv[1], sys.argv[2:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(url, headers):
    req = urllib.request.Request(url, data=b'{"hello":1}', headers=headers, method="POST")
    try:
        with opener.open(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return str(e)
auth = json.load(open(os.path.join(pi, "auth.json")))
models = json.load(open(os.path.join(pi, "models.json")))
res = {"seen": {"AV_TEST_KEY": os.environ.get("AV_TEST_KEY"),
                "AV_TEST_BASE_URL": os.environ.get("AV_TEST_BASE_URL"),
                "auth": auth, "models": models}}
res["env"] = call(os.environ["AV_TEST_BASE_URL"] + "/v1/messages", {"x-api-key": os.environ["AV_TEST_KEY"]})
res["pi_anthropic"] = call(models["providers"]["anthropic"]["baseUrl"] + "/v1/messages",
                           {"authorization": "Bearer " + auth["anthropic"]["access"]})
res["pi_openai"] = call(models["providers"]["openai"]["baseUrl"] + "/chat/completions",
                        {"authorization": "Bearer " + auth["openai"]["key"]})
res["no_placeholder"] = call(os.environ["AV_TEST_BASE_URL"] + "/v1/messages", {"x-api-key": "guess"})
t = subprocess.run([sys.executable] + tool, capture_output=True, text=True)
res["tool"] = t.stdout + t.stderr
print(json.dumps(res))
"#;

/// A test world: seed (root-only), vault, proxy state, upstream, policy.
struct World {
    d: Dir,
    up: ScriptedServer,
    c: Canaries,
    seed: PathBuf,
    vault: PathBuf,
    state: PathBuf,
    policy: PathBuf,
}

impl World {
    fn new() -> World {
        let d = Dir::new();
        let up = start_upstream(&d);
        let c = Canaries::new();
        let seed = d.join("seed");
        let vault = d.join("pi-agent");
        let state = d.join("proxy-state");
        create_root_only_dir(&seed);
        let far = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 3_600_000;
        let auth = serde_json::json!({
            "anthropic": {"type": "oauth", "access": c.pi_oauth_access, "refresh": c.pi_oauth_refresh, "expires": far},
            "openai": {"type": "api_key", "key": c.pi_api_key},
        });
        std::fs::write(seed.join("auth.json"), auth.to_string()).unwrap();
        std::fs::set_permissions(
            seed.join("auth.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let models = serde_json::json!({
            "providers": {
                "anthropic": {"baseUrl": format!("http://127.0.0.1:{}/pia", up.port), "models": [{"id": "kept"}]},
                "openai": {"baseUrl": format!("http://127.0.0.1:{}/pio/v1", up.port)},
            },
            "userKey": "kept",
        });
        std::fs::write(seed.join("models.json"), models.to_string()).unwrap();
        std::fs::write(d.join("harness.py"), HARNESS_PY).unwrap();
        std::fs::write(d.join("tool.py"), TOOL_PY).unwrap();
        let extra = format!(
            r#"{vault_and_proxy}
[[proxy.route]]
name = "env-key"
upstream = "http://127.0.0.1:{port}/env"
header = "x-api-key"
placeholder = "sk-ant-api03-"
from = {{ env = "AV_TEST_KEY" }}
point = {{ env = "AV_TEST_BASE_URL" }}

[[proxy.route]]
name = "pi-anthropic"
upstream = "https://api.anthropic.com"
header = "x-api-key"
placeholder = "sk-ant-api03-"
from = {{ file = "{vault}/auth.json", format = "pi-auth", provider = "anthropic" }}
point = {{ pi_models = "{vault}/models.json", provider = "anthropic" }}
oauth = {{ placeholder = "sk-ant-oat01-", token_url = "http://127.0.0.1:{port}/token", client_id = "test-client" }}

[[proxy.route]]
name = "pi-openai"
upstream = "https://api.openai.com/v1"
header = "authorization"
placeholder = "sk-"
from = {{ file = "{vault}/auth.json", format = "pi-auth", provider = "openai" }}
point = {{ pi_models = "{vault}/models.json", provider = "openai" }}
"#,
            vault_and_proxy = seeded_vault_entry("pi", &vault, &seed) + "\n" + &proxy_on(&state),
            vault = vault.display(),
            port = up.port,
        );
        let policy = d.policy("65534:65534", "required", "required", &extra);
        World {
            d,
            up,
            c,
            seed,
            vault,
            state,
            policy,
        }
    }

    /// `agent-init run` with the harness; returns its JSON and agent-init's stderr.
    fn run_harness(&self) -> (serde_json::Value, String) {
        ensure_proxy_binary();
        let mut cmd = run_cmd(
            &self.policy,
            &[],
            &[
                PYTHON,
                self.d.join("harness.py").to_str().unwrap(),
                self.vault.to_str().unwrap(),
                self.d.join("tool.py").to_str().unwrap(),
                self.vault.to_str().unwrap(),
                self.state.to_str().unwrap(),
                self.seed.to_str().unwrap(),
            ],
        );
        cmd.env("AV_TEST_KEY", &self.c.env_key);
        run_harness_json(cmd)
    }
}

/// Which canary belongs to which upstream path.
fn assert_upstream_got_only_real_credentials(w: &World, runs: usize) {
    let reqs = w.up.requests();
    let routed: Vec<_> = reqs
        .iter()
        .filter(|r| {
            r["path"].as_str().unwrap().contains("/v1/messages")
                || r["path"].as_str().unwrap().contains("/chat/")
        })
        .collect();
    assert_eq!(routed.len(), 3 * runs, "{reqs:#?}");
    for r in &reqs {
        let path = r["path"].as_str().unwrap();
        let h = &r["headers"];
        let text = r.to_string();
        assert!(
            !text.contains("-av-"),
            "a placeholder reached the upstream: {text}"
        );
        let expect = if path.starts_with("/env/") {
            assert_eq!(h["x-api-key"], w.c.env_key.as_str());
            &w.c.env_key
        } else if path.starts_with("/pia/") {
            assert_eq!(
                h["authorization"],
                format!("Bearer {}", w.c.pi_oauth_access).as_str()
            );
            &w.c.pi_oauth_access
        } else if path.starts_with("/pio/v1/") {
            assert_eq!(
                h["authorization"],
                format!("Bearer {}", w.c.pi_api_key).as_str()
            );
            &w.c.pi_api_key
        } else {
            panic!("request to an unexpected path: {text}");
        };
        for c in w.c.all() {
            if c != expect.as_str() {
                assert!(!text.contains(c), "canary {c} sent to {path}: {text}");
            }
        }
    }
}

#[test]
fn harness_sees_only_placeholders_and_upstream_gets_the_real_keys() {
    if skip_unless_root("harness_sees_only_placeholders_and_upstream_gets_the_real_keys") {
        return;
    }
    let w = World::new();
    let (v, err) = w.run_harness();
    assert_eq!(v["env"], 200, "{v:#}\n{err}");
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    assert_eq!(v["pi_openai"], 200, "{v:#}\n{err}");
    assert_eq!(
        v["no_placeholder"], 401,
        "a request without the placeholder passed"
    );
    let seen = &v["seen"];
    let key = seen["AV_TEST_KEY"].as_str().unwrap();
    assert!(key.starts_with("sk-ant-api03-av-"), "{key}");
    let access = seen["auth"]["anthropic"]["access"].as_str().unwrap();
    assert!(access.starts_with("sk-ant-oat01-av-"), "{access}");
    assert!(
        seen["auth"]["anthropic"]["refresh"]
            .as_str()
            .unwrap()
            .starts_with("av-")
    );
    assert_eq!(seen["auth"]["anthropic"]["expires"], 4_102_444_800_000u64);
    assert!(
        seen["auth"]["openai"]["key"]
            .as_str()
            .unwrap()
            .starts_with("sk-av-")
    );
    // models.json: base URLs point at the proxy; the user's other keys stay.
    let base = seen["models"]["providers"]["anthropic"]["baseUrl"]
        .as_str()
        .unwrap();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/pi-anthropic"),
        "{base}"
    );
    assert_eq!(seen["models"]["userKey"], "kept");
    assert_eq!(
        seen["models"]["providers"]["anthropic"]["models"][0]["id"],
        "kept"
    );
    assert_no_secret(w.c.all(), "what the harness saw", &seen.to_string());
    assert_upstream_got_only_real_credentials(&w, 1);
    assert!(err.contains("[proxy] vault-proxy pid"), "{err}");
}

#[test]
fn canary_appears_nowhere_the_harness_uid_can_look_across_two_starts() {
    if skip_unless_root("canary_appears_nowhere_the_harness_uid_can_look_across_two_starts") {
        return;
    }
    let w = World::new();
    let mut placeholders = Vec::new();
    for run in 1..=2 {
        let (v, err) = w.run_harness();
        assert_eq!(
            (&v["env"], &v["pi_anthropic"], &v["pi_openai"]),
            (
                &serde_json::json!(200),
                &serde_json::json!(200),
                &serde_json::json!(200)
            ),
            "run {run}: {v:#}\n{err}"
        );
        let tool = v["tool"].as_str().unwrap();
        // Positive controls: the tool did read the vault files and the
        // harness's environ (so "no canary" means something), and could not
        // enter the proxy's state or the root-only seed.
        assert!(
            tool.contains(&format!("FILE {}/auth.json", w.vault.display())),
            "{tool}"
        );
        assert!(tool.contains("AV_TEST_KEY=sk-ant-api03-av-"), "{tool}");
        assert!(
            tool.contains(&format!("DENIED {}", w.state.display())),
            "{tool}"
        );
        assert!(
            tool.contains(&format!("DENIED {}", w.seed.display())),
            "{tool}"
        );
        assert_no_secret(w.c.all(), &format!("run {run}: the tool's output"), tool);
        assert_no_secret(
            w.c.all(),
            &format!("run {run}: the harness's output"),
            &v.to_string(),
        );
        // The second start finds placeholders in the vault and takes the real
        // credentials from the seed again.
        if run == 2 {
            assert!(err.contains("(seed "), "{err}");
        }
        placeholders.push(
            v["seen"]["auth"]["openai"]["key"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_ne!(
        placeholders[0], placeholders[1],
        "placeholders are per start"
    );
    assert_upstream_got_only_real_credentials(&w, 2);
    // As root: the vault holds placeholders only, and the state dir is the proxy's alone.
    let vault_text = std::fs::read_to_string(w.vault.join("auth.json")).unwrap();
    assert_no_secret(w.c.all(), "the vault's auth.json", &vault_text);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&w.state).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (PROXY_UID, 0o700));
    let m = std::fs::metadata(w.vault.join("auth.json")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o600));
}

/// The pid of the vault-proxy whose parent is `parent`.
fn proxy_child_of(parent: u32) -> Option<(u32, u32)> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        };
        if field("Name:").as_deref() == Some("vault-proxy")
            && field("PPid:").and_then(|p| p.parse().ok()) == Some(parent)
        {
            return Some((pid, field("Uid:")?.parse().ok()?));
        }
    }
    None
}

#[test]
fn killed_proxy_is_restarted_on_a_port_no_one_can_take_meanwhile_and_the_next_request_works() {
    if skip_unless_root(
        "killed_proxy_is_restarted_on_a_port_no_one_can_take_meanwhile_and_the_next_request_works",
    ) {
        return;
    }
    let w = World::new();
    ensure_proxy_binary();
    // The audit sink as a file: agent-init's audit thread runs while the
    // serve loop forks the proxy again (the restart must not need a
    // single-threaded agent-init).
    let text = std::fs::read_to_string(&w.policy).unwrap();
    assert!(text.contains("sink = \"off\""), "{text}");
    std::fs::write(
        &w.policy,
        text.replace("sink = \"off\"", "sink = \"/run/agent-vault/audit.jsonl\""),
    )
    .unwrap();
    // A directory the harness (nobody) may write its "ready" file into.
    let sync = w.d.join("sync");
    std::fs::create_dir(&sync).unwrap();
    std::fs::set_permissions(&sync, std::fs::Permissions::from_mode(0o777)).unwrap();
    let go = sync.join("go");
    // The harness: one request, wait for the test to kill the proxy, then
    // retry until a request works again.
    let script = format!(
        r#"
import os, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
def call():
    req = urllib.request.Request(os.environ["AV_TEST_BASE_URL"] + "/v1/messages", data=b"{{}}",
        headers={{"x-api-key": os.environ["AV_TEST_KEY"]}}, method="POST")
    try:
        with opener.open(req, timeout=5) as r:
            return r.status
    except Exception as e:
        return str(e)
print("first", call(), flush=True)
open("{ready}.tmp", "w").write(os.environ["AV_TEST_BASE_URL"])
os.rename("{ready}.tmp", "{ready}")
while not os.path.exists("{go}"):
    time.sleep(0.05)
deadline = time.time() + 20
while True:
    r = call()
    if r == 200 or time.time() > deadline:
        break
    time.sleep(0.1)
print("after", r, flush=True)
"#,
        ready = sync.join("ready").display(),
        go = go.display()
    );
    std::fs::write(w.d.join("restart.py"), script).unwrap();
    let mut cmd = run_cmd(
        &w.policy,
        &[],
        &[PYTHON, w.d.join("restart.py").to_str().unwrap()],
    );
    cmd.env("AV_TEST_KEY", &w.c.env_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // agent-init's log (every base-layer rule with -v) can outgrow a pipe's
    // buffer before the harness is ready: drain it meanwhile.
    let mut log = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut log, &mut v);
        v
    });
    let init_pid = child.id();
    let t0 = Instant::now();
    while !sync.join("ready").exists() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let mut o = child.wait_with_output().unwrap();
            o.stderr = log.join().unwrap();
            panic!(
                "the harness never got ready:\n{}\n{}",
                stdout(&o),
                stderr(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (proxy, uid) = proxy_child_of(init_pid).expect("vault-proxy is agent-init's child");
    assert_eq!(uid, PROXY_UID, "the proxy runs as its own uid");
    assert_ne!(uid, NOBODY);
    // The audit thread is up (agent-init has two tasks) before the kill.
    let tasks = || {
        std::fs::read_dir(format!("/proc/{init_pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let t1 = Instant::now();
    while tasks() < 2 {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "agent-init never started its audit thread"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = std::fs::read_to_string(sync.join("ready")).unwrap();
    let port: u16 = base
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("base URL {base:?}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Between the proxy's death and its restart (100 ms later), a tool
    // binds the port to answer the harness itself: agent-init holds the
    // listening socket, so the port is never free.
    let t2 = Instant::now();
    let mut taken = None;
    while t2.elapsed() < Duration::from_millis(80) {
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            taken = Some(t2.elapsed());
            drop(l);
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::write(&go, "").unwrap();
    let mut o = child.wait_with_output().unwrap();
    o.stderr = log.join().unwrap();
    assert_exit(&o, 0);
    assert_eq!(taken, None, "the port was free after the proxy died");
    let out = stdout(&o);
    assert!(out.contains("first 200"), "{out}\n{}", stderr(&o));
    assert!(out.contains("after 200"), "{out}\n{}", stderr(&o));
    assert_stderr_contains(&o, "restarted as pid");
    assert!(
        !stderr(&o).contains("denial records are not written"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        w.up.requests().len(),
        2,
        "exactly the two successful requests reached the upstream"
    );
}

#[test]
fn proxy_on_is_refused_in_one_line_without_root_a_uid_of_its_own_or_the_binary() {
    if skip_unless_root(
        "proxy_on_is_refused_in_one_line_without_root_a_uid_of_its_own_or_the_binary",
    ) {
        return;
    }
    let d = Dir::new();
    let same = d.policy(
        "64990:64990",
        "required",
        "required",
        "[proxy]\nmode = \"on\"\n",
    );
    let o = run_expecting(&same, &[], &["/bin/true"], 2);
    assert_stderr_contains(&o, "uid of its own");
    // Without root there is no second uid: refused before anything is written.
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "run",
            "--policy",
        ])
        .arg(&same)
        .args(["--", "/bin/true"])
        .env("AGENT_VAULT_PRELOAD", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&o, 2);
    assert_stderr_contains(&o, "needs agent-init started as root");
    assert_stderr_contains(&o, "sidecar");
    assert!(!stderr(&o).contains("[2/8] seed"), "{}", stderr(&o));
    // A copy of agent-init with no vault-proxy beside it (and none installed).
    if Path::new("/usr/lib/agent-vault/vault-proxy").exists() {
        panic!("/usr/lib/agent-vault/vault-proxy exists on this host: this test needs it absent");
    }
    let lonely = d.join("bin/agent-init");
    std::fs::create_dir_all(lonely.parent().unwrap()).unwrap();
    std::fs::copy(BIN, &lonely).unwrap();
    let p = d.policy(
        "65534:65534",
        "required",
        "required",
        "[proxy]\nmode = \"on\"\n[[proxy.route]]\nname = \"k\"\nupstream = \"http://127.0.0.1:9/\"\nheader = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { env = \"AV_TEST_KEY\" }\npoint = { env = \"AV_TEST_BASE_URL\" }\n",
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount -t tmpfs -o mode=0755 tmpfs /run && exec \"$0\" \"$@\"")
        .arg(&lonely)
        .args(["run", "--policy", p.to_str().unwrap(), "--", "/bin/true"])
        .env("AGENT_VAULT_PRELOAD", "off")
        .env("AV_TEST_KEY", "sk-whatever")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!(
            "{}/vault-proxy",
            lonely.parent().unwrap().display()
        )) && line.contains("/usr/lib/agent-vault/vault-proxy")
            && line.contains("mode = \"off\""),
        "{err}"
    );
}

#[test]
fn self_test_reports_the_proxy_uid_and_routes_without_values() {
    if skip_unless_root("self_test_reports_the_proxy_uid_and_routes_without_values") {
        return;
    }
    let w = World::new();
    ensure_proxy_binary();
    let mut cmd = run_cmd(&w.policy, &[], &[BIN, "self-test", "--json"]);
    cmd.env("AV_TEST_KEY", &w.c.env_key);
    let o = output(cmd);
    // Other rows fail here (the preload is off in these tests); the proxy rows must pass.
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    let rows: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["layer"] == "proxy")
        .collect();
    let running = rows
        .iter()
        .find(|r| r["check"] == "vault-proxy running as its own uid")
        .expect("a proxy row");
    assert_eq!(running["status"], "pass", "{running}");
    assert!(
        running["detail"].as_str().unwrap().contains("uid 64990"),
        "{running}"
    );
    for name in ["/env-key", "/pi-anthropic", "/pi-openai"] {
        assert!(
            rows.iter()
                .any(|r| r["check"] == format!("route {name}").as_str()),
            "{rows:?}"
        );
    }
    assert_no_secret(w.c.all(), "self-test's output", &stdout(&o));
    assert!(
        !stdout(&o).contains("-av-"),
        "self-test printed a placeholder"
    );
}

#[test]
fn check_and_explain_show_each_route_and_its_source_never_a_value() {
    if skip_unless_root("check_and_explain_show_each_route_and_its_source_never_a_value") {
        return;
    }
    let w = World::new();
    // Seed the vault so explain has a real file with the canaries in it.
    std::fs::create_dir_all(&w.vault).unwrap();
    std::fs::copy(w.seed.join("auth.json"), w.vault.join("auth.json")).unwrap();
    let o = Command::new(BIN)
        .args(["check", "--policy", w.policy.to_str().unwrap()])
        .env("AV_TEST_KEY", &w.c.env_key)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("on: vault-proxy runs as uid 64990 gid 64990"),
        "{out}"
    );
    assert!(out.contains("route /env-key -> http://127.0.0.1:"), "{out}");
    assert!(
        out.contains("secret from environment variable AV_TEST_KEY"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "secret from {}/auth.json (pi-auth) entry \"anthropic\"",
            w.vault.display()
        )),
        "{out}"
    );
    assert!(out.contains("OAuth login refreshed by the proxy"), "{out}");
    assert_no_secret(w.c.all(), "check", &(out + &stderr(&o)));
    let o = Command::new(BIN)
        .args(["explain", "--policy", w.policy.to_str().unwrap()])
        .arg(w.vault.join("auth.json"))
        .env("AV_TEST_KEY", &w.c.env_key)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("proxy route /pi-openai: its credential comes from here"),
        "{out}"
    );
    assert!(
        out.contains("the harness sees only a placeholder here"),
        "{out}"
    );
    assert_no_secret(w.c.all(), "explain", &(out + &stderr(&o)));
}

/// The requests the upstream received after the first `before`.
fn new_requests(w: &World, before: usize) -> Vec<serde_json::Value> {
    w.up.requests().into_iter().skip(before).collect()
}

#[test]
fn second_start_with_only_the_placeholder_keeps_working_with_the_stored_session() {
    if skip_unless_root(
        "second_start_with_only_the_placeholder_keeps_working_with_the_stored_session",
    ) {
        return;
    }
    let w = World::new();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    // The proxy stored the new login at start (it is the only copy left
    // once the seed is gone), in its own state, out of the harness's reach.
    assert!(w.state.join("pi-anthropic.json").exists());
    // The host login is gone: the vault holds only the last start's placeholders.
    std::fs::remove_file(w.seed.join("auth.json")).unwrap();
    let before = w.up.requests().len();
    let (v, err) = w.run_harness();
    assert!(
        err.contains("holds a placeholder from a previous start")
            && err.contains("served with the session the proxy stored in"),
        "{err}"
    );
    assert_eq!(v["env"], 200, "the env route is unaffected: {v:#}");
    assert_eq!(
        v["pi_anthropic"], 200,
        "the OAuth route resumes the proxy's stored session: {v:#}\n{err}"
    );
    // An API key has no session to resume: refused, never forwarded.
    let s = v["pi_openai"].as_i64().unwrap_or(0);
    assert!(s == 401 || s == 503, "pi_openai: {v:#}");
    // The harness got a fresh placeholder for the resumed login.
    let access = v["seen"]["auth"]["anthropic"]["access"].as_str().unwrap();
    assert!(access.starts_with("sk-ant-oat01-av-"), "{access}");
    let new = new_requests(&w, before);
    let paths: Vec<&str> = new.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/env/v1/messages", "/pia/v1/messages"], "{new:#?}");
    assert_eq!(
        new[1]["headers"]["authorization"],
        format!("Bearer {}", w.c.pi_oauth_access).as_str()
    );
    for r in &new {
        assert!(
            !r.to_string().contains("-av-"),
            "a placeholder reached the upstream: {r}"
        );
    }
    // No stored session and no seed: 503 and a log line naming the fix.
    std::fs::remove_file(w.state.join("pi-anthropic.json")).unwrap();
    let before = w.up.requests().len();
    let (v, err) = w.run_harness();
    assert!(
        err.contains("the proxy has no stored session") && err.contains("log in on the host"),
        "{err}"
    );
    assert_eq!(v["pi_anthropic"], 503, "{v:#}\n{err}");
    let new = new_requests(&w, before);
    assert_eq!(
        new.len(),
        1,
        "only the env route reached the upstream: {new:#?}"
    );
    assert_eq!(new[0]["path"], "/env/v1/messages");
}

#[test]
fn a_newer_seed_wins_over_the_stored_session() {
    if skip_unless_root("a_newer_seed_wins_over_the_stored_session") {
        return;
    }
    let w = World::new();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    // A new login on the host: another refresh token.
    let newer_access = format!("{}-NEWER", w.c.pi_oauth_access);
    let newer_refresh = format!("{}-NEWER", w.c.pi_oauth_refresh);
    let mut auth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.seed.join("auth.json")).unwrap()).unwrap();
    auth["anthropic"]["access"] = newer_access.clone().into();
    auth["anthropic"]["refresh"] = newer_refresh.clone().into();
    std::fs::write(w.seed.join("auth.json"), auth.to_string()).unwrap();
    let before = w.up.requests().len();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    let new = new_requests(&w, before);
    let pia: Vec<_> = new
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/pia/"))
        .collect();
    assert_eq!(pia.len(), 1, "{new:#?}");
    assert_eq!(
        pia[0]["headers"]["authorization"],
        format!("Bearer {newer_access}").as_str()
    );
    // The proxy's copy now descends from the newer login.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.state.join("pi-anthropic.json")).unwrap()).unwrap();
    assert_eq!(stored["refresh_token"], newer_refresh.as_str());
}

/// The harness of the group test: one request with each credential it
/// holds (the API key variable, the `.credentials.json` login) through the
/// one base URL, and one with neither.
const GROUP_HARNESS_PY: &str = r#"
import json, os, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(headers):
    req = urllib.request.Request(os.environ["AV_GROUP_BASE_URL"] + "/v1/messages",
                                 data=b'{"hello":1}', headers=headers, method="POST")
    try:
        with opener.open(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return str(e)
cred = json.load(open(sys.argv[1]))["claudeAiOauth"]
res = {"seen": {"key": os.environ.get("AV_GROUP_KEY"), "base": os.environ.get("AV_GROUP_BASE_URL"),
                "token": cred["accessToken"]}}
res["key"] = call({"x-api-key": os.environ["AV_GROUP_KEY"]})
res["oauth"] = call({"authorization": "Bearer " + cred["accessToken"]})
res["neither"] = call({"x-api-key": "sk-ant-api03-guess"})
print(json.dumps(res))
"#;

#[test]
fn a_group_serves_each_credential_by_its_placeholder_and_never_forwards_one() {
    if skip_unless_root("a_group_serves_each_credential_by_its_placeholder_and_never_forwards_one")
    {
        return;
    }
    ensure_proxy_binary();
    let d = Dir::new();
    let up = start_upstream(&d);
    let c = Canaries::new();
    let key = c.env_key.clone();
    let token = c.pi_oauth_access.clone();
    let refresh = c.pi_oauth_refresh.clone();
    // The host's login, mounted root-only; seeded into the harness's directory.
    let seed = d.join("claude-ro");
    let vault = d.join("claude");
    let state = d.join("proxy-state");
    create_root_only_dir(&seed);
    let cred = serde_json::json!({"claudeAiOauth": {
        "accessToken": token, "refreshToken": refresh, "expiresAt": 4_102_444_800_000u64,
        "scopes": ["user:inference"], "subscriptionType": "pro"}});
    std::fs::write(seed.join(".credentials.json"), cred.to_string()).unwrap();
    std::fs::write(d.join("harness.py"), GROUP_HARNESS_PY).unwrap();
    let extra = format!(
        r#"{vault_and_proxy}
[[proxy.route]]
name = "grp-key"
upstream = "http://127.0.0.1:{port}/grp"
header = "x-api-key"
placeholder = "sk-ant-api03-"
from = {{ env = "AV_GROUP_KEY" }}
point = {{ env = "AV_GROUP_BASE_URL" }}

[[proxy.route]]
name = "grp-login"
upstream = "http://127.0.0.1:{port}/grp"
placeholder = "sk-ant-oat01-"
from = {{ file = "{vault}/.credentials.json", format = "claude-credentials" }}
point = {{ env = "AV_GROUP_BASE_URL" }}
oauth = {{ placeholder = "sk-ant-oat01-", token_url = "http://127.0.0.1:{port}/token", client_id = "test-client" }}
"#,
        vault_and_proxy = seeded_vault_entry("claude", &vault, &seed) + "\n" + &proxy_on(&state),
        vault = vault.display(),
        port = up.port,
    );
    let policy = d.policy("65534:65534", "required", "required", &extra);
    // `check` shows the grouping.
    let o = Command::new(BIN)
        .args(["check", "--policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("served at /grp-key with grp-key, grp-login"),
        "{}",
        stdout(&o)
    );
    let o = Command::new(BIN)
        .args(["check", "--json", "--policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let paths: Vec<_> = j["proxy"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(paths, [("grp-key", "/grp-key"), ("grp-login", "/grp-key")]);
    let o = Command::new(BIN)
        .args(["explain", "--policy", policy.to_str().unwrap()])
        .arg(vault.join(".credentials.json"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("proxy route /grp-login: its credential comes from here")
            && stdout(&o).contains("served at /grp-key with grp-key, grp-login"),
        "{}",
        stdout(&o)
    );
    // Two starts: the second finds placeholders in the vault and reads the seed again.
    for run in 1..=2 {
        let before = up.requests().len();
        let mut cmd = run_cmd(
            &policy,
            &[],
            &[
                PYTHON,
                d.join("harness.py").to_str().unwrap(),
                vault.join(".credentials.json").to_str().unwrap(),
            ],
        );
        cmd.env("AV_GROUP_KEY", &key);
        let (v, err) = run_harness_json(cmd);
        assert_eq!(
            (&v["key"], &v["oauth"], &v["neither"]),
            (
                &serde_json::json!(200),
                &serde_json::json!(200),
                &serde_json::json!(401)
            ),
            "run {run}: {v:#}\n{err}"
        );
        // One base URL for both, the first route's path.
        assert!(
            v["seen"]["base"].as_str().unwrap().ends_with("/grp-key"),
            "{v:#}"
        );
        assert!(
            v["seen"]["key"]
                .as_str()
                .unwrap()
                .starts_with("sk-ant-api03-av-")
        );
        assert!(
            v["seen"]["token"]
                .as_str()
                .unwrap()
                .starts_with("sk-ant-oat01-av-")
        );
        assert!(
            err.contains("/grp-key for grp-login"),
            "run {run}: the start line names the shared path: {err}"
        );
        let new: Vec<_> = up.requests().into_iter().skip(before).collect();
        assert_eq!(new.len(), 2, "run {run}: {new:#?}");
        // Each request got its own real credential, and only that one.
        let by_key = &new[0]["headers"];
        assert_eq!(by_key["x-api-key"], key.as_str());
        assert!(by_key.get("authorization").is_none(), "{by_key}");
        let by_login = &new[1]["headers"];
        assert_eq!(
            by_login["authorization"],
            format!("Bearer {token}").as_str()
        );
        assert!(by_login.get("x-api-key").is_none(), "{by_login}");
        for r in &new {
            assert_eq!(r["path"], "/grp/v1/messages");
            let text = r.to_string();
            assert!(
                !text.contains("-av-"),
                "a placeholder reached the upstream: {text}"
            );
            assert!(
                !text.contains(&refresh),
                "the refresh token reached the upstream"
            );
        }
    }
    // The vault holds placeholders only.
    let text = std::fs::read_to_string(vault.join(".credentials.json")).unwrap();
    assert!(!text.contains(&token) && !text.contains(&refresh), "{text}");
}

#[test]
fn a_base_url_the_harness_wrote_into_models_json_never_gets_the_credential_by_agent_init() {
    if skip_unless_root(
        "a_base_url_the_harness_wrote_into_models_json_never_gets_the_credential_by_agent_init",
    ) {
        return;
    }
    let w = World::new();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    // Between starts, the harness (Pi's in-process write tool, at a model's
    // request) points the provider at a listener of its own.
    let attacker = ScriptedServer::start("attacker", UPSTREAM_PY, w.d.join("attacker.jsonl"), &[]);
    let models_path = w.vault.join("models.json");
    let mut models: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&models_path).unwrap()).unwrap();
    let stolen = format!("http://127.0.0.1:{}/steal", attacker.port);
    models["providers"]["anthropic"]["baseUrl"] = serde_json::json!(stolen);
    std::fs::write(&models_path, models.to_string()).unwrap();
    let before = w.up.requests().len();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    assert!(
        attacker.requests().is_empty(),
        "the proxy sent a request to the harness's base URL: {:#?}",
        attacker.requests()
    );
    assert!(
        new_requests(&w, before)
            .iter()
            .any(|r| r["path"].as_str().unwrap().starts_with("/pia/")),
        "the seed's base URL is the upstream"
    );
    assert!(
        err.contains(&format!(
            "the base URL {stolen}, which the harness may have written"
        )),
        "{err}"
    );
}

#[test]
fn a_login_the_harness_wrote_into_its_vault_file_does_not_replace_the_seeded_session_by_agent_init()
{
    if skip_unless_root(
        "a_login_the_harness_wrote_into_its_vault_file_does_not_replace_the_seeded_session_by_agent_init",
    ) {
        return;
    }
    let w = World::new();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    // Between starts the harness overwrites its auth.json (a model asked
    // Pi's write tool to): a "login" that is junk.
    let mut auth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.vault.join("auth.json")).unwrap()).unwrap();
    auth["anthropic"]["access"] = "sk-ant-oat01-JUNK-FROM-THE-HARNESS".into();
    auth["anthropic"]["refresh"] = "sk-ant-ort01-JUNK-FROM-THE-HARNESS".into();
    std::fs::write(w.vault.join("auth.json"), auth.to_string()).unwrap();
    let before = w.up.requests().len();
    let (v, err) = w.run_harness();
    assert_eq!(v["pi_anthropic"], 200, "{v:#}\n{err}");
    let pia: Vec<_> = new_requests(&w, before)
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/pia/"))
        .collect();
    assert_eq!(pia.len(), 1);
    assert_eq!(
        pia[0]["headers"]["authorization"],
        format!("Bearer {}", w.c.pi_oauth_access).as_str(),
        "the seed's login, not the harness's"
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.state.join("pi-anthropic.json")).unwrap()).unwrap();
    assert_eq!(stored["refresh_token"], w.c.pi_oauth_refresh.as_str());
    assert!(
        err.contains("holds a login that is not the one in its seed"),
        "{err}"
    );
}

#[test]
fn a_credential_directory_the_harness_swapped_for_a_symlink_is_not_followed_by_agent_init() {
    if skip_unless_root(
        "a_credential_directory_the_harness_swapped_for_a_symlink_is_not_followed_by_agent_init",
    ) {
        return;
    }
    ensure_proxy_binary();
    let d = Dir::new();
    let state = d.join("proxy-state");
    // A root-only file of the same shape elsewhere (say another service's
    // mounted secret), and the harness's credential directory replaced by a
    // symlink to it (the harness owns the link, as one it made would be).
    let secret = d.join("secret");
    create_root_only_dir(&secret);
    let other = r#"{"key":"sk-ROOT-ONLY-NOT-THE-HARNESS"}"#;
    std::fs::write(secret.join("auth.json"), other).unwrap();
    let creds = d.join("creds");
    std::os::unix::fs::symlink(&secret, &creds).unwrap();
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        &creds,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let extra = format!(
        r#"{proxy}
[[proxy.route]]
name = "file-key"
upstream = "http://127.0.0.1:9/k"
header = "x-api-key"
placeholder = "sk-"
from = {{ file = "{creds}/auth.json", pointer = "/key" }}
point = {{ env = "AV_TEST_BASE_URL" }}
"#,
        proxy = proxy_on(&state),
        creds = creds.display(),
    );
    let policy = d.policy("65534:65534", "required", "required", &extra);
    let o = output(run_cmd(&policy, &[], &["/bin/true"]));
    assert_eq!(
        std::fs::read_to_string(secret.join("auth.json")).unwrap(),
        other,
        "root rewrote the file behind the harness's symlink"
    );
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_stderr_contains(&o, "an untrusted symlink, not followed");
}

#[test]
fn a_proxy_state_dir_inside_a_directory_the_harness_owns_is_refused_by_agent_init() {
    if skip_unless_root(
        "a_proxy_state_dir_inside_a_directory_the_harness_owns_is_refused_by_agent_init",
    ) {
        return;
    }
    ensure_proxy_binary();
    // The harness could rename the state directory away, or swap in one of
    // its own holding a session it wrote, between starts.
    let d = Dir::new();
    let home = d.join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let state = home.join("proxy-state");
    let extra = format!(
        r#"{proxy}
[[proxy.route]]
name = "env-key"
upstream = "http://127.0.0.1:9/k"
header = "x-api-key"
placeholder = "sk-"
from = {{ env = "AV_TEST_KEY" }}
point = {{ env = "AV_TEST_BASE_URL" }}
"#,
        proxy = proxy_on(&state),
    );
    let policy = d.policy("65534:65534", "required", "required", &extra);
    let mut cmd = run_cmd(&policy, &[], &["/bin/true"]);
    cmd.env("AV_TEST_KEY", "sk-ant-api03-STATE-DIR-TEST");
    let o = output(cmd);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_stderr_contains(&o, "not trusted");
    assert!(
        !state.exists(),
        "agent-init created the state directory there"
    );
}
