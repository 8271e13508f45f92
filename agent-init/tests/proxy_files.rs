//! The proxy step for OpenCode's and Codex's credential files and the
//! ChatGPT logins (Codex's `auth.json` `tokens`, Pi's `openai-codex`), as
//! root in a private mount namespace: the harness (nobody) gets JWT-shaped
//! placeholders that decode to the real account claims, reaches a scripted
//! ChatGPT backend (SSE, only real access tokens accepted) and a scripted
//! Anthropic API through the proxy, and the proxy refreshes against a
//! scripted token endpoint that rotates single-use refresh tokens. Canary
//! secrets are searched for wherever the harness's uid can look, across two
//! starts.

mod common;
use common::proxy::*;
use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
const ACCOUNT: &str = "acct-7f3e";

/// The scripted provider on 127.0.0.1, one process:
/// - `POST /oauth/token`: OpenAI's refresh grant (JSON body); a refresh token
///   works once, then answers 401 `refresh_token_reused`; the answer carries
///   a new `id_token`, `access_token` (JWTs, signature `ISSUEDSIG<n>`) and
///   `refresh_token` (`ISSUEDREFRESH-<n>`), no `expires_in`, like OpenAI's.
/// - `POST /backend-api/codex/responses`: ChatGPT's Responses SSE; 401 unless
///   the bearer token is a real access token (argv[2], or one it issued).
/// - `POST /v1/messages`: 200 JSON for the real Anthropic key (argv[3]).
///
/// Every request is logged (path, headers, body) one JSON object a line.
const PROVIDER_PY: &str = r#"
import base64, http.server, json, sys, threading
log = open(sys.argv[1], "a")
valid = set(sys.argv[2].split(","))
anthropic_key = sys.argv[3]
used, issued, lock = set(), [0], threading.Lock()
def b64(o):
    return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
def jwt(payload, sig):
    return b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(payload) + "." + sig
claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "ACCOUNT", "chatgpt_plan_type": "plus"},
          "email": "dev@example.com"}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n).decode("latin-1")
        h = {k.lower(): v for k, v in self.headers.items()}
        log.write(json.dumps({"path": self.path, "headers": h, "body": body}) + "\n")
        log.flush()
        auth = h.get("authorization", "")
        if self.path == "/oauth/token":
            j = json.loads(body)
            rt = j.get("refresh_token", "")
            with lock:
                ok = j.get("grant_type") == "refresh_token" and j.get("client_id") == "CLIENT_ID" and rt not in used
                used.add(rt)
                if ok:
                    issued[0] += 1
                    i = issued[0]
            if not ok:
                return self.reply(401, "application/json", b'{"error":{"code":"refresh_token_reused"}}')
            access = jwt(dict(claims, exp=4000000000, n=i), "ISSUEDSIG%d" % i)
            valid.add(access)
            out = {"id_token": jwt(dict(claims, n=i), "ISSUEDIDSIG%d" % i), "access_token": access,
                   "refresh_token": "ISSUEDREFRESH-%d" % i}
            return self.reply(200, "application/json", json.dumps(out).encode())
        if self.path == "/backend-api/codex/responses":
            if not (auth.startswith("Bearer ") and auth[7:] in valid):
                return self.reply(401, "application/json", b'{"detail":"Unauthorized"}')
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for e in ['event: response.created\ndata: {"type":"response.created"}\n\n',
                      'event: response.completed\ndata: {"type":"response.completed"}\n\n']:
                b = e.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/v1/messages":
            if h.get("x-api-key") != anthropic_key:
                return self.reply(401, "application/json", b'{"type":"error"}')
            return self.reply(200, "application/json", b'{"type":"message"}')
        self.reply(404, "text/plain", b"no such path")
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The harness: reads its files and variables the way Codex, OpenCode and Pi
/// do (decoding the JWTs), sends one request per harness through the base
/// URL it was given, runs the tool, prints one JSON object.
const HARNESS_PY: &str = r#"
import base64, json, os, subprocess, sys, urllib.request
codex_home, opencode_data, pi, tool = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def claims(tok):
    p = tok.split(".")
    assert len(p) == 3, "not a JWT: %r" % tok[:20]
    return json.loads(base64.urlsafe_b64decode(p[1] + "=" * (-len(p[1]) % 4)))
def call(url, headers):
    req = urllib.request.Request(url, data=b'{"stream":true}', headers=headers, method="POST")
    try:
        with opener.open(req, timeout=20) as r:
            return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]
    except Exception as e:
        return [str(e), ""]
