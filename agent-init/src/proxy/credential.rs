//! Reading a route's real credential from its source, and the per-start
//! placeholders that take its place.
//!
//! A placeholder is the provider's key prefix, the marker `av-`, and 64 hex
//! digits (256 bits from `getrandom`): `sk-ant-api03-av-3f…`. The marker lets
//! the next start recognise a vault file that holds a previous start's
//! placeholder ([`is_placeholder`]); the real credential is then taken from
//! the seed source again ([`read_with_seed`]).

use super::ProxyError;
use crate::error::Call;
use policy::{FileFormat, SecretSource, SeedMode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Placeholder expiry for OAuth entries: 2100-01-01 in Unix ms, so the
/// harness never refreshes (the proxy does).
pub const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

/// The marker between a placeholder's prefix and its random part.
pub const MARKER: &str = "av-";

/// A real credential as found.
#[derive(Clone)]
pub enum Found {
    Key(String),
    Oauth {
        access: String,
        refresh: String,
        expires_ms: u64,
    },
}

impl Found {
    /// Whether this is a previous start's placeholder rather than a credential.
    pub fn is_placeholder(&self) -> bool {
        match self {
            Found::Key(k) => is_placeholder(k),
            Found::Oauth {
                access, refresh, ..
            } => is_placeholder(access) || is_placeholder(refresh),
        }
    }
}

/// `prefix` + `av-` + 64 lowercase hex digits from `getrandom`.
pub fn mint(prefix: &str) -> Result<String, ProxyError> {
    let mut b = [0u8; 32];
    crate::sys::getrandom(&mut b).map_err(|e| ProxyError::Random(Call::of("getrandom", e)))?;
    let mut s = String::with_capacity(prefix.len() + MARKER.len() + 64);
    s.push_str(prefix);
    s.push_str(MARKER);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    Ok(s)
}

/// A JWT-shaped placeholder for the real JWT `real`: its non-secret claims,
/// `exp` in 2100, and `av-` + 64 random hex digits as the signature
/// ([`vault_proxy::jwt::placeholder`]).
pub fn mint_jwt(real: &str) -> Result<String, String> {
    let claims = vault_proxy::jwt::claims(real).ok_or(
        "the access token is not a JWT, but the route's `oauth` has jwt = true; log in again on the host",
    )?;
    let signature = mint("").map_err(|e| e.to_string())?;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    vault_proxy::jwt::placeholder(&claims, now_s, FAR_FUTURE_MS / 1000, &signature)
        .ok_or_else(|| "cannot build the JWT placeholder".to_string())
}

/// A string agent-init minted: ends in `av-` + 64 lowercase hex digits, the
/// marker at the start, after a `-`, or after a `.` (the signature segment of
/// a JWT-shaped placeholder).
pub fn is_placeholder(s: &str) -> bool {
    let Some(head) = s.len().checked_sub(64 + MARKER.len()) else {
        return false;
    };
    let (before, rest) = s.split_at(head);
    rest.starts_with(MARKER)
        && rest[MARKER.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && (before.is_empty() || before.ends_with('-') || before.ends_with('.'))
}

/// Read a JSON file as root, refusing a symlink (the harness owns the vault directories).
pub fn read_json(path: &Path) -> Result<Option<Value>, ProxyError> {
    let Some((dir, name)) = open_parent(path)? else {
        return Ok(None);
    };
    let fd = match nix::fcntl::openat(
        &dir,
        name.as_os_str(),
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_NONBLOCK
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::ELOOP) => return Err(not_a_file(path)),
        Err(e) => return Err(ProxyError::Read(Call::at("open", path, e.into()))),
    };
    let st = nix::sys::stat::fstat(&fd)
        .map_err(|e| ProxyError::Read(Call::at("fstat", path, e.into())))?;
    if !crate::safe_path::is_type(&st, nix::sys::stat::SFlag::S_IFREG) {
        return Err(not_a_file(path));
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut text)
        .map_err(|e| ProxyError::Read(Call::at("read", path, e)))?;
    let v = serde_json::from_slice(&text).map_err(|e| ProxyError::Json {
        path: path.to_path_buf(),
        // Line and column only: serde_json's messages never quote the value.
        why: format!("not valid JSON (line {}, column {})", e.line(), e.column()),
    })?;
    Ok(Some(v))
}

fn not_a_file(path: &Path) -> ProxyError {
    ProxyError::Json {
        path: path.to_path_buf(),
        why: "not a regular file (a symlink or a directory)".into(),
    }
}

/// The directory holding `path`, opened from `/` without following a
/// symlink the harness could have made (root-owned ones in root-only
/// directories, as an image's, are followed: `safe_path`), and the file's
/// name in it. `None`: the directory does not exist.
pub fn open_parent(
    path: &Path,
) -> Result<Option<(std::os::fd::OwnedFd, std::ffi::OsString)>, ProxyError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(not_a_file(path));
    };
    let walk = crate::safe_path::Walk {
        follow_last: true,
        ..Default::default()
    };
    match crate::safe_path::open_dir(dir, walk) {
        Ok(o) => Ok(Some((o.fd, name.to_os_string()))),
        Err(e) if e.errno() == nix::errno::Errno::ENOENT => Ok(None),
        Err(why) => Err(ProxyError::Untrusted {
            path: path.to_path_buf(),
            why,
        }),
    }
}

