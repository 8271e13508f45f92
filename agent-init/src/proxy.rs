//! The proxy step (after seeding, while root, before the harness forks):
//! the real credentials leave the harness's reach.
//!
//! 1. Read every credential `[proxy]` names ([`credential`]): a variable of
//!    the harness environment, or a vault file (a JSON pointer, Pi's
//!    `auth.json` entry, Claude Code's `.credentials.json`). A route whose
//!    source is absent is not served.
//! 2. Mint a placeholder per route and start (256 bits, the provider's key
//!    prefix, the marker `av-`), build vault-proxy's config, prepare its
//!    state directory (0700, the proxy uid's) and start it ([`spawn`]) under
//!    its own uid with no capabilities, `no_new_privs` and the harness's
//!    seccomp filters; it reports `ready 127.0.0.1:PORT`.
//! 3. Show the harness only placeholders ([`harness_view`]): variables
//!    replaced, vault files rewritten atomically (an OAuth entry gets
//!    placeholder access and refresh tokens and an expiry in 2100, so the
//!    harness never refreshes), base URLs `http://127.0.0.1:PORT/<route>`.
//!
//! **Upstream.** A base URL the user already gave (the variable in the
//! harness environment, or `baseUrl` in Pi's `models.json`) becomes the
//! route's upstream, unless it is one agent-init wrote
//! (`http://127.0.0.1:N/<route>`, recognised by that exact shape).
//!
//! **The next start.** Seeding copies only missing files, so the vault file
//! now holds the previous start's placeholder. It is recognised by its shape
//! (the marker and 64 hex digits) and the real credential is read again from
//! the seed file the vault file was copied from (the `copy-missing` seed
//! whose target holds it). For an OAuth login the proxy then prefers its own
//! refreshed session in `state_dir` when it descends from that seed (the
//! proxy keeps the SHA-256 of the seed's refresh token), and takes the seed
//! when it is a newer login. When no seed has a real credential, an OAuth
//! route is still served, with no login in the proxy's config: the proxy
//! resumes the session it stored for that route (it stores a new login at
//! start and every rotation), or answers 503 when it has none, and a warning
//! says which (agent-init only checks that the state file exists; the proxy
//! reads it). An API-key route is served with no credential (503). Never a
//! fallback to the placeholder.
//!
//! **Routes sharing a base URL.** Routes pointed by the same variable (or
//! the same `models.json` entry) are one group on the proxy: one path (the
//! first route's name), one upstream, and the placeholder each request
//! carries picks the route (policy `Route::path`).
//!
//! **Without root** there is no second uid: the proxy would share the
//! harness's uid, and although a non-dumpable process under the harness's
//! seccomp filter (ptrace denied) is out of reach of `/proc/<pid>/mem` and
//! ptrace, its state directory and config would be files the harness uid
//! owns. `mode = "on"` is refused with the reason and the fix (start as root,
//! or run vault-proxy as a sidecar container).

pub mod credential;
pub mod harness_view;
pub mod spawn;

use crate::config::Identity;
use crate::error::Call;
use crate::log::{info, warning};
use credential::{Found, Origin};
use harness_view::Shown;
use policy::{BaseUrl, FileFormat, KeyHeader, OauthPlaceholder, ProxyMode, Route, SecretSource};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vault_proxy::config::{ApiKeyHeader, CredentialConfig, ProxyConfig, RouteConfig, Secret};

/// Where agent-init looks for the proxy when it is not next to agent-init.
pub const INSTALLED_BINARY: &str = "/usr/lib/agent-vault/vault-proxy";

