//! `[proxy]`: which credentials agent-init hands to `vault-proxy`, where each
//! one comes from, where its route forwards to, and how the harness is
//! pointed at the proxy. Pure data like the rest of the policy: agent-init
//! reads the sources, mints the placeholders and starts the proxy
//! (agent-init's `proxy` step); `check` and `explain` print this section
//! without ever reading a secret.
//!
//! The file as written ([`RawProxy`]) and the validated form ([`Proxy`])
//! live together here because the section is one concept: routes.

use crate::error::{ErrorKind, PolicyError};
use crate::expand::{self, ExpandContext};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use toml::Spanned;

/// The proxy's uid and gid when `[proxy] user` is not set.
pub const DEFAULT_PROXY_USER: (u32, u32) = (64990, 64990);
/// The proxy's durable state (refreshed OAuth sessions) when `state_dir` is not set.
pub const DEFAULT_PROXY_STATE_DIR: &str = "/var/lib/agent-vault/proxy";

/// `[proxy] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyMode {
    /// agent-init starts vault-proxy; the harness sees placeholders only.
    On,
    /// No proxy: the harness holds its real credentials (the vault guards them from tools).
    #[default]
    Off,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::On => "on",
            ProxyMode::Off => "off",
        }
    }
}

/// Which header an API key is sent in (the proxy's `ApiKeyHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyHeader {
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
    /// `authorization: Bearer KEY` (OpenAI, Claude Code's OAuth token).
    Authorization,
    /// `x-goog-api-key: KEY` (Gemini).
    XGoogApiKey,
}

impl KeyHeader {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyHeader::XApiKey => "x-api-key",
            KeyHeader::Authorization => "authorization",
            KeyHeader::XGoogApiKey => "x-goog-api-key",
        }
    }
}

/// The known credential file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// Any JSON file: the string at `pointer` is an API key.
    Json,
    /// Pi's `auth.json`: `{"<provider>": {"type": "api_key", "key"} | {"type": "oauth", "access", "refresh", "expires"}}`.
    PiAuth,
    /// Claude Code's `.credentials.json`: `{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt", ...}}`.
    ClaudeCredentials,
    /// OpenCode's `auth.json`: `{"<provider>": {"type": "api", "key"}}`
    /// (sst/opencode `packages/opencode/src/auth/index.ts`). Its `"oauth"`
    /// entries cannot be routed: OpenCode's ChatGPT plugin sends them to a
    /// fixed `https://chatgpt.com/backend-api/codex/responses` whatever the
    /// base URL, and refreshes them itself (`plugin/codex.ts`).
    OpencodeAuth,
    /// Codex's `auth.json` (openai/codex `codex-rs/login/src/auth/storage.rs`,
    /// `token_data.rs`): `{"OPENAI_API_KEY": "...", "tokens": {"id_token",
    /// "access_token", "refresh_token", "account_id"}, "last_refresh"}`. A
    /// route with `oauth` takes the ChatGPT login (`tokens`), one without
    /// takes the API key.
    CodexAuth,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::PiAuth => "pi-auth",
            FileFormat::ClaudeCredentials => "claude-credentials",
            FileFormat::OpencodeAuth => "opencode-auth",
            FileFormat::CodexAuth => "codex-auth",
        }
    }
}

/// `[proxy]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    #[serde(default)]
    pub mode: ProxyMode,
    /// `uid:gid` (numbers: the proxy's user needs no passwd entry).
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    #[serde(default)]
    pub state_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
}

/// One `[[proxy.route]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Spanned<String>,
    pub upstream: Spanned<String>,
    /// For API keys: the header the real key goes in.
    #[serde(default)]
    pub header: Option<KeyHeader>,
    /// For API keys: what the placeholder starts with (the provider's key
    /// shape). Needed when the route can carry a key; a login's placeholder
    /// is `oauth`'s.
    #[serde(default)]
    pub placeholder: Option<Spanned<String>>,
    pub from: RawFrom,
    pub point: RawPoint,
    #[serde(default)]
    pub oauth: Option<RawOauth>,
}

