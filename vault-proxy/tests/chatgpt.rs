//! A ChatGPT login (Codex, Pi's `openai-codex`) through vault-proxy: the
//! harness holds a JWT-shaped placeholder, the scripted ChatGPT backend on
//! 127.0.0.1 accepts only the real access token and streams SSE, and the
//! scripted token endpoint rotates refresh tokens and answers the way
//! OpenAI's does for Codex (`id_token`, `access_token`, `refresh_token`, no
//! `expires_in`).

#![cfg(feature = "server")]

mod support;

use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use support::*;
use vault_proxy::jwt;

const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
const ACCOUNT: &str = "acct-0b8c";

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The access tokens' `exp` (2096): the same token string every time it is built.
const ACCESS_EXP_S: u64 = 4_000_000_000;

/// The real tokens of login generation `n`: JWTs with the ChatGPT claims.
fn access_token(n: u32) -> String {
    jwt::encode(
        &json!({
            "sub": format!("access-{n}"),
            "exp": ACCESS_EXP_S,
            "https://api.openai.com/auth": {"chatgpt_account_id": ACCOUNT, "chatgpt_plan_type": "pro"},
            "scp": ["openid", "model.request"],
        }),
        &format!("REALSIG{n}"),
    )
}

fn id_token(n: u32) -> String {
    jwt::encode(
        &json!({"email": "dev@example.com", "https://api.openai.com/auth": {"chatgpt_account_id": ACCOUNT}, "n": n}),
        &format!("IDSIG{n}"),
    )
}

/// Rotates: `refresh-N` → generation N+1; anything else → 401 `refresh_token_reused`.
fn token_endpoint() -> (Upstream, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let up = Upstream::start(move |ex| {
        c.fetch_add(1, Ordering::SeqCst);
        let j = json(&ex.req.body);
        let n = j["refresh_token"]
            .as_str()
            .and_then(|r| r.strip_prefix("refresh-"))
            .and_then(|n| n.parse::<u32>().ok());
        match n {
            Some(n) if j["grant_type"] == "refresh_token" && j["client_id"] == CLIENT_ID => {
                let b = json!({
                    "id_token": id_token(n + 1),
                    "access_token": access_token(n + 1),
                    "refresh_token": format!("refresh-{}", n + 1),
                });
                respond(
                    ex.stream,
                    "200 OK",
                    "application/json",
                    b.to_string().as_bytes(),
                );
            }
            _ => respond(
                ex.stream,
                "401 Unauthorized",
                "application/json",
                br#"{"error":{"code":"refresh_token_reused"}}"#,
            ),
        }
        true
    });
    (up, calls)
}

const EVENTS: &[&str] = &[
    "event: response.created\ndata: {\"type\":\"response.created\"}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n",
];

/// `chatgpt.com/backend-api` on 127.0.0.1: SSE for `valid` bearer tokens, 401 otherwise.
fn chatgpt_backend(valid: Arc<Mutex<Vec<String>>>) -> Upstream {
    Upstream::start(move |ex| {
        let auth = ex.req.header("authorization").unwrap_or("").to_string();
        if valid
            .lock()
            .unwrap()
            .iter()
            .any(|v| auth == format!("Bearer {v}"))
        {
            sse_head(ex.stream);
            for e in EVENTS {
                sse_event(ex.stream, e).unwrap();
            }
            sse_end(ex.stream);
        } else {
            respond(
                ex.stream,
                "401 Unauthorized",
                "application/json",
                br#"{"detail":"Unauthorized"}"#,
            );
        }
        true
    })
}

