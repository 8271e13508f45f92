//! OAuth sessions owned by the proxy: refresh before expiry or after an
//! upstream 401, one refresh at a time per route, rotated tokens stored
//! durably before they are used.
//!
//! Why the proxy owns refresh: the harness holds only a placeholder whose
//! expiry lies far in the future, so it never refreshes; refresh tokens
//! rotate and are single-use, so exactly one party may refresh. After the
//! first rotation the proxy's copy (`STATE_DIR/<route>.json`) owns the
//! session and the host's copy of the refresh token is dead.
//!
//! Single flight: the session's tokens sit behind one async mutex, held for
//! the whole refresh. Requests that arrive meanwhile wait on the mutex and
//! then see the new token; a request that got a 401 refreshes only if the
//! token it used is still the current one (otherwise someone else already
//! refreshed and it just retries with the new one).

use crate::body::{self, ProxyBody};
use crate::config::{OauthLogin, OauthSeed, Secret};
use crate::log::info;
use crate::state::{StateError, StateStore, StoredSession, seed_sha256};
use crate::upstream::{UpstreamClient, error_chain};
use http_body_util::{BodyExt, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// Refresh this long before the access token expires.
pub const REFRESH_MARGIN_MS: u64 = 5 * 60 * 1000;
/// The expiry assumed when the token endpoint gives no `expires_in`.
pub const DEFAULT_EXPIRES_IN_S: u64 = 3600;
/// The largest token-endpoint answer read.
const TOKEN_RESPONSE_LIMIT: usize = 1 << 20;
/// How long one refresh may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The tokens in use.
#[derive(Clone)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Secret,
    pub expires_at_ms: u64,
}

/// Which copy a start took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// No stored session, or one from another login: the config's login.
    Seed,
    /// A stored session rotated from this same login.
    Stored,
    /// The config has no login (the harness's file held only a placeholder):
    /// the stored session, whatever login it descends from.
    Resumed,
}

/// The session a start serves with, and the login it descends from.
pub struct Merged {
    pub tokens: Tokens,
    pub origin: Origin,
    /// Hex SHA-256 of the refresh token of the login the session descends
    /// from (kept across rotations and resumed starts).
    pub seed_sha256: String,
}

/// Merge the config's login with the stored session.
///
/// The stored session wins when it descends from this same login (its
/// `seed_sha256` matches): the login's refresh token was used up by the
/// rotation, so rolling back to it would end the session. A different login
/// is a newer login on the host: take it. No login: resume the stored
/// session, keeping its lineage, so that the host's old login seen again
/// later still does not roll it back. No login and nothing stored: `None`.
pub fn merge_seed(login: Option<&OauthLogin>, stored: Option<StoredSession>) -> Option<Merged> {
    let from_stored = |s: StoredSession, origin| Merged {
        tokens: Tokens {
            access: s.access_token,
            refresh: s.refresh_token,
            expires_at_ms: s.expires_at_ms,
        },
        origin,
        seed_sha256: s.seed_sha256,
    };
    let Some(login) = login else {
        return stored.map(|s| from_stored(s, Origin::Resumed));
    };
    let hash = seed_sha256(login.refresh.expose());
    match stored {
        Some(s) if s.seed_sha256 == hash => Some(from_stored(s, Origin::Stored)),
        _ => Some(Merged {
            tokens: Tokens {
                access: login.access.clone(),
                refresh: login.refresh.clone(),
                expires_at_ms: login.expires_at_ms,
            },
            origin: Origin::Seed,
            seed_sha256: hash,
        }),
    }
}

