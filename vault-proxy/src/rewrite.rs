//! The request and response rewrite: what the provider sees.
//!
//! The client's credential headers (which hold only the placeholder) and
//! everything that would describe the proxy hop (`forwarded`, `via`,
//! `x-forwarded-*`) are stripped, hop-by-hop headers are dropped, `host` is
//! the upstream's, and the route's real credential is injected. Everything
//! else (`anthropic-beta`, `user-agent`, `x-app`, the body) passes unchanged,
//! so first-party harness traffic stays first-party.

use crate::config::{ApiKeyHeader, UpstreamUrl};
use crate::headers::{HOP_BY_HOP, is_stripped_request_header};
use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Names listed in `connection` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect()
}

/// Rewrite the client's request headers in place for the upstream (the
/// credential itself is added per attempt, after a possible refresh).
pub fn request_headers(
    headers: &mut HeaderMap,
    upstream: &UpstreamUrl,
    inject: &[(HeaderName, HeaderValue)],
) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    let stripped: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_stripped_request_header(k.as_str()))
        .cloned()
        .collect();
    for k in stripped {
        headers.remove(k);
    }
    if let Ok(h) = HeaderValue::from_str(&upstream.authority) {
        headers.insert(header::HOST, h);
    }
    for (k, v) in inject {
        headers.insert(k.clone(), v.clone());
    }
}

/// Drop hop-by-hop headers from the upstream's response.
pub fn response_headers(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
}

/// The header an API key goes in.
pub fn api_key_header(h: ApiKeyHeader) -> HeaderName {
    match h {
        ApiKeyHeader::XApiKey => HeaderName::from_static("x-api-key"),
        ApiKeyHeader::Authorization => header::AUTHORIZATION,
        ApiKeyHeader::XGoogApiKey => HeaderName::from_static("x-goog-api-key"),
    }
}

/// `authorization: Bearer TOKEN`, marked sensitive.
pub fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The upstream URI: the base URL's path, then the client's path after the
/// route prefix, then the client's query.
pub fn upstream_uri(
    upstream: &UpstreamUrl,
    rest: &str,
    query: Option<&str>,
) -> Result<Uri, String> {
    let mut path = String::with_capacity(upstream.base_path.len() + rest.len() + 1);
    path.push_str(&upstream.base_path);
    path.push_str(rest);
    if path.is_empty() {
        path.push('/');
    }
    let mut s = upstream.origin();
    s.push_str(&path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s.parse::<Uri>()
        .map_err(|e| format!("cannot build the upstream URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_upstream;

    #[test]
    fn strips_credentials_forwarding_and_hop_by_hop_and_keeps_the_rest() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer placeholder"),
            ("x-api-key", "placeholder"),
            ("x-goog-api-key", "placeholder"),
            ("proxy-authorization", "x"),
            ("forwarded", "for=1"),
            ("via", "1.1 x"),
            ("x-forwarded-for", "1.2.3.4"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("host", "127.0.0.1:1"),
            ("anthropic-beta", "oauth-2025-04-20"),
            ("user-agent", "claude-cli/2"),
            ("x-app", "cli"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let (up, _) = parse_upstream("https://api.example.com:8443/base").unwrap();
        request_headers(
            &mut h,
            &up,
            &[(
                HeaderName::from_static("chatgpt-account-id"),
                HeaderValue::from_static("a"),
            )],
        );
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "anthropic-beta",
                "chatgpt-account-id",
                "host",
                "user-agent",
                "x-app"
            ]
        );
        assert_eq!(h["host"], "api.example.com:8443");
        assert_eq!(h["user-agent"], "claude-cli/2");
    }

    #[test]
    fn upstream_uri_joins_base_path_rest_and_query() {
        let (up, _) = parse_upstream("https://chatgpt.com/backend-api/").unwrap();
        assert_eq!(
            upstream_uri(&up, "/codex/responses", Some("a=1")).unwrap(),
            "https://chatgpt.com/backend-api/codex/responses?a=1"
        );
        let (up, _) = parse_upstream("http://127.0.0.1:9").unwrap();
        assert_eq!(upstream_uri(&up, "", None).unwrap(), "http://127.0.0.1:9/");
        assert_eq!(
            upstream_uri(&up, "/v1/messages", None).unwrap(),
            "http://127.0.0.1:9/v1/messages"
        );
    }
}
