//! The fixed routes and what the listener does with one request: refuse it
//! (with a short text body naming the cause) or forward it to its route's
//! upstream with the real credential swapped in.
//!
//! The listener is not an open proxy. In order:
//!
//! | request | answer |
//! |---|---|
//! | `CONNECT` | 405 |
//! | absolute-form target (`GET http://host/…`) | 400 |
//! | no route prefix matches, or a `.`/`..` segment | 404 / 400 |
//! | no placeholder of the prefix's routes | 401 |
//! | WebSocket / any `upgrade` | 426 (harnesses fall back to SSE) |
//! | route without a credential | 503 |
//! | upstream unreachable, TLS failure, refresh failure | 502 |
//!
//! Refused requests never reach the upstream.
//!
//! **Groups.** Several routes may share one prefix (the harness has one base
//! URL variable for them: `ANTHROPIC_BASE_URL` points Claude Code at the
//! API-key, the `setup-token` and the subscription routes alike, and Claude
//! Code picks the credential by its own precedence). The placeholder the
//! request carries picks the route: it is compared, in constant time, with
//! the placeholder of every route of the group, and the first route in
//! config order whose placeholder is present is served. Every credential
//! header is stripped before forwarding, so whichever placeholder the
//! harness sent, the upstream sees only that route's real credential.

use crate::body::{self, Buffered, ProxyBody, REPLAY_LIMIT};
use crate::config::{Secret, ValidCredential, ValidRoute};
use crate::log::{debug, info};
use crate::oauth::OauthSession;
use crate::rewrite;
use crate::upstream::{UpstreamClient, error_chain};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// How a route authenticates upstream.
pub enum RouteAuth {
    ApiKey(HeaderName, HeaderValue),
    Oauth(Arc<OauthSession>),
    None,
}

/// Why a route answers 503, and the fix.
const NO_CREDENTIAL: &str = "no credential: the harness's file holds only a placeholder and the proxy has no stored session, or the source is empty. Fix: log in on the host (or mount the host's login where the policy's seed reads it, e.g. /claude-ro or /pi-agent-ro) and restart";

/// A route ready to serve.
pub struct Route {
    pub config: ValidRoute,
    pub client: UpstreamClient,
    pub auth: RouteAuth,
}

/// All routes.
pub struct Routes {
    pub routes: Vec<Route>,
}

/// A request answered by the proxy itself: status and cause.
struct Refused(StatusCode, String);