/// What failed.
#[derive(Debug)]
pub enum ProxyError {
    /// `mode = "on"` but agent-init is not root.
    NotRoot,
    /// `[proxy] user` is the harness's uid.
    SameUid(u32),
    /// The binary is in neither place.
    NoBinary { next_to: PathBuf },
    /// Reading a credential source failed.
    Read(Call<std::io::Error>),
    /// A credential file is not what its format says.
    Json { path: PathBuf, why: String },
    /// The way to a credential file is a symlink the harness could have
    /// made: root would read or write where the harness points.
    Untrusted {
        path: PathBuf,
        why: crate::safe_path::WalkError,
    },
    /// Writing a harness file failed.
    Write(Call<std::io::Error>),
    /// `getrandom` failed.
    Random(Call<std::io::Error>),
    /// Only a previous start's placeholder was found (handled as a warning).
    Stale {
        source: String,
        seed: Option<PathBuf>,
        /// The placeholder is an OAuth login's (the proxy may hold its
        /// session): its access token (a placeholder: no secret; a JWT one
        /// carries the login's non-secret claims).
        login: Option<String>,
    },
    /// The config the policy leads to is refused by vault-proxy's rules.
    Config(vault_proxy::config::ConfigError),
    /// Preparing the proxy's state directory failed.
    StateDir(Call<std::io::Error>),
    /// Compiling the seccomp filters failed.
    Seccomp(crate::seccomp_layer::SeccompError),
    /// `pipe`, `fork` or `poll` failed.
    Spawn(Call<nix::Error>),
    /// The proxy did not report ready.
    Ready(String),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NotRoot => write!(
                f,
                "[proxy] mode = \"on\" needs agent-init started as root (the proxy needs a uid of its own, or the harness could reach its state); start the container as root, or run vault-proxy as a sidecar container (vault-proxy/README.md) and set [proxy] mode = \"off\""
            ),
            ProxyError::SameUid(u) => write!(
                f,
                "[proxy] user has the harness's uid {u}; give the proxy a uid of its own, like \"64990:64990\""
            ),
            ProxyError::NoBinary { next_to } => write!(
                f,
                "vault-proxy not found at {} nor {INSTALLED_BINARY}; install it there (the images copy it next to agent-init), or set [proxy] mode = \"off\"",
                next_to.display()
            ),
            ProxyError::Read(c) => write!(f, "{c}"),
            ProxyError::Json { path, why } => write!(f, "{}: {why}", path.display()),
            ProxyError::Untrusted { path, why } => write!(
                f,
                "{}: {why}; agent-init works on credential files and the proxy's state as root only through directories the harness cannot change or redirect. Fix: a real directory, not a symlink the harness made (and for [proxy] state_dir, a path whose directories are root's, such as the default /var/lib/agent-vault/proxy)",
                path.display()
            ),
            ProxyError::Write(c) => write!(f, "{c}"),
            ProxyError::Random(c) => write!(f, "{c}"),
            ProxyError::Stale { source, seed, .. } => match seed {
                Some(s) => write!(
                    f,
                    "{source} holds a placeholder from a previous start and {} has no real credential; log in on the host and mount the login there",
                    s.display()
                ),
                None => write!(
                    f,
                    "{source} holds a placeholder from a previous start and no [[seed]] copies it; log in again, or add a copy-missing seed for it"
                ),
            },
            ProxyError::Config(e) => write!(f, "vault-proxy {e}"),
            ProxyError::StateDir(c) => write!(f, "state_dir: {c}"),
            ProxyError::Seccomp(e) => write!(f, "{e}"),
            ProxyError::Spawn(c) => write!(f, "{c}"),
            ProxyError::Ready(why) => write!(f, "vault-proxy did not start: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Read(c) | ProxyError::Write(c) | ProxyError::Random(c) => Some(&c.source),
            ProxyError::StateDir(c) => Some(&c.source),
            ProxyError::Spawn(c) => Some(&c.source),
            ProxyError::Config(e) => Some(e),
            ProxyError::Seccomp(e) => Some(e),
            _ => None,
        }
    }
}

/// Where the real credential of a route comes from this start.
enum Supply {
    /// Read from its source (or, after a placeholder, from the seed).
    Found(Found, Origin),
    /// Only a previous start's placeholder of an OAuth login, and no seed
    /// with a login: the proxy resumes its stored session (or answers 503).
    Resume { previous: String },
    /// Only a previous start's placeholder of an API key: 503.
    Missing,
}

/// One route agent-init serves this start.
struct Active<'p> {
    route: &'p Route,
    supply: Supply,
    upstream: String,
    shown: Shown,
    placeholder: String,
}