res = {}
# Codex: auth.json in ChatGPT mode, OPENAI_BASE_URL.
codex = json.load(open(os.path.join(codex_home, "auth.json")))
t = codex["tokens"]
res["codex_claims"] = {"id": claims(t["id_token"]), "access": claims(t["access_token"])}
res["codex"] = call(os.environ["OPENAI_BASE_URL"] + "/responses",
                    {"authorization": "Bearer " + t["access_token"], "chatgpt-account-id": t["account_id"],
                     "accept": "text/event-stream", "originator": "codex_cli_rs"})
# OpenCode: auth.json "api" entry, OPENCODE_CONFIG_CONTENT baseURL.
oc = json.load(open(os.path.join(opencode_data, "auth.json")))
occ = json.loads(os.environ["OPENCODE_CONFIG_CONTENT"])
res["opencode"] = call(occ["provider"]["anthropic"]["options"]["baseURL"] + "/messages",
                       {"x-api-key": oc["anthropic"]["key"]})
# Pi: openai-codex OAuth entry, account id from the access JWT.
pa = json.load(open(os.path.join(pi, "auth.json")))["openai-codex"]
pm = json.load(open(os.path.join(pi, "models.json")))
res["pi_claims"] = claims(pa["access"])
res["pi"] = call(pm["providers"]["openai-codex"]["baseUrl"] + "/codex/responses",
                 {"authorization": "Bearer " + pa["access"],
                  "chatgpt-account-id": res["pi_claims"]["https://api.openai.com/auth"]["chatgpt_account_id"]})
res["guess"] = call(os.environ["OPENAI_BASE_URL"] + "/responses", {"authorization": "Bearer " + "x" * 40})
res["seen"] = {"codex": codex, "opencode": oc, "pi": pa, "OPENCODE_CONFIG_CONTENT": occ,
               "OPENAI_BASE_URL": os.environ["OPENAI_BASE_URL"]}
r = subprocess.run([sys.executable] + tool, capture_output=True, text=True)
res["tool"] = r.stdout + r.stderr
print(json.dumps(res))
"#;

/// A JWT as the provider issues it (base64url segments, `sig` last).
fn jwt(payload: &Value, sig: &str) -> String {
    vault_proxy::jwt::encode(payload, sig)
}

struct Canaries {
    codex_access: String,
    codex_id: String,
    codex_refresh: String,
    opencode_key: String,
    pi_access: String,
    pi_refresh: String,
}

impl Canaries {
    fn new() -> Canaries {
        let n = canary_nonce();
        let claims = json!({"https://api.openai.com/auth": {"chatgpt_account_id": ACCOUNT, "chatgpt_plan_type": "plus"}, "email": "dev@example.com", "session_id": format!("CANARYSESSION{n}")});
        let mut expired = claims.clone();
        expired["exp"] = json!(1_000_000_000u64);
        let mut valid = claims.clone();
        valid["exp"] = json!(4_000_000_000u64);
        Canaries {
            // Expired: the proxy refreshes before the first request.
            codex_access: jwt(&expired, &format!("CANARYCXA{n}")),
            codex_id: jwt(&claims, &format!("CANARYCXI{n}")),
            codex_refresh: format!("CANARYCXR{n}"),
            opencode_key: format!("sk-ant-api03-CANARYOC{n}"),
            pi_access: jwt(&valid, &format!("CANARYPIA{n}")),
            pi_refresh: format!("CANARYPIR{n}"),
        }
    }
    /// Every secret, real or issued during the test: the seeds' and the
    /// token endpoint's (`ISSUED…`), and the claims that must not be copied.
    fn all(&self) -> Vec<String> {
        let sig = |t: &str| t.rsplit('.').next().unwrap().to_string();
        vec![
            sig(&self.codex_access),
            sig(&self.codex_id),
            self.codex_refresh.clone(),
            self.opencode_key.clone(),
            sig(&self.pi_access),
            self.pi_refresh.clone(),
            "CANARYSESSION".into(),
            "ISSUEDSIG".into(),
            "ISSUEDIDSIG".into(),
            "ISSUEDREFRESH".into(),
        ]
    }
}

struct World {
    d: Dir,
    p: ScriptedServer,
    c: Canaries,
    seed: PathBuf,
    state: PathBuf,
    policy: PathBuf,
}