/// `from = { env = "NAME" }` or `from = { file = "...", format = "...", pointer = "...", provider = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrom {
    #[serde(default)]
    pub env: Option<Spanned<String>>,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub format: Option<FileFormat>,
    #[serde(default)]
    pub pointer: Option<Spanned<String>>,
    #[serde(default)]
    pub provider: Option<Spanned<String>>,
}

/// `point = { env = "NAME" }`, `point = { pi_models = "...", provider = "..." }`
/// or `point = { env_json = "NAME", pointer = "/..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoint {
    #[serde(default)]
    pub env: Option<Spanned<String>>,
    #[serde(default)]
    pub pi_models: Option<Spanned<String>>,
    #[serde(default)]
    pub provider: Option<Spanned<String>>,
    #[serde(default)]
    pub env_json: Option<Spanned<String>>,
    #[serde(default)]
    pub pointer: Option<Spanned<String>>,
}

/// `oauth = { placeholder | jwt = true, token_url, client_id, paths }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOauth {
    #[serde(default)]
    pub placeholder: Option<Spanned<String>>,
    #[serde(default)]
    pub jwt: Option<Spanned<bool>>,
    pub token_url: Spanned<String>,
    pub client_id: Spanned<String>,
    #[serde(default)]
    pub paths: Option<Spanned<Vec<String>>>,
}

pub use policy_core::proxy_path::DEFAULT_OAUTH_PATHS;

/// `[proxy]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub mode: ProxyMode,
    pub uid: u32,
    pub gid: u32,
    pub state_dir: PathBuf,
    pub routes: Vec<Route>,
}

impl Default for Proxy {
    fn default() -> Proxy {
        Proxy {
            mode: ProxyMode::Off,
            uid: DEFAULT_PROXY_USER.0,
            gid: DEFAULT_PROXY_USER.1,
            state_dir: PathBuf::from(DEFAULT_PROXY_STATE_DIR),
            routes: Vec::new(),
        }
    }
}

/// One route, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where the proxy serves it: `/<name>`, or, for routes that share a
    /// `point` (a group, like the three `ANTHROPIC_BASE_URL` routes), the
    /// path of the first of them; the placeholder a request carries then
    /// picks the route.
    pub path: String,
    pub name: String,
    pub upstream: String,
    pub header: Option<KeyHeader>,
    /// The API-key placeholder's prefix; `None` for a login-only route.
    pub placeholder: Option<String>,
    pub from: SecretSource,
    pub point: BaseUrl,
    pub oauth: Option<OauthSpec>,
}

/// Where a route's real credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the harness (agent-init's environment plus `[harness.env]`).
    Env(String),
    /// A file in the vault. `pointer` for [`FileFormat::Json`], `provider` for [`FileFormat::PiAuth`].
    File {
        path: PathBuf,
        format: FileFormat,
        pointer: Option<String>,
        provider: Option<String>,
    },
}

/// How the harness is pointed at the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// An environment variable (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`).
    Env(String),
    /// Pi's `models.json`: `providers.<provider>.baseUrl`.
    PiModels { path: PathBuf, provider: String },
    /// A JSON document in an environment variable, the string at `pointer`
    /// (objects created on the way): OpenCode's `OPENCODE_CONFIG_CONTENT`
    /// `/provider/<id>/options/baseURL`, which OpenCode merges after the
    /// global and the project `opencode.json`.
    EnvJson { var: String, pointer: String },
}

/// What the harness's copy of an OAuth login looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OauthPlaceholder {
    /// The provider's token prefix, `av-`, 64 hex digits.
    Prefix(String),
    /// A three-segment JWT carrying the real token's non-secret claims (the
    /// ChatGPT account, plan, email) with a far-future `exp`; the signature
    /// segment is `av-` and 64 hex digits. For harnesses that decode the
    /// token (Codex, Pi's `openai-codex`).
    Jwt,
}

/// What an OAuth session of this route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthSpec {
    pub placeholder: OauthPlaceholder,
    pub token_url: String,
    pub client_id: String,
    /// Path prefixes (after the route's own path) the proxy forwards with
    /// this login; every other request gets 403. A subscription login can
    /// do more than the harness needs (an endpoint that creates an API key
    /// and returns it in the answer): only the inference API is reached.
    pub paths: Vec<String>,
}

