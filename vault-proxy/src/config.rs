//! The proxy's input: a TOML document agent-init (or a sidecar's mounted
//! secret) hands over, parsed into [`ProxyConfig`] and checked into
//! [`Validated`].
//!
//! The config is the only place the real credential exists outside the
//! provider, so it arrives over a pipe (`--config-fd`) or a file only the
//! proxy's uid can read (`--config`). agent-init builds a [`ProxyConfig`]
//! value and calls [`ProxyConfig::to_toml`]; the proxy calls
//! [`ProxyConfig::from_toml`] then [`ProxyConfig::validate`]. Unknown keys are
//! errors, so a misspelt key never silently falls back to a default.
//!
//! Secrets ([`Secret`]) never print through `Debug`.

use http::Uri;
use http::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Where the system trust anchors are read from when `system_trust_file` is not set.
pub const DEFAULT_SYSTEM_TRUST_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The shortest placeholder accepted: the placeholder is the capability, so it
/// must not be guessable (agent-init mints 256 random bits).
pub const MIN_PLACEHOLDER_LEN: usize = 16;

/// A string that must never be logged: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The whole config document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Loopback address and port to serve on; port 0 picks a free port
    /// (learned through `--ready-fd`).
    pub listen: String,
    /// Proxy-only durable state (rotated OAuth tokens). Created 0700 if
    /// missing; an existing one must be 0700 and owned by the proxy's uid.
    pub state_dir: PathBuf,
    /// PEM bundle of system trust anchors for https upstreams
    /// (default [`DEFAULT_SYSTEM_TRUST_FILE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_trust_file: Option<PathBuf>,
    /// The fixed routes; the listener serves nothing else.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Short name: `[a-z0-9_-]`, also the state file's name.
    pub name: String,
    /// Path prefix on the listener, e.g. `/anthropic`.
    pub prefix: String,
    /// Base URL of the provider: https, or http for a loopback host only.
    pub upstream: String,
    /// Extra PEM trust anchors for this route's upstream and token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca_file: Option<PathBuf>,
    /// The capability the harness presents instead of the real credential.
    pub placeholder: Secret,
    /// Fixed headers injected into every forwarded request (e.g. `chatgpt-account-id`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inject_headers: BTreeMap<String, Secret>,
    /// The real credential.
    pub credential: CredentialConfig,
}

/// Which header an API key goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKeyHeader {
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
    /// `authorization: Bearer KEY` (OpenAI and most others).
    Authorization,
    /// `x-goog-api-key: KEY` (Gemini).
    XGoogApiKey,
}

/// The credential a route injects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CredentialConfig {
    /// A static key.
    ApiKey { header: ApiKeyHeader, key: Secret },
    /// An OAuth session the proxy refreshes itself; injected as `authorization: Bearer`.
    ///
    /// `access`, `refresh` and `expires_at_ms` are the login agent-init read
    /// (the harness's file or its seed), all three or none. None: the
    /// harness's file held only a previous start's placeholder and no seed
    /// has a login, so the proxy resumes the session in its `state_dir`, or
    /// answers 503 when it has none.
    Oauth {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh: Option<Secret>,
        /// Access token expiry, Unix milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at_ms: Option<u64>,
        token_url: String,
        client_id: String,
        /// Path prefixes (after the route's prefix) forwarded with this
        /// login; any other request is refused with 403. Default
        /// `["/v1/"]`, the versioned API.
        #[serde(default = "default_oauth_paths")]
        paths: Vec<String>,
    },
    /// No credential: the route answers 503 and never forwards. (A struct
    /// variant, so that unknown keys next to `kind = "none"` are refused too.)
    None {},
}

