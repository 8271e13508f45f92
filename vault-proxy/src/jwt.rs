//! JWT-shaped tokens: reading a real token's claims and expiry, and building
//! the placeholder a harness gets when it decodes its access token.
//!
//! Why: Codex and Pi's `openai-codex` provider decode the ChatGPT tokens
//! they hold. Codex parses `id_token` (`email`, and
//! `https://api.openai.com/auth` → `chatgpt_plan_type`, `chatgpt_user_id`,
//! `chatgpt_account_id`) when it loads `auth.json` and refuses the file if it
//! does not decode (openai/codex `codex-rs/login/src/token_data.rs`,
//! `parse_chatgpt_jwt_claims`); it treats the access token as stale when its
//! `exp` has passed (`codex-rs/login/src/auth/manager.rs`,
//! `is_stale_for_proactive_refresh`). Pi takes the account id from the access
//! token's `https://api.openai.com/auth` claim and throws on a non-JWT
//! (pi-mono `packages/ai/src/providers/openai-codex-responses.ts`). Nobody on
//! the harness side checks the signature.
//!
//! So a placeholder is `header.payload.signature` where the payload holds
//! only the non-secret claims those harnesses read, copied from the real
//! token, with `exp` in 2100 (the harness never refreshes), and the signature
//! segment is the per-start capability (`av-` and 64 hex digits, all
//! base64url characters). The proxy compares the whole string in constant
//! time, like any placeholder.
//!
//! The proxy reads `exp` from a refreshed ChatGPT access token: OpenAI's
//! token endpoint may answer without `expires_in`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The private claim OpenAI puts the ChatGPT account in.
pub const OPENAI_AUTH_CLAIM: &str = "https://api.openai.com/auth";
/// The private claim OpenAI puts the profile (email) in.
pub const OPENAI_PROFILE_CLAIM: &str = "https://api.openai.com/profile";

/// Top-level claims copied into a placeholder: who the token is for, never
/// what it grants (no scopes, session or client ids).
const COPIED_CLAIMS: &[&str] = &["iss", "aud", "sub", "email", "email_verified"];
/// Keys of [`OPENAI_AUTH_CLAIM`] copied into a placeholder.
const COPIED_AUTH_KEYS: &[&str] = &[
    "chatgpt_account_id",
    "chatgpt_plan_type",
    "chatgpt_user_id",
    "user_id",
];
/// Keys of [`OPENAI_PROFILE_CLAIM`] copied into a placeholder.
const COPIED_PROFILE_KEYS: &[&str] = &["email", "email_verified"];

/// The header of every placeholder: no algorithm, nothing to verify.
const PLACEHOLDER_HEADER: &str = r#"{"alg":"none","typ":"JWT"}"#;

/// The payload of a three-segment token, if it is one and decodes to a JSON object.
pub fn claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The token's `exp` in Unix milliseconds, if it is a JWT with a numeric `exp`.
pub fn expiry_ms(token: &str) -> Option<u64> {
    let exp = claims(token)?.get("exp")?.as_f64()?;
    (exp.is_finite() && exp > 0.0).then(|| (exp as u64).saturating_mul(1000))
}

/// The non-secret claims of `real` a harness reads, for a placeholder.
pub fn placeholder_claims(real: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for k in COPIED_CLAIMS {
        if let Some(v) = real.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    for (claim, keys) in [
        (OPENAI_AUTH_CLAIM, COPIED_AUTH_KEYS),
        (OPENAI_PROFILE_CLAIM, COPIED_PROFILE_KEYS),
    ] {
        if let Some(Value::Object(o)) = real.get(claim) {
            let kept: Map<String, Value> = keys
                .iter()
                .filter_map(|k| Some(((*k).to_string(), o.get(*k)?.clone())))
                .collect();
            out.insert(claim.to_string(), Value::Object(kept));
        }
    }
    out
}

/// A placeholder JWT: [`placeholder_claims`] of `real`, `iat` = `now_s`,
/// `exp` = `exp_s`, and `signature` (the capability, base64url characters
/// only) as the third segment. `None` when `signature` has other characters.
pub fn placeholder(
    real: &Map<String, Value>,
    now_s: u64,
    exp_s: u64,
    signature: &str,
) -> Option<String> {
    let url_safe = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !url_safe(signature) {
        return None;
    }
    let mut payload = placeholder_claims(real);
    payload.insert("iat".into(), Value::from(now_s));
    payload.insert("exp".into(), Value::from(exp_s));
    let payload = serde_json::to_vec(&Value::Object(payload)).ok()?;
    Some(format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(PLACEHOLDER_HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    ))
}

/// A JWT with `payload` (for tests and scripted token endpoints): header
/// `{"alg":"none"}`, the given signature.
pub fn encode(payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(PLACEHOLDER_HEADER),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn real() -> Value {
        json!({
            "iss": "https://auth.openai.com",
            "aud": ["app_EMoamEEZ73f0CkXaXp7hrann"],
            "sub": "user-1",
            "email": "a@example.com",
            "exp": 1_700_000_000u64,
            "scp": ["openid", "model.request"],
            "session_id": "sess-secretish",
            "client_id": "app_x",
            OPENAI_AUTH_CLAIM: {
                "chatgpt_account_id": "acct-1",
                "chatgpt_plan_type": "pro",
                "chatgpt_user_id": "user-1",
                "organizations": [{"id": "org-1"}],
            },
            OPENAI_PROFILE_CLAIM: {"email": "a@example.com", "email_verified": true},
        })
    }

    #[test]
    fn placeholder_keeps_the_account_claims_drops_the_rest_and_never_expires() {
        let r = real();
        let sig = format!("av-{}", "ab".repeat(32));
        let p = placeholder(r.as_object().unwrap(), 5, 4_102_444_800, &sig).unwrap();
        assert_eq!(p.split('.').count(), 3);
        assert!(p.ends_with(&format!(".{sig}")));
        let c = claims(&p).unwrap();
        assert_eq!(c["exp"], 4_102_444_800u64);
        assert_eq!(c["iat"], 5);
        assert_eq!(c[OPENAI_AUTH_CLAIM]["chatgpt_account_id"], "acct-1");
        assert_eq!(c[OPENAI_AUTH_CLAIM]["chatgpt_plan_type"], "pro");
        assert_eq!(c[OPENAI_PROFILE_CLAIM]["email"], "a@example.com");
        assert_eq!(c["email"], "a@example.com");
        for gone in ["scp", "session_id", "client_id"] {
            assert!(!c.contains_key(gone), "{gone} copied");
        }
        assert!(c[OPENAI_AUTH_CLAIM].get("organizations").is_none());
        assert_eq!(expiry_ms(&p), Some(4_102_444_800_000));
    }

    #[test]
    fn a_signature_outside_base64url_is_refused() {
        let r = real();
        assert!(placeholder(r.as_object().unwrap(), 0, 1, "av-x.y").is_none());
        assert!(placeholder(r.as_object().unwrap(), 0, 1, "").is_none());
    }

    #[test]
    fn claims_and_expiry_of_non_jwts_are_none() {
        assert!(claims("sk-ant-oat01-abc").is_none());
        assert!(claims("a.b").is_none());
        assert!(claims("a.b.c.d").is_none());
        assert!(claims("a.!!!.c").is_none());
        assert_eq!(expiry_ms(&encode(&json!({"exp": 7}), "s")), Some(7000));
        assert_eq!(expiry_ms(&encode(&json!({"sub": "x"}), "s")), None);
        assert_eq!(expiry_ms(&encode(&json!([1]), "s")), None);
    }
}