impl Refused {
    fn response(self) -> Response<ProxyBody> {
        text(self.0, self.1)
    }
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<ProxyBody> {
    let mut m = format!("vault-proxy: {}", msg.into());
    m.push('\n');
    let mut r = Response::new(body::full(m));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Constant-time equality (the length is not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    std::hint::black_box(d) == 0
}

/// Whether the request carries the placeholder in `x-api-key`,
/// `authorization: Bearer …` or `x-goog-api-key`. Every candidate is compared.
pub fn presents_placeholder(headers: &HeaderMap, placeholder: &Secret) -> bool {
    let p = placeholder.expose().as_bytes();
    let mut ok = false;
    for name in ["x-api-key", "x-goog-api-key"] {
        for v in headers.get_all(name) {
            ok |= ct_eq(v.as_bytes(), p);
        }
    }
    for v in headers.get_all(header::AUTHORIZATION) {
        let b = v.as_bytes();
        if b.len() > 7 && b[..7].eq_ignore_ascii_case(b"bearer ") {
            ok |= ct_eq(&b[7..], p);
        }
    }
    ok
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        || headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

fn has_dot_segment(rest: &str) -> bool {
    rest.split('/').any(|s| {
        let s = s.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

impl Routes {
    /// The prefix that is `path` or a `/`-bounded start of it, and the rest.
    fn find<'a>(&self, path: &'a str) -> Option<(&str, &'a str)> {
        self.routes.iter().find_map(|r| {
            let prefix = r.config.prefix.as_str();
            let rest = path.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then_some((prefix, rest))
        })
    }

    /// The route of `prefix` whose placeholder the request presents: every
    /// route of the group is compared (no early exit), the first in config
    /// order wins.
    fn select(&self, prefix: &str, headers: &HeaderMap) -> Option<&Route> {
        let mut chosen = None;
        for r in self.routes.iter().filter(|r| r.config.prefix == prefix) {
            if presents_placeholder(headers, &r.config.placeholder) && chosen.is_none() {
                chosen = Some(r);
            }
        }
        chosen
    }

    /// The names of the routes served at `prefix`, for messages.
    fn names(&self, prefix: &str) -> String {
        let names: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| r.config.prefix == prefix)
            .map(|r| r.config.name.as_str())
            .collect();
        names.join(", ")
    }

    /// Answer one request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let resp = self.answer(req).await;
        debug!(
            "{method} {path} -> {} ({} us to headers)",
            resp.status().as_u16(),
            started.elapsed().as_micros()
        );
        Ok(resp)
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        if req.method() == Method::CONNECT {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is refused: this is not an open proxy; send requests to a route prefix (e.g. /anthropic/v1/messages)",
            );
        }
        if req.uri().scheme().is_some() || req.uri().authority().is_some() {
            return text(
                StatusCode::BAD_REQUEST,
                "absolute-form request targets are refused: this is not an open proxy; use a base URL like http://127.0.0.1:PORT/anthropic",
            );
        }
        let path = req.uri().path().to_string();
        let Some((prefix, rest)) = self.find(&path) else {
            let mut known: Vec<&str> = self
                .routes
                .iter()
                .map(|r| r.config.prefix.as_str())
                .collect();
            known.dedup();
            return text(
                StatusCode::NOT_FOUND,
                format!("no route for this path; routes: {}", known.join(", ")),
            );
        };
        if has_dot_segment(rest) {
            return text(
                StatusCode::BAD_REQUEST,
                "'.' and '..' path segments are refused",
            );
        }
        let Some(route) = self.select(prefix, req.headers()) else {
            return text(
                StatusCode::UNAUTHORIZED,
                format!(
                    "{prefix} (route {}): missing or wrong credential; send the placeholder agent-vault wrote for this harness (x-api-key, authorization: Bearer, or x-goog-api-key)",
                    self.names(prefix)
                ),
            );
        };
        if is_upgrade(req.headers()) {
            return text(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket and other upgrades are not supported; use HTTP streaming (SSE)",
            );
        }
        let rest = rest.to_string();
        match &route.auth {
            RouteAuth::None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("route {}: {NO_CREDENTIAL}", route.config.name),
            ),
            RouteAuth::ApiKey(name, value) => {
                let (parts, incoming) = req.into_parts();
                let head = match upstream_head(route, parts, &rest) {
                    Ok(h) => h,
                    Err(r) => return r.response(),
                };
                let cred = Some((name.clone(), value.clone()));
                send(route, &head, cred, body::stream(incoming)).await
            }
            RouteAuth::Oauth(session) => {
                if !session.forwards(&rest) {
                    info!(
                        "route {}: refused {} {rest}: not one of the login's paths",
                        route.config.name,
                        req.method()
                    );
                    return text(
                        StatusCode::FORBIDDEN,
                        format!(
                            "route {}: {rest} is not one of the paths this login is used for ({}); a subscription login reaches only the API the harness calls. Fix: add the path to the route's `oauth.paths` in the policy",
                            route.config.name,
                            session.paths().join(", ")
                        ),
                    );
                }
                let (parts, incoming) = req.into_parts();
                let head = match upstream_head(route, parts, &rest) {
                    Ok(h) => h,
                    Err(r) => return r.response(),
                };
                forward_oauth(route, session, head, incoming).await
            }
        }
    }
}

/// Method, URI and rewritten headers (without the credential) of the upstream request.
struct Head {
    method: Method,
    uri: hyper::Uri,
    headers: HeaderMap,
}

fn upstream_head(
    route: &Route,
    parts: hyper::http::request::Parts,
    rest: &str,
) -> Result<Head, Refused> {
    let uri = rewrite::upstream_uri(&route.config.upstream, rest, parts.uri.query())
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, e))?;
    let mut headers = parts.headers;
    rewrite::request_headers(
        &mut headers,
        &route.config.upstream,
        &route.config.inject_headers,
    );
    Ok(Head {
        method: parts.method,
        uri,
        headers,
    })
}

async fn send(
    route: &Route,
    head: &Head,
    credential: Option<(HeaderName, HeaderValue)>,
    body: ProxyBody,
) -> Response<ProxyBody> {
    match send_raw(route, head, credential, body).await {
        Ok(resp) => relay(resp),
        Err(r) => r.response(),
    }
}

async fn send_raw(
    route: &Route,
    head: &Head,
    credential: Option<(HeaderName, HeaderValue)>,
    body: ProxyBody,
) -> Result<Response<Incoming>, Refused> {
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.version_mut() = Version::HTTP_11;
    let mut headers = head.headers.clone();
    if let Some((k, v)) = credential {
        headers.insert(k, v);
    }
    *req.headers_mut() = headers;
    route.client.request(req).await.map_err(|e| {
        let msg = format!(
            "route {}: upstream {}: {}",
            route.config.name,
            route.config.upstream.origin(),
            error_chain(&e)
        );
        info!("{msg}");
        Refused(StatusCode::BAD_GATEWAY, msg)
    })
}

/// The upstream's response, streamed back frame by frame.
fn relay(resp: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, incoming) = resp.into_parts();
    rewrite::response_headers(&mut parts.headers);
    Response::from_parts(parts, body::stream(incoming))
}

fn bearer(route: &Route, token: &Secret) -> Result<(HeaderName, HeaderValue), Refused> {
    rewrite::bearer(token.expose())
        .map(|v| (header::AUTHORIZATION, v))
        .ok_or_else(|| {
            Refused(
                StatusCode::BAD_GATEWAY,
                format!(
                    "route {}: the access token is not a header value",
                    route.config.name
                ),
            )
        })
}

