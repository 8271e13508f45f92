//! Parsing, validation and expansion of whole policy files.

use policy::error::ErrorKind;
use policy::testing::policy_toml;
use policy::{AuditSink, EnforceMode, ExpandContext};
use policy::{Policy, UserSpec, VaultKind, load_file, load_str};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ctx() -> ExpandContext {
    let mut env = BTreeMap::new();
    env.insert("PI_CODING_AGENT_DIR".to_string(), "/pi-agent".to_string());
    env.insert("CLAUDE_CONFIG_DIR".to_string(), "/claude".to_string());
    ExpandContext {
        home: Some(PathBuf::from("/home/agent")),
        env,
    }
}

fn err(text: &str) -> policy::PolicyError {
    load_str(text, "p.toml", &ctx()).unwrap_err()
}

#[test]
fn builtin_policy_protects_every_harness() {
    let p = Policy::builtin(&ctx()).unwrap();
    let paths: Vec<_> = p
        .vault
        .iter()
        .map(|e| (e.name.as_str(), e.path.clone(), e.kind))
        .collect();
    for (name, path, kind) in [
        ("pi", "/pi-agent", VaultKind::Dir),
        ("claude-config", "/claude", VaultKind::Dir),
        ("claude-home", "/home/agent/.claude", VaultKind::Dir),
        ("claude-json", "/home/agent/.claude.json", VaultKind::File),
        (
            "opencode",
            "/home/agent/.local/share/opencode",
            VaultKind::Dir,
        ),
        ("codex", "/home/agent/.codex", VaultKind::Dir),
    ] {
        assert!(
            paths.contains(&(name, PathBuf::from(path), kind)),
            "{name} {path}"
        );
    }
    for var in [
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ] {
        assert!(p.secret_env.iter().any(|s| s == var), "{var}");
    }
    let claude = p.vault_entry("claude-config").unwrap();
    assert_eq!(
        claude.tool_exceptions,
        vec![PathBuf::from("/claude/shell-snapshots")]
    );
    assert_eq!(
        p.harness.user,
        UserSpec::Ids {
            uid: 1000,
            gid: 1000
        }
    );
    assert_eq!(p.landlock, EnforceMode::Required);
    assert_eq!(p.seccomp.mode, EnforceMode::Required);
    assert_eq!(p.audit, AuditSink::Log, "the default: agent-init's log");
    assert_eq!(p.audit_max_bytes, 16 << 20);
    assert_eq!(p.seeds[0].source, PathBuf::from("/pi-agent-ro"));
    assert_eq!(p.seeds[0].target, PathBuf::from("/pi-agent"));
    // Claude Code's host login, mounted read-only, into its config directory.
    assert_eq!(p.seeds[1].source, PathBuf::from("/claude-ro"));
    assert_eq!(p.seeds[1].target, PathBuf::from("/claude"));
    assert_eq!(p.seeds[2].source, PathBuf::from("/claude/backups"));
    assert_eq!(p.seeds[2].target, PathBuf::from("/claude/.claude.json"));
    assert_eq!(p.seeds[2].prefix.as_deref(), Some(".claude.json.backup."));
}

#[test]
fn builtin_policy_defaults_without_the_variables() {
    let bare = ExpandContext {
        home: Some("/home/agent".into()),
        env: BTreeMap::new(),
    };
    let p = Policy::builtin(&bare).unwrap();
    assert_eq!(
        p.vault_entry("pi").unwrap().path,
        PathBuf::from("/pi-agent")
    );
    assert_eq!(
        p.vault_entry("claude-config").unwrap().path,
        PathBuf::from("/claude")
    );
    assert_eq!(
        p.seeds[1].target,
        PathBuf::from("/home/agent/.claude"),
        "the seed lands where the `claude` route reads .credentials.json"
    );
    assert_eq!(
        p.seeds[2].source,
        PathBuf::from("/home/agent/.claude/backups")
    );
    assert_eq!(p.seeds[2].target, PathBuf::from("/home/agent/.claude.json"));
}

#[test]
fn the_effective_policy_round_trips_whatever_the_environment() {
    let mut p = Policy::builtin(&ctx()).unwrap();
    p.add_probe("/run/agent-vault/probe".into());
    p.harness.env.insert("X".into(), "a$b~c\"\\".into());
    p.harness.launches = vec!["/usr/local/bin/pi".into(), "/opt/a b/claude".into()];
    let text = p.to_effective_toml();
    // Another environment and home must not move anything.
    let other = ExpandContext {
        home: Some("/root".into()),
        env: BTreeMap::new(),
    };
    let mut again = load_str(&text, "effective", &other).unwrap();
    again.source = p.source.clone();
    assert_eq!(again, p);
    assert_eq!(again.probe_dir(), Some(Path::new("/run/agent-vault/probe")));
}