/// The proxy step. `env` is the harness's environment (step 1's); it comes
/// back with placeholders and base URLs. Returns the running proxy, or
/// `None` when the policy turns the proxy off or no route has a credential.
pub fn proxy_step(
    policy: &policy::Policy,
    who: &Identity,
    root: bool,
    env: &mut BTreeMap<OsString, OsString>,
) -> Result<Option<spawn::Supervisor>, ProxyError> {
    let px = &policy.proxy;
    if px.mode == ProxyMode::Off {
        return Ok(None);
    }
    check_identity(policy, who, root)?;
    let binary = find_binary()?;
    let mut active = Vec::new();
    for route in &px.routes {
        if let Some(a) = activate(policy, route, env)? {
            active.push(a);
        }
    }
    warn_unroutable_opencode_logins(policy);
    warn_unrouted_codex_login(policy);
    if active.is_empty() {
        info!("[proxy] no route has a credential here; vault-proxy not started");
        return Ok(None);
    }
    // agent-init holds the listening socket and hands it to every start of
    // the proxy: the port is never free while the container runs, so no
    // tool can take it while a proxy that died is restarted.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ProxyError::Spawn(Call::of("bind 127.0.0.1:0", crate::error::io_errno(&e))))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ProxyError::Spawn(Call::of("getsockname", crate::error::io_errno(&e))))?;
    let config = ProxyConfig {
        listen: addr.to_string(),
        state_dir: px.state_dir.clone(),
        system_trust_file: None,
        routes: active.iter().map(route_config).collect(),
    };
    config.validate().map_err(ProxyError::Config)?;
    prepare_state_dir(&px.state_dir, px.uid, px.gid)?;
    let launch = spawn::Launch {
        binary,
        uid: px.uid,
        gid: px.gid,
        config,
        policy: policy.clone(),
        listener: listener.into(),
    };
    let started = spawn::start(&launch)?;
    let (pid, addr) = (started.pid, started.addr);
    let supervisor = spawn::Supervisor::new(launch, started);
    show_placeholders(&active, addr, who, env)?;
    warn_unrouted(policy, &active);
    let names: Vec<String> = active
        .iter()
        .map(|a| {
            let from = match &a.supply {
                Supply::Missing => "no credential: 503".to_string(),
                Supply::Resume { .. } => "the proxy's stored session".to_string(),
                Supply::Found(_, Origin::Seed(s)) => format!("seed {}", s.display()),
                Supply::Found(..) => a.route.from.to_string(),
            };
            if a.route.path.strip_prefix('/') == Some(a.route.name.as_str()) {
                format!("/{} ({from})", a.route.name)
            } else {
                format!("{} for {} ({from})", a.route.path, a.route.name)
            }
        })
        .collect();
    info!(
        "[proxy] vault-proxy pid {pid}, uid {}, on {addr}; routes {}; the harness sees placeholders only",
        px.uid,
        names.join(", ")
    );
    Ok(Some(supervisor))
}

/// Before anything is written: with the proxy on, agent-init must be root
/// (a second uid) and the proxy's uid must not be the harness's.
pub fn check_identity(
    policy: &policy::Policy,
    who: &Identity,
    root: bool,
) -> Result<(), ProxyError> {
    if policy.proxy.mode == ProxyMode::Off {
        return Ok(());
    }
    if !root {
        return Err(ProxyError::NotRoot);
    }
    if who.uid == policy.proxy.uid {
        return Err(ProxyError::SameUid(who.uid));
    }
    Ok(())
}

/// Next to this agent-init, else [`INSTALLED_BINARY`].
fn find_binary() -> Result<PathBuf, ProxyError> {
    let next_to = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("vault-proxy")))
        .unwrap_or_else(|| PathBuf::from("vault-proxy"));
    for p in [next_to.clone(), PathBuf::from(INSTALLED_BINARY)] {
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0) {
            return Ok(p);
        }
    }
    Err(ProxyError::NoBinary { next_to })
}

