//! The preload expands its built-in policy with `policy_core::expand` (no
//! allocation); agent-init expands every policy with `policy::expand`. The
//! two must agree on every template: the same path, or both refuse.

use policy::ExpandContext;
use policy::pathbuf::FixedPath;
use proptest::prelude::*;
use std::collections::BTreeMap;

struct Ctx<'a>(&'a ExpandContext);

impl policy_core::expand::Lookup for Ctx<'_> {
    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        self.0
            .env
            .get(std::str::from_utf8(name).ok()?)
            .map(|v| v.as_bytes())
    }
    fn home(&self) -> Option<&[u8]> {
        self.0
            .home
            .as_ref()
            .map(|h| h.as_os_str().as_encoded_bytes())
    }
}

fn both(template: &str, ctx: &ExpandContext) -> (Option<String>, Option<String>) {
    let std_side = policy::expand::absolute_path(template, ctx)
        .ok()
        .map(|p| p.display().to_string());
    let mut out = FixedPath::new();
    let core_side = policy_core::expand::absolute_path(template.as_bytes(), &Ctx(ctx), &mut out)
        .then(|| String::from_utf8(out.as_bytes().to_vec()).unwrap());
    (std_side, core_side)
}

fn ctx(home: Option<&str>, vars: &[(&str, &str)]) -> ExpandContext {
    ExpandContext {
        home: home.map(Into::into),
        env: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn the_builtin_templates_agree() {
    let c = ctx(Some("/home/agent"), &[("CLAUDE_CONFIG_DIR", "/cfg/claude")]);
    for t in [
        "${PI_CODING_AGENT_DIR:-/pi-agent}",
        "${CLAUDE_CONFIG_DIR:-/claude}",
        "${CLAUDE_CONFIG_DIR:-~/.claude}/backups",
        "~/.claude",
        "~/.claude.json",
        "~",
        "/a/./b//c/",
        "/a/../b",
        "~root/x",
        "$HOME",
        "${UNSET}",
        "a/b",
        "/x$$y",
    ] {
        let (s, c2) = both(t, &c);
        assert_eq!(s, c2, "template {t:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_templates_agree(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("~"), Just("/"), Just("a"), Just("."), Just(".."), Just("$"),
                Just("$$"), Just("${"), Just("}"), Just(":-"), Just("X"), Just("E"),
                Just("1"), Just("${X}"), Just("${X:-/d}"), Just("${E:-~/e}"), Just("~/"),
            ],
            0..10,
        ),
        home in prop_oneof![Just(None), Just(Some("/home/u")), Just(Some("/"))],
        x in prop_oneof![Just(""), Just("/x"), Just("rel"), Just("/p/../q")],
    ) {
        let t: String = parts.concat();
        let c = ctx(home, &[("X", x)]);
        let (s, c2) = both(&t, &c);
        prop_assert_eq!(s, c2, "template {:?}", t);
    }
}
