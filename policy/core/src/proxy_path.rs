//! The request paths a credential-proxy route uses an OAuth login for: one
//! rule for the policy (checked at load, with file:line:column), for
//! vault-proxy's config (the sidecar's is written by hand) and for every
//! request the proxy serves.

/// The paths an OAuth login is used for when a route names none: the
/// provider's versioned API.
pub const DEFAULT_OAUTH_PATHS: &[&str] = &["/v1/"];

/// An absolute path holding nothing an upstream could decode or normalize
/// into another path: no `%`, `\` or `;`, no `.` or `..` segment.
pub fn is_plain_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains(['%', '\\', ';'])
        && !p.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_and_the_shapes_an_upstream_could_rewrite() {
        for ok in ["/v1/", "/v1/messages", "/codex/responses", "/"] {
            assert!(is_plain_path(ok), "{ok}");
        }
        for bad in [
            "v1/",
            "",
            "/v1/%2e%2e/x",
            "/v1\\..",
            "/v1/messages;/x",
            "/v1/../api",
            "/./v1",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }
}
