//! `[proxy]`: the built-in routes, validation at FILE:LINE:COL, and the
//! effective policy's round trip.

use policy::testing::policy_toml;
use policy::{BaseUrl, ExpandContext, FileFormat, Policy, ProxyMode, SecretSource, load_str};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ctx() -> ExpandContext {
    ExpandContext {
        home: Some(PathBuf::from("/home/agent")),
        env: BTreeMap::new(),
    }
}

fn with_proxy(proxy: &str) -> String {
    policy_toml("1000:1000", "", "read_write = [\"/tmp\"]", proxy)
}

const ROUTE: &str = "[[proxy.route]]\nname = \"a\"\nupstream = \"https://api.anthropic.com\"\nheader = \"x-api-key\"\nplaceholder = \"sk-ant-api03-\"\nfrom = { env = \"ANTHROPIC_API_KEY\" }\npoint = { env = \"ANTHROPIC_BASE_URL\" }\n";

#[test]
fn builtin_proxy_is_off_and_routes_pi_claude_and_the_api_key_variables() {
    let p = Policy::builtin(&ctx()).unwrap();
    assert_eq!(p.proxy.mode, ProxyMode::Off);
    assert_eq!((p.proxy.uid, p.proxy.gid), (64990, 64990));
    assert_eq!(p.proxy.state_dir, Path::new("/var/lib/agent-vault/proxy"));
    let env_sources: Vec<_> = p
        .proxy
        .routes
        .iter()
        .filter_map(|r| match &r.from {
            SecretSource::Env(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    for v in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
    ] {
        assert!(env_sources.contains(&v), "{env_sources:?}");
    }
    let claude = p.proxy.routes.iter().find(|r| r.name == "claude").unwrap();
    assert!(matches!(
        &claude.from,
        SecretSource::File { path, format: FileFormat::ClaudeCredentials, .. }
            if path == Path::new("/home/agent/.claude/.credentials.json")
    ));
    let pi = p
        .proxy
        .routes
        .iter()
        .find(|r| r.name == "pi-anthropic")
        .unwrap();
    assert!(pi.oauth.is_some());
    assert!(matches!(&pi.point, BaseUrl::PiModels { provider, .. } if provider == "anthropic"));
    // Off: the state directory is not granted to anyone.
    assert!(!p.filesystem.read_write.contains(&p.proxy.state_dir));
}

#[test]
fn proxy_on_grants_its_state_dir_and_round_trips_through_the_effective_policy() {
    let text = with_proxy(&format!(
        "[proxy]\nmode = \"on\"\nstate_dir = \"~/proxy\"\n{ROUTE}[[proxy.route]]\nname = \"pi\"\nupstream = \"https://api.anthropic.com/\"\nheader = \"x-api-key\"\nplaceholder = \"sk-ant-api03-\"\nfrom = {{ file = \"/pi-agent/auth.json\", format = \"pi-auth\", provider = \"anthropic\" }}\npoint = {{ pi_models = \"/pi-agent/models.json\", provider = \"anthropic\" }}\noauth = {{ placeholder = \"sk-ant-oat01-\", token_url = \"https://platform.claude.com/v1/oauth/token\", client_id = \"c\" }}\n"
    ));
    let p = load_str(&text, "p.toml", &ctx()).unwrap();
    assert_eq!(p.proxy.mode, ProxyMode::On);
    assert_eq!(p.proxy.state_dir, Path::new("/home/agent/proxy"));
    assert!(
        p.filesystem
            .read_write
            .contains(&PathBuf::from("/home/agent/proxy"))
    );
    assert_eq!(p.proxy.routes[1].upstream, "https://api.anthropic.com");
    let again = load_str(
        &p.to_effective_toml(),
        "effective",
        &ExpandContext::default(),
    )
    .unwrap();
    assert_eq!(again.proxy, p.proxy);
    assert_eq!(again.filesystem, p.filesystem);
}

#[test]
fn proxy_errors_name_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("[proxy]\nuser = \"0:0\"\n", 7, 8, "proxy.user is root"),
        (
            "[proxy]\nuser = \"1000:64990\"\n",
            7,
            8,
            "harness's uid 1000",
        ),
        ("[proxy]\nuser = \"proxy\"\n", 7, 8, "expected `uid:gid`"),
        (
            "[proxy]\nmode = \"maybe\"\n",
            7,
            8,
            "unknown variant `maybe`",
        ),
        ("[proxy]\nstate = \"/x\"\n", 7, 1, "unknown field `state`"),
        (
            "[[proxy.route]]\nname = \"A B\"\nupstream = \"https://x\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { env = \"U\" }\n",
            7,
            8,
            "route name \"A B\"",
        ),
        (
            "[[proxy.route]]\nname = \"a\"\nupstream = \"ftp://x\"\nheader = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { env = \"U\" }\n",
            8,
            12,
            "expected https://HOST",
        ),
        (
            "[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { env = \"U\" }\n",
            7,
            8,
            "has no `header`",
        ),
        (
            "[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\nplaceholder = \"sk-\"\nfrom = { file = \"/c.json\", format = \"claude-credentials\" }\npoint = { env = \"U\" }\n",
            7,
            8,
            "has no `oauth`",
        ),
        (
            "[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\nheader = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { file = \"/a.json\", format = \"pi-auth\" }\npoint = { env = \"U\" }\n",
            11,
            17,
            "needs `provider",
        ),
        (
            "[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\nheader = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { file = \"/a.json\", pointer = \"key\" }\npoint = { env = \"U\" }\n",
            11,
            38,
            "start with `/`",
        ),
        (
            "[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\nheader = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { pi_models = \"/m.json\" }\n",
            12,
            23,
            "needs `provider",
        ),
        (
            &format!("{ROUTE}{ROUTE}"),
            14,
            8,
            "a second route named \"a\"",
        ),
    ];
    for (proxy, line, col, needle) in cases {
        let e = load_str(&with_proxy(proxy), "p.toml", &ctx()).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("p.toml:{line}:{col}: ")),
            "{proxy}\n{shown}"
        );
        assert!(shown.contains(needle), "{shown}");
    }
}

#[test]
fn routes_sharing_a_point_share_one_path_and_must_share_the_upstream() {
    let p = Policy::builtin(&ctx()).unwrap();
    let path = |n: &str| {
        p.proxy
            .routes
            .iter()
            .find(|r| r.name == n)
            .unwrap()
            .path
            .clone()
    };
    // ANTHROPIC_BASE_URL points all three: one path, the first one's.
    assert_eq!(path("anthropic"), "/anthropic");
    assert_eq!(path("claude-token"), "/anthropic");
    assert_eq!(path("claude"), "/anthropic");
    // A route alone keeps its own.
    assert_eq!(path("openai"), "/openai");
    assert_eq!(path("pi-anthropic"), "/pi-anthropic");
    // Same point, another upstream: refused at the second route's upstream.
    let second = ROUTE
        .replace("name = \"a\"", "name = \"b\"")
        .replace("api.anthropic.com", "gateway.example.com");
    let text = with_proxy(&format!("{ROUTE}\n{second}"));
    let e = load_str(&text, "p.toml", &ctx()).unwrap_err().to_string();
    assert!(
        e.contains(
            "route \"b\" is pointed by environment variable ANTHROPIC_BASE_URL like route \"a\""
        ) && e.contains("same upstream"),
        "{e}"
    );
    let line = text[..text.find("gateway.example.com").unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert!(e.contains(&format!(":{line}:")), "{line}: {e}");
}