/// When a refreshed access token expires: `expires_in` when the endpoint
/// gives it (Anthropic), else the token's own JWT `exp` (OpenAI's endpoint
/// answers Codex's refresh with `id_token`, `access_token`, `refresh_token`
/// only: openai/codex `codex-rs/login/src/auth/manager.rs`, `RefreshResponse`),
/// else [`DEFAULT_EXPIRES_IN_S`].
fn expiry_of(fresh: &TokenResponse, now_ms: u64) -> u64 {
    match fresh.expires_in {
        Some(s) => now_ms.saturating_add(s.saturating_mul(1000)),
        None => crate::jwt::expiry_ms(&fresh.access_token)
            .unwrap_or_else(|| now_ms.saturating_add(DEFAULT_EXPIRES_IN_S * 1000)),
    }
}

/// A refresh failed.
#[derive(Debug)]
pub enum RefreshError {
    Request(String),
    Status {
        status: StatusCode,
        error: Option<String>,
    },
    Body(String),
    Parse(String),
    Timeout,
    /// The refresh task did not finish (the runtime is shutting down).
    Task(String),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::Request(e) => write!(f, "OAuth refresh: token endpoint: {e}"),
            RefreshError::Status { status, error } => {
                write!(f, "OAuth refresh: token endpoint answered {status}")?;
                if let Some(e) = error {
                    write!(f, " ({e})")?;
                }
                write!(
                    f,
                    ". Fix: log in again on the host and restart the container"
                )
            }
            RefreshError::Body(e) => write!(f, "OAuth refresh: reading the answer: {e}"),
            RefreshError::Parse(e) => {
                write!(f, "OAuth refresh: the answer is not a token response: {e}")
            }
            RefreshError::Timeout => write!(
                f,
                "OAuth refresh: no answer from the token endpoint in {}s",
                REFRESH_TIMEOUT.as_secs()
            ),
            RefreshError::Task(e) => write!(f, "OAuth refresh: the refresh task ended early: {e}"),
        }
    }
}

impl std::error::Error for RefreshError {}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
}

/// One route's OAuth session.
pub struct OauthSession {
    route: String,
    token_uri: Uri,
    token_host: HeaderValue,
    client_id: String,
    seed_sha256: String,
    store: StateStore,
    client: UpstreamClient,
    tokens: Mutex<Tokens>,
    paths: Vec<String>,
}

impl OauthSession {
    /// Load the stored session and merge it with the config's login;
    /// `None` when there is neither. A session taken from a new login is
    /// stored at once, so that a later start whose harness file holds only
    /// a placeholder (and no seed) resumes it.
    pub fn start(
        route: &str,
        seed: &OauthSeed,
        store: StateStore,
        client: UpstreamClient,
    ) -> Result<Option<(OauthSession, Origin)>, StateError> {
        let Some(merged) = merge_seed(seed.login.as_ref(), store.load(route)?) else {
            return Ok(None);
        };
        let token_uri: Uri = format!("{}{}", seed.token_url.origin(), seed.token_path)
            .parse()
            .expect("validated token URL");
        let token_host =
            HeaderValue::from_str(&seed.token_url.authority).expect("validated authority");
        let first = merged.tokens.clone();
        let session = OauthSession {
            route: route.to_string(),
            token_uri,
            token_host,
            client_id: seed.client_id.clone(),
            seed_sha256: merged.seed_sha256,
            store,
            client,
            tokens: Mutex::new(merged.tokens),
            paths: seed.paths.clone(),
        };
        if merged.origin == Origin::Seed {
            session.store_tokens(&first, "taken from a new login");
        }
        Ok(Some((session, merged.origin)))
    }

    /// Write the session to `STATE_DIR/<route>.json` (durably); a failure is
    /// logged, and the session stays in memory until a restart.
    fn store_tokens(&self, t: &Tokens, what: &str) {
        let record = StoredSession {
            seed_sha256: self.seed_sha256.clone(),
            access_token: t.access.clone(),
            refresh_token: t.refresh.clone(),
            expires_at_ms: t.expires_at_ms,
        };
        match self.store.save(&self.route, &record) {
            Ok(()) => info!(
                "route {}: OAuth session {what}; stored in {}",
                self.route,
                self.store.path(&self.route).display()
            ),
            Err(e) => info!(
                "route {}: OAuth session {what} but NOT stored ({}); it is lost on restart",
                self.route,
                error_chain(&e)
            ),
        }
    }

