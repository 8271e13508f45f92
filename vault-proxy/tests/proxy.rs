//! vault-proxy against scripted providers on 127.0.0.1: pass-through,
//! streaming, refusals, cancellation, OAuth refresh and restart.

#![cfg(feature = "server")]

mod support;

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use support::*;

fn sse_upstream(events: &'static [&'static str]) -> Upstream {
    Upstream::start(move |ex| {
        sse_head(ex.stream);
        for e in events {
            sse_event(ex.stream, e).unwrap();
        }
        sse_end(ex.stream);
        true
    })
}

const ANTHROPIC_EVENTS: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

#[test]
fn anthropic_messages_sse_passes_through_with_the_real_key_and_headers_intact() {
    let up = sse_upstream(ANTHROPIC_EVENTS);
    let state = state_dir();
    let proxy = start_proxy(&api_key_config(state.path(), &up.url(), "x-api-key"));
    let body = br#"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"h\u00e9"}]}"#;
    let headers = [
        ("x-api-key", PH),
        ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20"),
        ("anthropic-version", "2023-06-01"),
        ("user-agent", "claude-cli/2.1.0 (external, cli)"),
        ("x-app", "cli"),
        ("content-type", "application/json"),
        ("x-forwarded-for", "10.0.0.1"),
        ("via", "1.1 evil"),
    ];
    for _ in 0..2 {
        let r = request(
            proxy,
            "POST",
            "/anthropic/v1/messages?beta=true",
            &headers,
            body,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        assert_eq!(r.text(), ANTHROPIC_EVENTS.concat());
    }
    let got = up.received();
    assert_eq!(got.len(), 2);
    let g = &got[0];
    assert_eq!(g.method, "POST");
    assert_eq!(g.target, "/v1/messages?beta=true");
    assert_eq!(g.header("x-api-key"), Some(REAL));
    assert_eq!(g.header("host"), Some(up.addr.to_string().as_str()));
    for (k, v) in &headers[1..6] {
        assert_eq!(g.header(k), Some(*v), "{k}");
    }
    assert_eq!(g.header("x-forwarded-for"), None);
    assert_eq!(g.header("via"), None);
    assert_eq!(g.header("authorization"), None);
    assert!(!g.raw_head.contains("PLACEHOLDER"), "{}", g.raw_head);
    assert_eq!(g.body, body);
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "the second request reuses the pooled upstream connection"
    );
}

#[test]
fn openai_chat_sse_passes_through_with_bearer_key_and_injected_headers_under_the_base_path() {
    const EVENTS: &[&str] = &[
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: [DONE]\n\n",
    ];
    let up = sse_upstream(EVENTS);
    let state = state_dir();
    let cfg = api_key_config(state.path(), &format!("{}/v1", up.url()), "authorization")
        .replace("/anthropic", "/openai")
        .replace(
            "[route.credential]",
            "inject_headers = { \"chatgpt-account-id\" = \"acct-real\" }\n[route.credential]",
        );
    let proxy = start_proxy(&cfg);
    let body = br#"{"model":"gpt-5","stream":true,"messages":[]}"#;
    let r = request(
        proxy,
        "POST",
        "/openai/chat/completions",
        &[
            ("authorization", &format!("Bearer {PH}")),
            ("openai-beta", "x"),
            ("user-agent", "codex_cli_rs/0.1"),
            ("chatgpt-account-id", "acct-from-harness"),
        ],
        body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), EVENTS.concat());
    let g = &up.received()[0];
    assert_eq!(g.target, "/v1/chat/completions");
    assert_eq!(
        g.header("authorization"),
        Some(format!("Bearer {REAL}").as_str())
    );
    assert_eq!(g.header("openai-beta"), Some("x"));
    assert_eq!(g.header("chatgpt-account-id"), Some("acct-real"));
    assert_eq!(g.raw_head.matches("chatgpt-account-id").count(), 1);
    assert_eq!(g.header("user-agent"), Some("codex_cli_rs/0.1"));
    assert!(!g.raw_head.contains("PLACEHOLDER"));
    assert_eq!(g.body, body);
}

