//! What the harness sees once the proxy runs: each real credential replaced
//! by its placeholder (environment variables; vault files rewritten
//! atomically, same owner and mode), and each base URL pointing at the proxy
//! (an environment variable, or Pi's `models.json` merged so the user's other
//! keys stay).
//!
//! Files are written as root before the harness exists: a temporary file
//! next to the target (`O_EXCL`, `O_NOFOLLOW`), owner and mode set before any
//! byte is written, `fsync`, `rename`. The old content never stays readable
//! under the harness's uid.

use super::ProxyError;
use super::credential::{FAR_FUTURE_MS, open_parent, read_json};
use crate::error::Call;
use policy::{FileFormat, SecretSource};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;

/// The placeholders of one route, as the harness gets them.
pub enum Shown {
    Key(String),
    Oauth { access: String, refresh: String },
}

/// Put the placeholders into the route's vault file.
pub fn write_placeholder(src: &SecretSource, shown: &Shown) -> Result<(), ProxyError> {
    let SecretSource::File {
        path,
        format,
        pointer,
        provider,
    } = src
    else {
        return Ok(());
    };
    let mut v = read_json(path)?.ok_or_else(|| ProxyError::Json {
        path: path.clone(),
        why: "disappeared while agent-init was starting the proxy".into(),
    })?;
    let bad = |why: &str| ProxyError::Json {
        path: path.clone(),
        why: why.to_string(),
    };
    match (format, shown) {
        (FileFormat::Json, Shown::Key(k)) => {
            let p = pointer.as_deref().unwrap_or("");
            *v.pointer_mut(p)
                .ok_or_else(|| bad("the pointer vanished"))? = Value::String(k.clone());
        }
        (FileFormat::PiAuth, _) => {
            let p = provider.as_deref().unwrap_or("");
            let e = v
                .get_mut(p)
                .and_then(Value::as_object_mut)
                .ok_or_else(|| bad("the entry vanished"))?;
            match shown {
                Shown::Key(k) => {
                    e.insert("key".into(), Value::String(k.clone()));
                }
                Shown::Oauth { access, refresh } => {
                    e.insert("access".into(), Value::String(access.clone()));
                    e.insert("refresh".into(), Value::String(refresh.clone()));
                    e.insert("expires".into(), Value::from(FAR_FUTURE_MS));
                }
            }
        }
        (FileFormat::OpencodeAuth, Shown::Key(k)) => {
            let p = provider.as_deref().unwrap_or("");
            v.get_mut(p)
                .and_then(Value::as_object_mut)
                .ok_or_else(|| bad("the entry vanished"))?
                .insert("key".into(), Value::String(k.clone()));
        }
        (FileFormat::CodexAuth, Shown::Key(k)) => {
            v.as_object_mut()
                .ok_or_else(|| bad("expected a JSON object"))?
                .insert("OPENAI_API_KEY".into(), Value::String(k.clone()));
        }
        (FileFormat::CodexAuth, Shown::Oauth { access, refresh }) => {
            show_codex_login(&mut v, access, refresh).map_err(|why| bad(&why))?
        }
        (FileFormat::ClaudeCredentials, Shown::Oauth { access, refresh }) => {
            let e = v
                .get_mut("claudeAiOauth")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| bad("claudeAiOauth vanished"))?;
            e.insert("accessToken".into(), Value::String(access.clone()));
            e.insert("refreshToken".into(), Value::String(refresh.clone()));
            e.insert("expiresAt".into(), Value::from(FAR_FUTURE_MS));
        }
        _ => return Err(bad("the credential changed kind while starting")),
    }
    replace_json(path, &v, None)
}

/// Codex's ChatGPT login as the harness sees it: `access_token` the route's
/// JWT placeholder, `refresh_token` a placeholder, `id_token` a JWT
/// placeholder with the real id token's account claims (Codex refuses an
/// `auth.json` whose `id_token` does not decode), `last_refresh` now;
/// `account_id` stays (Codex sends it as `chatgpt-account-id`, not a secret).
fn show_codex_login(v: &mut Value, access: &str, refresh: &str) -> Result<(), String> {
    let tokens = v
        .get_mut("tokens")
        .and_then(Value::as_object_mut)
        .ok_or("\"tokens\" vanished")?;
    let id_claims = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .and_then(vault_proxy::jwt::claims)
        .ok_or("tokens.id_token is not a JWT; log in again with `codex login` on the host")?;
    let signature = super::credential::mint("").map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now();
    let now_s = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id_token =
        vault_proxy::jwt::placeholder(&id_claims, now_s, FAR_FUTURE_MS / 1000, &signature)
            .ok_or("cannot build the id_token placeholder")?;
    tokens.insert("id_token".into(), Value::String(id_token));
    tokens.insert("access_token".into(), Value::String(access.to_string()));
    tokens.insert("refresh_token".into(), Value::String(refresh.to_string()));
    v.as_object_mut().ok_or("expected a JSON object")?.insert(
        "last_refresh".into(),
        Value::String(crate::log::utc_timestamp(now)),
    );
    Ok(())
}

