//! "Is this a vault entry, and which rule?" for a path or a `(dev, ino)`.
//!
//! Built once (it allocates); every query is allocation-free, so the preload
//! can ask it from inside an `open` hook.

use crate::load::{Policy, VaultKind};
use crate::pathbuf::is_within;
use std::os::unix::ffi::OsStrExt;

/// A file's identity: device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    path: Vec<u8>,
    kind: VaultKind,
    exceptions: Vec<Vec<u8>>,
    id: Option<FileId>,
}

/// The compiled vault.
#[derive(Debug, Clone, Default)]
pub struct VaultMatcher {
    entries: Vec<Entry>,
}

impl VaultMatcher {
    pub fn new(policy: &Policy) -> VaultMatcher {
        let entries = policy
            .vault
            .iter()
            .map(|e| Entry {
                name: e.name.clone(),
                path: e.path.as_os_str().as_bytes().to_vec(),
                kind: e.kind,
                exceptions: e
                    .tool_exceptions
                    .iter()
                    .map(|x| x.as_os_str().as_bytes().to_vec())
                    .collect(),
                id: None,
            })
            .collect();
        VaultMatcher { entries }
    }

    /// Number of vault entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The rule name of entry `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.entries[i].name
    }

    /// The path of entry `i`.
    pub fn path(&self, i: usize) -> &[u8] {
        &self.entries[i].path
    }

    pub fn kind(&self, i: usize) -> VaultKind {
        self.entries[i].kind
    }

    /// Record entry `i`'s identity (the caller stats it; `None`: missing).
    pub fn set_id(&mut self, i: usize, id: Option<FileId>) {
        self.entries[i].id = id;
    }

    pub fn id(&self, i: usize) -> Option<FileId> {
        self.entries[i].id
    }

    /// The tool exceptions of entry `i`.
    pub fn exceptions(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        self.entries[i].exceptions.iter().map(|x| x.as_slice())
    }

    /// The vault entry that covers a clean absolute path, if any: the path is
    /// the entry, or lies under a `dir` entry and not under one of its tool
    /// exceptions.
    pub fn match_path(&self, path: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| match e.kind {
            VaultKind::File => path == e.path.as_slice(),
            VaultKind::Dir => {
                is_within(path, &e.path) && !e.exceptions.iter().any(|x| is_within(path, x))
            }
        })
    }

    /// The vault entry whose own inode this is (the entry itself, or a hard
    /// link or symlink target of it).
    pub fn match_id(&self, id: FileId) -> Option<usize> {
        self.entries.iter().position(|e| e.id == Some(id))
    }

    /// True when some `dir` entry has this device: only then can a file on
    /// that device lie inside a vault directory (a cheap pre-filter).
    pub fn dir_on_device(&self, dev: u64) -> bool {
        self.entries
            .iter()
            .any(|e| e.kind == VaultKind::Dir && e.id.is_some_and(|id| id.dev == dev))
    }

    /// True when `path` is a strict ancestor of some entry (tools may list it).
    pub fn is_ancestor(&self, path: &[u8]) -> bool {
        self.entries
            .iter()
            .any(|e| e.path.as_slice() != path && is_within(&e.path, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::ExpandContext;

    fn matcher() -> VaultMatcher {
        let text = r#"
[harness]
user = "1000:1000"
[vault]
[[vault.entry]]
name = "pi"
dir = "/pi-agent"
[[vault.entry]]
name = "claude"
dir = "/claude"
tool_exceptions = ["shell-snapshots"]
[[vault.entry]]
name = "claude-json"
file = "/home/agent/.claude.json"
[filesystem]
"#;
        VaultMatcher::new(&crate::load::load_str(text, "t", &ExpandContext::default()).unwrap())
    }

    #[test]
    fn paths_match_their_rule() {
        let m = matcher();
        let hit = |p: &str| m.match_path(p.as_bytes()).map(|i| m.name(i).to_string());
        assert_eq!(hit("/pi-agent").as_deref(), Some("pi"));
        assert_eq!(hit("/pi-agent/auth.json").as_deref(), Some("pi"));
        assert_eq!(hit("/pi-agent-ro/auth.json"), None);
        assert_eq!(hit("/claude/.credentials.json").as_deref(), Some("claude"));
        assert_eq!(hit("/claude/shell-snapshots"), None);
        assert_eq!(hit("/claude/shell-snapshots/snap.sh"), None);
        assert_eq!(hit("/claude/shell-snapshotsX").as_deref(), Some("claude"));
        assert_eq!(
            hit("/home/agent/.claude.json").as_deref(),
            Some("claude-json")
        );
        assert_eq!(hit("/home/agent/.claude.json.backup"), None);
        assert_eq!(hit("/"), None);
        assert!(m.is_ancestor(b"/home/agent"));
        assert!(!m.is_ancestor(b"/pi-agent"));
    }

    #[test]
    fn ids_match_their_rule() {
        let mut m = matcher();
        m.set_id(2, Some(FileId { dev: 8, ino: 42 }));
        m.set_id(0, Some(FileId { dev: 9, ino: 2 }));
        assert_eq!(m.match_id(FileId { dev: 8, ino: 42 }), Some(2));
        assert_eq!(m.match_id(FileId { dev: 8, ino: 43 }), None);
        assert!(m.dir_on_device(9));
        assert!(!m.dir_on_device(8));
    }
}