#[test]
fn slow_sse_client_sees_event_1_before_the_server_sends_event_2() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let up = Upstream::start(move |ex| {
        sse_head(ex.stream);
        sse_event(ex.stream, "data: one\n\n").unwrap();
        // Event 2 only after the client has seen event 1.
        release_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20))
            .expect("the client never saw event 1 (the proxy buffered it)");
        sse_event(ex.stream, "data: two\n\n").unwrap();
        sse_end(ex.stream);
        true
    });
    let state = state_dir();
    let proxy = start_proxy(&api_key_config(state.path(), &up.url(), "x-api-key"));
    let mut r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(read_chunk(&mut r.reader).unwrap(), b"data: one\n\n");
    release_tx.send(()).unwrap();
    assert_eq!(read_chunk(&mut r.reader).unwrap(), b"data: two\n\n");
    assert!(read_chunk(&mut r.reader).is_none());
}

#[test]
fn client_disconnect_mid_stream_closes_the_upstream_connection() {
    let (closed_tx, closed_rx) = mpsc::channel::<Duration>();
    let closed_tx = Mutex::new(closed_tx);
    let up = Upstream::start(move |ex| {
        sse_head(ex.stream);
        sse_event(ex.stream, "data: one\n\n").unwrap();
        // Wait for the proxy to close this connection: read returns EOF (or
        // an error), never data.
        let t = Instant::now();
        ex.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 16];
        match ex.stream.read(&mut b) {
            Ok(0) => {
                closed_tx.lock().unwrap().send(t.elapsed()).unwrap();
            }
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                closed_tx.lock().unwrap().send(t.elapsed()).unwrap();
            }
            other => panic!("upstream connection stayed open: {other:?}"),
        }
        false
    });
    let state = state_dir();
    let proxy = start_proxy(&api_key_config(state.path(), &up.url(), "x-api-key"));
    let mut r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_eq!(read_chunk(&mut r.reader).unwrap(), b"data: one\n\n");
    drop(r);
    let took = closed_rx
        .recv_timeout(Duration::from_secs(12))
        .expect("the upstream connection was not closed after the client left");
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
}

// ---- refusals ----

fn refusal_setup(cred: &str) -> (Upstream, tempfile::TempDir, std::net::SocketAddr) {
    let up = sse_upstream(ANTHROPIC_EVENTS);
    let state = state_dir();
    let mut cfg = api_key_config(state.path(), &up.url(), "x-api-key");
    if cred == "none" {
        let at = cfg.find("[route.credential]").unwrap();
        cfg.truncate(at);
        cfg.push_str("credential = { kind = \"none\" }\n");
    }
    let proxy = start_proxy(&cfg);
    (up, state, proxy)
}

fn assert_refused(up: &Upstream, r: ClientResponse, status: u16, needle: &str) {
    assert_eq!(r.status, status);
    let t = r.text();
    assert!(t.starts_with("vault-proxy: "), "{t}");
    assert!(t.contains(needle), "{t:?} lacks {needle:?}");
    assert!(!t.contains(PH) && !t.contains(REAL));
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        0,
        "the upstream saw a connection"
    );
}

#[test]
fn connect_is_refused_with_405() {
    let (up, _s, proxy) = refusal_setup("key");
    let r = raw_request(
        proxy,
        format!(
            "CONNECT {}:443 HTTP/1.1\r\nhost: {0}:443\r\nx-api-key: {PH}\r\n\r\n",
            up.addr.ip()
        )
        .as_bytes(),
    );
    assert_refused(&up, r, 405, "CONNECT");
}

#[test]
fn absolute_form_target_is_refused_with_400() {
    let (up, _s, proxy) = refusal_setup("key");
    let r = raw_request(
        proxy,
        format!(
            "GET http://{}/anthropic/v1/models HTTP/1.1\r\nhost: {0}\r\nx-api-key: {PH}\r\n\r\n",
            up.addr
        )
        .as_bytes(),
    );
    assert_refused(&up, r, 400, "absolute-form");
}