impl std::fmt::Display for OauthPlaceholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OauthPlaceholder::Prefix(p) => write!(f, "{p}av-<random>"),
            OauthPlaceholder::Jwt => {
                f.write_str("a JWT with the login's account claims and signature av-<random>")
            }
        }
    }
}

impl Route {
    /// Where the secret comes from, for `check` and `explain`: the source,
    /// and for Codex's `auth.json` which of its two modes.
    pub fn source_label(&self) -> String {
        match &self.from {
            SecretSource::File {
                format: FileFormat::CodexAuth,
                ..
            } if self.oauth.is_some() => format!("{} \"tokens\" (ChatGPT login)", self.from),
            SecretSource::File {
                format: FileFormat::CodexAuth,
                ..
            } => format!("{} \"OPENAI_API_KEY\"", self.from),
            _ => self.from.to_string(),
        }
    }
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
            SecretSource::File {
                path,
                format,
                pointer,
                provider,
            } => {
                write!(f, "{} ({})", path.display(), format.as_str())?;
                if let Some(p) = pointer {
                    write!(f, " at {p}")?;
                }
                if let Some(p) = provider {
                    write!(f, " entry {p:?}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseUrl::Env(v) => write!(f, "environment variable {v}"),
            BaseUrl::PiModels { path, provider } => {
                write!(f, "{} providers.{provider}.baseUrl", path.display())
            }
            BaseUrl::EnvJson { var, pointer } => {
                write!(f, "environment variable {var} (JSON) at {pointer}")
            }
        }
    }
}

/// Validate and expand `[proxy]`. `harness_uid` is the harness's uid when the
/// policy gives it as numbers (a name is checked by agent-init at `run`).
pub(crate) fn resolve(
    raw: &RawProxy,
    harness_uid: Option<u32>,
    at: &dyn Fn(&Spanned<String>, ErrorKind) -> PolicyError,
    ctx: &ExpandContext,
) -> Result<Proxy, PolicyError> {
    let invalid = |s: &Spanned<String>, m: String| at(s, ErrorKind::Invalid(m));
    let path = |s: &Spanned<String>| expand::absolute_path(s.get_ref(), ctx).map_err(|k| at(s, k));
    let (uid, gid) = match &raw.user {
        None => DEFAULT_PROXY_USER,
        Some(s) => {
            let ids = s
                .get_ref()
                .split_once(':')
                .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
            let Some((uid, gid)) = ids else {
                return Err(invalid(
                    s,
                    format!(
                        "proxy.user {:?}: expected `uid:gid` with numbers, like \"64990:64990\"",
                        s.get_ref()
                    ),
                ));
            };
            if uid == 0 || gid == 0 {
                return Err(invalid(
                    s,
                    "proxy.user is root: the proxy holds the real credentials and must run as a uid of its own, like \"64990:64990\"".into(),
                ));
            }
            if Some(uid) == harness_uid {
                return Err(invalid(
                    s,
                    format!(
                        "proxy.user has the harness's uid {uid}: the harness could then read the proxy's memory and state; use a uid of its own, like \"64990:64990\""
                    ),
                ));
            }
            (uid, gid)
        }
    };
    let state_dir = match &raw.state_dir {
        None => PathBuf::from(DEFAULT_PROXY_STATE_DIR),
        Some(s) => {
            let p = path(s)?;
            if p == std::path::Path::new("/") {
                return Err(invalid(s, "proxy.state_dir cannot be `/`".into()));
            }
            p
        }
    };
    let mut routes: Vec<Route> = Vec::new();
    for r in &raw.route {
        let route = resolve_route(r, &invalid, &path)?;
        if routes.iter().any(|o| o.name == route.name) {
            return Err(invalid(
                &r.name,
                format!(
                    "a second route named {:?}; give each route its own name",
                    route.name
                ),
            ));
        }
        routes.push(route);
    }
    group_by_point(&mut routes, &raw.route, &invalid)?;
    Ok(Proxy {
        mode: raw.mode,
        uid,
        gid,
        state_dir,
        routes,
    })
}

/// Routes pointed by the same variable (or `models.json` entry) share one
/// path on the proxy, the first one's: the harness has one base URL for all
/// of them. So they must share the upstream too; a base URL the user sets in
/// that variable becomes the upstream of all of them.
fn group_by_point(
    routes: &mut [Route],
    raw: &[RawRoute],
    invalid: &Invalid<'_>,
) -> Result<(), PolicyError> {
    for i in 0..routes.len() {
        let Some(first) = routes[..i].iter().find(|o| o.point == routes[i].point) else {
            continue;
        };
        if first.upstream != routes[i].upstream {
            return Err(invalid(
                &raw[i].upstream,
                format!(
                    "route {:?} is pointed by {} like route {:?}, so the harness reaches both through one path on the proxy, but its upstream {} differs from {}; give routes that share `point` the same upstream (a base URL the user sets there becomes the upstream of all of them), or point this one elsewhere",
                    routes[i].name, routes[i].point, first.name, routes[i].upstream, first.upstream
                ),
            ));
        }
        routes[i].path = first.path.clone();
    }
    Ok(())
}

type Invalid<'a> = dyn Fn(&Spanned<String>, String) -> PolicyError + 'a;
type PathOf<'a> = dyn Fn(&Spanned<String>) -> Result<PathBuf, PolicyError> + 'a;

fn resolve_route(
    r: &RawRoute,
    invalid: &Invalid<'_>,
    path: &PathOf<'_>,
) -> Result<Route, PolicyError> {
    let name = r.name.get_ref();
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(invalid(
            &r.name,
            format!(
                "route name {name:?}: expected 1 to 64 of `a-z`, `0-9`, `-`, `_` (it is also the path prefix /{name})"
            ),
        ));
    }
    let upstream = url(&r.upstream, invalid)?;
    let from = resolve_from(&r.from, &r.name, invalid, path)?;
    let point = resolve_point(&r.point, &r.name, invalid, path)?;
    let oauth = match &r.oauth {
        None => None,
        Some(o) => Some(OauthSpec {
            placeholder: oauth_placeholder(o, &r.name, invalid)?,
            token_url: url(&o.token_url, invalid)?,
            client_id: nonempty(&o.client_id, "oauth.client_id", invalid)?,
            paths: oauth_paths(o, &r.name, invalid)?,
        }),
    };
    let format = match &from {
        SecretSource::Env(_) => None,
        SecretSource::File { format, .. } => Some(*format),
    };
    // A Codex auth.json route is one of its two modes: the API key, or
    // (with `oauth`) the ChatGPT login.
    let may_be_key = match format {
        Some(FileFormat::ClaudeCredentials) => false,
        Some(FileFormat::CodexAuth) => oauth.is_none(),
        _ => true,
    };
    let may_be_oauth = matches!(
        format,
        Some(FileFormat::PiAuth | FileFormat::ClaudeCredentials | FileFormat::CodexAuth)
    );
    if format == Some(FileFormat::CodexAuth)
        && r.oauth.is_some()
        && let Some(h) = r.header
    {
        return Err(invalid(
            &r.name,
            format!(
                "route {name:?} reads Codex's ChatGPT login (it has `oauth`) but also sets header = {:?}; a codex-auth route is either the API key (`header`) or the ChatGPT login (`oauth`): make two routes",
                h.as_str()
            ),
        ));
    }
    let placeholder = match (&r.placeholder, may_be_key) {
        (Some(p), true) => Some(placeholder_prefix(p, invalid)?),
        (None, true) => {
            return Err(invalid(
                &r.name,
                format!(
                    "route {name:?} can carry an API key but has no `placeholder`; add the provider's key prefix, like placeholder = \"sk-\""
                ),
            ));
        }
        (_, false) => None,
    };
    if may_be_key && r.header.is_none() {
        return Err(invalid(
            &r.name,
            format!(
                "route {name:?} can carry an API key but has no `header`; add header = \"x-api-key\", \"authorization\" or \"x-goog-api-key\""
            ),
        ));
    }
    let must_be_oauth = matches!(
        &from,
        SecretSource::File { format, .. } if *format == FileFormat::ClaudeCredentials
    );
    if must_be_oauth && oauth.is_none() {
        return Err(invalid(
            &r.name,
            format!(
                "route {name:?} reads a Claude Code login but has no `oauth`; add oauth = {{ placeholder = \"...\", token_url = \"...\", client_id = \"...\" }}"
            ),
        ));
    }
    if !may_be_oauth && r.oauth.is_some() {
        let why = if format == Some(FileFormat::OpencodeAuth) {
            "OpenCode's OAuth logins cannot be routed (its ChatGPT plugin sends requests to a fixed chatgpt.com URL and refreshes the token itself); route its `api` entries only"
        } else {
            "`oauth` only goes with a pi-auth, claude-credentials or codex-auth file"
        };
        return Err(invalid(&r.name, format!("route {name:?}: {why}")));
    }
    Ok(Route {
        path: format!("/{name}"),
        name: name.clone(),
        upstream,
        header: if may_be_key { r.header } else { None },
        placeholder,
        from,
        point,
        oauth,
    })
}