#[test]
fn chatgpt_login_refreshes_on_401_streams_sse_and_never_forwards_the_jwt_placeholder() {
    let (token, calls) = token_endpoint();
    let valid = Arc::new(Mutex::new(vec![access_token(1)]));
    let backend = chatgpt_backend(valid.clone());
    let state = state_dir();
    // The harness's placeholder: the real access token's account claims, the
    // capability in the signature segment.
    let seed_access = access_token(0);
    let capability = format!("av-{}", "5e".repeat(32));
    let placeholder = jwt::placeholder(
        &jwt::claims(&seed_access).unwrap(),
        now_s(),
        4_102_444_800,
        &capability,
    )
    .unwrap();
    let config = format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "{state}"

[[route]]
name = "codex-chatgpt"
prefix = "/codex-chatgpt"
upstream = "{backend}/backend-api/codex"
placeholder = "{placeholder}"
[route.credential]
kind = "oauth"
access = "{seed_access}"
refresh = "refresh-0"
expires_at_ms = {expires}
token_url = "{token}/oauth/token"
client_id = "{CLIENT_ID}"
paths = ["/responses"]
"#,
        state = state.path().display(),
        backend = backend.url(),
        token = token.url(),
        expires = jwt::expiry_ms(&seed_access).unwrap(),
    );
    let proxy = start_proxy(&config);
    let codex_request = |auth: &str| {
        request(
            proxy,
            "POST",
            "/codex-chatgpt/responses",
            &[
                ("authorization", auth),
                ("chatgpt-account-id", ACCOUNT),
                ("originator", "codex_cli_rs"),
                ("accept", "text/event-stream"),
            ],
            br#"{"model":"gpt-5-codex","stream":true,"input":[]}"#,
        )
    };

    // The seed's access token is not accepted any more (the backend knows
    // only generation 1): one refresh, stored, then the retry streams.
    let r = codex_request(&format!("Bearer {placeholder}"));
    assert_eq!(r.status, 200);
    let text = r.text();
    for e in EVENTS {
        assert!(text.contains(e), "{text}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let t = &token.received()[0];
    assert_eq!(t.target, "/oauth/token");
    assert_eq!(t.header("content-type"), Some("application/json"));
    let tj = json(&t.body);
    assert_eq!(
        (&tj["grant_type"], &tj["refresh_token"], &tj["client_id"]),
        (
            &json!("refresh_token"),
            &json!("refresh-0"),
            &json!(CLIENT_ID)
        )
    );
    // The rotated session is on disk, its expiry the new access token's JWT
    // `exp` (the answer had no expires_in).
    let stored = json(&std::fs::read(state.path().join("codex-chatgpt.json")).unwrap());
    assert_eq!(stored["refresh_token"], "refresh-1");
    assert_eq!(
        stored["expires_at_ms"].as_u64(),
        jwt::expiry_ms(stored["access_token"].as_str().unwrap())
    );
    assert_eq!(stored["expires_at_ms"], ACCESS_EXP_S * 1000);

    // A second request uses the stored token: no refresh.
    let r = codex_request(&format!("Bearer {placeholder}"));
    assert_eq!(r.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A JWT carrying the same claims but another signature is not the capability.
    let forged = jwt::placeholder(
        &jwt::claims(&seed_access).unwrap(),
        now_s(),
        4_102_444_800,
        &format!("av-{}", "00".repeat(32)),
    )
    .unwrap();
    let before = backend.received().len();
    assert_eq!(codex_request(&format!("Bearer {forged}")).status, 401);
    assert_eq!(
        backend.received().len(),
        before,
        "a forged JWT was forwarded"
    );

    let got = backend.received();
    assert_eq!(got.len(), 3, "401 with the seed token, then two accepted");
    for r in &got {
        assert_eq!(r.target, "/backend-api/codex/responses");
        assert_eq!(r.header("chatgpt-account-id"), Some(ACCOUNT));
        assert_eq!(r.header("originator"), Some("codex_cli_rs"));
        assert!(
            !r.raw_head.contains(&capability) && !r.raw_head.contains("av-"),
            "the placeholder reached the backend: {}",
            r.raw_head
        );
    }
    assert_eq!(
        got[2].header("authorization"),
        Some(format!("Bearer {}", stored["access_token"].as_str().unwrap()).as_str())
    );
}