impl World {
    fn new() -> World {
        let d = Dir::new();
        let c = Canaries::new();
        let p = ScriptedServer::start(
            "provider",
            &PROVIDER_PY
                .replace("\"ACCOUNT\"", &format!("{ACCOUNT:?}"))
                .replace("\"CLIENT_ID\"", &format!("{CLIENT_ID:?}")),
            d.join("provider.jsonl"),
            &[
                &format!("{},{}", c.codex_access, c.pi_access),
                &c.opencode_key,
            ],
        );
        let seed = d.join("seed");
        create_root_only_dir(&seed);
        write_0600(
            &seed.join("codex/auth.json"),
            &json!({"OPENAI_API_KEY": null, "tokens": {"id_token": c.codex_id, "access_token": c.codex_access,
                    "refresh_token": c.codex_refresh, "account_id": ACCOUNT}, "last_refresh": "2026-01-01T00:00:00Z"}),
        );
        write_0600(
            &seed.join("opencode/auth.json"),
            &json!({"anthropic": {"type": "api", "key": c.opencode_key},
                    "openai": {"type": "oauth", "access": "oc-oauth-access", "refresh": "oc-oauth-refresh", "expires": 1}}),
        );
        write_0600(
            &seed.join("pi/auth.json"),
            &json!({"openai-codex": {"type": "oauth", "access": c.pi_access, "refresh": c.pi_refresh,
                    "expires": 4_000_000_000_000u64, "accountId": ACCOUNT}}),
        );
        std::fs::write(d.join("harness.py"), HARNESS_PY).unwrap();
        std::fs::write(d.join("tool.py"), TOOL_PY).unwrap();
        let state = d.join("proxy-state");
        let v = d.path().display().to_string();
        let extra = format!(
            r#"{vaults_and_proxy}
[[proxy.route]]
name = "codex-chatgpt"
upstream = "http://127.0.0.1:{port}/backend-api/codex"
from = {{ file = "{v}/codex/auth.json", format = "codex-auth" }}
point = {{ env = "OPENAI_BASE_URL" }}
oauth = {{ jwt = true, token_url = "http://127.0.0.1:{port}/oauth/token", client_id = "{CLIENT_ID}", paths = ["/responses"] }}

[[proxy.route]]
name = "opencode-anthropic"
upstream = "http://127.0.0.1:{port}/v1"
header = "x-api-key"
placeholder = "sk-ant-api03-"
from = {{ file = "{v}/opencode/auth.json", format = "opencode-auth", provider = "anthropic" }}
point = {{ env_json = "OPENCODE_CONFIG_CONTENT", pointer = "/provider/anthropic/options/baseURL" }}

[[proxy.route]]
name = "opencode-openai"
upstream = "http://127.0.0.1:{port}/v1"
header = "authorization"
placeholder = "sk-"
from = {{ file = "{v}/opencode/auth.json", format = "opencode-auth", provider = "openai" }}
point = {{ env_json = "OPENCODE_CONFIG_CONTENT", pointer = "/provider/openai/options/baseURL" }}

[[proxy.route]]
name = "pi-openai-codex"
upstream = "http://127.0.0.1:{port}/backend-api"
header = "authorization"
placeholder = "sk-"
from = {{ file = "{v}/pi/auth.json", format = "pi-auth", provider = "openai-codex" }}
point = {{ pi_models = "{v}/pi/models.json", provider = "openai-codex" }}
oauth = {{ jwt = true, token_url = "http://127.0.0.1:{port}/oauth/token", client_id = "{CLIENT_ID}", paths = ["/codex/"] }}
"#,
            vaults_and_proxy = ["codex", "opencode", "pi"]
                .map(|h| seeded_vault_entry(h, &d.join(h), &seed.join(h)) + "\n")
                .concat()
                + &proxy_on(&state),
            port = p.port,
        );
        let policy = d.policy("65534:65534", "required", "required", &extra);
        World {
            d,
            p,
            c,
            seed,
            state,
            policy,
        }
    }

    fn run_harness(&self) -> (Value, String) {
        ensure_proxy_binary();
        let v = self.d.path().display().to_string();
        let mut cmd = run_cmd(
            &self.policy,
            &[],
            &[
                PYTHON,
                &format!("{v}/harness.py"),
                &format!("{v}/codex"),
                &format!("{v}/opencode"),
                &format!("{v}/pi"),
                &format!("{v}/tool.py"),
                &format!("{v}/codex"),
                &format!("{v}/opencode"),
                &format!("{v}/pi"),
                self.state.to_str().unwrap(),
                self.seed.to_str().unwrap(),
            ],
        );
        // The user's own OpenCode config: kept, with the base URL added.
        cmd.env(
            "OPENCODE_CONFIG_CONTENT",
            r#"{"model":"anthropic/claude-sonnet-4-5"}"#,
        );
        run_harness_json(cmd)
    }
}