fn default_oauth_paths() -> Vec<String> {
    policy_core::proxy_path::DEFAULT_OAUTH_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// A config that failed to load or validate. Each message names the key and the fix.
#[derive(Debug)]
pub enum ConfigError {
    /// The TOML does not parse or fit the schema: where, and the parser's
    /// message, never the line itself (it may hold a key).
    Parse {
        line: usize,
        column: usize,
        source: toml::de::Error,
    },
    Serialize(toml::ser::Error),
    Listen {
        value: String,
        why: String,
    },
    StateDir(String),
    Route {
        route: String,
        key: &'static str,
        why: String,
    },
    NoRoutes,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Parse {
                line,
                column,
                source,
            } => write!(
                f,
                "config: line {line}, column {column}: {}",
                source.message()
            ),
            ConfigError::Serialize(e) => write!(f, "config: cannot write TOML: {e}"),
            ConfigError::Listen { value, why } => write!(
                f,
                "config: listen = {value:?}: {why}. Fix: listen = \"127.0.0.1:PORT\" (port 0 picks one)"
            ),
            ConfigError::StateDir(why) => write!(f, "config: state_dir: {why}"),
            ConfigError::Route { route, key, why } => {
                write!(f, "config: route {route:?}: {key}: {why}")
            }
            ConfigError::NoRoutes => write!(
                f,
                "config: no [[route]]: the proxy would serve nothing. Fix: add a [[route]] table"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Parse { source, .. } => Some(source),
            ConfigError::Serialize(e) => Some(e),
            _ => None,
        }
    }
}

/// An upstream base URL, split for the rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub https: bool,
    /// `host[:port]` as written, for the `host` header.
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// The path without a trailing `/` (empty for the root).
    pub base_path: String,
}

impl UpstreamUrl {
    /// `scheme://authority` for connection pooling and messages.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.authority
        )
    }
}

/// A checked route.
#[derive(Debug, Clone)]
pub struct ValidRoute {
    pub name: String,
    pub prefix: String,
    pub upstream: UpstreamUrl,
    pub upstream_ca_file: Option<PathBuf>,
    pub placeholder: Secret,
    pub inject_headers: Vec<(HeaderName, HeaderValue)>,
    pub credential: ValidCredential,
}

/// A checked credential.
#[derive(Debug, Clone)]
pub enum ValidCredential {
    ApiKey {
        header: ApiKeyHeader,
        value: HeaderValue,
    },
    Oauth(OauthSeed),
    None,
}

/// The OAuth session as the config seeds it.
#[derive(Debug, Clone)]
pub struct OauthSeed {
    /// The login agent-init read; `None`: resume the stored session only.
    pub login: Option<OauthLogin>,
    pub token_url: UpstreamUrl,
    /// The token URL's path and query.
    pub token_path: String,
    pub client_id: String,
    /// Path prefixes forwarded with this login (see `CredentialConfig::Oauth`).
    pub paths: Vec<String>,
}

/// The tokens of a login as agent-init read them.
#[derive(Debug, Clone)]
pub struct OauthLogin {
    pub access: Secret,
    pub refresh: Secret,
    pub expires_at_ms: u64,
}

/// A checked config, ready to serve.
#[derive(Debug, Clone)]
pub struct Validated {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub system_trust_file: PathBuf,
    pub routes: Vec<ValidRoute>,
}

impl Validated {
    /// Whether any route (or token endpoint) needs TLS, so the system trust store is needed.
    pub fn needs_tls(&self) -> bool {
        self.routes.iter().any(|r| {
            r.upstream.https
                || matches!(&r.credential, ValidCredential::Oauth(o) if o.token_url.https)
        })
    }

    /// Every upstream port the proxy connects to (for Landlock `ConnectTcp`).
    pub fn upstream_ports(&self) -> Vec<u16> {
        let mut v = Vec::new();
        for r in &self.routes {
            v.push(r.upstream.port);
            if let ValidCredential::Oauth(o) = &r.credential {
                v.push(o.token_url.port);
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl ProxyConfig {
    /// Parse a TOML document (unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<ProxyConfig, ConfigError> {
        toml::from_str(text).map_err(|source: toml::de::Error| {
            let at = source.span().map_or(0, |r| r.start).min(text.len());
            let before = &text.as_bytes()[..at];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = at
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
                + 1;
            ConfigError::Parse {
                line,
                column,
                source,
            }
        })
    }

    /// Serialize for the proxy's `--config-fd` pipe (agent-init's side).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(ConfigError::Serialize)
    }

    /// Check every rule the listener and rewrite rely on.
    pub fn validate(&self) -> Result<Validated, ConfigError> {
        let listen = validate_listen(&self.listen)?;
        if self.state_dir.as_os_str().is_empty() || !self.state_dir.is_absolute() {
            return Err(ConfigError::StateDir(format!(
                "{:?} is not an absolute path. Fix: state_dir = \"/run/agent-vault/proxy\" (a directory only the proxy's uid can read)",
                self.state_dir
            )));
        }
        if self.routes.is_empty() {
            return Err(ConfigError::NoRoutes);
        }
        let mut routes: Vec<ValidRoute> = Vec::new();
        for r in &self.routes {
            let v = validate_route(r)?;
            check_sharing(&routes, &v)?;
            routes.push(v);
        }
        Ok(Validated {
            listen,
            state_dir: self.state_dir.clone(),
            system_trust_file: self
                .system_trust_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SYSTEM_TRUST_FILE)),
            routes,
        })
    }
}