/// The route's credential, upstream and placeholders; `None` when its
/// source is absent.
fn activate<'p>(
    policy: &policy::Policy,
    route: &'p Route,
    env: &BTreeMap<OsString, OsString>,
) -> Result<Option<Active<'p>>, ProxyError> {
    let login = route.oauth.is_some();
    let supply = match credential::read_with_seed(policy, &route.from, login, env) {
        Ok(None) => return Ok(None),
        Ok(Some((f, o))) => Supply::Found(f, o),
        Err(ProxyError::Stale {
            source,
            seed,
            login: Some(previous),
        }) if route.oauth.is_some() => {
            let stored = policy.proxy.state_dir.join(format!("{}.json", route.name));
            if std::fs::symlink_metadata(&stored).is_ok() {
                let seed = seed.as_ref().map_or_else(
                    || "a copy-missing [[seed]] of it".to_string(),
                    |s| s.display().to_string(),
                );
                warning!(
                    "[proxy] route /{}: {source} holds a placeholder from a previous start and no seed has a login; served with the session the proxy stored in {} (a newer login mounted at {seed} replaces it)",
                    route.name,
                    stored.display()
                );
            } else {
                let e = ProxyError::Stale {
                    source,
                    seed,
                    login: None,
                };
                warning!(
                    "[proxy] route /{}: {e}; the proxy has no stored session ({} is missing), so it answers 503",
                    route.name,
                    stored.display()
                );
            }
            Supply::Resume { previous }
        }
        Err(e @ ProxyError::Stale { .. }) => {
            warning!("[proxy] route /{}: {e}; it answers 503", route.name);
            Supply::Missing
        }
        Err(e) => return Err(e),
    };
    let upstream = user_upstream(policy, route, env)?.unwrap_or_else(|| route.upstream.clone());
    let oauth = match &supply {
        Supply::Found(Found::Oauth { access, .. }, _) => Some(access.as_str()),
        Supply::Resume { previous } => Some(previous.as_str()),
        _ => None,
    };
    let (shown, placeholder) = if let Some(claims_from) = oauth {
        let Some(o) = &route.oauth else {
            return Err(ProxyError::Json {
                path: source_path(&route.from),
                why: format!(
                    "holds an OAuth login, but route /{} has no `oauth` (placeholder, token_url, client_id); add it to the policy",
                    route.name
                ),
            });
        };
        // A JWT placeholder carries the login's non-secret claims: from the
        // real token, or (resuming) from the previous start's placeholder,
        // which holds the same claims.
        let access = match &o.placeholder {
            OauthPlaceholder::Prefix(p) => credential::mint(p)?,
            OauthPlaceholder::Jwt => {
                credential::mint_jwt(claims_from).map_err(|why| ProxyError::Json {
                    path: source_path(&route.from),
                    why: format!("route /{}: {why}", route.name),
                })?
            }
        };
        let refresh = credential::mint("")?;
        (
            Shown::Oauth {
                access: access.clone(),
                refresh,
            },
            access,
        )
    } else {
        let k = credential::mint(route.placeholder.as_deref().unwrap_or_default())?;
        (Shown::Key(k.clone()), k)
    };
    Ok(Some(Active {
        route,
        supply,
        upstream,
        shown,
        placeholder,
    }))
}

fn source_path(s: &SecretSource) -> PathBuf {
    match s {
        SecretSource::File { path, .. } => path.clone(),
        SecretSource::Env(v) => PathBuf::from(format!("${v}")),
    }
}

/// A base URL agent-init wrote for `route` on an earlier start.
fn is_ours(url: &str, route: &Route) -> bool {
    let Some(rest) = url.strip_prefix("http://127.0.0.1:") else {
        return false;
    };
    let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    port.parse::<u16>().is_ok() && path.trim_end_matches('/') == route.path
}

/// The base URL the user already gave the harness for this route, from a
/// source the harness cannot write: agent-init's environment (the
/// container's), or for Pi's `models.json` the seed file it is copied
/// from (root-only). The vault's own `models.json` is the harness's to
/// write (Pi's in-process tools can, at a model's request): a base URL
/// found only there would send the real credential wherever it says at the
/// next start, so it is never taken, only warned about.
fn user_upstream(
    policy: &policy::Policy,
    route: &Route,
    env: &BTreeMap<OsString, OsString>,
) -> Result<Option<String>, ProxyError> {
    let given = |u: Option<String>| {
        u.filter(|u| !u.is_empty() && !is_ours(u, route))
            .map(|u| u.trim_end_matches('/').to_string())
    };
    match &route.point {
        BaseUrl::Env(v) => Ok(given(
            env.get(std::ffi::OsStr::new(v))
                .and_then(|s| s.to_str())
                .map(str::to_string),
        )),
        BaseUrl::PiModels { path, provider } => {
            let seeded = match credential::seed_source_of(policy, path) {
                Some(seed) => given(harness_view::pi_base_url(&seed, provider)?),
                None => None,
            };
            if let Some(vault) = given(harness_view::pi_base_url(path, provider)?)
                && seeded.as_ref() != Some(&vault)
            {
                warning!(
                    "[proxy] route /{}: {} gives provider \"{provider}\" the base URL {vault}, which the harness may have written; the proxy does not send the credential there ({}). Fix: put the base URL in the seed's models.json, or in the route's `upstream` in the policy",
                    route.name,
                    path.display(),
                    seeded.as_deref().map_or_else(
                        || format!("it uses {}", route.upstream),
                        |s| format!("it uses the seed's {s}")
                    )
                );
            }
            Ok(seeded)
        }
        BaseUrl::EnvJson { var, pointer } => {
            let doc = env.get(std::ffi::OsStr::new(var)).and_then(|s| s.to_str());
            Ok(given(harness_view::env_json_url(var, doc, pointer)?))
        }
    }
}