#[test]
fn codex_opencode_and_pi_chatgpt_files_hold_only_placeholders_across_two_starts() {
    if skip_unless_root(
        "codex_opencode_and_pi_chatgpt_files_hold_only_placeholders_across_two_starts",
    ) || skip_without(PYTHON, "python3")
    {
        return;
    }
    let w = World::new();
    let mut access_placeholders = Vec::new();
    for run in 1..=2 {
        let (v, err) = w.run_harness();
        for k in ["codex", "opencode", "pi"] {
            assert_eq!(v[k][0], 200, "run {run} {k}: {v:#}\n{err}");
        }
        // SSE passed through.
        for k in ["codex", "pi"] {
            assert!(
                v[k][1]
                    .as_str()
                    .unwrap()
                    .contains("event: response.completed"),
                "{v:#}"
            );
        }
        assert_eq!(
            v["guess"][0], 401,
            "a request without the placeholder passed"
        );
        // The JWT placeholders decode to the real account claims, never expire.
        for c in [
            &v["codex_claims"]["id"],
            &v["codex_claims"]["access"],
            &v["pi_claims"],
        ] {
            assert_eq!(
                c["https://api.openai.com/auth"]["chatgpt_account_id"], ACCOUNT,
                "{c}"
            );
            assert_eq!(
                c["https://api.openai.com/auth"]["chatgpt_plan_type"], "plus",
                "{c}"
            );
        }
        assert_eq!(v["codex_claims"]["access"]["exp"], 4_102_444_800u64);
        assert_eq!(v["codex_claims"]["id"]["email"], "dev@example.com");
        let seen = &v["seen"];
        let t = &seen["codex"]["tokens"];
        assert_eq!(t["account_id"], ACCOUNT);
        assert!(t["refresh_token"].as_str().unwrap().starts_with("av-"));
        assert!(seen["codex"]["last_refresh"].as_str().unwrap() > "2026-01-01T00:00:01");
        assert!(
            seen["opencode"]["anthropic"]["key"]
                .as_str()
                .unwrap()
                .starts_with("sk-ant-api03-av-")
        );
        // OpenCode's OAuth entry is not routable: left as it was, and said so.
        assert_eq!(seen["opencode"]["openai"]["access"], "oc-oauth-access");
        assert!(
            err.contains("is an OpenCode oauth login: it cannot be routed"),
            "{err}"
        );
        assert!(
            !err.contains("\"openai\" has no [[proxy.route]]"),
            "said twice: {err}"
        );
        let occ = &seen["OPENCODE_CONFIG_CONTENT"];
        assert_eq!(occ["model"], "anthropic/claude-sonnet-4-5", "{occ}");
        let base = occ["provider"]["anthropic"]["options"]["baseURL"]
            .as_str()
            .unwrap();
        assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/opencode-anthropic"));
        assert!(
            occ["provider"].get("openai").is_none(),
            "an unserved route was pointed: {occ}"
        );
        assert_eq!(seen["pi"]["expires"], 4_102_444_800_000u64);
        // Nothing the harness or its tool could see holds a secret; the tool
        // did read the vault files (positive control) and not the state or seed.
        let tool = v["tool"].as_str().unwrap();
        assert!(tool.contains(&format!("FILE {}/codex/auth.json", w.d.path().display())));
        assert!(
            tool.contains(&format!("DENIED {}", w.state.display())),
            "{tool}"
        );
        assert!(
            tool.contains(&format!("DENIED {}", w.seed.display())),
            "{tool}"
        );
        assert_no_secret(
            w.c.all(),
            &format!("run {run}: what the harness and its tool saw"),
            &v.to_string(),
        );
        if run == 2 {
            assert!(
                err.contains("(seed "),
                "the second start reads the seed again: {err}"
            );
        }
        access_placeholders.push(t["access_token"].as_str().unwrap().to_string());
    }
    assert_ne!(
        access_placeholders[0], access_placeholders[1],
        "placeholders are per start"
    );

    // The provider side: one refresh in all (the second start used the
    // proxy's stored rotation, not the spent seed token), every request with
    // the real credential, never a placeholder.
    let reqs = w.p.requests();
    let token_calls: Vec<_> = reqs
        .iter()
        .filter(|r| r["path"] == "/oauth/token")
        .collect();
    assert_eq!(token_calls.len(), 1, "{token_calls:#?}");
    let tj: Value = serde_json::from_str(token_calls[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&tj["grant_type"], &tj["refresh_token"], &tj["client_id"]),
        (
            &json!("refresh_token"),
            &json!(w.c.codex_refresh),
            &json!(CLIENT_ID)
        )
    );
    let mut codex = 0;
    for r in &reqs {
        let text = r.to_string();
        assert!(
            !text.contains("av-"),
            "a placeholder reached the provider: {text}"
        );
        let auth = r["headers"]["authorization"].as_str().unwrap_or("");
        match r["path"].as_str().unwrap() {
            "/backend-api/codex/responses" if r["headers"]["originator"] == "codex_cli_rs" => {
                codex += 1;
                assert!(auth.contains(".ISSUEDSIG1"), "codex sent {auth}");
                assert_eq!(r["headers"]["chatgpt-account-id"], ACCOUNT);
            }
            "/backend-api/codex/responses" => {
                assert_eq!(auth, format!("Bearer {}", w.c.pi_access));
                assert_eq!(r["headers"]["chatgpt-account-id"], ACCOUNT);
            }
            "/v1/messages" => assert_eq!(r["headers"]["x-api-key"], w.c.opencode_key.as_str()),
            "/oauth/token" => {}
            p => panic!("request to an unexpected path {p}: {text}"),
        }
    }
    assert_eq!(codex, 2);
    // As root: the vault's files hold placeholders only.
    for f in ["codex/auth.json", "pi/auth.json", "opencode/auth.json"] {
        let text = std::fs::read_to_string(w.d.path().join(f)).unwrap();
        assert_no_secret(w.c.all(), f, &text);
    }
}