/// Routes may share a prefix (a group: the variable that points the harness
/// at the proxy is the same for all of them, e.g. `ANTHROPIC_BASE_URL`); the
/// request's placeholder then picks the route. So they must go to the same
/// upstream, and their placeholders must differ. Names never repeat.
fn check_sharing(earlier: &[ValidRoute], v: &ValidRoute) -> Result<(), ConfigError> {
    if let Some(other) = earlier.iter().find(|o| o.name == v.name) {
        return Err(route_err(
            &v.name,
            "name",
            format!(
                "same name as route {:?}. Fix: give each route its own name",
                other.name
            ),
        ));
    }
    for o in earlier.iter().filter(|o| o.prefix == v.prefix) {
        if o.upstream != v.upstream || o.upstream_ca_file != v.upstream_ca_file {
            return Err(route_err(
                &v.name,
                "upstream",
                format!(
                    "shares prefix {:?} with route {:?} but not its upstream ({} vs {}). Fix: routes sharing a prefix share one upstream; give this route its own prefix",
                    v.prefix,
                    o.name,
                    format_args!("{}{}", v.upstream.origin(), v.upstream.base_path),
                    format_args!("{}{}", o.upstream.origin(), o.upstream.base_path),
                ),
            ));
        }
        if o.placeholder == v.placeholder {
            return Err(route_err(
                &v.name,
                "placeholder",
                format!(
                    "same placeholder as route {:?} on the shared prefix {:?}: the placeholder picks the route. Fix: mint one per route",
                    o.name, v.prefix
                ),
            ));
        }
    }
    Ok(())
}

fn route_err(route: &str, key: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Route {
        route: route.to_string(),
        key,
        why: why.into(),
    }
}

fn validate_listen(value: &str) -> Result<SocketAddr, ConfigError> {
    let addr: SocketAddr = value.parse().map_err(|e| ConfigError::Listen {
        value: value.to_string(),
        why: format!("not an IP:port ({e})"),
    })?;
    if !addr.ip().is_loopback() {
        return Err(ConfigError::Listen {
            value: value.to_string(),
            why: "not a loopback address; vault-proxy serves only the local harness and is never reachable from the network".to_string(),
        });
    }
    Ok(addr)
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Parse an upstream or token URL: https, or http for a loopback host only.
pub fn parse_upstream(url: &str) -> Result<(UpstreamUrl, String), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{url:?}: the scheme must be https")),
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if auth.as_str().contains('@') {
        return Err(format!(
            "{url:?} carries user info; credentials go in [route.credential], not the URL"
        ));
    }
    let host = auth.host().to_string();
    if !https && !is_loopback_host(&host) {
        return Err(format!(
            "{url:?}: plain http is allowed only to a loopback host (the credential would cross the network in clear). Fix: use https://"
        ));
    }
    let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok((
        UpstreamUrl {
            https,
            authority: auth.as_str().to_string(),
            host,
            port,
            base_path,
        },
        path_and_query,
    ))
}

/// Headers the proxy owns: never injected from config, always stripped from the client.
pub fn is_reserved_header(name: &str) -> bool {
    crate::headers::is_stripped_request_header(name) || name == "host" || name == "content-length"
}