fn resolve_from(
    f: &RawFrom,
    name: &Spanned<String>,
    invalid: &Invalid<'_>,
    path: &PathOf<'_>,
) -> Result<SecretSource, PolicyError> {
    match (&f.env, &f.file) {
        (Some(e), None) => {
            if f.format.is_some() || f.pointer.is_some() || f.provider.is_some() {
                return Err(invalid(
                    e,
                    "`from.env` stands alone: format, pointer and provider go with `from.file`"
                        .into(),
                ));
            }
            Ok(SecretSource::Env(env_name(e, invalid)?))
        }
        (None, Some(file)) => {
            let format = f.format.unwrap_or(FileFormat::Json);
            let pointer = match (&f.pointer, format) {
                (Some(p), FileFormat::Json) => {
                    if !p.get_ref().starts_with('/') {
                        return Err(invalid(
                            p,
                            format!(
                                "JSON pointer {:?}: expected it to start with `/`, like \"/anthropic/key\"",
                                p.get_ref()
                            ),
                        ));
                    }
                    Some(p.get_ref().clone())
                }
                (None, FileFormat::Json) => {
                    return Err(invalid(
                        file,
                        "a `format = \"json\"` source needs `pointer = \"/path/to/key\"`".into(),
                    ));
                }
                (Some(p), _) => {
                    return Err(invalid(
                        p,
                        "`pointer` only goes with `format = \"json\"`".into(),
                    ));
                }
                (None, _) => None,
            };
            let by_provider = matches!(format, FileFormat::PiAuth | FileFormat::OpencodeAuth);
            let provider = match &f.provider {
                Some(p) if by_provider => Some(nonempty(p, "from.provider", invalid)?),
                None if by_provider => {
                    return Err(invalid(
                        file,
                        format!(
                            "a `format = \"{}\"` source needs `provider = \"anthropic\"` (the auth.json entry)",
                            format.as_str()
                        ),
                    ));
                }
                Some(p) => {
                    return Err(invalid(
                        p,
                        "`provider` only goes with `format = \"pi-auth\"` or `\"opencode-auth\"`"
                            .into(),
                    ));
                }
                None => None,
            };
            Ok(SecretSource::File {
                path: path(file)?,
                format,
                pointer,
                provider,
            })
        }
        _ => Err(invalid(
            name,
            "`from` needs exactly one of `env = \"NAME\"` or `file = \"PATH\"`".into(),
        )),
    }
}