#[test]
fn launchers_are_expanded_paths_each_once_and_bounded() {
    let text = "[harness]\nuser = \"1000:1000\"\nlaunches = [\"~/bin/pi\", \"/usr/local/bin/claude\", \"/home/agent/bin/pi\"]\n[vault]\n[filesystem]\n";
    let p = load_str(text, "l.toml", &ctx()).unwrap();
    assert_eq!(
        p.harness.launches,
        [
            PathBuf::from("/home/agent/bin/pi"),
            PathBuf::from("/usr/local/bin/claude")
        ]
    );
    assert!(
        p.harness.launcher_files.is_empty(),
        "only agent-init identifies the files, at start"
    );
    for (bad, why) in [
        ("\"bin/pi\"", "absolute"),
        ("\"/\"", "a launcher is a program file, not `/`"),
    ] {
        let text =
            format!("[harness]\nuser = \"1000:1000\"\nlaunches = [{bad}]\n[vault]\n[filesystem]\n");
        let e = load_str(&text, "l.toml", &ctx()).unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
        assert_eq!(e.line, 3, "{e}");
    }
    let many: Vec<String> = (0..17).map(|i| format!("\"/bin/h{i}\"")).collect();
    let text = format!(
        "[harness]\nuser = \"1000:1000\"\nlaunches = [{}]\n[vault]\n[filesystem]\n",
        many.join(", ")
    );
    let e = load_str(&text, "l.toml", &ctx()).unwrap_err();
    assert!(e.to_string().contains("more than 16 launchers"), "{e}");
}

#[test]
fn examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        load_file(&path, &ctx()).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 2);
    load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("default.toml"),
        &ctx(),
    )
    .unwrap();
}

#[test]
fn broken_files_name_file_line_and_column() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let cases = [
        ("unknown-key.toml", 3, 1, "unknown field `shell`"),
        ("relative-path.toml", 7, 7, "is relative"),
        ("dotdot.toml", 7, 15, "`..` component"),
        ("bad-mode.toml", 9, 8, "unknown variant `sometimes`"),
        ("proxy-unknown-key.toml", 12, 37, "unknown field `pointr`"),
        (
            "too-many-secret-vars.toml",
            71,
            3,
            "65 secret variables; the preload holds at most 64",
        ),
    ];
    for (file, line, col, needle) in cases {
        let e = load_file(&dir.join(file), &ctx()).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:{line}:{col}: ", dir.join(file).display())),
            "{shown}"
        );
        assert!(shown.contains(needle), "{shown}");
    }
}

#[test]
fn unreadable_file_names_the_file() {
    let e = load_file(Path::new("/nonexistent/policy.toml"), &ctx()).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Read(_)));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/policy.toml: cannot read the policy")
    );
}