fn validate_route(r: &RouteConfig) -> Result<ValidRoute, ConfigError> {
    let name = &r.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(route_err(
            name,
            "name",
            "use 1 to 64 of [a-z0-9_-] (it names the state file)",
        ));
    }
    let p = &r.prefix;
    if !p.starts_with('/')
        || p.len() < 2
        || p.ends_with('/')
        || p.contains("//")
        || p.contains(['?', '#', '%'])
        || p.split('/').any(|s| s == "." || s == "..")
    {
        return Err(route_err(
            name,
            "prefix",
            format!(
                "{p:?}: use a path like \"/anthropic\" (leading '/', no trailing '/', no '?', '%', '.' or '..' segments)"
            ),
        ));
    }
    let (upstream, pq) =
        parse_upstream(&r.upstream).map_err(|why| route_err(name, "upstream", why))?;
    if pq.contains('?') {
        return Err(route_err(
            name,
            "upstream",
            "a query string in the base URL is not supported",
        ));
    }
    let ph = r.placeholder.expose();
    if ph.len() < MIN_PLACEHOLDER_LEN || !ph.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(route_err(
            name,
            "placeholder",
            format!(
                "must be at least {MIN_PLACEHOLDER_LEN} visible ASCII characters (agent-init mints a random one per start)"
            ),
        ));
    }
    let mut inject_headers = Vec::new();
    for (k, v) in &r.inject_headers {
        let lower = k.to_ascii_lowercase();
        let hn = HeaderName::from_bytes(lower.as_bytes()).map_err(|_| {
            route_err(
                name,
                "inject_headers",
                format!("{k:?} is not a header name"),
            )
        })?;
        if is_reserved_header(&lower) {
            return Err(route_err(
                name,
                "inject_headers",
                format!("{k:?} is set by the proxy itself (credential, host or hop-by-hop header)"),
            ));
        }
        let mut hv = HeaderValue::from_str(v.expose()).map_err(|_| {
            route_err(
                name,
                "inject_headers",
                format!("the value of {k:?} is not a valid header value"),
            )
        })?;
        hv.set_sensitive(true);
        inject_headers.push((hn, hv));
    }
    let credential = match &r.credential {
        CredentialConfig::None {} => ValidCredential::None,
        CredentialConfig::ApiKey { header, key } => {
            let text = match header {
                ApiKeyHeader::Authorization => format!("Bearer {}", key.expose()),
                _ => key.expose().to_string(),
            };
            let mut value = HeaderValue::from_str(&text)
                .map_err(|_| route_err(name, "credential.key", "not a valid header value"))?;
            value.set_sensitive(true);
            if key.expose().is_empty() {
                return Err(route_err(name, "credential.key", "empty"));
            }
            ValidCredential::ApiKey {
                header: *header,
                value,
            }
        }
        CredentialConfig::Oauth {
            access,
            refresh,
            expires_at_ms,
            token_url,
            client_id,
            paths,
        } => {
            let (tu, token_path) = parse_upstream(token_url)
                .map_err(|why| route_err(name, "credential.token_url", why))?;
            if paths.is_empty()
                || !paths
                    .iter()
                    .all(|p| policy_core::proxy_path::is_plain_path(p))
            {
                return Err(route_err(
                    name,
                    "credential.paths",
                    "expected one or more absolute path prefixes without `%`, `\\`, `;`, `.` or `..` segments, like [\"/v1/\"]",
                ));
            }
            let login = match (access, refresh, expires_at_ms) {
                (None, None, None) => None,
                (Some(access), Some(refresh), Some(expires_at_ms)) => {
                    if refresh.expose().is_empty() {
                        return Err(route_err(name, "credential.refresh", "empty"));
                    }
                    if HeaderValue::from_str(&format!("Bearer {}", access.expose())).is_err() {
                        return Err(route_err(
                            name,
                            "credential.access",
                            "not a valid header value",
                        ));
                    }
                    Some(OauthLogin {
                        access: access.clone(),
                        refresh: refresh.clone(),
                        expires_at_ms: *expires_at_ms,
                    })
                }
                _ => {
                    return Err(route_err(
                        name,
                        "credential",
                        "access, refresh and expires_at_ms go together (a login), or are all left out (resume the session stored in state_dir)",
                    ));
                }
            };
            ValidCredential::Oauth(OauthSeed {
                login,
                token_url: tu,
                token_path: if token_path.is_empty() {
                    "/".to_string()
                } else {
                    token_path
                },
                client_id: client_id.clone(),
                paths: paths.clone(),
            })
        }
    };
    Ok(ValidRoute {
        name: name.clone(),
        prefix: p.clone(),
        upstream,
        upstream_ca_file: r.upstream_ca_file.clone(),
        placeholder: r.placeholder.clone(),
        inject_headers,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
listen = "127.0.0.1:0"
state_dir = "/run/agent-vault/proxy"

[[route]]
name = "anthropic"
prefix = "/anthropic"
upstream = "https://api.anthropic.com"
placeholder = "sk-ant-api03-av-0123456789abcdef"
[route.credential]
kind = "api-key"
header = "x-api-key"
key = "sk-ant-api03-real"

[[route]]
name = "chatgpt"
prefix = "/chatgpt"
upstream = "https://chatgpt.com/backend-api"
placeholder = "av-0123456789abcdef0123"
inject_headers = { "chatgpt-account-id" = "acct-1" }
[route.credential]
kind = "oauth"
access = "a"
refresh = "r"
expires_at_ms = 1
token_url = "https://auth.openai.com/oauth/token"
client_id = "c"

[[route]]
name = "gemini"
prefix = "/gemini"
upstream = "https://generativelanguage.googleapis.com"
placeholder = "av-0123456789abcdef0123"
credential = { kind = "none" }
"#;

    #[test]
    fn valid_config_parses_and_round_trips_through_to_toml() {
        let c = ProxyConfig::from_toml(OK).unwrap();
        let v = c.validate().unwrap();
        assert_eq!(v.routes.len(), 3);
        assert_eq!(v.routes[1].upstream.base_path, "/backend-api");
        assert_eq!(v.upstream_ports(), vec![443]);
        let again = ProxyConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = ProxyConfig::from_toml(OK).unwrap();
        let d = format!("{c:?} {:?}", c.validate().unwrap());
        assert!(!d.contains("sk-ant-api03-real"));
        assert!(!d.contains("0123456789abcdef"));
        assert!(!d.contains("acct-1"));
    }

    #[test]
    fn unknown_key_in_credential_is_refused() {
        let bad = OK.replace("key = \"sk-ant-api03-real\"", "key = \"k\"\nkeyy = 1");
        let e = ProxyConfig::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("keyy"), "{e}");
    }

    #[test]
    fn unknown_key_next_to_kind_none_is_refused() {
        let bad = OK.replace(
            "{ kind = \"none\" }",
            "{ kind = \"none\", key = \"left-over\" }",
        );
        assert_ne!(bad, OK);
        let e = ProxyConfig::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("key"), "{e}");
    }

    #[test]
    fn inject_headers_cannot_set_credential_headers() {
        let bad = OK.replace("\"chatgpt-account-id\"", "\"Authorization\"");
        let e = ProxyConfig::from_toml(&bad)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("inject_headers"), "{e}");
    }

    #[test]
    fn short_placeholder_and_bad_prefix_are_refused() {
        let bad = OK.replace("sk-ant-api03-av-0123456789abcdef", "short");
        assert!(ProxyConfig::from_toml(&bad).unwrap().validate().is_err());
        let bad = OK.replace("prefix = \"/anthropic\"", "prefix = \"/anthropic/\"");
        assert!(ProxyConfig::from_toml(&bad).unwrap().validate().is_err());
        let bad = OK.replace("prefix = \"/gemini\"", "prefix = \"/anthropic\"");
        assert!(ProxyConfig::from_toml(&bad).unwrap().validate().is_err());
    }

    #[test]
    fn loopback_http_upstream_is_allowed() {
        let ok = OK.replace("https://api.anthropic.com", "http://127.0.0.1:9");
        let v = ProxyConfig::from_toml(&ok).unwrap().validate().unwrap();
        assert!(!v.routes[0].upstream.https);
        assert_eq!(v.routes[0].upstream.port, 9);
    }
}
