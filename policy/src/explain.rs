//! What the harness and what a tool may do with a path, and which rule says
//! so. Lexical: symlinks are not followed (the caller resolves them first if
//! it wants the kernel's view).

use crate::access::Access;
use crate::landlock_plan::base_layer;
use crate::resolved::Policy;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One side's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub access: Access,
    /// The rules that decided, in words.
    pub reasons: Vec<String>,
}

/// The verdicts for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub harness: Decision,
    pub tool: Decision,
    /// The vault rule that covers the path, if any.
    pub vault_rule: Option<String>,
}

/// Explain a clean absolute path.
pub fn explain(policy: &Policy, path: &Path) -> Explanation {
    let base = base_layer(policy);
    let bytes = path.as_os_str().as_bytes();
    let mut harness = Decision {
        access: Access::NONE,
        reasons: Vec::new(),
    };
    for r in base.rules.iter().filter(|r| path.starts_with(&r.path)) {
        harness.access |= r.access;
        let why = if let Some(e) = policy.vault.iter().find(|e| e.path == r.path) {
            format!(
                "vault entry \"{}\" ({}) is read-write for the harness",
                e.name,
                e.path.display()
            )
        } else {
            let fs = &policy.filesystem;
            let mut lists = Vec::new();
            if fs.read_only.contains(&r.path) {
                lists.push("read_only");
            }
            if fs.read_write.contains(&r.path) {
                lists.push("read_write");
            }
            if fs.executable.contains(&r.path) {
                lists.push("executable");
            }
            let names: Vec<String> = lists.iter().map(|l| format!("filesystem.{l}")).collect();
            let (subject, verb) = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    (format!("{} and {last}", rest.join(", ")), "have")
                }
                _ => (names.concat(), "has"),
            };
            format!("{subject} {verb} {}", r.path.display())
        };
        harness.reasons.push(why);
    }
    for t in base.terminals.iter().filter(|t| path.starts_with(&t.path)) {
        harness.access |= t.access;
        harness.reasons.push(format!(
            "terminal device {} stays usable (agent-init adds it to the base layer)",
            t.path.display()
        ));
    }
    if harness.reasons.is_empty() {
        harness
            .reasons
            .push("no filesystem rule covers it: the base layer denies it".into());
    }
    // The base layer's walk: nothing beneath a hidden path, list-only on
    // the way to one. The same for tools (they inherit the base layer).
    let hiding = base.hidden.iter().find(|h| path.starts_with(&h.path));
    let holds: Vec<String> = base
        .hidden
        .iter()
        .filter(|h| h.path != path && h.path.starts_with(path))
        .map(|h| h.path.display().to_string())
        .collect();
    let hide = |d: &mut Decision| {
        if let Some(h) = hiding {
            d.access = Access::NONE;
            d.reasons.push(h.reason());
        } else if !holds.is_empty() {
            d.access = d.access.intersect(Access::READ_DIR);
            d.reasons.push(format!(
                "it holds hidden {}: only listing it is granted",
                holds.join(", ")
            ));
        }
    };
    hide(&mut harness);

    // The preload's own answer: the policy's image, read the way it reads it.
    let image = policy.to_image();
    let matcher = crate::View::decode(&image).expect("an encoded policy decodes");
    let name = |i: usize| {
        matcher.entry(i).map_or_else(String::new, |e| {
            String::from_utf8_lossy(e.name.bytes()).into_owned()
        })
    };
    let mut tool = Decision {
        access: Access::NONE,
        reasons: Vec::new(),
    };
    let vault_rule = matcher.match_path(bytes).map(name);
    let exception = policy
        .vault
        .iter()
        .flat_map(|e| e.tool_exceptions.iter().map(move |x| (e, x)))
        .find(|(_, x)| path.starts_with(x));
    if let Some(rule) = &vault_rule {
        let i = matcher.match_path(bytes).unwrap_or_default();
        tool.reasons.push(format!(
            "vault entry \"{rule}\" ({}) is harness-only: tools get EACCES",
            matcher
                .entry(i)
                .map_or_else(String::new, |e| String::from_utf8_lossy(e.path.bytes())
                    .into_owned())
        ));
    } else {
        // Base rights, less the vault entries' own grants.
        for r in base.rules.iter().filter(|r| path.starts_with(&r.path)) {
            if policy.vault.iter().any(|e| e.path == r.path) {
                continue;
            }
            tool.access |= r.access;
        }
        if let Some((e, x)) = exception {
            tool.reasons.push(format!(
                "tool exception {} of vault entry \"{}\": tools keep the base rights",
                x.display(),
                e.name
            ));
        }
        if matcher.is_vault_file_namesake(bytes) {
            tool.access = Access::NONE;
            tool.reasons.push(
                "it is named like a vault file beside it (a backup, or the temporary an atomic save renames over it): tools get no access"
                    .to_string(),
            );
        } else if let Some(ro) = matcher
            .tool_read_only()
            .find(|r| crate::pathbuf::is_within(bytes, r.bytes()))
        {
            tool.access = tool.access.intersect(Access::EXEC);
            tool.reasons.push(format!(
                "filesystem.tool_read_only has {} (the harness's own program): tools may read and execute, not write",
                String::from_utf8_lossy(ro.bytes())
            ));
        } else if matcher.leads_to_held(bytes) {
            tool.access = tool.access.intersect(Access::READ_DIR);
            let below: Vec<_> = matcher
                .vault()
                .filter(|e| crate::pathbuf::is_within(e.path.bytes(), bytes))
                .map(|e| {
                    format!(
                        "vault entry \"{}\"",
                        String::from_utf8_lossy(e.name.bytes())
                    )
                })
                .chain(
                    matcher
                        .tool_read_only()
                        .filter(|r| crate::pathbuf::is_within(r.bytes(), bytes))
                        .map(|r| format!("tool read-only {}", String::from_utf8_lossy(r.bytes()))),
                )
                .collect();
            tool.reasons.push(format!(
                "it holds {}: tools may only list it",
                below.join(", ")
            ));
        } else if tool.reasons.is_empty() {
            tool.reasons.push(if tool.access.is_empty() {
                "no filesystem rule covers it".to_string()
            } else {
                "the same base-layer rules as the harness".to_string()
            });
        }
    }
    hide(&mut tool);
    Explanation {
        harness,
        tool,
        vault_rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::ExpandContext;
    use std::collections::BTreeMap;

    fn policy() -> Policy {
        let mut env = BTreeMap::new();
        env.insert("PI_CODING_AGENT_DIR".into(), "/pi-agent".into());
        let ctx = ExpandContext {
            home: Some("/home/agent".into()),
            env,
        };
        Policy::builtin(&ctx).unwrap()
    }

    #[test]
    fn vault_file_is_harness_only() {
        let e = explain(&policy(), Path::new("/pi-agent/auth.json"));
        assert_eq!(e.vault_rule.as_deref(), Some("pi"));
        assert!(
            e.harness
                .access
                .contains(Access::READ_FILE | Access::WRITE_FILE)
        );
        assert_eq!(e.tool.access, Access::NONE);
        assert!(e.tool.reasons[0].contains("\"pi\""));
    }

    #[test]
    fn ancestors_are_list_only_and_exceptions_usable() {
        let p = policy();
        let home = explain(&p, Path::new("/home/agent"));
        assert_eq!(home.tool.access, Access::READ_DIR);
        assert!(home.harness.access.contains(Access::WRITE_FILE));
        let snap = explain(&p, Path::new("/claude/shell-snapshots/x.sh"));
        assert_eq!(snap.vault_rule, None);
        assert!(snap.tool.access.contains(Access::READ_FILE));
        let usr = explain(&p, Path::new("/usr/bin/cat"));
        assert_eq!(usr.tool.access, Access::EXEC);
        assert_eq!(usr.harness.access, Access::EXEC);
    }

    #[test]
    fn the_harness_program_is_read_and_execute_for_tools() {
        let p = policy();
        let bin = explain(&p, Path::new("/home/agent/.local/claude-code/bin/claude"));
        assert_eq!(bin.tool.access, Access::EXEC);
        assert!(bin.tool.reasons[0].contains("tool_read_only"), "{bin:?}");
        assert!(bin.harness.access.contains(Access::WRITE_FILE));
        let local = explain(&p, Path::new("/home/agent/.local"));
        assert_eq!(local.tool.access, Access::READ_DIR);
        assert!(
            local.tool.reasons[0].contains("tool read-only"),
            "{local:?}"
        );
    }

    #[test]
    fn backups_of_a_vault_file_are_closed_to_tools() {
        let p = policy();
        let b = explain(&p, Path::new("/home/agent/.claude.json.backup"));
        assert_eq!(b.vault_rule, None);
        assert_eq!(b.tool.access, Access::NONE);
        assert!(
            b.tool.reasons[0].contains("named like a vault file"),
            "{:?}",
            b.tool
        );
        let rc = explain(&p, Path::new("/home/agent/.bashrc"));
        assert!(rc.tool.access.contains(Access::READ_FILE));
    }

    #[test]
    fn terminals_stay_usable_for_the_harness() {
        let mut p = policy();
        p.filesystem.read_write.clear();
        let pts = explain(&p, Path::new("/dev/pts/0"));
        assert!(pts.harness.access.contains(Access::IOCTL_DEV));
        assert!(
            pts.harness
                .reasons
                .iter()
                .any(|r| r.contains("terminal device /dev/pts stays usable")),
            "{:?}",
            pts.harness
        );
    }

    #[test]
    fn seed_sources_are_hidden_from_harness_and_tools() {
        let p = policy();
        let e = explain(&p, Path::new("/pi-agent-ro/auth.json"));
        for d in [&e.harness, &e.tool] {
            assert_eq!(d.access, Access::NONE, "{d:?}");
            let why = d.reasons.last().unwrap();
            assert!(
                why.contains("seed source /pi-agent-ro")
                    && why.contains("into /pi-agent")
                    && why.contains("hidden from the harness and every tool"),
                "{why}"
            );
        }
        // The way to it is list-only; a sibling keeps its rights.
        let root = explain(&p, Path::new("/"));
        assert_eq!(root.harness.access, Access::READ_DIR);
        assert!(
            root.harness
                .reasons
                .iter()
                .any(|r| r.contains("it holds hidden /pi-agent-ro")),
            "{:?}",
            root.harness
        );
        let sibling = explain(&p, Path::new("/pi-agent-rw/x"));
        assert!(sibling.harness.access.contains(Access::READ_FILE));
        // A seed source inside the vault is the harness's own state.
        let backups = explain(&p, Path::new("/home/agent/.claude/backups/b"));
        assert!(backups.harness.access.contains(Access::READ_FILE));
    }

    #[test]
    fn listed_hidden_paths_say_so() {
        let mut p = policy();
        p.filesystem.hidden.push("/run/secrets".into());
        let e = explain(&p, Path::new("/run/secrets/db"));
        assert_eq!(e.harness.access, Access::NONE);
        assert_eq!(e.tool.access, Access::NONE);
        assert!(
            e.tool
                .reasons
                .last()
                .unwrap()
                .contains("filesystem.hidden has /run/secrets"),
            "{:?}",
            e.tool
        );
    }

    #[test]
    fn reasons_agree_in_number() {
        let p = policy();
        let usr = explain(&p, Path::new("/usr/bin/cat"));
        let all = usr.harness.reasons.join("\n");
        assert!(
            all.contains("filesystem.read_only and filesystem.executable have /"),
            "{all}"
        );
        let home = explain(&p, Path::new("/home/agent/x"));
        let all = home.harness.reasons.join("\n");
        assert!(
            all.contains("filesystem.read_write has /home/agent"),
            "{all}"
        );
    }
}