/// The credential in a parsed file, by the source's format. `login`: the
/// route takes an OAuth login (Codex's `auth.json` holds a key or a login).
pub fn extract(
    v: &Value,
    src: &SecretSource,
    login: bool,
    path: &Path,
) -> Result<Option<Found>, ProxyError> {
    let SecretSource::File {
        format,
        pointer,
        provider,
        ..
    } = src
    else {
        return Ok(None);
    };
    let bad = |why: String| ProxyError::Json {
        path: path.to_path_buf(),
        why,
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match format {
        FileFormat::Json => {
            let p = pointer.as_deref().unwrap_or("");
            match v.pointer(p) {
                None => Ok(None),
                Some(Value::String(k)) => Ok(Some(Found::Key(k.clone()))),
                Some(_) => Err(bad(format!("{p} is not a string"))),
            }
        }
        FileFormat::PiAuth => {
            let p = provider.as_deref().unwrap_or("");
            let Some(e) = v.get(p) else { return Ok(None) };
            match e.get("type").and_then(Value::as_str) {
                Some("api_key") => s(e, "key")
                    .map(|k| Some(Found::Key(k)))
                    .ok_or_else(|| bad(format!("entry {p:?} (api_key) has no string \"key\""))),
                Some("oauth") => match (s(e, "access"), s(e, "refresh")) {
                    (Some(access), Some(refresh)) => Ok(Some(Found::Oauth {
                        access,
                        refresh,
                        expires_ms: e.get("expires").and_then(Value::as_u64).unwrap_or(0),
                    })),
                    _ => Err(bad(format!(
                        "entry {p:?} (oauth) needs string \"access\" and \"refresh\""
                    ))),
                },
                _ => Err(bad(format!(
                    "entry {p:?}: expected \"type\": \"api_key\" or \"oauth\""
                ))),
            }
        }
        FileFormat::OpencodeAuth => {
            let p = provider.as_deref().unwrap_or("");
            let Some(e) = v.get(p) else { return Ok(None) };
            match e.get("type").and_then(Value::as_str) {
                Some("api") => s(e, "key")
                    .map(|k| Some(Found::Key(k)))
                    .ok_or_else(|| bad(format!("entry {p:?} (api) has no string \"key\""))),
                // Not routable (see FileFormat::OpencodeAuth); `unrouted`
                // warns that the harness keeps it.
                Some("oauth" | "wellknown") => Ok(None),
                _ => Err(bad(format!(
                    "entry {p:?}: expected \"type\": \"api\", \"oauth\" or \"wellknown\""
                ))),
            }
        }
        FileFormat::CodexAuth if !login => match v.get("OPENAI_API_KEY") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(k)) if !k.is_empty() => Ok(Some(Found::Key(k.clone()))),
            Some(Value::String(_)) => Ok(None),
            Some(_) => Err(bad("\"OPENAI_API_KEY\" is not a string".into())),
        },
        FileFormat::CodexAuth => {
            let Some(t) = v.get("tokens").filter(|t| !t.is_null()) else {
                return Ok(None);
            };
            match (s(t, "access_token"), s(t, "refresh_token")) {
                (Some(access), Some(refresh)) => Ok(Some(Found::Oauth {
                    // The access token is a JWT; its `exp` is the expiry
                    // (0 when absent: the proxy refreshes first).
                    expires_ms: vault_proxy::jwt::expiry_ms(&access).unwrap_or(0),
                    access,
                    refresh,
                })),
                _ => Err(bad(
                    "\"tokens\" needs string \"access_token\" and \"refresh_token\"".into(),
                )),
            }
        }
        FileFormat::ClaudeCredentials => {
            let Some(e) = v.get("claudeAiOauth") else {
                return Ok(None);
            };
            match (s(e, "accessToken"), s(e, "refreshToken")) {
                (Some(access), Some(refresh)) => Ok(Some(Found::Oauth {
                    access,
                    refresh,
                    expires_ms: e.get("expiresAt").and_then(Value::as_u64).unwrap_or(0),
                })),
                _ => Err(bad(
                    "claudeAiOauth needs string \"accessToken\" and \"refreshToken\"".into(),
                )),
            }
        }
    }
}

