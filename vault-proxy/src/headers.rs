//! The request headers that never reach a provider: the client's
//! credential headers (they hold only the placeholder), those that would
//! describe the proxy hop, and hop-by-hop headers. [`crate::rewrite`] strips
//! them; [`crate::config`] refuses an injected header of these names.

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `keep-alive` and
/// `proxy-connection`).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Credential and proxy-describing headers the client may not pass on.
const CREDENTIAL_AND_HOP_INFO: &[&str] = &[
    "authorization",
    "x-api-key",
    "proxy-authorization",
    "x-goog-api-key",
    "forwarded",
    "via",
];

/// Whether a (lower-case) request header is always removed before forwarding.
pub fn is_stripped_request_header(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
        || CREDENTIAL_AND_HOP_INFO.contains(&name)
        || name.starts_with("x-forwarded-")
}