fn resolve_point(
    p: &RawPoint,
    name: &Spanned<String>,
    invalid: &Invalid<'_>,
    path: &PathOf<'_>,
) -> Result<BaseUrl, PolicyError> {
    if let Some(var) = &p.env_json {
        let Some(ptr) = &p.pointer else {
            return Err(invalid(
                var,
                "`point.env_json` needs `pointer = \"/provider/<id>/options/baseURL\"` (where the base URL goes in the JSON)".into(),
            ));
        };
        if p.env.is_some() || p.pi_models.is_some() || p.provider.is_some() {
            return Err(invalid(
                var,
                "`point.env_json` goes with `pointer` only".into(),
            ));
        }
        let pointer = ptr.get_ref();
        if !pointer.starts_with('/')
            || pointer.len() < 2
            || pointer.split('/').skip(1).any(str::is_empty)
        {
            return Err(invalid(
                ptr,
                format!(
                    "JSON pointer {pointer:?}: expected non-empty segments after a leading `/`, like \"/provider/anthropic/options/baseURL\""
                ),
            ));
        }
        return Ok(BaseUrl::EnvJson {
            var: env_name(var, invalid)?,
            pointer: pointer.clone(),
        });
    }
    if let Some(ptr) = &p.pointer {
        return Err(invalid(
            ptr,
            "`point.pointer` only goes with `env_json`".into(),
        ));
    }
    match (&p.env, &p.pi_models, &p.provider) {
        (Some(e), None, None) => Ok(BaseUrl::Env(env_name(e, invalid)?)),
        (None, Some(m), Some(prov)) => Ok(BaseUrl::PiModels {
            path: path(m)?,
            provider: nonempty(prov, "point.provider", invalid)?,
        }),
        (None, Some(m), None) => Err(invalid(
            m,
            "`point.pi_models` needs `provider = \"...\"` (the models.json provider)".into(),
        )),
        _ => Err(invalid(
            name,
            "`point` needs exactly one of `env = \"NAME\"`, `pi_models = \"PATH\", provider = \"...\"` or `env_json = \"NAME\", pointer = \"/...\"`".into(),
        )),
    }
}