    /// This login is used for a request to `rest` (the path after the
    /// route's prefix): a plain path (`policy_core::proxy_path`: nothing an
    /// upstream could decode or normalize into another path) that starts
    /// with one of the route's paths. Everything else (an endpoint that
    /// would mint an API key from the login, say) is refused before the
    /// token is touched.
    pub fn forwards(&self, rest: &str) -> bool {
        policy_core::proxy_path::is_plain_path(rest)
            && self.paths.iter().any(|p| rest.starts_with(p.as_str()))
    }

    /// The paths this login is used for, for a refusal's message.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The access token for a new request, refreshed first when it expires
    /// within [`REFRESH_MARGIN_MS`].
    pub async fn access_token(self: &Arc<Self>) -> Result<Secret, RefreshError> {
        {
            let t = self.tokens.lock().await;
            if now_ms().saturating_add(REFRESH_MARGIN_MS) < t.expires_at_ms {
                return Ok(t.access.clone());
            }
        }
        self.refresh_detached(None).await
    }

    /// After the upstream refused `rejected` with 401: refresh, unless another
    /// request already did, and return the token to retry with.
    pub async fn access_token_after_401(
        self: &Arc<Self>,
        rejected: &Secret,
    ) -> Result<Secret, RefreshError> {
        self.refresh_detached(Some(rejected.clone())).await
    }

    /// Refresh on a task of its own, which the request only waits for: a
    /// request dropped while the token endpoint rotates the refresh token
    /// (its client went away) must not drop the answer with it, or the
    /// session would be left holding a spent refresh token. The task takes
    /// the session's lock (one refresh at a time), checks again whether a
    /// refresh is still due (another request may have done it: `rejected`
    /// is no longer the access token, or the expiry moved), refreshes and
    /// stores the rotation.
    async fn refresh_detached(
        self: &Arc<Self>,
        rejected: Option<Secret>,
    ) -> Result<Secret, RefreshError> {
        let session = Arc::clone(self);
        tokio::spawn(async move {
            let mut t = session.tokens.lock().await;
            let due = match &rejected {
                Some(r) => t.access == *r,
                None => now_ms().saturating_add(REFRESH_MARGIN_MS) >= t.expires_at_ms,
            };
            if due {
                session.refresh_locked(&mut t).await?;
            }
            Ok(t.access.clone())
        })
        .await
        .map_err(|e| RefreshError::Task(e.to_string()))?
    }

    async fn refresh_locked(&self, t: &mut Tokens) -> Result<(), RefreshError> {
        let fresh = tokio::time::timeout(REFRESH_TIMEOUT, self.call_token_endpoint(&t.refresh))
            .await
            .map_err(|_| RefreshError::Timeout)??;
        let expires_at_ms = expiry_of(&fresh, now_ms());
        let next = Tokens {
            access: Secret::new(fresh.access_token),
            refresh: fresh
                .refresh_token
                .map(Secret::new)
                .unwrap_or_else(|| t.refresh.clone()),
            expires_at_ms,
        };
        // The old refresh token is spent either way: when the store fails the
        // new one is still the only live copy, so it is kept in memory.
        self.store_tokens(&next, "refreshed");
        *t = next;
        Ok(())
    }