/// Where a route's credential was found.
pub enum Origin {
    Env,
    Vault,
    /// The vault file held a previous start's placeholder; this seed file had the real one.
    Seed(PathBuf),
}

/// The seed source file that a `copy-missing` seed copies to `target`.
pub fn seed_source_of(policy: &policy::Policy, target: &Path) -> Option<PathBuf> {
    policy.seeds.iter().find_map(|s| {
        let rel = target.strip_prefix(&s.target).ok()?;
        (s.mode == SeedMode::CopyMissing && !rel.as_os_str().is_empty()).then(|| s.source.join(rel))
    })
}

/// A subscription login found in the vault file that is not its seed's:
/// the harness can write that file (at a model's request), and a login
/// taken from it replaces the session the proxy stored, so junk written
/// there would log the container out for good. When the seed holds a real
/// login, the seed is the authority (the proxy then keeps its own rotation
/// of it, or takes it as the newer login); the vault's is not used, and a
/// warning says so. Without a seed the vault's login is taken (a login made
/// inside the container).
fn seed_over_vault_login(
    policy: &policy::Policy,
    src: &SecretSource,
    login: bool,
    found: (Found, Origin),
) -> Result<(Found, Origin), ProxyError> {
    let (
        Found::Oauth {
            refresh: vault_refresh,
            ..
        },
        Origin::Vault,
        SecretSource::File { path, .. },
    ) = (&found.0, &found.1, src)
    else {
        return Ok(found);
    };
    let Some(seed) = seed_source_of(policy, path) else {
        return Ok(found);
    };
    let from_seed = match read_json(&seed)? {
        Some(v) => extract(&v, src, login, &seed)?,
        None => None,
    };
    match from_seed {
        Some(f @ Found::Oauth { .. }) if !f.is_placeholder() => {
            if matches!(&f, Found::Oauth { refresh, .. } if refresh == vault_refresh) {
                return Ok(found); // the seed's own login, copied
            }
            crate::log::warning!(
                "[proxy] {} holds a login that is not the one in its seed {}; the seed's is used (the harness can write the vault file). To use a new login, log in on the host",
                path.display(),
                seed.display()
            );
            Ok((f, Origin::Seed(seed)))
        }
        _ => Ok(found),
    }
}