#[test]
fn unknown_route_is_404_and_prefix_must_end_at_a_slash() {
    let (up, _s, proxy) = refusal_setup("key");
    let r = request(proxy, "GET", "/openai/v1/models", &[("x-api-key", PH)], b"");
    assert_refused(&up, r, 404, "no route");
    let r = request(
        proxy,
        "GET",
        "/anthropicx/v1/models",
        &[("x-api-key", PH)],
        b"",
    );
    assert_refused(&up, r, 404, "/anthropic");
    let r = request(proxy, "GET", "/anthropic/../x", &[("x-api-key", PH)], b"");
    assert_ne!(r.status, 200);
    assert_eq!(up.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn missing_or_wrong_placeholder_is_401_and_nothing_is_forwarded() {
    let (up, _s, proxy) = refusal_setup("key");
    let r = post_messages(proxy, &[], b"{}");
    assert_refused(&up, r, 401, "placeholder");
    let wrong = format!("{}x", &PH[..PH.len() - 1]);
    for (k, v) in [
        ("x-api-key", wrong.clone()),
        ("authorization", format!("Bearer {wrong}")),
        ("authorization", PH.to_string()),
        ("x-goog-api-key", wrong.clone()),
        ("cookie", PH.to_string()),
    ] {
        let r = post_messages(proxy, &[(k, &v)], b"{}");
        assert_refused(&up, r, 401, "placeholder");
    }
}

#[test]
fn route_without_credential_is_503_and_nothing_is_forwarded() {
    let (up, _s, proxy) = refusal_setup("none");
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_refused(&up, r, 503, "no credential");
}

#[test]
fn websocket_upgrade_is_426() {
    let (up, _s, proxy) = refusal_setup("key");
    let r = request(
        proxy,
        "GET",
        "/anthropic/v1/responses",
        &[
            ("authorization", &format!("Bearer {PH}")),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    );
    assert_refused(&up, r, 426, "SSE");
}

// ---- OAuth ----

struct TokenEndpoint {
    up: Upstream,
    calls: Arc<AtomicUsize>,
}

/// Rotates: refresh-N -> access-(N+1), refresh-(N+1); anything else -> 400 invalid_grant.
fn token_endpoint(delay: Duration) -> TokenEndpoint {
    scripted_token_endpoint(delay, false)
}

/// Like [`token_endpoint`], but a refresh token works once: a second use
/// is `invalid_grant`, as real providers that rotate answer.
fn single_use_token_endpoint(delay: Duration) -> TokenEndpoint {
    scripted_token_endpoint(delay, true)
}

fn scripted_token_endpoint(delay: Duration, single_use: bool) -> TokenEndpoint {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let used = Mutex::new(std::collections::HashSet::<String>::new());
    let up = Upstream::start(move |ex| {
        c.fetch_add(1, Ordering::SeqCst);
        let j = json(&ex.req.body);
        let rt = j["refresh_token"].as_str().unwrap_or("").to_string();
        // The rotation happens here, before the answer is sent: a client
        // that is gone by then has lost the new refresh token.
        let fresh = used.lock().unwrap().insert(rt.clone()) || !single_use;
        std::thread::sleep(delay);
        match rt
            .strip_prefix("refresh-")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(n)
                if fresh && j["grant_type"] == "refresh_token" && j["client_id"] == "client-x" =>
            {
                let b = format!(
                    r#"{{"access_token":"access-{0}","refresh_token":"refresh-{0}","expires_in":3600,"token_type":"Bearer"}}"#,
                    n + 1
                );
                respond(ex.stream, "200 OK", "application/json", b.as_bytes());
            }
            _ => respond(
                ex.stream,
                "400 Bad Request",
                "application/json",
                br#"{"error":"invalid_grant","error_description":"refresh token already used"}"#,
            ),
        }
        true
    });
    TokenEndpoint { up, calls }
}

/// The proxy, started on `up` with the host's login: `access-0`,
/// `refresh-0`, not expiring.
fn start_with_host_login(
    state: &Path,
    up: &Upstream,
    token: &TokenEndpoint,
) -> std::net::SocketAddr {
    start_with_login_expiring(state, up, token, FAR_FUTURE_MS)
}

/// The proxy, started on `up` with a login whose access token expires in
/// a minute (inside the refresh margin: the first request refreshes).
fn start_expiring_soon(state: &Path, up: &Upstream, token: &TokenEndpoint) -> std::net::SocketAddr {
    start_with_login_expiring(state, up, token, vault_proxy::oauth::now_ms() + 60_000)
}

/// The proxy on `up` with the login `access-0`, `refresh-0`, expiring at `at_ms`.
fn start_with_login_expiring(
    state: &Path,
    up: &Upstream,
    token: &TokenEndpoint,
    at_ms: u64,
) -> std::net::SocketAddr {
    start_proxy(&oauth_config(
        state,
        &up.url(),
        &token.up.url(),
        "access-0",
        "refresh-0",
        at_ms,
    ))
}

/// A provider that accepts `valid` bearer tokens and answers 401 to others;
/// on each accepted request it records what the state file held at that moment.
fn oauth_upstream(
    valid: &'static [&'static str],
    state_file: std::path::PathBuf,
) -> (Upstream, Arc<Mutex<Vec<String>>>) {
    let seen_on_disk = Arc::new(Mutex::new(Vec::new()));
    let s = seen_on_disk.clone();
    let up = Upstream::start(move |ex| {
        let auth = ex.req.header("authorization").unwrap_or("").to_string();
        let ok = valid.iter().any(|v| auth == format!("Bearer {v}"));
        if ok {
            s.lock()
                .unwrap()
                .push(std::fs::read_to_string(&state_file).unwrap_or_default());
            respond(ex.stream, "200 OK", "application/json", &ex.req.body);
        } else {
            respond(
                ex.stream,
                "401 Unauthorized",
                "application/json",
                br#"{"type":"error","error":{"type":"authentication_error"}}"#,
            );
        }
        true
    });
    (up, seen_on_disk)
}

#[test]
fn oauth_401_refreshes_once_for_concurrent_requests_stores_the_rotation_first_then_retries() {
    let state = state_dir();
    let state_file = state.path().join("claude.json");
    let token = token_endpoint(Duration::from_millis(300));
    let (up, seen_on_disk) = oauth_upstream(&["access-1"], state_file.clone());
    let proxy = start_with_host_login(state.path(), &up, &token);
    const N: usize = 8;
    let handles: Vec<_> = (0..N)
        .map(|i| {
            std::thread::spawn(move || {
                let body = format!(r#"{{"n":{i}}}"#);
                let r = post_messages(
                    proxy,
                    &[("authorization", &format!("Bearer {PH}"))],
                    body.as_bytes(),
                );
                (r.status, r.body(), body)
            })
        })
        .collect();
    for h in handles {
        let (status, got, sent) = h.join().unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
        assert_eq!(
            got,
            sent.as_bytes(),
            "the retried request carried the same body"
        );
    }
    assert_eq!(token.calls.load(Ordering::SeqCst), 1, "exactly one refresh");
    let treq = &token.up.received()[0];
    assert_eq!(treq.method, "POST");
    assert_eq!(treq.target, "/v1/oauth/token");
    assert_eq!(treq.header("content-type"), Some("application/json"));
    let tj = json(&treq.body);
    assert_eq!(tj["grant_type"], "refresh_token");
    assert_eq!(tj["refresh_token"], "refresh-0");
    assert_eq!(tj["client_id"], "client-x");
    // Every request that reached the provider with the new token found the
    // rotated refresh token already on disk.
    let disk = seen_on_disk.lock().unwrap().clone();
    assert_eq!(disk.len(), N);
    for d in &disk {
        let j = json(d.as_bytes());
        assert_eq!(j["refresh_token"], "refresh-1");
        assert_eq!(j["access_token"], "access-1");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&state_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    for r in up.received() {
        assert!(!r.raw_head.contains("PLACEHOLDER"));
    }
}

#[test]
fn oauth_token_expiring_within_5_minutes_is_refreshed_before_the_request() {
    let state = state_dir();
    let token = token_endpoint(Duration::ZERO);
    let (up, _) = oauth_upstream(&["access-1"], state.path().join("claude.json"));
    let proxy = start_expiring_soon(state.path(), &up, &token);
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
    let got = up.received();
    assert_eq!(got.len(), 1, "the stale token was never sent");
    assert_eq!(got[0].header("authorization"), Some("Bearer access-1"));
}

#[test]
fn oauth_refresh_failure_is_502_naming_the_cause_and_the_fix() {
    let state = state_dir();
    let token = token_endpoint(Duration::ZERO);
    let (up, _) = oauth_upstream(&["never"], state.path().join("claude.json"));
    let proxy = start_proxy(&oauth_config(
        state.path(),
        &up.url(),
        &token.up.url(),
        "access-0",
        "dead-refresh",
        FAR_FUTURE_MS,
    ));
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_eq!(r.status, 502);
    let t = r.text();
    assert!(
        t.contains("400") && t.contains("invalid_grant") && t.contains("log in again"),
        "{t}"
    );
    assert!(!t.contains("dead-refresh"));
}

#[test]
fn restart_with_the_old_seed_uses_the_stored_rotation_and_a_new_seed_wins() {
    let state = state_dir();
    let state_file = state.path().join("claude.json");
    let token = token_endpoint(Duration::ZERO);
    let (up, _) = oauth_upstream(&["access-1", "access-new"], state_file.clone());
    // First run: 401 on the seed's token, refresh, rotation stored.
    let p1 = start_with_host_login(state.path(), &up, &token);
    assert_eq!(post_messages(p1, &[("x-api-key", PH)], b"{}").status, 200);
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
    // Restart with the same (old) seed: the stored rotation is used, no refresh,
    // and the dead seed token is never sent again.
    let n_before = up.received().len();
    let p2 = start_with_host_login(state.path(), &up, &token);
    assert_eq!(post_messages(p2, &[("x-api-key", PH)], b"{}").status, 200);
    let after = &up.received()[n_before..];
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].header("authorization"), Some("Bearer access-1"));
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
    // Restart with a newer host login: the new seed wins.
    let n_before = up.received().len();
    let p3 = start_proxy(&oauth_config(
        state.path(),
        &up.url(),
        &token.up.url(),
        "access-new",
        "refresh-100",
        FAR_FUTURE_MS,
    ));
    assert_eq!(post_messages(p3, &[("x-api-key", PH)], b"{}").status, 200);
    let after = &up.received()[n_before..];
    assert_eq!(after[0].header("authorization"), Some("Bearer access-new"));
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
}

/// `oauth_config` without a login: the harness's file held only a placeholder.
fn oauth_config_without_login(state: &Path, upstream: &str, token: &TokenEndpoint) -> String {
    let cfg = oauth_config(state, upstream, &token.up.url(), "x", "y", 1);
    let cut: Vec<&str> = cfg
        .lines()
        .filter(|l| {
            !l.starts_with("access =")
                && !l.starts_with("refresh =")
                && !l.starts_with("expires_at_ms =")
        })
        .collect();
    assert_eq!(cut.len() + 3, cfg.lines().count());
    cut.join("\n")
}

fn post_anthropic(proxy: std::net::SocketAddr) -> ClientResponse {
    post_messages(proxy, &[("authorization", &format!("Bearer {PH}"))], b"{}")
}

#[test]
fn without_a_login_the_stored_session_is_resumed_and_the_old_login_never_rolls_it_back() {
    let state = state_dir();
    let state_file = state.path().join("claude.json");
    let token = token_endpoint(Duration::ZERO);
    let (up, _) = oauth_upstream(&["access-1"], state_file.clone());
    // First start, with the host's login: a 401, one refresh, rotation stored.
    let p1 = start_with_host_login(state.path(), &up, &token);
    assert_eq!(post_anthropic(p1).status, 200);
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
    // Next start: the harness's file holds only a placeholder and no seed has
    // a login. The stored session serves, without a refresh.
    let n = up.received().len();
    let p2 = start_proxy(&oauth_config_without_login(state.path(), &up.url(), &token));
    let r = post_anthropic(p2);
    assert_status(r, 200);
    let after = &up.received()[n..];
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].header("authorization"), Some("Bearer access-1"));
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
    // The resumed session keeps its lineage: the host's old login seen again
    // is recognised as spent, the rotated session stays.
    let p3 = start_with_host_login(state.path(), &up, &token);
    let n = up.received().len();
    assert_eq!(post_anthropic(p3).status, 200);
    assert_eq!(
        up.received()[n].header("authorization"),
        Some("Bearer access-1")
    );
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
    // No stored session and no login: 503 naming the fix, nothing forwarded.
    std::fs::remove_file(&state_file).unwrap();
    let n = up.received().len();
    let p4 = start_proxy(&oauth_config_without_login(state.path(), &up.url(), &token));
    let r = post_anthropic(p4);
    assert_eq!(r.status, 503);
    let t = r.text();
    assert!(
        t.contains("no stored session") && t.contains("log in on the host"),
        "{t}"
    );
    assert_eq!(
        up.received().len(),
        n,
        "a route without a session forwarded"
    );
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_new_login_is_stored_at_start_so_the_next_start_without_one_resumes_it() {
    let state = state_dir();
    let state_file = state.path().join("claude.json");
    let token = token_endpoint(Duration::ZERO);
    let (up, _) = oauth_upstream(&["access-0"], state_file.clone());
    let p1 = start_with_host_login(state.path(), &up, &token);
    // Stored at start (served before the first request), no refresh needed.
    assert_eq!(post_anthropic(p1).status, 200);
    let j = json(&std::fs::read(&state_file).unwrap());
    assert_eq!(j["access_token"], "access-0");
    assert_eq!(j["refresh_token"], "refresh-0");
    let p2 = start_proxy(&oauth_config_without_login(state.path(), &up.url(), &token));
    assert_eq!(post_anthropic(p2).status, 200);
    assert_eq!(
        up.received()[1].header("authorization"),
        Some("Bearer access-0")
    );
    assert_eq!(token.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn config_refuses_half_a_login() {
    let token = token_endpoint(Duration::ZERO);
    let cfg = oauth_config(
        Path::new("/tmp/x"),
        "http://127.0.0.1:9",
        &token.up.url(),
        "a",
        "r",
        1,
    );
    let e = config_error(&cfg.replace("refresh = \"r\"\n", ""));
    assert!(e.contains("go together"), "{e}");
}

const PH_TOKEN: &str = "sk-ant-oat01-av-PLACEHOLDER-fedcba9876543210";
const REAL_TOKEN: &str = "sk-ant-oat01-REAL-SECRET-TOKEN";

/// Two routes on one prefix: an API key (x-api-key) and a token (bearer).
fn group_config(state: &Path, upstream: &str, second_upstream: &str) -> String {
    format!(
        r#"{}
[[route]]
name = "claude-token"
prefix = "/anthropic"
upstream = "{second_upstream}"
placeholder = "{PH_TOKEN}"
[route.credential]
kind = "api-key"
header = "authorization"
key = "{REAL_TOKEN}"
"#,
        api_key_config(state, upstream, "x-api-key")
    )
}

#[test]
fn routes_sharing_a_prefix_are_picked_by_the_placeholder_the_request_carries() {
    let up = Upstream::start(|ex| {
        respond(ex.stream, "200 OK", "application/json", b"{}");
        true
    });
    let state = state_dir();
    let proxy = start_proxy(&group_config(state.path(), &up.url(), &up.url()));
    let bearer = |p: &str| format!("Bearer {p}");
    // Each placeholder, in the header the harness puts it in.
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_status(r, 200);
    let r = post_messages(proxy, &[("authorization", &bearer(PH_TOKEN))], b"{}");
    assert_status(r, 200);
    // Neither placeholder (a guess, or the real key itself): 401, not forwarded.
    for h in [
        ("x-api-key", "guess".to_string()),
        ("authorization", bearer(REAL_TOKEN)),
    ] {
        let r = post_messages(proxy, &[(h.0, &h.1)], b"{}");
        assert_eq!(r.status, 401, "{h:?}");
        let t = r.text();
        assert!(t.contains("anthropic, claude-token"), "{t}");
    }
    let got = up.received();
    assert_eq!(got.len(), 2, "only the two requests with a placeholder");
    assert_eq!(got[0].header("x-api-key"), Some(REAL));
    assert_eq!(got[0].header("authorization"), None);
    assert_eq!(
        got[1].header("authorization"),
        Some(format!("Bearer {REAL_TOKEN}").as_str())
    );
    assert_eq!(got[1].header("x-api-key"), None);
    for r in &got {
        assert!(!r.raw_head.contains("PLACEHOLDER"), "{}", r.raw_head);
    }
}

#[test]
fn routes_sharing_a_prefix_must_share_the_upstream_and_not_a_placeholder() {
    let e = config_error(&group_config(
        Path::new("/tmp/x"),
        "https://api.anthropic.com",
        "https://gateway.example.com",
    ));
    assert!(
        e.contains("shares prefix") && e.contains("claude-token"),
        "{e}"
    );
    let same = group_config(
        Path::new("/tmp/x"),
        "https://api.anthropic.com",
        "https://api.anthropic.com",
    )
    .replace(PH_TOKEN, PH);
    let e = config_error(&same);
    assert!(e.contains("same placeholder"), "{e}");
}

// ---- config refusals ----

fn config_error(toml: &str) -> String {
    match vault_proxy::config::ProxyConfig::from_toml(toml).and_then(|c| c.validate()) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_refuses_a_non_loopback_listen_address() {
    let cfg = api_key_config(
        Path::new("/tmp/x"),
        "https://api.anthropic.com",
        "x-api-key",
    );
    for addr in ["0.0.0.0:8080", "10.1.2.3:80", "[::]:80"] {
        let e = config_error(&cfg.replace("127.0.0.1:0", addr));
        assert!(
            e.contains("loopback") && e.contains("Fix: listen = \"127.0.0.1:PORT\""),
            "{e}"
        );
    }
}

#[test]
fn config_refuses_plain_http_to_a_non_loopback_upstream() {
    let cfg = api_key_config(Path::new("/tmp/x"), "http://api.anthropic.com", "x-api-key");
    let e = config_error(&cfg);
    assert!(e.contains("upstream") && e.contains("https://"), "{e}");
    let cfg = api_key_config(Path::new("/tmp/x"), "ftp://127.0.0.1", "x-api-key");
    assert!(config_error(&cfg).contains("scheme"));
}

#[test]
fn config_refuses_unknown_keys_at_every_level() {
    let base = api_key_config(
        Path::new("/tmp/x"),
        "https://api.anthropic.com",
        "x-api-key",
    );
    for (from, to, key) in [
        ("state_dir =", "listn = 1\nstate_dir =", "listn"),
        ("prefix =", "prefixx = 1\nprefix =", "prefixx"),
        ("header =", "headr = 1\nheader =", "headr"),
    ] {
        let e = config_error(&base.replacen(from, to, 1));
        assert!(e.contains(key), "{e}");
    }
}

#[test]
fn request_body_streams_upstream_before_the_client_finishes_sending() {
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = listener.local_addr().unwrap();
    let (first_tx, first_rx) = mpsc::channel::<Vec<u8>>();
    let (rest_tx, rest_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let (_, headers) = read_head(&mut r).unwrap();
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
        );
        first_tx.send(read_chunk(&mut r).unwrap()).unwrap();
        let mut rest = Vec::new();
        while let Some(c) = read_chunk(&mut r) {
            rest.extend(c);
        }
        rest_tx.send(rest).unwrap();
        respond(&mut s, "200 OK", "text/plain", b"got it");
    });
    let state = state_dir();
    let proxy = start_proxy(&api_key_config(
        state.path(),
        &format!("http://{up_addr}"),
        "x-api-key",
    ));
    let mut c = std::net::TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        c,
        "POST /anthropic/v1/files HTTP/1.1\r\nhost: x\r\nx-api-key: {PH}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n"
    )
    .unwrap();
    // The upstream gets the first piece while the client still holds the rest.
    let first = first_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the proxy held the request body back");
    assert_eq!(first, b"first");
    c.write_all(b"6\r\n-rest-\r\n0\r\n\r\n").unwrap();
    assert_eq!(
        rest_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        b"-rest-"
    );
    let mut r = BufReader::new(c);
    let (status, headers) = read_head(&mut r).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(read_body(&mut r, &headers), b"got it");
}