/// `providers.<provider>.baseUrl` in Pi's `models.json`, or `None`.
pub fn pi_base_url(path: &Path, provider: &str) -> Result<Option<String>, ProxyError> {
    Ok(read_json(path)?.and_then(|v| {
        v.get("providers")?
            .get(provider)?
            .get("baseUrl")?
            .as_str()
            .map(str::to_string)
    }))
}

/// Set `providers.<provider>.baseUrl` in Pi's `models.json`, keeping every
/// other key; create the file (owned by the harness, 0600) when missing.
pub fn set_pi_base_url(
    path: &Path,
    provider: &str,
    url: &str,
    owner: (u32, u32),
) -> Result<(), ProxyError> {
    let existing = read_json(path)?;
    let created = existing.is_none();
    let mut v = existing.unwrap_or_else(|| Value::Object(Map::new()));
    let bad = |why: &str| ProxyError::Json {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let providers = v
        .as_object_mut()
        .ok_or_else(|| bad("expected a JSON object"))?
        .entry("providers")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| bad("\"providers\" is not an object"))?;
    let entry = providers
        .entry(provider)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| bad("the provider entry is not an object"))?;
    entry.insert("baseUrl".into(), Value::String(url.to_string()));
    replace_json(path, &v, created.then_some(owner))
}

