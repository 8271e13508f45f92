//! The policy text every test suite builds its policies from (this crate's
//! tests, agent-init's and the preload's attack suite), so that a change to
//! the policy's required shape is made once. Not used by the product.

/// A policy's text: `[harness]` with `user`, `[vault]` followed by `vault`
/// (keys such as `secret_env`, then `[[vault.entry]]` tables),
/// `[filesystem]` followed by `filesystem` (its lists), then `tail` (any
/// further tables: `[landlock]`, `[seccomp]`, `[[seed]]`, `[audit]`).
/// Each part gets a final newline when it lacks one; no blank lines are
/// added, so line numbers in the result are easy to count.
pub fn policy_toml(user: &str, vault: &str, filesystem: &str, tail: &str) -> String {
    let mut t = format!("[harness]\nuser = \"{user}\"\n[vault]\n");
    let mut push = |part: &str| {
        t.push_str(part);
        if !part.is_empty() && !part.ends_with('\n') {
            t.push('\n');
        }
    };
    push(vault);
    push("[filesystem]\n");
    push(filesystem);
    push(tail);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_policy_loads() {
        let t = policy_toml("1000:1000", "", "", "");
        assert_eq!(
            t,
            "[harness]\nuser = \"1000:1000\"\n[vault]\n[filesystem]\n"
        );
        crate::load_str(&t, "t", &crate::ExpandContext::default()).unwrap();
        let t = policy_toml(
            "u",
            "secret_env = [\"A\"]",
            "read_only = [\"/\"]",
            "[audit]\nsink = \"off\"",
        );
        assert_eq!(
            t,
            "[harness]\nuser = \"u\"\n[vault]\nsecret_env = [\"A\"]\n[filesystem]\nread_only = [\"/\"]\n[audit]\nsink = \"off\"\n"
        );
    }
}
