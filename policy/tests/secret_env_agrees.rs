//! The harness's children filter their environment with
//! `policy_core::secret_env::SecretEnv` (signatures first, then the exact
//! test); `View::is_secret_env` is the plain definition. The two must give
//! the same answer for every name, under any policy: a name the fast path
//! missed would reach a tool.

use policy::{ExpandContext, load_str};
use policy_core::secret_env::{SecretEnv, signature};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ctx() -> ExpandContext {
    ExpandContext {
        home: Some("/home/agent".into()),
        env: BTreeMap::new(),
    }
}

fn toml_list(xs: &[String]) -> String {
    let quoted: Vec<String> = xs.iter().map(|x| format!("\"{x}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Both answers for each name, under a policy with these lists.
fn agree(secret: &[String], patterns: &[String], keep: &[String], names: &[String]) {
    let text = format!(
        "[harness]\nuser = \"u\"\n[vault]\nsecret_env = {}\nsecret_env_patterns = {}\nkeep_env = {}\n[filesystem]\n",
        toml_list(secret),
        toml_list(patterns),
        toml_list(keep)
    );
    let p = load_str(&text, "p", &ctx()).unwrap();
    let image = p.to_image();
    let v = policy::View::decode(&image).unwrap();
    let fast = SecretEnv::new(v);
    for name in names.iter().chain(secret).chain(keep) {
        assert_eq!(
            fast.is_secret(name.as_bytes()),
            v.is_secret_env(name.as_bytes()),
            "{name:?} under secret_env {secret:?}, patterns {patterns:?}, keep_env {keep:?}"
        );
    }
}

fn s(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

#[test]
fn the_builtin_policy_agrees_on_a_harness_environment() {
    let p = policy::Policy::builtin(&ctx()).unwrap();
    let image = p.to_image();
    let v = policy::View::decode(&image).unwrap();
    let fast = SecretEnv::new(v);
    let names = s(&[
        "PATH",
        "HOME",
        "LANG",
        "USER",
        "TERM",
        "SHELL",
        "PWD",
        "HOSTNAME",
        "XDG_RUNTIME_DIR",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "GH_TOKEN",
        "MY_API_KEY_2",
        "DB_PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "NODE_OPTIONS",
        "X_AUTH_TOKEN_FILE",
        "SSH_AUTH_SOCK",
        "API_KEY",
        "TOKEN",
        "_TOKEN",
        "A_TOKENS",
        "OPENAI_API_KEYS",
        "PI_CODING_AGENT_DIR",
        "CLAUDE_CONFIG_DIR",
        "_",
        "",
        "A",
    ]);
    let mut secret = 0;
    for n in &names {
        let want = v.is_secret_env(n.as_bytes());
        assert_eq!(fast.is_secret(n.as_bytes()), want, "{n:?}");
        secret += usize::from(want);
    }
    // Both kinds of answer were asked for.
    assert!(secret >= 8 && secret < names.len() - 8, "{secret} secret");
}

#[test]
fn a_pattern_without_pairs_or_stars_and_a_kept_name_agree() {
    agree(
        &s(&["AB", "KEEP_TOKEN"]),
        &s(&["A*", "*B", "*", "X*Y*Z", "EXACT", "**_K**"]),
        &s(&["KEEP_TOKEN", "AQ"]),
        &s(&[
            "A", "AB", "B", "XYZ", "XaYbZ", "EXACT", "EXACTS", "Q_K", "_K", "K_", "AQ",
        ]),
    );
}

#[test]
fn signatures_hold_every_pair_of_a_literal_run() {
    // A name holding a pattern's literal runs holds their signatures.
    let p = signature(b"*_API_KEY_*");
    assert_eq!(p & !signature(b"MY_API_KEY_2"), 0);
    assert_eq!(signature(b"*"), 0);
    assert_eq!(
        signature(b"A*B"),
        0,
        "single bytes between stars pair with nothing"
    );
    assert_ne!(signature(b"AB"), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random lists over a small alphabet, so that names do match names
    /// and patterns often.
    #[test]
    fn random_policies_agree(
        secret in prop::collection::vec("[AB_]{1,5}", 0..6),
        patterns in prop::collection::vec("[AB_*]{1,6}", 0..6),
        keep in prop::collection::vec("[AB_]{1,4}", 0..3),
        names in prop::collection::vec("[AB_]{0,8}", 1..24),
    ) {
        agree(&secret, &patterns, &keep, &names);
    }
}