fn route_config(a: &Active<'_>) -> RouteConfig {
    let oauth = |login: Option<(&str, &str, u64)>| {
        let o = a.route.oauth.as_ref().expect("checked in activate");
        CredentialConfig::Oauth {
            access: login.map(|l| Secret::new(l.0)),
            refresh: login.map(|l| Secret::new(l.1)),
            expires_at_ms: login.map(|l| l.2),
            token_url: o.token_url.clone(),
            client_id: o.client_id.clone(),
            paths: o.paths.clone(),
        }
    };
    let credential = match &a.supply {
        Supply::Missing => CredentialConfig::None {},
        Supply::Resume { .. } => oauth(None),
        Supply::Found(Found::Key(k), _) => CredentialConfig::ApiKey {
            header: match a.route.header.unwrap_or(KeyHeader::Authorization) {
                KeyHeader::XApiKey => ApiKeyHeader::XApiKey,
                KeyHeader::Authorization => ApiKeyHeader::Authorization,
                KeyHeader::XGoogApiKey => ApiKeyHeader::XGoogApiKey,
            },
            key: Secret::new(k.clone()),
        },
        Supply::Found(
            Found::Oauth {
                access,
                refresh,
                expires_ms,
            },
            _,
        ) => oauth(Some((access, refresh, *expires_ms))),
    };
    RouteConfig {
        name: a.route.name.clone(),
        prefix: a.route.path.clone(),
        upstream: a.upstream.clone(),
        upstream_ca_file: None,
        placeholder: Secret::new(a.placeholder.clone()),
        inject_headers: BTreeMap::new(),
        credential,
    }
}

/// The proxy's state directory, created when missing (parents root's,
/// 0755) and made the proxy uid's, 0700. Every directory above it must be
/// one only root can change (`safe_path`'s `require_trusted`): the harness
/// must not be able to rename it, swap it or plant files in it, and root
/// must not chown where a symlink points (the last component is never
/// followed).
fn prepare_state_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), ProxyError> {
    use crate::safe_path::{Create, Walk, WalkError, open_dir};
    use nix::sys::stat::Mode;
    let err = |c: &'static str, e: nix::errno::Errno| {
        ProxyError::StateDir(Call::at(c, dir, std::io::Error::from(e)))
    };
    let walk = Walk {
        create: Some(Create {
            mode: 0o755,
            owner: None,
        }),
        require_trusted: Some(0),
        follow_last: false,
    };
    let opened = open_dir(dir, walk).map_err(|why| match why {
        WalkError::Errno { errno, .. } => err("open or create", errno),
        why => ProxyError::Untrusted {
            path: dir.to_path_buf(),
            why,
        },
    })?;
    nix::unistd::fchown(
        &opened.fd,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| err("chown", e))?;
    nix::sys::stat::fchmod(&opened.fd, Mode::from_bits_truncate(0o700))
        .map_err(|e| err("chmod", e))?;
    Ok(())
}

