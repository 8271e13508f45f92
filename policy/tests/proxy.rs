//! `[proxy]`: the built-in routes, validation at FILE:LINE:COL, and the
//! effective policy's round trip.

use policy::testing::policy_toml;
use policy::{
    BaseUrl, ExpandContext, FileFormat, OauthPlaceholder, Policy, ProxyMode, SecretSource, load_str,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ctx() -> ExpandContext {
    ExpandContext {
        home: Some(PathBuf::from("/home/agent")),
        env: BTreeMap::new(),
    }
}

/// `p`'s effective policy, loaded again (with no context: it is expanded).
fn reload_effective(p: &Policy) -> Policy {
    load_str(
        &p.to_effective_toml(),
        "effective",
        &ExpandContext::default(),
    )
    .unwrap()
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
    // Every credential variable Claude Code, Codex and OpenCode read.
    for v in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENAI_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
    ] {
        assert!(env_sources.contains(&v), "{env_sources:?}");
    }
    // Every OAuth route says which paths its login is used for.
    for r in p.proxy.routes.iter().filter(|r| r.oauth.is_some()) {
        let paths = &r.oauth.as_ref().unwrap().paths;
        let want: &[&str] = if r.name == "pi-openai-codex" {
            &["/codex/"]
        } else {
            &["/v1/"]
        };
        assert_eq!(paths, want, "{}", r.name);
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
    let again = reload_effective(&p);
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

#[test]
fn builtin_routes_opencode_and_codex_files_and_the_documented_chatgpt_route() {
    let p = Policy::builtin(&ctx()).unwrap();
    let route = |n: &str| p.proxy.routes.iter().find(|r| r.name == n).unwrap();
    let oc = route("opencode-anthropic");
    assert!(matches!(
        &oc.from,
        SecretSource::File { path, format: FileFormat::OpencodeAuth, provider: Some(pr), .. }
            if path == Path::new("/home/agent/.local/share/opencode/auth.json") && pr == "anthropic"
    ));
    assert_eq!(
        oc.point,
        BaseUrl::EnvJson {
            var: "OPENCODE_CONFIG_CONTENT".into(),
            pointer: "/provider/anthropic/options/baseURL".into()
        }
    );
    assert_eq!(oc.upstream, "https://api.anthropic.com/v1");
    let codex = route("codex");
    assert!(codex.oauth.is_none() && codex.header.is_some());
    assert!(codex.source_label().ends_with("\"OPENAI_API_KEY\""));
    // Codex's ChatGPT login is not routed by default (Codex sends its
    // requests past OPENAI_BASE_URL); the route default.toml documents in
    // a comment is valid as written.
    assert!(p.proxy.routes.iter().all(|r| r.name != "codex-chatgpt"));
    let default = include_str!("../default.toml");
    let example: String = default
        .lines()
        .skip_while(|l| *l != "# [[proxy.route]]")
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    assert!(example.contains("name = \"codex-chatgpt\""), "{example}");
    let documented = load_str(
        &with_proxy(&format!("[proxy]\nmode = \"on\"\n{example}")),
        "p.toml",
        &ctx(),
    )
    .unwrap();
    let chatgpt = &documented.proxy.routes[0];
    assert_eq!(chatgpt.upstream, "https://chatgpt.com/backend-api/codex");
    assert_eq!(
        (chatgpt.header, chatgpt.placeholder.as_deref()),
        (None, None)
    );
    let o = chatgpt.oauth.as_ref().unwrap();
    assert_eq!(o.placeholder, OauthPlaceholder::Jwt);
    assert_eq!(o.token_url, "https://auth.openai.com/oauth/token");
    assert_eq!(o.client_id, "app_EMoamEEZ73f0CkXaXp7hrann");
    assert!(chatgpt.source_label().contains("ChatGPT login"));
    let pi = route("pi-openai-codex");
    assert_eq!(
        pi.oauth.as_ref().unwrap().placeholder,
        OauthPlaceholder::Jwt
    );
    assert_eq!(pi.upstream, "https://chatgpt.com/backend-api");
}

#[test]
fn env_json_points_and_jwt_logins_round_trip_through_the_effective_policy() {
    let text = with_proxy(
        "[proxy]\nmode = \"on\"\n[[proxy.route]]\nname = \"oc\"\nupstream = \"https://api.openai.com/v1\"\nheader = \"authorization\"\nplaceholder = \"sk-\"\nfrom = { file = \"/oc/auth.json\", format = \"opencode-auth\", provider = \"openai\" }\npoint = { env_json = \"OPENCODE_CONFIG_CONTENT\", pointer = \"/provider/openai/options/baseURL\" }\n[[proxy.route]]\nname = \"cx\"\nupstream = \"https://chatgpt.com/backend-api/codex\"\nfrom = { file = \"/cx/auth.json\", format = \"codex-auth\" }\npoint = { env = \"OPENAI_BASE_URL\" }\noauth = { jwt = true, token_url = \"https://auth.openai.com/oauth/token\", client_id = \"c\" }\n",
    );
    let p = load_str(&text, "p.toml", &ctx()).unwrap();
    let again = reload_effective(&p);
    assert_eq!(again.proxy, p.proxy);
    assert_eq!(
        p.proxy.routes[1].oauth.as_ref().unwrap().placeholder,
        OauthPlaceholder::Jwt
    );
}

#[test]
fn new_formats_and_points_refuse_what_cannot_work_naming_the_fix() {
    let r = |rest: &str| format!("[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\n{rest}");
    let cases: &[(String, usize, &str)] = &[
        (
            r(
                "header = \"authorization\"\nplaceholder = \"sk-\"\nfrom = { file = \"/a.json\", format = \"opencode-auth\", provider = \"openai\" }\npoint = { env = \"U\" }\noauth = { placeholder = \"x-\", token_url = \"https://t\", client_id = \"c\" }\n",
            ),
            7,
            "OpenCode's OAuth logins cannot be routed",
        ),
        (
            r(
                "header = \"authorization\"\nfrom = { file = \"/a.json\", format = \"codex-auth\" }\npoint = { env = \"U\" }\noauth = { jwt = true, token_url = \"https://t\", client_id = \"c\" }\n",
            ),
            7,
            "either the API key (`header`) or the ChatGPT login (`oauth`)",
        ),
        (
            r(
                "header = \"authorization\"\nfrom = { file = \"/a.json\", format = \"codex-auth\" }\npoint = { env = \"U\" }\n",
            ),
            7,
            "has no `placeholder`",
        ),
        (
            r(
                "from = { file = \"/a.json\", format = \"codex-auth\" }\npoint = { env = \"U\" }\noauth = { jwt = true, placeholder = \"x-\", token_url = \"https://t\", client_id = \"c\" }\n",
            ),
            11,
            "exclude each other",
        ),
        (
            r(
                "from = { file = \"/a.json\", format = \"codex-auth\" }\npoint = { env = \"U\" }\noauth = { token_url = \"https://t\", client_id = \"c\" }\n",
            ),
            7,
            "or `jwt = true`",
        ),
        (
            r(
                "header = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { file = \"/a.json\", format = \"opencode-auth\" }\npoint = { env = \"U\" }\n",
            ),
            11,
            "needs `provider",
        ),
        (
            r(
                "header = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { env_json = \"C\" }\n",
            ),
            12,
            "needs `pointer",
        ),
        (
            r(
                "header = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { env_json = \"C\", pointer = \"provider\" }\n",
            ),
            12,
            "JSON pointer \"provider\"",
        ),
        (
            r(
                "header = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = { env = \"K\" }\npoint = { env = \"U\", pointer = \"/a\" }\n",
            ),
            12,
            "only goes with `env_json`",
        ),
    ];
    for (proxy, line, needle) in cases {
        let e = load_str(&with_proxy(proxy), "p.toml", &ctx()).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("p.toml:{line}:")),
            "{proxy}\n{shown}"
        );
        assert!(shown.contains(needle), "{shown}");
    }
}