/// The route's real credential: from the harness environment, or from the
/// vault file, or, when the vault file holds a previous start's placeholder,
/// from the seed source that file was copied from. `None`: not configured
/// here (the route is not served); `Err(Stale)`: only placeholders found
/// (for an OAuth login the proxy then resumes its stored session).
pub fn read_with_seed(
    policy: &policy::Policy,
    src: &SecretSource,
    login: bool,
    env: &BTreeMap<OsString, OsString>,
) -> Result<Option<(Found, Origin)>, ProxyError> {
    let found = match src {
        SecretSource::Env(name) => {
            let Some(v) = env.get(std::ffi::OsStr::new(name)) else {
                return Ok(None);
            };
            let Some(v) = v.to_str().filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            (Found::Key(v.to_string()), Origin::Env)
        }
        SecretSource::File { path, .. } => {
            let Some(v) = read_json(path)? else {
                return Ok(None);
            };
            let Some(f) = extract(&v, src, login, path)? else {
                return Ok(None);
            };
            (f, Origin::Vault)
        }
    };
    if !found.0.is_placeholder() {
        return Ok(Some(seed_over_vault_login(policy, src, login, found)?));
    }
    // A previous start's placeholder: the seed has the real credential.
    let previous = match &found.0 {
        Found::Oauth { access, .. } => Some(access.clone()),
        Found::Key(_) => None,
    };
    let SecretSource::File { path, .. } = src else {
        return Err(ProxyError::Stale {
            source: src.to_string(),
            seed: None,
            login: previous,
        });
    };
    let seed = seed_source_of(policy, path);
    let from_seed = match &seed {
        Some(s) => match read_json(s)? {
            Some(v) => extract(&v, src, login, s)?,
            None => None,
        },
        None => None,
    };
    match from_seed {
        Some(f) if !f.is_placeholder() => Ok(Some((f, Origin::Seed(seed.expect("read from it"))))),
        _ => Err(ProxyError::Stale {
            source: src.to_string(),
            seed,
            login: previous,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_placeholders_are_recognised_and_real_keys_are_not() {
        let p = mint("sk-ant-api03-").unwrap();
        assert!(p.starts_with("sk-ant-api03-av-"));
        assert_eq!(p.len(), "sk-ant-api03-av-".len() + 64);
        assert!(is_placeholder(&p));
        assert!(is_placeholder(&mint("").unwrap()));
        assert_ne!(mint("sk-").unwrap(), mint("sk-").unwrap());
        assert!(!is_placeholder("sk-ant-api03-realkeyrealkeyrealkey"));
        assert!(!is_placeholder(&format!("sk-xav-{}", "a".repeat(64))));
        assert!(!is_placeholder(&format!("sk-av-{}", "A".repeat(64))));
        assert!(!is_placeholder("av-"));
    }

    #[test]
    fn jwt_placeholders_are_recognised_by_their_signature_segment() {
        let real = vault_proxy::jwt::encode(
            &serde_json::json!({"exp": 1, "https://api.openai.com/auth": {"chatgpt_account_id": "a"}}),
            "realsig",
        );
        assert!(!is_placeholder(&real));
        let p = mint_jwt(&real).unwrap();
        assert!(is_placeholder(&p), "{p}");
        let c = vault_proxy::jwt::claims(&p).unwrap();
        assert_eq!(c["https://api.openai.com/auth"]["chatgpt_account_id"], "a");
        assert_eq!(c["exp"], FAR_FUTURE_MS / 1000);
        assert_ne!(mint_jwt(&real).unwrap(), p, "a new capability each time");
        assert!(mint_jwt("sk-not-a-jwt").unwrap_err().contains("not a JWT"));
    }

    #[test]
    fn opencode_and_codex_formats_are_read() {
        let p = Path::new("/x");
        let oc: Value = serde_json::from_str(
            r#"{"anthropic":{"type":"api","key":"k"},"openai":{"type":"oauth","access":"a","refresh":"r","expires":1},"w":{"type":"other"}}"#,
        )
        .unwrap();
        let src = |pr: &str| SecretSource::File {
            path: "/x".into(),
            format: FileFormat::OpencodeAuth,
            pointer: None,
            provider: Some(pr.into()),
        };
        assert!(
            matches!(extract(&oc, &src("anthropic"), false, p).unwrap(), Some(Found::Key(k)) if k == "k")
        );
        // OAuth entries are not routable: left alone (and warned about).
        assert!(extract(&oc, &src("openai"), false, p).unwrap().is_none());
        assert!(extract(&oc, &src("w"), false, p).is_err());
        let codex = SecretSource::File {
            path: "/x".into(),
            format: FileFormat::CodexAuth,
            pointer: None,
            provider: None,
        };
        let access = vault_proxy::jwt::encode(&serde_json::json!({"exp": 1234}), "s");
        let login = serde_json::json!({"OPENAI_API_KEY": null, "tokens": {"id_token": "i", "access_token": access, "refresh_token": "r", "account_id": "acct"}, "last_refresh": "2026-01-01T00:00:00Z"});
        assert!(extract(&login, &codex, false, p).unwrap().is_none());
        assert!(matches!(
            extract(&login, &codex, true, p).unwrap(),
            Some(Found::Oauth { expires_ms: 1_234_000, refresh, .. }) if refresh == "r"
        ));
        let key = serde_json::json!({"OPENAI_API_KEY": "sk-k"});
        assert!(
            matches!(extract(&key, &codex, false, p).unwrap(), Some(Found::Key(k)) if k == "sk-k")
        );
        assert!(extract(&key, &codex, true, p).unwrap().is_none());
    }

    #[test]
    fn pi_and_claude_formats_are_read() {
        let pi: Value = serde_json::from_str(
            r#"{"anthropic":{"type":"oauth","access":"a","refresh":"r","expires":5},"openai":{"type":"api_key","key":"k"}}"#,
        )
        .unwrap();
        let src = |p: &str| SecretSource::File {
            path: "/x".into(),
            format: FileFormat::PiAuth,
            pointer: None,
            provider: Some(p.into()),
        };
        let p = Path::new("/x");
        assert!(matches!(
            extract(&pi, &src("anthropic"), false, p).unwrap(),
            Some(Found::Oauth { expires_ms: 5, .. })
        ));
        assert!(
            matches!(extract(&pi, &src("openai"), false, p).unwrap(), Some(Found::Key(k)) if k == "k")
        );
        assert!(extract(&pi, &src("google"), false, p).unwrap().is_none());
        let cc: Value = serde_json::from_str(
            r#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":7,"scopes":["user:inference"]}}"#,
        )
        .unwrap();
        let src = SecretSource::File {
            path: "/x".into(),
            format: FileFormat::ClaudeCredentials,
            pointer: None,
            provider: None,
        };
        assert!(matches!(
            extract(&cc, &src, true, p).unwrap(),
            Some(Found::Oauth { expires_ms: 7, .. })
        ));
    }
}
