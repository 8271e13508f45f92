//! The Landlock plans: the base layer that agent-init applies to everything,
//! and the tool layer that the preload applies to every process the harness
//! spawns.
//!
//! Landlock only grants; it has no deny rule. The tool layer therefore grants
//! what the base layer grants, except on the way to each vault entry: there it
//! grants only `read_dir` on each ancestor, and the base rights to every
//! sibling along the path, leaving out siblings that are symlinks (the rule
//! would land on their target) and non-directories with more than one link
//! (possibly a hard link to a vault file: rules attach to inodes).
//!
//! The base layer hides paths too ([`hidden_paths`]): the seed sources
//! (read-only mounts of the host's logins, which agent-init reads as root
//! while it seeds and, with the proxy on, at every start) and the policy's
//! `[filesystem] hidden` (secret mounts such as `/run/secrets`). Once
//! agent-init has read them, neither the harness (its in-process Read tool)
//! nor any tool (a static binary's raw `openat`) may. agent-init applies the
//! same walk ([`walk`]) to the base rules with these paths hidden, as root,
//! before it drops privileges; the image carries them, so that the tool
//! layer hides them as well.
//!
//! The walks ([`walk`], [`tool_layer`]) live in `policy_core`: they are
//! allocation-free, runs over the policy's image, and is generic over the
//! file system ([`FsView`]) and the rule sink ([`RuleSink`]). The preload
//! runs it with raw syscalls in a freshly forked child; the golden tests here
//! run it on listings they make up, over the image [`Policy::to_image`]
//! writes, so they also hold the image to the plan.

use crate::access::Access;
use crate::resolved::{AuditSink, Policy, VaultKind};
use std::path::{Path, PathBuf};

/// One rule: `access` on `path` and everything beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathBuf,
    pub access: Access,
}

/// The base layer: handled rights and the rules that grant them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLayer {
    /// Rights the ruleset handles (denied unless a rule grants them).
    pub handled: Access,
    /// One rule per path, rights merged, in path order. The policy image
    /// holds these, and the tool layer is derived from them.
    pub rules: Vec<Rule>,
    /// Paths the rules must not reach: agent-init applies [`BaseLayer::rules`]
    /// through the walk ([`walk`]) with these hidden. In the policy image
    /// too (the tool layer hides them).
    pub hidden: Vec<HiddenPath>,
    /// The terminal rules, applied by agent-init after [`BaseLayer::rules`]
    /// for the harness (not in the policy image: the tool layer does not
    /// add them). [`TERMINAL_DEVICES`] here; agent-init adds the terminal
    /// behind its standard fds with [`BaseLayer::add_terminal`].
    pub terminals: Vec<Rule>,
}

/// A path the base layer keeps from the harness and every tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenPath {
    pub path: PathBuf,
    pub why: Hiding,
}

/// Why a path is hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hiding {
    /// The source of a `[[seed]]` (agent-init copies it into `target`).
    Seed { target: PathBuf },
    /// Listed in `[filesystem] hidden`.
    Listed,
}

impl Hiding {
    /// What the path is, in words: "seed source", "hidden path"
    /// (`[filesystem] hidden`).
    pub fn noun(&self) -> &'static str {
        match self {
            Hiding::Seed { .. } => "seed source",
            Hiding::Listed => "hidden path",
        }
    }
}

impl HiddenPath {
    /// The reason, in one line (for `explain`).
    pub fn reason(&self) -> String {
        let what = match &self.why {
            Hiding::Seed { target } => format!(
                "seed source {} (agent-init, as root, copies it into {} before the harness starts)",
                self.path.display(),
                target.display()
            ),
            Hiding::Listed => format!("filesystem.hidden has {}", self.path.display()),
        };
        format!(
            "{what}: hidden from the harness and every tool (the base layer grants nothing beneath it)"
        )
    }
}