fn refresh_failed(route: &Route, e: &crate::oauth::RefreshError) -> Response<ProxyBody> {
    let msg = format!("route {}: {e}", route.config.name);
    info!("{msg}");
    text(StatusCode::BAD_GATEWAY, msg)
}

/// OAuth: buffer the body (up to [`REPLAY_LIMIT`]) so a 401 can be answered by
/// one refresh and one retry; a larger body streams and its 401 passes through
/// (after a refresh, so the next request works).
async fn forward_oauth(
    route: &Route,
    session: &Arc<OauthSession>,
    head: Head,
    incoming: Incoming,
) -> Response<ProxyBody> {
    let buffered = match body::buffer_up_to(incoming, REPLAY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}"),
            );
        }
    };
    let token = match session.access_token().await {
        Ok(t) => t,
        Err(e) => return refresh_failed(route, &e),
    };
    let cred = match bearer(route, &token) {
        Ok(c) => c,
        Err(r) => return r.response(),
    };
    let (first_body, replay) = match buffered {
        Buffered::Whole(r) => (r.body(), Some(r)),
        Buffered::TooLarge(b) => (b, None),
    };
    let resp = match send_raw(route, &head, Some(cred), first_body).await {
        Ok(r) => r,
        Err(r) => return r.response(),
    };
    if resp.status() != StatusCode::UNAUTHORIZED {
        return relay(resp);
    }
    let retry_token = match session.access_token_after_401(&token).await {
        Ok(t) => t,
        Err(e) => return refresh_failed(route, &e),
    };
    let Some(replay) = replay else {
        info!(
            "route {}: upstream 401 on a request body over {} MiB: refreshed, passing the 401 on (the body cannot be replayed)",
            route.config.name,
            REPLAY_LIMIT >> 20
        );
        return relay(resp);
    };
    drop(resp);
    let cred = match bearer(route, &retry_token) {
        Ok(c) => c,
        Err(r) => return r.response(),
    };
    send(route, &head, Some(cred), replay.body()).await
}

/// Build the runtime routes for a validated config.
pub fn build(
    config: &crate::config::Validated,
    clients: Vec<UpstreamClient>,
    store: &crate::state::StateStore,
) -> Result<(Routes, Vec<String>), crate::state::StateError> {
    let mut routes = Vec::new();
    let mut notes = Vec::new();
    for (r, client) in config.routes.iter().zip(clients) {
        let auth = match &r.credential {
            ValidCredential::None => {
                notes.push(format!("{}=none", r.name));
                RouteAuth::None
            }
            ValidCredential::ApiKey { header, value } => {
                notes.push(format!("{}=api-key", r.name));
                RouteAuth::ApiKey(rewrite::api_key_header(*header), value.clone())
            }
            ValidCredential::Oauth(seed) => {
                match OauthSession::start(&r.name, seed, store.clone(), client.clone())? {
                    Some((s, origin)) => {
                        notes.push(format!(
                            "{}=oauth({})",
                            r.name,
                            match origin {
                                crate::oauth::Origin::Seed => "seed",
                                crate::oauth::Origin::Stored => "stored",
                                crate::oauth::Origin::Resumed => "stored, no seed",
                            }
                        ));
                        RouteAuth::Oauth(Arc::new(s))
                    }
                    None => {
                        info!(
                            "route {}: answers 503: {NO_CREDENTIAL} ({} has no session)",
                            r.name,
                            store.path(&r.name).display()
                        );
                        notes.push(format!("{}=none(no stored session)", r.name));
                        RouteAuth::None
                    }
                }
            }
        };
        routes.push(Route {
            config: r.clone(),
            client,
            auth,
        });
    }
    Ok((Routes { routes }, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_is_found_in_each_header_and_only_exactly() {
        let p = Secret::new("av-placeholder-0123456789");
        for (k, v) in [
            ("x-api-key", "av-placeholder-0123456789"),
            ("x-goog-api-key", "av-placeholder-0123456789"),
            ("authorization", "Bearer av-placeholder-0123456789"),
            ("authorization", "bearer av-placeholder-0123456789"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
            assert!(presents_placeholder(&h, &p), "{k}: {v}");
        }
        for (k, v) in [
            ("x-api-key", "av-placeholder-012345678"),
            ("x-api-key", "av-placeholder-0123456789x"),
            ("authorization", "av-placeholder-0123456789"),
            ("authorization", "Basic av-placeholder-0123456789"),
            ("cookie", "av-placeholder-0123456789"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
            assert!(!presents_placeholder(&h, &p), "{k}: {v}");
        }
    }

    #[test]
    fn dot_segments_are_detected_also_percent_encoded() {
        assert!(has_dot_segment("/a/../b"));
        assert!(has_dot_segment("/a/%2E%2e/b"));
        assert!(!has_dot_segment("/v1/messages"));
        assert!(!has_dot_segment("/a/..b"));
    }
}