#[test]
fn oauth_paths_default_to_the_versioned_api_and_refuse_what_could_reach_another_path() {
    let route = |oauth: &str| {
        with_proxy(&format!(
            "[[proxy.route]]\nname = \"a\"\nupstream = \"https://x\"\nheader = \"x-api-key\"\nplaceholder = \"sk-\"\nfrom = {{ file = \"/a.json\", format = \"pi-auth\", provider = \"anthropic\" }}\npoint = {{ env = \"U\" }}\noauth = {{ placeholder = \"sk-ant-oat01-\", token_url = \"https://t\", client_id = \"c\"{oauth} }}\n"
        ))
    };
    let p = load_str(&route(""), "p.toml", &ctx()).unwrap();
    assert_eq!(p.proxy.routes[0].oauth.as_ref().unwrap().paths, ["/v1/"]);
    let p = load_str(&route(", paths = [\"/codex/\"]"), "p.toml", &ctx()).unwrap();
    assert_eq!(p.proxy.routes[0].oauth.as_ref().unwrap().paths, ["/codex/"]);
    assert_eq!(reload_effective(&p).proxy, p.proxy);
    for bad in ["[]", "[\"v1/\"]", "[\"/v1/%2e%2e/\"]", "[\"/v1/../api/\"]"] {
        let e = load_str(&route(&format!(", paths = {bad}")), "p.toml", &ctx()).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("p.toml:"), "{bad}: {shown}");
        assert!(shown.contains("paths"), "{bad}: {shown}");
    }
}