/// The paths the base layer hides: every seed source that is not inside a
/// vault entry (a source in the vault is the harness's own state, such as
/// Claude Code's `backups/`), then `[filesystem] hidden`; each path once.
pub fn hidden_paths(policy: &Policy) -> Vec<HiddenPath> {
    let in_vault = |p: &Path| policy.vault.iter().any(|e| p.starts_with(&e.path));
    let seeds = policy
        .seeds
        .iter()
        .filter(|s| !in_vault(&s.source))
        .map(|s| HiddenPath {
            path: s.source.clone(),
            why: Hiding::Seed {
                target: s.target.clone(),
            },
        });
    let listed = policy.filesystem.hidden.iter().map(|p| HiddenPath {
        path: p.clone(),
        why: Hiding::Listed,
    });
    let mut out: Vec<HiddenPath> = Vec::new();
    for h in seeds.chain(listed) {
        if !out.iter().any(|o| o.path == h.path) {
            out.push(h);
        }
    }
    out
}

/// Terminal devices that must keep working under the base layer, whatever
/// the policy's lists say.
pub const TERMINAL_DEVICES: &[&str] = &["/dev/ptmx", "/dev/pts", "/dev/tty", "/dev/console"];

/// What a terminal rule grants: read, write, list, and `IoctlDev` (without
/// it, `openpty` fails with "out of pty devices").
pub const TERMINAL_ACCESS: Access = Access::READ_FILE
    .union(Access::WRITE_FILE)
    .union(Access::IOCTL_DEV)
    .union(Access::READ_DIR);

impl BaseLayer {
    /// Add a terminal rule for `path` (the tty behind a standard fd: a fact
    /// of the running process, read by the caller), unless it is there.
    pub fn add_terminal(&mut self, path: PathBuf) {
        if !self.terminals.iter().any(|r| r.path == path) {
            self.terminals.push(Rule {
                path,
                access: TERMINAL_ACCESS,
            });
        }
    }
}

/// The base layer of a policy. Vault entries are granted read-write (the
/// harness keeps its own state); a rule whose path turns out not to be a
/// directory must be masked with [`Access::FILE_ONLY`] by the applier.
pub fn base_layer(policy: &Policy) -> BaseLayer {
    let mut rules: Vec<Rule> = Vec::new();
    let mut grant =
        |path: &PathBuf, access: Access| match rules.iter_mut().find(|r| &r.path == path) {
            Some(r) => r.access |= access,
            None => rules.push(Rule {
                path: path.clone(),
                access,
            }),
        };
    let fs = &policy.filesystem;
    fs.read_only.iter().for_each(|p| grant(p, Access::READ));
    fs.read_write
        .iter()
        .for_each(|p| grant(p, Access::READ_WRITE));
    fs.executable.iter().for_each(|p| grant(p, Access::EXEC));
    // Every process appends its denial records to the audit file (and may not read it).
    if let AuditSink::File(f) = &policy.audit {
        grant(f, Access::WRITE_FILE);
    }
    for e in &policy.vault {
        let a = match e.kind {
            VaultKind::Dir => Access::READ_WRITE,
            VaultKind::File => Access::READ_WRITE.intersect(Access::FILE_ONLY),
        };
        grant(&e.path, a);
    }
    rules.sort_by(|a, b| a.path.cmp(&b.path));
    let mut layer = BaseLayer {
        handled: Access::ALL,
        rules,
        hidden: hidden_paths(policy),
        terminals: Vec::new(),
    };
    for t in TERMINAL_DEVICES {
        layer.add_terminal(PathBuf::from(t));
    }
    layer
}

pub use policy_core::walk::{DirEntry, EntryKind, FsView, Held, RuleSink, tool_layer, walk};