/// Placeholders and base URLs into the harness's environment and files.
fn show_placeholders(
    active: &[Active<'_>],
    addr: std::net::SocketAddr,
    who: &Identity,
    env: &mut BTreeMap<OsString, OsString>,
) -> Result<(), ProxyError> {
    for a in active {
        let url = format!("http://{addr}{}", a.route.path);
        if !matches!(a.supply, Supply::Missing) {
            match (&a.route.from, &a.shown) {
                (SecretSource::Env(v), Shown::Key(k)) => {
                    env.insert(v.into(), k.into());
                }
                (src, shown) => harness_view::write_placeholder(src, shown)?,
            }
        }
        // Routes sharing a pointer share `path`: the same URL for each.
        match &a.route.point {
            BaseUrl::Env(v) => {
                env.insert(v.into(), url.into());
            }
            BaseUrl::PiModels { path, provider } => {
                harness_view::set_pi_base_url(path, provider, &url, (who.uid, who.gid))?
            }
            BaseUrl::EnvJson { var, pointer } => {
                let doc = env.get(std::ffi::OsStr::new(var)).and_then(|s| s.to_str());
                let next = harness_view::set_env_json_url(var, doc, pointer, &url)?;
                env.insert(var.into(), next.into());
            }
        }
    }
    Ok(())
}

/// An OpenCode `auth.json` entry a route names that is not an API key (an
/// OAuth login, a `wellknown` token) keeps its real credential: OpenCode's
/// ChatGPT plugin sends it to a fixed URL and refreshes it itself, so no
/// base URL can bring it to the proxy. Say so, whether or not the proxy starts.
fn warn_unroutable_opencode_logins(policy: &policy::Policy) {
    for r in &policy.proxy.routes {
        let SecretSource::File {
            path,
            format: FileFormat::OpencodeAuth,
            provider: Some(p),
            ..
        } = &r.from
        else {
            continue;
        };
        let kind = credential::read_json(path)
            .ok()
            .flatten()
            .and_then(|v| Some(v.get(p.as_str())?.get("type")?.as_str()?.to_string()));
        match kind.as_deref() {
            None | Some("api") => {}
            Some("oauth") => warning!(
                "[proxy] {} entry {p:?} is an OpenCode oauth login: it cannot be routed (OpenCode sends it to a fixed chatgpt.com URL and refreshes it itself), so the harness keeps the real token; use an API key with OpenCode, or Codex or Pi for a ChatGPT login",
                path.display()
            ),
            Some(other) => warning!(
                "[proxy] {} entry {p:?} is an OpenCode {other:?} entry, not an API key: it is not routed and the harness keeps it; use an API key with OpenCode",
                path.display()
            ),
        }
    }
}

/// A Pi or OpenCode `auth.json` entry no route covers keeps its real
/// credential: say so.
fn warn_unrouted(policy: &policy::Policy, active: &[Active<'_>]) {
    let mut files: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
    for r in &policy.proxy.routes {
        if let SecretSource::File {
            path,
            format: FileFormat::PiAuth | FileFormat::OpencodeAuth,
            provider: Some(p),
            ..
        } = &r.from
        {
            files.entry(path.as_path()).or_default().push(p);
        }
    }
    for (path, routed) in files {
        if !active
            .iter()
            .any(|a| matches!(&a.route.from, SecretSource::File { path: p, .. } if p == path))
        {
            continue;
        }
        let Ok(Some(v)) = credential::read_json(path) else {
            continue;
        };
        let Some(obj) = v.as_object() else { continue };
        for k in obj.keys().filter(|k| !routed.contains(&k.as_str())) {
            warning!(
                "[proxy] {} entry {k:?} has no [[proxy.route]]: the harness keeps its real credential; add a route for it",
                path.display()
            );
        }
    }
}

/// A Codex `auth.json` holding a ChatGPT login (`"tokens"`) that no route
/// with `oauth` reads keeps its real token (the built-in policy routes only
/// its API-key mode: README, "Codex"). Say so, whether or not the proxy
/// starts.
fn warn_unrouted_codex_login(policy: &policy::Policy) {
    let mut paths: BTreeMap<&Path, bool> = BTreeMap::new();
    for r in &policy.proxy.routes {
        if let SecretSource::File {
            path,
            format: FileFormat::CodexAuth,
            ..
        } = &r.from
        {
            *paths.entry(path.as_path()).or_default() |= r.oauth.is_some();
        }
    }
    for (path, login_routed) in paths {
        if login_routed {
            continue;
        }
        let Ok(Some(v)) = credential::read_json(path) else {
            continue;
        };
        let real = v
            .pointer("/tokens/access_token")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| !t.is_empty() && !credential::is_placeholder(t));
        if real {
            warning!(
                "[proxy] {} holds a Codex ChatGPT login, which no route serves (a current Codex sends its requests past OPENAI_BASE_URL): Codex keeps its real token; use an API key with Codex to keep it out of the harness's reach",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_shape_agent_init_writes_is_ours() {
        let route = Route {
            name: "pi-anthropic".into(),
            upstream: "https://api.anthropic.com".into(),
            header: Some(KeyHeader::XApiKey),
            placeholder: Some("sk-ant-api03-".into()),
            from: SecretSource::Env("X".into()),
            point: BaseUrl::Env("Y".into()),
            oauth: None,
            path: "/pi-anthropic".into(),
        };
        assert!(is_ours("http://127.0.0.1:41234/pi-anthropic", &route));
        assert!(!is_ours("http://127.0.0.1:41234/other", &route));
        assert!(!is_ours("http://127.0.0.1:41234/pi-anthropic/v1", &route));
        assert!(!is_ours("https://127.0.0.1:1/pi-anthropic", &route));
        assert!(!is_ours("http://localhost:1/pi-anthropic", &route));
    }
}