#[test]
fn client_disconnect_before_the_response_head_closes_the_upstream_connection() {
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let closed_tx = Mutex::new(closed_tx);
    let up = Upstream::start(move |ex| {
        // Never answer; wait for the proxy to give up on this connection.
        ex.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 16];
        match ex.stream.read(&mut b) {
            Ok(0) => closed_tx.lock().unwrap().send(()).unwrap(),
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                closed_tx.lock().unwrap().send(()).unwrap()
            }
            other => panic!("upstream connection stayed open: {other:?}"),
        }
        false
    });
    let state = state_dir();
    let proxy = start_proxy(&api_key_config(state.path(), &up.url(), "x-api-key"));
    let mut c = std::net::TcpStream::connect(proxy).unwrap();
    use std::io::Write;
    write!(
        c,
        "POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {PH}\r\ncontent-length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    let t = Instant::now();
    while up.received().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "request never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(c);
    closed_rx
        .recv_timeout(Duration::from_secs(12))
        .expect("the upstream request was not cancelled");
}

#[test]
fn a_client_gone_during_the_oauth_refresh_does_not_lose_the_rotated_token() {
    let state = state_dir();
    let token = single_use_token_endpoint(Duration::from_millis(1500));
    let (up, _) = oauth_upstream(&["access-1"], state.path().join("claude.json"));
    let proxy = start_expiring_soon(state.path(), &up, &token);
    // A request that needs the refresh; its client hangs up after 300 ms,
    // while the token endpoint is rotating (Esc in the harness, or a tool
    // that connects and leaves on purpose).
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(proxy).unwrap();
        let body = b"{}";
        write!(
            s,
            "POST /anthropic/v1/messages HTTP/1.1\r\nhost: {proxy}\r\nx-api-key: {PH}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    // The refresh finishes without its client: the next request uses the
    // rotated token, with no second refresh (which would be refused).
    std::thread::sleep(Duration::from_millis(2000));
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    let status = r.status;
    assert_eq!(status, 200, "{}", r.text());
    assert_eq!(token.calls.load(Ordering::SeqCst), 1, "one refresh");
    let got = up.received();
    assert_eq!(
        got.last().unwrap().header("authorization"),
        Some("Bearer access-1")
    );
    let stored = json(&std::fs::read(state.path().join("claude.json")).unwrap());
    assert_eq!(stored["refresh_token"], "refresh-1");
}

#[test]
fn an_oauth_login_is_not_forwarded_to_an_endpoint_that_would_mint_an_api_key() {
    let state = state_dir();
    let token = token_endpoint(Duration::ZERO);
    let (up, _) = oauth_upstream(&["access-0"], state.path().join("claude.json"));
    let proxy = start_with_host_login(state.path(), &up, &token);
    // A model makes the harness (or a tool) call the provider's account API
    // with the placeholder: with the real login injected, the answer would
    // carry a new, durable API key.
    for target in [
        "/anthropic/api/oauth/claude_cli/create_api_key",
        "/anthropic/v1/%2e%2e/api/oauth/claude_cli/create_api_key",
        "/anthropic/v1%2f..%2fapi/oauth/claude_cli/create_api_key",
        "/anthropic/v1/messages;/../../api/oauth/claude_cli/create_api_key",
    ] {
        let r = request(proxy, "POST", target, &[("x-api-key", PH)], b"{}");
        let status = r.status;
        let text = r.text();
        // 403 (not one of the login's paths), or 400 for a dot segment.
        assert!(status == 403 || status == 400, "{target}: {status} {text}");
        if !target.contains('%') && !target.contains(';') {
            assert!(text.contains("oauth.paths"), "{target}: {text}");
        }
    }
    assert!(
        up.received().is_empty(),
        "forwarded: {:?}",
        up.received().len()
    );
    assert_eq!(token.calls.load(Ordering::SeqCst), 0);
    // The inference API still works.
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(up.received().len(), 1);
}

#[test]
fn a_config_that_does_not_parse_names_the_line_but_never_shows_it() {
    // The sidecar's config file holds the real key: a typo next to it must
    // not put the key in the container log.
    let state = state_dir();
    let toml = api_key_config(state.path(), "http://127.0.0.1:9", "x-api-key").replace(
        &format!("key = \"{REAL}\""),
        &format!("key = \"{REAL}\" oops"),
    );
    assert!(toml.contains("oops"), "{toml}");
    let e = config_error(&toml);
    assert!(!e.contains(REAL) && !e.contains("oops"), "{e}");
    let line = toml.lines().position(|l| l.contains("oops")).unwrap() + 1;
    assert!(e.contains(&format!("line {line}, column")), "{e}");
}

#[test]
fn many_large_oauth_bodies_at_once_stream_past_the_buffer_budget() {
    use std::io::{BufReader, Write};
    // The upstream reports each request head it sees.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = listener.local_addr().unwrap();
    let (head_tx, head_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let tx = head_tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                if let Some((first, _)) = read_head(&mut r) {
                    let _ = tx.send(first);
                }
                // Hold the connection until the proxy drops it.
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            });
        }
    });
    let state = state_dir();
    let token = token_endpoint(Duration::ZERO);
    let proxy = start_proxy(&oauth_config(
        state.path(),
        &format!("http://{up_addr}"),
        &token.up.url(),
        "access-0",
        "refresh-0",
        FAR_FUTURE_MS,
    ));
    // Clients that each send most of a body at the replay limit and never
    // finish (any process of the harness uid can): past the budget, the
    // proxy must stream instead of buffering more.
    let limit = vault_proxy::body::REPLAY_LIMIT;
    let chunk = vec![b'x'; limit - (1 << 20)];
    let mut clients = Vec::new();
    let n = vault_proxy::body::BUFFER_BUDGET / limit + 1;
    for _ in 0..n {
        let mut c = std::net::TcpStream::connect(proxy).unwrap();
        write!(
            c,
            "POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {PH}\r\ncontent-length: {limit}\r\n\r\n"
        )
        .unwrap();
        c.write_all(&chunk).unwrap();
        clients.push(c);
    }
    let head = head_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("every body was held in memory: nothing reached the upstream");
    assert!(head.starts_with("POST /v1/messages"), "{head}");
    drop(clients);
}