    async fn call_token_endpoint(&self, refresh: &Secret) -> Result<TokenResponse, RefreshError> {
        let payload = serde_json::json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh.expose(),
            "client_id": self.client_id,
        });
        let bytes = serde_json::to_vec(&payload).map_err(|e| RefreshError::Parse(e.to_string()))?;
        let req: Request<ProxyBody> = Request::builder()
            .method(Method::POST)
            .uri(self.token_uri.clone())
            .header(header::HOST, self.token_host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_LENGTH, bytes.len())
            .body(body::full(bytes))
            .map_err(|e| RefreshError::Request(e.to_string()))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| RefreshError::Request(error_chain(&e)))?;
        let status = resp.status();
        let data = Limited::new(resp.into_body(), TOKEN_RESPONSE_LIMIT)
            .collect()
            .await
            .map_err(|e| RefreshError::Body(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            // Only the OAuth error code, and only when it looks like one: the
            // body of an error answer is never echoed.
            let error = serde_json::from_slice::<TokenErrorResponse>(&data)
                .ok()
                .map(|e| e.error)
                .filter(|e| {
                    e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            return Err(RefreshError::Status { status, error });
        }
        // serde_json's message can quote a value from the answer; name only
        // the kind of error and where.
        let parsed: TokenResponse = serde_json::from_slice(&data).map_err(|e| {
            RefreshError::Parse(format!(
                "{:?} error at line {} column {} (needs access_token, optional refresh_token and expires_in)",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if parsed.access_token.is_empty()
            || HeaderValue::from_str(&format!("Bearer {}", parsed.access_token)).is_err()
        {
            return Err(RefreshError::Parse(
                "access_token is empty or not a header value".to_string(),
            ));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(refresh: &str) -> OauthLogin {
        OauthLogin {
            access: Secret::new("seed-access"),
            refresh: Secret::new(refresh),
            expires_at_ms: 7,
        }
    }

    fn stored(from_seed: &str) -> StoredSession {
        StoredSession {
            seed_sha256: seed_sha256(from_seed),
            access_token: Secret::new("rotated-access"),
            refresh_token: Secret::new("rotated-refresh"),
            expires_at_ms: 9,
        }
    }

    fn fresh(access: &str, expires_in: Option<u64>) -> TokenResponse {
        TokenResponse {
            access_token: access.into(),
            refresh_token: None,
            expires_in,
        }
    }

    #[test]
    fn expiry_comes_from_expires_in_then_the_jwt_exp_then_the_default() {
        let jwt = crate::jwt::encode(&serde_json::json!({"exp": 2_000}), "sig");
        assert_eq!(expiry_of(&fresh(&jwt, Some(10)), 1_000), 11_000);
        assert_eq!(expiry_of(&fresh(&jwt, None), 1_000), 2_000_000);
        assert_eq!(
            expiry_of(&fresh("opaque", None), 1_000),
            1_000 + DEFAULT_EXPIRES_IN_S * 1000
        );
    }

    #[test]
    fn same_seed_keeps_the_stored_rotation() {
        let m = merge_seed(Some(&login("r0")), Some(stored("r0"))).unwrap();
        assert_eq!(m.origin, Origin::Stored);
        assert_eq!(m.tokens.refresh.expose(), "rotated-refresh");
        assert_eq!(m.seed_sha256, seed_sha256("r0"));
    }

    #[test]
    fn new_seed_is_a_newer_login_and_wins() {
        let m = merge_seed(Some(&login("r-new")), Some(stored("r0"))).unwrap();
        assert_eq!(m.origin, Origin::Seed);
        assert_eq!(m.tokens.refresh.expose(), "r-new");
        assert_eq!(m.seed_sha256, seed_sha256("r-new"));
        let m = merge_seed(Some(&login("r0")), None).unwrap();
        assert_eq!(m.origin, Origin::Seed);
    }

    #[test]
    fn no_login_resumes_the_stored_session_and_keeps_its_lineage() {
        let m = merge_seed(None, Some(stored("r0"))).unwrap();
        assert_eq!(m.origin, Origin::Resumed);
        assert_eq!(m.tokens.refresh.expose(), "rotated-refresh");
        // The lineage stays the host login's: seeing that login again later
        // keeps the rotated session instead of rolling back to it.
        assert_eq!(m.seed_sha256, seed_sha256("r0"));
        assert!(merge_seed(None, None).is_none());
    }
}