impl BaseLayer {
    /// Walk the rules with the hidden paths hidden: every rule the base
    /// layer's ruleset gets (before the terminals) goes to `sink`.
    /// `hidden_ids`: the identities of the hidden paths that exist.
    pub fn walk<E>(
        &self,
        hidden_ids: &[policy_core::FileId],
        fs: &mut impl FsView<Error = E>,
        sink: &mut impl RuleSink<Error = E>,
    ) -> Result<(), E> {
        fn bytes(p: &Path) -> &[u8] {
            use std::os::unix::ffi::OsStrExt;
            p.as_os_str().as_bytes()
        }
        let hidden: Vec<&[u8]> = self.hidden.iter().map(|h| bytes(&h.path)).collect();
        let rules = self.rules.iter().map(|r| (bytes(&r.path), r.access));
        walk(rules, &hidden[..], hidden_ids, fs, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::ExpandContext;
    use policy_core::{FileId, View};
    use std::collections::BTreeMap;

    /// The tool layer of `p`, as the preload computes it: from the image.
    fn walk(p: &Policy, ids: &[FileId], fs: &mut FakeFs, rules: &mut Rules) -> Result<(), String> {
        let image = p.to_image();
        let view = View::decode(&image).unwrap();
        tool_layer(&view, ids, fs, rules)
    }

    /// A made-up file system: directory -> entries.
    struct FakeFs(BTreeMap<&'static str, Vec<(&'static str, EntryKind, u64, u64)>>);

    impl FsView for FakeFs {
        type Error = String;
        fn list(
            &mut self,
            dir: &[u8],
            f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), String>,
        ) -> Result<(), String> {
            let d = std::str::from_utf8(dir).unwrap();
            let entries = self.0.get(d).ok_or_else(|| format!("ENOENT {d}"))?;
            for &(name, kind, nlink, ino) in entries {
                f(&DirEntry {
                    name: name.as_bytes(),
                    kind,
                    nlink,
                    id: FileId { dev: 1, ino },
                })?;
            }
            Ok(())
        }
    }

    #[derive(Default)]
    struct Rules(Vec<(String, Option<bool>, Access)>);

    impl RuleSink for Rules {
        type Error = String;
        fn add(&mut self, path: &[u8], is_dir: Option<bool>, access: Access) -> Result<(), String> {
            self.0
                .push((String::from_utf8(path.to_vec()).unwrap(), is_dir, access));
            Ok(())
        }
    }

    fn policy(vault: &str, fs: &str) -> Policy {
        let text = crate::testing::policy_toml("1000:1000", vault, fs, "[audit]\nsink = \"off\"");
        let ctx = ExpandContext {
            home: Some("/home/agent".into()),
            env: BTreeMap::new(),
        };
        crate::load::load_str(&text, "t.toml", &ctx).unwrap()
    }

    use EntryKind::*;

    fn image_fs() -> FakeFs {
        let mut m = BTreeMap::new();
        m.insert(
            "/",
            vec![
                ("usr", Dir, 1, 10),
                ("etc", Dir, 1, 11),
                ("pi-agent", Dir, 1, 12),
                ("pi-agent-ro", Dir, 1, 13),
                ("claude", Dir, 1, 14),
                ("tmp", Dir, 1, 15),
                ("lib", Symlink, 1, 16),
                ("vmlinuz", Other, 1, 17),
                ("auth-hardlink", Other, 2, 99),
                ("home", Dir, 1, 18),
            ],
        );
        m.insert("/home", vec![("agent", Dir, 1, 20), ("other", Dir, 1, 21)]);
        m.insert(
            "/home/agent",
            vec![
                (".claude", Dir, 1, 30),
                (".claude.json", Other, 1, 31),
                (".bashrc", Other, 1, 32),
                (".claude.json.backup", Other, 1, 35),
                (".claude.json.tmp.77.1", Other, 1, 36),
                ("project", Dir, 1, 33),
                ("link-to-claude", Symlink, 1, 34),
            ],
        );
        FakeFs(m)
    }