fn url(s: &Spanned<String>, invalid: &Invalid<'_>) -> Result<String, PolicyError> {
    let v = s.get_ref();
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !v.contains(char::is_whitespace) => {
            Ok(v.trim_end_matches('/').to_string())
        }
        _ => Err(invalid(
            s,
            format!("URL {v:?}: expected https://HOST[/PATH] (http:// only to a loopback host)"),
        )),
    }
}

fn oauth_placeholder(
    o: &RawOauth,
    name: &Spanned<String>,
    invalid: &Invalid<'_>,
) -> Result<OauthPlaceholder, PolicyError> {
    let jwt = o.jwt.as_ref().is_some_and(|j| *j.get_ref());
    match (&o.placeholder, jwt) {
        (Some(p), false) => Ok(OauthPlaceholder::Prefix(placeholder_prefix(p, invalid)?)),
        (None, true) => Ok(OauthPlaceholder::Jwt),
        (Some(p), true) => Err(invalid(
            p,
            "`oauth.placeholder` and `oauth.jwt = true` exclude each other: a JWT placeholder has no prefix".into(),
        )),
        (None, false) => Err(invalid(
            name,
            "`oauth` needs `placeholder = \"<token prefix>\"`, or `jwt = true` for a harness that decodes its access token".into(),
        )),
    }
}

/// `oauth.paths`: path prefixes that are plain paths
/// ([`policy_core::proxy_path::is_plain_path`]: an encoded separator or dot
/// could reach another path upstream); default [`DEFAULT_OAUTH_PATHS`].
fn oauth_paths(
    o: &RawOauth,
    name: &Spanned<String>,
    invalid: &Invalid<'_>,
) -> Result<Vec<String>, PolicyError> {
    let Some(paths) = &o.paths else {
        return Ok(DEFAULT_OAUTH_PATHS.iter().map(|p| p.to_string()).collect());
    };
    let at = Spanned::new(paths.span(), String::new());
    if paths.get_ref().is_empty() {
        return Err(invalid(
            &at,
            format!(
                "route {:?}: empty `oauth.paths`; list the API paths the harness calls, like [\"/v1/\"]",
                name.get_ref()
            ),
        ));
    }
    for p in paths.get_ref() {
        if !policy_core::proxy_path::is_plain_path(p) {
            return Err(invalid(
                &at,
                format!(
                    "oauth.paths entry {p:?}: expected an absolute path prefix without `%`, `\\`, `;`, `.` or `..` segments, like \"/v1/\""
                ),
            ));
        }
    }
    Ok(paths.get_ref().clone())
}