/// The string at `pointer` in the JSON document `doc` (an environment
/// variable's value), or `None`; an unset or empty variable is `{}`.
pub fn env_json_url(
    var: &str,
    doc: Option<&str>,
    pointer: &str,
) -> Result<Option<String>, ProxyError> {
    let v = parse_env_json(var, doc)?;
    Ok(v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// `doc` with the string at `pointer` set to `url`, objects created on the
/// way and every other key kept.
pub fn set_env_json_url(
    var: &str,
    doc: Option<&str>,
    pointer: &str,
    url: &str,
) -> Result<String, ProxyError> {
    let mut v = parse_env_json(var, doc)?;
    let bad = |why: String| ProxyError::Json {
        path: format!("${var}").into(),
        why,
    };
    let mut at = &mut v;
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| bad(format!("empty JSON pointer {pointer:?}")))?;
    for seg in parents {
        at = at
            .as_object_mut()
            .ok_or_else(|| {
                bad(format!(
                    "the value above {seg:?} in {pointer} is not an object"
                ))
            })?
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    at.as_object_mut()
        .ok_or_else(|| {
            bad(format!(
                "the value above {last:?} in {pointer} is not an object"
            ))
        })?
        .insert(last.clone(), Value::String(url.to_string()));
    Ok(v.to_string())
}

fn parse_env_json(var: &str, doc: Option<&str>) -> Result<Value, ProxyError> {
    match doc.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(Value::Object(Map::new())),
        Some(d) => serde_json::from_str(d).map_err(|e| ProxyError::Json {
            path: format!("${var}").into(),
            // Line and column only: the value is never quoted.
            why: format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        }),
    }
}

/// Write `v` to `path` atomically. The owner and mode are the old file's,
/// or `create_owner` with 0600 for a new file.
fn replace_json(
    path: &Path,
    v: &Value,
    create_owner: Option<(u32, u32)>,
) -> Result<(), ProxyError> {
    use nix::fcntl::{AtFlags, OFlag, openat, renameat};
    use nix::sys::stat::{Mode, fstatat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    // Every call below is relative to the directory opened without
    // following a symlink the harness could have made.
    let Some((dir, name)) = open_parent(path)? else {
        return Err(ProxyError::Write(Call::at(
            "open",
            path.parent().unwrap_or(Path::new("/")),
            std::io::Error::from_raw_os_error(libc::ENOENT),
        )));
    };
    let io = |e: nix::errno::Errno| std::io::Error::from(e);
    let (uid, gid, mode) = match create_owner {
        Some((u, g)) => (u, g, 0o600),
        None => {
            let m = fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| ProxyError::Write(Call::at("lstat", path, io(e))))?;
            (m.st_uid, m.st_gid, m.st_mode & 0o7777)
        }
    };
    let tmp_name = format!(
        ".{}.agent-vault.{}",
        name.to_string_lossy(),
        std::process::id()
    );
    let tmp = path.with_file_name(&tmp_name);
    let _ = unlinkat(&dir, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
    let fd = openat(
        &dir,
        tmp_name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| ProxyError::Write(Call::at("open", &tmp, io(e))))?;
    let mut f = std::fs::File::from(fd);
    let result = (|| {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
            .map_err(|e| Call::at("fchown", &tmp, e))?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| Call::at("fchmod", &tmp, e))?;
        let mut bytes = serde_json::to_vec_pretty(v).expect("a Value serializes");
        bytes.push(b'\n');
        f.write_all(&bytes)
            .map_err(|e| Call::at("write", &tmp, e))?;
        f.sync_all().map_err(|e| Call::at("fsync", &tmp, e))?;
        renameat(&dir, tmp_name.as_str(), &dir, name.as_os_str())
            .map_err(|e| Call::at("rename", path, io(e)))
    })();
    if result.is_err() {
        let _ = unlinkat(&dir, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    result.map_err(ProxyError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_json_url_is_set_at_the_pointer_keeping_every_other_key() {
        let doc = r#"{"provider":{"anthropic":{"options":{"timeout":5}}},"model":"m"}"#;
        let out = set_env_json_url(
            "C",
            Some(doc),
            "/provider/anthropic/options/baseURL",
            "http://127.0.0.1:1/oc",
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["provider"]["anthropic"]["options"]["baseURL"],
            "http://127.0.0.1:1/oc"
        );
        assert_eq!(v["provider"]["anthropic"]["options"]["timeout"], 5);
        assert_eq!(v["model"], "m");
        let fresh = set_env_json_url("C", None, "/provider/openai/options/baseURL", "u").unwrap();
        assert_eq!(
            env_json_url("C", Some(&fresh), "/provider/openai/options/baseURL").unwrap(),
            Some("u".into())
        );
        assert_eq!(env_json_url("C", Some(""), "/a").unwrap(), None);
        let e = set_env_json_url("C", Some("{nope"), "/a", "u")
            .unwrap_err()
            .to_string();
        assert!(e.contains("$C") && e.contains("not valid JSON"), "{e}");
        let e = set_env_json_url("C", Some(r#"{"a":1}"#), "/a/b", "u")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an object"), "{e}");
    }

    #[test]
    fn codex_login_gets_jwt_placeholders_with_the_id_tokens_claims_and_a_fresh_last_refresh() {
        let id = vault_proxy::jwt::encode(
            &serde_json::json!({"email": "a@b", "https://api.openai.com/auth": {"chatgpt_plan_type": "pro", "chatgpt_account_id": "acct"}, "exp": 1}),
            "realsig",
        );
        let mut v = serde_json::json!({"OPENAI_API_KEY": null, "tokens": {"id_token": id, "access_token": "real-a", "refresh_token": "real-r", "account_id": "acct"}, "last_refresh": "2020-01-01T00:00:00Z"});
        show_codex_login(&mut v, "ACCESS", "REFRESH").unwrap();
        let t = &v["tokens"];
        assert_eq!(
            (t["access_token"].as_str(), t["refresh_token"].as_str()),
            (Some("ACCESS"), Some("REFRESH"))
        );
        assert_eq!(t["account_id"], "acct");
        let idp = t["id_token"].as_str().unwrap();
        assert!(super::super::credential::is_placeholder(idp), "{idp}");
        let c = vault_proxy::jwt::claims(idp).unwrap();
        assert_eq!(c["email"], "a@b");
        assert_eq!(c["https://api.openai.com/auth"]["chatgpt_plan_type"], "pro");
        assert_eq!(c["exp"], FAR_FUTURE_MS / 1000);
        assert!(!v.to_string().contains("realsig"));
        assert!(v["last_refresh"].as_str().unwrap() > "2026");
        let mut bad = serde_json::json!({"tokens": {"id_token": "opaque"}});
        assert!(
            show_codex_login(&mut bad, "a", "r")
                .unwrap_err()
                .contains("codex login")
        );
    }
}