#[test]
fn check_shows_the_codex_mode_and_the_opencode_pointer_never_a_value() {
    if skip_unless_root("check_shows_the_codex_mode_and_the_opencode_pointer_never_a_value") {
        return;
    }
    let w = World::new();
    let o = Command::new(BIN)
        .args(["check", "--policy", w.policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let out = stdout(&o);
    let v = w.d.path().display();
    for needle in [
        format!("secret from {v}/codex/auth.json (codex-auth) \"tokens\" (ChatGPT login)"),
        "the harness sees a JWT with the login's account claims and signature av-<random>, never expiring".into(),
        format!("secret from {v}/opencode/auth.json (opencode-auth) entry \"anthropic\""),
        "harness pointed at the proxy by environment variable OPENCODE_CONFIG_CONTENT (JSON) at /provider/anthropic/options/baseURL".into(),
    ] {
        assert!(out.contains(&needle), "{needle}\n{out}");
    }
    assert_no_secret(w.c.all(), "check", &(out + &stderr(&o)));
}

#[test]
fn an_unrouted_codex_chatgpt_login_is_named_at_start_by_agent_init() {
    if skip_unless_root("an_unrouted_codex_chatgpt_login_is_named_at_start_by_agent_init") {
        return;
    }
    let d = Dir::new();
    let c = Canaries::new();
    let auth = d.join("codex/auth.json");
    let v = d.path().display().to_string();
    // The built-in shape: Codex's file is routed in API-key mode only.
    let extra = format!(
        r#"[[vault.entry]]
name = "codex"
dir = "{v}/codex"

{proxy}
[[proxy.route]]
name = "codex"
upstream = "https://api.openai.com/v1"
header = "authorization"
placeholder = "sk-"
from = {{ file = "{v}/codex/auth.json", format = "codex-auth" }}
point = {{ env = "OPENAI_BASE_URL" }}
"#,
        proxy = proxy_on(&d.join("proxy-state")),
    );
    let policy = d.policy("65534:65534", "required", "required", &extra);
    let start = |tokens: &Value| {
        write_0600(&auth, &json!({"OPENAI_API_KEY": null, "tokens": tokens}));
        let o = output(run_cmd(&policy, &[], &["/bin/true"]));
        assert_exit(&o, 0);
        stderr(&o)
    };
    let login = json!({"id_token": c.codex_id, "access_token": c.codex_access,
                       "refresh_token": c.codex_refresh, "account_id": ACCOUNT});
    let err = start(&login);
    assert!(
        err.contains("holds a Codex ChatGPT login, which no route serves"),
        "{err}"
    );
    assert_no_secret(c.all(), "agent-init's stderr", &err);
    // A file without a login: nothing to say.
    let err = start(&json!(null));
    assert!(!err.contains("Codex ChatGPT login"), "{err}");
}