fn placeholder_prefix(s: &Spanned<String>, invalid: &Invalid<'_>) -> Result<String, PolicyError> {
    let v = s.get_ref();
    if v.is_empty() || v.len() > 32 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            s,
            format!(
                "placeholder {v:?}: expected the provider's key prefix, 1 to 32 visible ASCII characters, like \"sk-ant-api03-\""
            ),
        ));
    }
    Ok(v.clone())
}

fn nonempty(
    s: &Spanned<String>,
    what: &'static str,
    invalid: &Invalid<'_>,
) -> Result<String, PolicyError> {
    if s.get_ref().is_empty() {
        return Err(invalid(
            s,
            format!("empty {what}; expected a non-empty value"),
        ));
    }
    Ok(s.get_ref().clone())
}

fn env_name(s: &Spanned<String>, invalid: &Invalid<'_>) -> Result<String, PolicyError> {
    let v = s.get_ref();
    let ok = !v.is_empty()
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(invalid(
            s,
            format!(
                "environment variable name {v:?} is not valid; expected letters, digits and `_`"
            ),
        ));
    }
    Ok(v.clone())
}

impl Proxy {
    /// The section as TOML for the effective policy (every path expanded).
    pub(crate) fn write_effective(&self, o: &mut String, q: &dyn Fn(&str) -> String) {
        let s = crate::resolved::toml_string;
        let _ = writeln!(o, "\n[proxy]\nmode = {}", s(self.mode.as_str()));
        let _ = writeln!(o, "user = {}", s(&format!("{}:{}", self.uid, self.gid)));
        let _ = writeln!(o, "state_dir = {}", q(&self.state_dir.to_string_lossy()));
        for r in &self.routes {
            let _ = writeln!(o, "\n[[proxy.route]]\nname = {}", s(&r.name));
            let _ = writeln!(o, "upstream = {}", s(&r.upstream));
            if let Some(h) = r.header {
                let _ = writeln!(o, "header = {}", s(h.as_str()));
            }
            if let Some(p) = &r.placeholder {
                let _ = writeln!(o, "placeholder = {}", s(p));
            }
            let from = match &r.from {
                SecretSource::Env(v) => format!("env = {}", s(v)),
                SecretSource::File {
                    path,
                    format,
                    pointer,
                    provider,
                } => {
                    let mut t = format!(
                        "file = {}, format = {}",
                        q(&path.to_string_lossy()),
                        s(format.as_str())
                    );
                    if let Some(p) = pointer {
                        let _ = write!(t, ", pointer = {}", s(p));
                    }
                    if let Some(p) = provider {
                        let _ = write!(t, ", provider = {}", s(p));
                    }
                    t
                }
            };
            let _ = writeln!(o, "from = {{ {from} }}");
            let point = match &r.point {
                BaseUrl::Env(v) => format!("env = {}", s(v)),
                BaseUrl::PiModels { path, provider } => format!(
                    "pi_models = {}, provider = {}",
                    q(&path.to_string_lossy()),
                    s(provider)
                ),
                BaseUrl::EnvJson { var, pointer } => {
                    format!("env_json = {}, pointer = {}", s(var), s(pointer))
                }
            };
            let _ = writeln!(o, "point = {{ {point} }}");
            if let Some(a) = &r.oauth {
                let placeholder = match &a.placeholder {
                    OauthPlaceholder::Prefix(p) => format!("placeholder = {}", s(p)),
                    OauthPlaceholder::Jwt => "jwt = true".to_string(),
                };
                let paths: Vec<String> = a.paths.iter().map(|p| s(p)).collect();
                let _ = writeln!(
                    o,
                    "oauth = {{ {placeholder}, token_url = {}, client_id = {}, paths = [{}] }}",
                    s(&a.token_url),
                    s(&a.client_id),
                    paths.join(", ")
                );
            }
        }
    }
}