    #[test]
    fn golden_image_layout() {
        let p = policy(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"/pi-agent\"\n\
             [[vault.entry]]\nname = \"claude\"\ndir = \"/claude\"\ntool_exceptions = [\"shell-snapshots\"]\n",
            "read_only = [\"/\"]\nexecutable = [\"/\"]\nread_write = [\"/tmp\"]\n",
        );
        let base = base_layer(&p);
        let got: Vec<_> = base
            .rules
            .iter()
            .map(|r| (r.path.to_str().unwrap(), r.access))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/", Access::EXEC),
                ("/claude", Access::READ_WRITE),
                ("/pi-agent", Access::READ_WRITE),
                ("/tmp", Access::READ_WRITE),
            ]
        );
        let tty = Access::READ_FILE | Access::WRITE_FILE | Access::IOCTL_DEV | Access::READ_DIR;
        let terminals: Vec<_> = base
            .terminals
            .iter()
            .map(|r| (r.path.to_str().unwrap(), r.access))
            .collect();
        assert_eq!(
            terminals,
            vec![
                ("/dev/ptmx", tty),
                ("/dev/pts", tty),
                ("/dev/tty", tty),
                ("/dev/console", tty),
            ]
        );

        let mut rules = Rules::default();
        walk(&p, &[], &mut image_fs(), &mut rules).unwrap();
        let ro_file = Access::EXEC.intersect(Access::FILE_ONLY);
        assert_eq!(
            rules.0,
            vec![
                ("/".to_string(), Some(true), Access::READ_DIR),
                ("/usr".into(), Some(true), Access::EXEC),
                ("/etc".into(), Some(true), Access::EXEC),
                ("/pi-agent-ro".into(), Some(true), Access::EXEC),
                ("/tmp".into(), Some(true), Access::EXEC),
                ("/vmlinuz".into(), Some(false), ro_file),
                ("/home".into(), Some(true), Access::EXEC),
                ("/tmp".into(), None, Access::READ_WRITE),
                ("/claude/shell-snapshots".into(), None, Access::EXEC),
            ]
        );
    }

    #[test]
    fn golden_nested_home_layout() {
        let p = policy(
            "[[vault.entry]]\nname = \"claude\"\ndir = \"~/.claude\"\n\
             [[vault.entry]]\nname = \"claude-json\"\nfile = \"~/.claude.json\"\n",
            "read_only = [\"/\"]\nread_write = [\"~\"]\n",
        );
        let ids = [FileId { dev: 1, ino: 30 }, FileId { dev: 1, ino: 31 }];
        let mut rules = Rules::default();
        walk(&p, &ids, &mut image_fs(), &mut rules).unwrap();
        let names: Vec<_> = rules
            .0
            .iter()
            .map(|(p, d, a)| (p.as_str(), *d, *a))
            .collect();
        let rw_file = Access::READ_WRITE.intersect(Access::FILE_ONLY);
        let ro_file = Access::READ.intersect(Access::FILE_ONLY);
        assert_eq!(
            names,
            vec![
                // "/" read-only, expanded down to /home/agent
                ("/", Some(true), Access::READ_DIR),
                ("/usr", Some(true), Access::READ),
                ("/etc", Some(true), Access::READ),
                ("/pi-agent", Some(true), Access::READ),
                ("/pi-agent-ro", Some(true), Access::READ),
                ("/claude", Some(true), Access::READ),
                ("/tmp", Some(true), Access::READ),
                ("/vmlinuz", Some(false), ro_file),
                ("/home", Some(true), Access::READ_DIR),
                ("/home/other", Some(true), Access::READ),
                ("/home/agent", Some(true), Access::READ_DIR),
                ("/home/agent/.bashrc", Some(false), ro_file),
                ("/home/agent/project", Some(true), Access::READ),
                // "~" read-write, expanded
                ("/home/agent", Some(true), Access::READ_DIR),
                ("/home/agent/.bashrc", Some(false), rw_file),
                ("/home/agent/project", Some(true), Access::READ_WRITE),
            ]
        );
        // Never a rule on a vault entry, a symlink, a multiply-linked file,
        // or a backup or save temporary of a vault file (`.claude.json.*`).
        for (p, _, _) in &rules.0 {
            assert!(!p.contains(".claude"), "{p}");
            assert!(!p.contains("link"), "{p}");
        }
    }

    #[test]
    fn golden_tool_read_only_program_prefix() {
        let p = policy(
            "[[vault.entry]]\nname = \"claude\"\ndir = \"~/.claude\"\n\
             [[vault.entry]]\nname = \"claude-json\"\nfile = \"~/.claude.json\"\n",
            "read_only = [\"/\"]\nexecutable = [\"/\"]\nread_write = [\"~\", \"~/.local/claude-code/cache\"]\n\
             tool_read_only = [\"~/.local/claude-code\"]\n",
        );
        let mut fs = image_fs();
        fs.0.get_mut("/home/agent")
            .unwrap()
            .push((".local", Dir, 1, 40));
        fs.0.insert(
            "/home/agent/.local",
            vec![
                ("claude-code", Dir, 1, 41),
                ("share", Dir, 1, 42),
                ("claude-codex", Other, 1, 43),
            ],
        );
        let ids = [FileId { dev: 1, ino: 30 }, FileId { dev: 1, ino: 31 }];
        let mut rules = Rules::default();
        walk(&p, &ids, &mut fs, &mut rules).unwrap();
        let got: Vec<_> = rules
            .0
            .iter()
            .filter(|(p, _, _)| p.starts_with("/home/agent"))
            .map(|(p, d, a)| (p.as_str(), *d, *a))
            .collect();
        let ro_file = Access::EXEC.intersect(Access::FILE_ONLY);
        let rw_file = Access::READ_WRITE.intersect(Access::FILE_ONLY);
        assert_eq!(
            got,
            vec![
                // "/" (read and execute), expanded down to ~/.local
                ("/home/agent", Some(true), Access::READ_DIR),
                ("/home/agent/.bashrc", Some(false), ro_file),
                ("/home/agent/project", Some(true), Access::EXEC),
                ("/home/agent/.local", Some(true), Access::READ_DIR),
                ("/home/agent/.local/claude-code", Some(true), Access::EXEC),
                ("/home/agent/.local/share", Some(true), Access::EXEC),
                ("/home/agent/.local/claude-codex", Some(false), ro_file),
                // "~" (read-write), expanded: the program prefix gets no write
                ("/home/agent", Some(true), Access::READ_DIR),
                ("/home/agent/.bashrc", Some(false), rw_file),
                ("/home/agent/project", Some(true), Access::READ_WRITE),
                ("/home/agent/.local", Some(true), Access::READ_DIR),
                ("/home/agent/.local/claude-code", Some(true), Access::READ),
                ("/home/agent/.local/share", Some(true), Access::READ_WRITE),
                ("/home/agent/.local/claude-codex", Some(false), rw_file),
                // a read-write base rule inside it: read only for tools
                ("/home/agent/.local/claude-code/cache", None, Access::READ),
            ]
        );
        // The harness's base layer keeps write there.
        let base = base_layer(&p);
        assert!(base.rules.iter().any(
            |r| r.path.ends_with(".local/claude-code/cache") && r.access == Access::READ_WRITE
        ));
        // Overlapping the vault is an error.
        let text = crate::testing::policy_toml(
            "1000:1000",
            "[[vault.entry]]\nname = \"c\"\ndir = \"/claude\"\n",
            "read_only = [\"/\"]\ntool_read_only = [\"/claude/bin\"]\n",
            "[audit]\nsink = \"off\"",
        );
        let err = crate::load::load_str(&text, "t.toml", &ExpandContext::default()).unwrap_err();
        assert!(err.to_string().contains("overlaps vault entry"), "{err}");
    }

    #[test]
    fn a_base_rule_inside_the_vault_is_dropped_and_one_equal_to_an_exception_kept() {
        let p = policy(
            "[[vault.entry]]\nname = \"c\"\ndir = \"/claude\"\ntool_exceptions = [\"shell-snapshots\"]\n",
            "read_write = [\"/claude/projects\", \"/claude/shell-snapshots\", \"/tmp\"]\n",
        );
        let mut rules = Rules::default();
        walk(&p, &[], &mut image_fs(), &mut rules).unwrap();
        let paths: Vec<_> = rules.0.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec!["/claude/shell-snapshots", "/tmp", "/claude/shell-snapshots"]
        );
    }

    #[test]
    fn the_audit_file_is_write_only_for_everyone() {
        let text = crate::testing::policy_toml(
            "1000:1000",
            "",
            "",
            "[audit]\nsink = \"/run/av/audit.jsonl\"",
        );
        let p = crate::load::load_str(&text, "t", &ExpandContext::default()).unwrap();
        assert_eq!(
            base_layer(&p).rules,
            vec![Rule {
                path: "/run/av/audit.jsonl".into(),
                access: Access::WRITE_FILE
            }]
        );
    }

    #[test]
    fn a_terminal_is_added_once_and_never_reaches_the_image() {
        let p = policy("", "read_only = [\"/\"]\n");
        let mut base = base_layer(&p);
        base.add_terminal("/dev/pts/3".into());
        base.add_terminal("/dev/pts/3".into());
        base.add_terminal("/dev/tty".into());
        let paths: Vec<_> = base
            .terminals
            .iter()
            .map(|r| r.path.to_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "/dev/ptmx",
                "/dev/pts",
                "/dev/tty",
                "/dev/console",
                "/dev/pts/3"
            ]
        );
        let image = p.to_image();
        let view = View::decode(&image).unwrap();
        assert!(
            view.base()
                .all(|(path, _)| !path.bytes().starts_with(b"/dev"))
        );
    }

    /// A root with a seed mount, a secret mount under `/run`, and siblings.
    fn seeded_fs() -> FakeFs {
        let mut m = BTreeMap::new();
        m.insert(
            "/",
            vec![
                ("usr", Dir, 1, 10),
                ("pi-agent", Dir, 1, 12),
                ("pi-agent-ro", Dir, 1, 13),
                ("pi-agent-rw", Dir, 1, 14),
                ("seed-bind", Dir, 1, 13), // the seed mount, bound again
                ("seed-link", Symlink, 1, 15),
                ("tmp", Dir, 1, 16),
                ("run", Dir, 1, 17),
                ("vmlinuz", Other, 1, 18),
            ],
        );
        m.insert("/run", vec![("secrets", Dir, 1, 20), ("lock", Dir, 1, 21)]);
        FakeFs(m)
    }

    fn seeded_policy() -> Policy {
        policy(
            "[[vault.entry]]\nname = \"pi\"\ndir = \"/pi-agent\"\n",
            "read_only = [\"/\"]\nread_write = [\"/tmp\", \"/pi-agent-ro/cache\"]\nhidden = [\"/run/secrets\"]\n\
             [[seed]]\nsource = \"/pi-agent-ro\"\ntarget = \"/pi-agent\"\nmode = \"copy-missing\"\n",
        )
    }

    #[test]
    fn golden_base_layer_hides_seed_sources_and_listed_paths() {
        let p = seeded_policy();
        let base = base_layer(&p);
        let hidden: Vec<_> = base
            .hidden
            .iter()
            .map(|h| (h.path.to_str().unwrap(), &h.why))
            .collect();
        assert_eq!(
            hidden,
            vec![
                (
                    "/pi-agent-ro",
                    &Hiding::Seed {
                        target: "/pi-agent".into()
                    }
                ),
                ("/run/secrets", &Hiding::Listed),
            ]
        );
        let mut rules = Rules::default();
        let seed = FileId { dev: 1, ino: 13 };
        base.walk(&[seed], &mut seeded_fs(), &mut rules).unwrap();
        let ro_file = Access::READ.intersect(Access::FILE_ONLY);
        assert_eq!(
            rules.0,
            vec![
                ("/".to_string(), Some(true), Access::READ_DIR),
                ("/usr".into(), Some(true), Access::READ),
                ("/pi-agent".into(), Some(true), Access::READ),
                ("/pi-agent-rw".into(), Some(true), Access::READ),
                ("/tmp".into(), Some(true), Access::READ),
                ("/vmlinuz".into(), Some(false), ro_file),
                ("/run".into(), Some(true), Access::READ_DIR),
                ("/run/lock".into(), Some(true), Access::READ),
                // The vault, read-write for the harness; the grant inside
                // the seed mount is dropped.
                ("/pi-agent".into(), None, Access::READ_WRITE),
                ("/tmp".into(), None, Access::READ_WRITE),
            ]
        );
    }

    #[test]
    fn the_tool_layer_does_not_grant_hidden_paths_back() {
        let p = seeded_policy();
        let image = p.to_image();
        let view = View::decode(&image).unwrap();
        let hidden: Vec<_> = view.hidden().map(|h| h.bytes()).collect();
        assert_eq!(hidden, [&b"/pi-agent-ro"[..], b"/run/secrets"]);
        let mut rules = Rules::default();
        let seed = FileId { dev: 1, ino: 13 };
        tool_layer(&view, &[seed], &mut seeded_fs(), &mut rules).unwrap();
        let ro_file = Access::READ.intersect(Access::FILE_ONLY);
        assert_eq!(
            rules.0,
            vec![
                ("/".to_string(), Some(true), Access::READ_DIR),
                ("/usr".into(), Some(true), Access::READ),
                ("/pi-agent-rw".into(), Some(true), Access::READ),
                ("/tmp".into(), Some(true), Access::READ),
                ("/vmlinuz".into(), Some(false), ro_file),
                ("/run".into(), Some(true), Access::READ_DIR),
                ("/run/lock".into(), Some(true), Access::READ),
                ("/tmp".into(), None, Access::READ_WRITE),
            ]
        );
    }

    #[test]
    fn hidden_paths_that_would_take_the_harness_files_are_refused() {
        let load = |vault: &str, fs: &str| {
            let text =
                crate::testing::policy_toml("1000:1000", vault, fs, "[audit]\nsink = \"off\"");
            crate::load::load_str(&text, "t.toml", &ExpandContext::default())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let vault = "[[vault.entry]]\nname = \"c\"\ndir = \"/claude\"\n";
        let e = load(vault, "hidden = [\"/claude/keys\"]\n").unwrap_err();
        assert!(
            e.contains("hidden path /claude/keys overlaps vault entry \"c\" (/claude)"),
            "{e}"
        );
        assert!(e.starts_with("t.toml:"), "{e}");
        let e = load("", "hidden = [\"/\"]\n").unwrap_err();
        assert!(
            e.contains("hidden path / is `/` (it would hide everything)"),
            "{e}"
        );
        let e = load("", "hidden = [\"/run\"]\n").unwrap_err();
        assert!(
            e.contains("holds agent-init's state directory /run/agent-vault"),
            "{e}"
        );
        let seed = "[[seed]]\nsource = \"/home\"\ntarget = \"/pi\"\nmode = \"copy-missing\"\n";
        let e = load(
            "[[vault.entry]]\nname = \"h\"\ndir = \"/home/a/.codex\"\n",
            seed,
        )
        .unwrap_err();
        assert!(
            e.contains("seed source /home overlaps vault entry \"h\""),
            "{e}"
        );
        assert!(load(vault, "hidden = [\"/run/secrets\", \"/claude-ro\"]\n").is_ok());
    }

    #[test]
    fn listing_errors_reach_the_caller() {
        let p = policy(
            "[[vault.entry]]\nname = \"x\"\ndir = \"/nowhere/x\"\n",
            "read_only = [\"/\"]\n",
        );
        let mut rules = Rules::default();
        let e = walk(&p, &[], &mut image_fs(), &mut rules).unwrap_err();
        assert_eq!(e, "ENOENT /nowhere");
    }
}