#[test]
fn validation_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "[harness]\nuser = \"\"\n[vault]\n[filesystem]\n",
            "empty harness.user",
        ),
        (
            "[harness]\nuser = \"1000:x\"\n[vault]\n[filesystem]\n",
            "uid:gid",
        ),
        (
            "[harness]\nuser = \"a b\"\n[vault]\n[filesystem]\n",
            "not a valid user",
        ),
        (
            "[harness]\nuser = \"u\"\ngroups = [\"\"]\n[vault]\n[filesystem]\n",
            "empty group",
        ),
        (
            "[harness]\nuser = \"u\"\n[harness.env]\n\"A-B\" = \"x\"\n[vault]\n[filesystem]\n",
            "not valid",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\nsecret_env = [\"A=B\"]\n[filesystem]\n",
            "not a variable name",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\nsecret_env_patterns = [\"*_KEY?\"]\n[filesystem]\n",
            "is not a pattern",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\nkeep_env = [\"A*\"]\n[filesystem]\n",
            "keep_env entry \"A*\" is not a variable name",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"x\"\n[filesystem]\n",
            "exactly one of",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"x\"\ndir = \"/a\"\nfile = \"/b\"\n[filesystem]\n",
            "exactly one of",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"\"\ndir = \"/a\"\n[filesystem]\n",
            "empty vault entry name",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"x\"\ndir = \"/a\"\n[[vault.entry]]\nname = \"x\"\ndir = \"/b\"\n[filesystem]\n",
            "used twice",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"r\"\ndir = \"/\"\n[filesystem]\n",
            "cannot be `/`",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"f\"\nfile = \"/a\"\ntool_exceptions = [\"x\"]\n[filesystem]\n",
            "only go with a `dir`",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[[vault.entry]]\nname = \"d\"\ndir = \"/a\"\ntool_exceptions = [\"../x\"]\n[filesystem]\n",
            "`..`",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\nread_only = [\"\"]\n",
            "empty path",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\nread_only = [\"${NOPE}\"]\n",
            "`NOPE` is not set",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\nread_only = [\"$HOME\"]\n",
            "must start",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\n[seccomp]\ndeny = [\"opne\"]\n",
            "unknown syscall \"opne\"",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\n[[seed]]\nsource = \"/a\"\ntarget = \"/a/b\"\nmode = \"copy-missing\"\n",
            "overlap",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\n[[seed]]\nsource = \"/a\"\ntarget = \"/b\"\nmode = \"newest-backup\"\n",
            "needs `pattern",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\n[[seed]]\nsource = \"/a\"\ntarget = \"/b\"\nmode = \"newest-backup\"\npattern = \"x\"\n",
            "followed by `*`",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\n[audit]\nsink = \"audit.log\"\n",
            "expected \"log\", \"off\"",
        ),
        (
            "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\n[audit]\nmax_bytes = 100\n",
            "audit max_bytes 100: must be at least 4096",
        ),
        ("[vault]\n[filesystem]\n", "missing field `harness`"),
        (
            "[harness]\nuser = 1000\n[vault]\n[filesystem]\n",
            "invalid type",
        ),
    ];
    for (text, needle) in cases {
        let e = err(text);
        assert!(e.line >= 1 && e.column >= 1, "{text}: no position in {e}");
        assert!(
            e.to_string().contains(needle),
            "{text}\n=> {e}\n(expected {needle:?})"
        );
    }
}

#[test]
fn error_points_at_the_offending_value() {
    let text = "[harness]\nuser = \"u\"\n[vault]\n[filesystem]\nread_write = [\"/tmp\", \"rel\"]\n";
    let e = err(text);
    assert_eq!((e.line, e.column), (5, 23));
}

#[test]
fn secret_patterns_and_kept_variables_decide_together() {
    let text = "[harness]\nuser = \"u\"\n[vault]\nsecret_env = [\"KEEP_ME_TOKEN\"]\n\
        secret_env_patterns = [\"*_TOKEN\", \"*_TOKEN\"]\nkeep_env = [\"KEEP_ME_TOKEN\"]\n[filesystem]\n";
    let p = load_str(text, "p", &ctx()).unwrap();
    assert_eq!(p.secret_env_patterns, vec!["*_TOKEN"]);
    assert!(p.is_secret_env("GH_TOKEN"));
    assert!(
        !p.is_secret_env("KEEP_ME_TOKEN"),
        "keep_env wins over a name"
    );
    assert!(!p.is_secret_env("TOKENS"));
    let image = p.to_image();
    let v = policy::image::View::decode(&image).unwrap();
    for name in ["GH_TOKEN", "KEEP_ME_TOKEN", "TOKENS", "X_TOKEN"] {
        assert_eq!(
            v.is_secret_env(name.as_bytes()),
            p.is_secret_env(name),
            "{name}"
        );
    }
    // The effective TOML keeps both lists.
    let again = load_str(&p.to_effective_toml(), "e", &ctx()).unwrap();
    assert_eq!(again.secret_env_patterns, p.secret_env_patterns);
    assert_eq!(again.keep_env, p.keep_env);
}

#[test]
fn duplicates_merge() {
    let text = "[harness]\nuser = \"u\"\n[vault]\nsecret_env = [\"A\", \"A\"]\n\
        [[vault.entry]]\nname = \"a\"\ndir = \"/claude\"\n\
        [[vault.entry]]\nname = \"b\"\ndir = \"${CLAUDE_CONFIG_DIR}\"\ntool_exceptions = [\"s\"]\n\
        [filesystem]\nread_only = [\"/\", \"//\"]\n";
    let p = load_str(text, "p", &ctx()).unwrap();
    assert_eq!(p.secret_env, vec!["A"]);
    assert_eq!(p.vault.len(), 1);
    assert_eq!(p.vault[0].tool_exceptions, vec![PathBuf::from("/claude/s")]);
    assert_eq!(p.filesystem.read_only, vec![PathBuf::from("/")]);
}

#[test]
fn a_vault_entry_inside_a_tool_exception_is_refused() {
    // The tool layer grants a tool exception the base rights, so an entry
    // inside one would be granted to tools along with it.
    let text = r#"[harness]
user = "1000:1000"
[vault]
[[vault.entry]]
name = "claude"
dir = "/claude"
tool_exceptions = ["shell-snapshots"]
[[vault.entry]]
name = "keys"
dir = "/claude/shell-snapshots/keys"
[filesystem]
"#;
    let e = policy::load_str(text, "nested.toml", &policy::ExpandContext::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("nested.toml:9:8: "), "{msg}");
    assert!(
        msg.contains("lies inside tool exception /claude/shell-snapshots"),
        "{msg}"
    );
}

#[test]
fn a_vault_entry_deeper_than_the_walk_allows_is_refused() {
    // The tool-layer walk recurses once per component with a path buffer
    // on a forked child's stack: vault paths are capped at 64 components.
    let deep: String = (0..65).map(|i| format!("/d{i}")).collect();
    let text = format!(
        "[harness]\nuser = \"1000:1000\"\n[vault]\n[[vault.entry]]\nname = \"deep\"\ndir = \"{deep}\"\n[filesystem]\n"
    );
    let e = policy::load_str(&text, "deep.toml", &policy::ExpandContext::default()).unwrap_err();
    assert!(
        e.to_string().contains("more than 64 directories deep"),
        "{e}"
    );
    let ok: String = (0..64).map(|i| format!("/d{i}")).collect();
    let text = text.replace(&deep, &ok);
    assert!(policy::load_str(&text, "ok.toml", &policy::ExpandContext::default()).is_ok());
}

#[test]
fn a_tool_exception_inside_another_vault_entry_is_refused() {
    // `inner`'s exception lies inside `outer`: the preload would deny it
    // (outer matches) while the tool layer granted it (an exception).
    let text = r#"[harness]
user = "1000:1000"
[vault]
[[vault.entry]]
name = "outer"
dir = "/secrets"
[[vault.entry]]
name = "inner"
dir = "/secrets/app"
tool_exceptions = ["cache"]
[filesystem]
read_only = ["/"]
"#;
    let e = policy::load_str(text, "x.toml", &policy::ExpandContext::default()).unwrap_err();
    assert!(
        e.to_string().contains("tool exception /secrets/app/cache of vault entry \"inner\" lies inside vault entry \"outer\""),
        "{e}"
    );
}

#[test]
fn a_path_the_preload_cannot_hold_is_refused_at_load() {
    let long = format!("/{}", "a".repeat(4200));
    let text = format!(
        "[harness]\nuser = \"1000:1000\"\n[vault]\n[[vault.entry]]\nname = \"long\"\ndir = \"{long}\"\n[filesystem]\n"
    );
    let e = policy::load_str(&text, "long.toml", &policy::ExpandContext::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("the preload could not read this policy"),
        "{e}"
    );
}

#[test]
fn limit_errors_point_at_the_first_item_past_the_limit() {
    // 128 distinct read-only paths, one a line: with an audit file's and
    // the probe's rules, the 128th path (in path order) is the first past
    // the limit.
    let mut read_only = String::from("read_only = [\n");
    for i in 0..128 {
        read_only.push_str(&format!("  \"/r/{i:03}\",\n"));
    }
    read_only.push(']');
    let text = policy_toml(
        "1000:1000",
        "",
        &read_only,
        "[audit]\nsink = \"/run/agent-vault/audit.jsonl\"",
    );
    let e = load_str(&text, "rules.toml", &ctx()).unwrap_err();
    assert!(
        e.to_string()
            .contains("130 distinct filesystem and vault paths"),
        "{e}"
    );
    // /r/127 is the 128th path in order, on line 6 + 127.
    assert_eq!((e.line, e.column), (133, 3), "{e}");

    // 65 tool exceptions over two entries: the 65th is the 33rd of the second.
    let mut entries = String::new();
    for (name, n) in [("a", 32), ("b", 33)] {
        entries.push_str(&format!(
            "[[vault.entry]]\nname = \"{name}\"\ndir = \"/{name}\"\ntool_exceptions = [\n"
        ));
        for i in 0..n {
            entries.push_str(&format!("  \"x{i}\",\n"));
        }
        entries.push_str("]\n");
    }
    let text = policy_toml("1000:1000", &entries, "", "");
    let e = load_str(&text, "exceptions.toml", &ctx()).unwrap_err();
    assert!(
        e.to_string()
            .contains("65 tool exceptions; the preload holds at most 64"),
        "{e}"
    );
    // Entry a: lines 4-7, its 32 exceptions 8-39, `]` on 40; entry b's
    // exceptions start on line 45: the 33rd is on line 77.
    assert_eq!((e.line, e.column), (77, 3), "{e}");
}
