//! No input makes the parser panic: arbitrary text, and arbitrary edits of
//! the built-in policy (which reach deep into validation).

use policy::{ExpandContext, load_str};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ctx() -> ExpandContext {
    let mut env = BTreeMap::new();
    env.insert("PI_CODING_AGENT_DIR".to_string(), "/pi-agent".to_string());
    ExpandContext {
        home: Some("/home/agent".into()),
        env,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in "\\PC{0,400}") {
        let _ = load_str(&text, "fuzz.toml", &ctx());
    }

    #[test]
    fn arbitrary_tomlish_text(text in "(\\[[a-z._\\[\\]]{0,12}\\]\\n|[a-z_]{1,10} = (\"[~$/{}a-z:.\\-]{0,20}\"|[0-9]{1,3}|\\[\"[/~a-z${}]{0,10}\"\\])\\n){0,12}") {
        let _ = load_str(&text, "fuzz.toml", &ctx());
    }

    #[test]
    fn edits_of_the_default_policy(pos in 0usize..4000, cut in 0usize..40, insert in "\\PC{0,12}") {
        let base = policy::DEFAULT_POLICY_TOML;
        let mut pos = pos.min(base.len());
        while !base.is_char_boundary(pos) { pos -= 1; }
        let mut end = (pos + cut).min(base.len());
        while !base.is_char_boundary(end) { end -= 1; }
        let text = format!("{}{}{}", &base[..pos], insert, &base[end..]);
        if let Err(e) = load_str(&text, "fuzz.toml", &ctx()) {
            // Every error names a place, or is about reading.
            prop_assert!(e.line >= 1 && e.column >= 1, "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Any byte flip in a policy image is an error or a valid policy, never a
    /// panic, and a flipped image that decodes answers queries.
    #[test]
    fn image_bytes_never_panic(pos in 0usize..4096, byte in any::<u8>(), junk in proptest::collection::vec(any::<u8>(), 0..64)) {
        let p = policy::Policy::builtin(&ctx()).unwrap();
        let mut b = p.to_image();
        let i = pos % b.len();
        b[i] = byte;
        if let Ok(v) = policy::View::decode(&b) {
            let _ = v.match_path(b"/home/agent/.claude/x");
            let _ = v.may_match(b"/pi-agent/auth.json");
            for e in v.vault() {
                prop_assert!(e.exceptions.count() <= v.exceptions().count());
            }
            let _ = v.base().count() + v.secret_env().count();
        }
        let _ = policy::View::decode(&junk);
    }
}
