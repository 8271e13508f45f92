//! The tool layer's walk: the rules of the Landlock layer that the preload
//! puts on every process the harness spawns.
//!
//! Landlock only grants; it has no deny rule. The tool layer therefore grants
//! what the base layer grants, except on the way to each vault entry: there it
//! grants only `read_dir` on each ancestor, and the base rights to every
//! sibling along the path, leaving out siblings that are symlinks (the rule
//! would land on their target), non-directories with more than one link
//! (possibly a hard link to a vault file: rules attach to inodes), and
//! siblings named like a vault `file` entry with more after the name (its
//! backups, and the temporary an atomic save renames over it: a rule would
//! follow that inode into the vault).
//!
//! Tool read-only paths (the harness's own program: its install prefix,
//! runtime, extensions) are walked to the same way, and found in their
//! parent's listing get the base rights less every write right: read and
//! execute ([`Access::EXEC`]). A base rule inside one is cut the same way.
//! Their ancestors are list-only for tools, as a vault entry's are, so a
//! tool can neither write in them nor rename them away.
//!
//! The walk is allocation-free and generic over the file system ([`FsView`])
//! and the rule sink ([`RuleSink`]): the preload runs it with raw system
//! calls in a freshly forked child, and the `policy` crate's golden tests run
//! it on listings they make up.

use crate::access::Access;
use crate::image::{FileId, View};
use crate::pathbuf::{FixedPath, is_within};

/// What a directory entry is, as far as the walk cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    Symlink,
    /// Regular files, devices, sockets, fifos.
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'a> {
    pub name: &'a [u8],
    pub kind: EntryKind,
    pub nlink: u64,
    pub id: FileId,
}

/// Directory listings, supplied by the caller.
pub trait FsView {
    type Error;
    /// Call `f` once per entry of the directory `dir` (absolute, clean),
    /// without `.` and `..`.
    fn list(
        &mut self,
        dir: &[u8],
        f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), Self::Error>,
    ) -> Result<(), Self::Error>;
}

/// Where the tool layer's rules go (a Landlock ruleset, or a list in tests).
pub trait RuleSink {
    type Error;
    /// Grant `access` on `path`. `is_dir` is `None` when the walk did not look
    /// (a base rule's own path): the applier masks file-only rights itself.
    fn add(&mut self, path: &[u8], is_dir: Option<bool>, access: Access)
    -> Result<(), Self::Error>;
}

/// Run the walk over `policy`'s base rules and vault: every rule of the tool
/// layer goes to `sink`. `vault_ids`: the identities of the vault entries
/// that exist (the caller stats them), so that a sibling that is one of them
/// under another name gets no rule.
pub fn tool_layer<E>(
    policy: &View<'_>,
    vault_ids: &[FileId],
    fs: &mut impl FsView<Error = E>,
    sink: &mut impl RuleSink<Error = E>,
) -> Result<(), E> {
    let mut cur = FixedPath::new();
    for (path, access) in policy.base() {
        let path = path.bytes();
        if policy.in_vault(path) {
            continue;
        }
        if policy.in_tool_read_only(path) {
            let a = access.intersect(Access::EXEC);
            if !a.is_empty() {
                sink.add(path, None, a)?;
            }
            continue;
        }
        if policy.leads_to_held(path) {
            if cur.set(path) {
                expand(policy, vault_ids, &mut cur, access, fs, sink)?;
            }
        } else {
            sink.add(path, None, access)?;
        }
    }
    for x in policy.exceptions() {
        let x = x.bytes();
        let access = policy
            .base()
            .filter(|(b, _)| {
                is_within(x, b.bytes()) && !policy.vault().any(|v| v.path.bytes() == b.bytes())
            })
            .fold(Access::NONE, |a, (_, b)| a | b);
        if !access.is_empty() {
            sink.add(x, None, access)?;
        }
    }
    Ok(())
}

/// `cur` is a strict ancestor of at least one vault entry or tool
/// read-only path.
fn expand<E>(
    policy: &View<'_>,
    vault_ids: &[FileId],
    cur: &mut FixedPath,
    access: Access,
    fs: &mut impl FsView<Error = E>,
    sink: &mut impl RuleSink<Error = E>,
) -> Result<(), E> {
    let list_only = access.intersect(Access::READ_DIR);
    if !list_only.is_empty() {
        sink.add(cur.as_bytes(), Some(true), list_only)?;
    }
    let mut child = FixedPath::new();
    {
        let dir = cur.as_bytes();
        fs.list(dir, &mut |e: &DirEntry<'_>| {
            if e.kind == EntryKind::Symlink
                || vault_ids.contains(&e.id)
                || (e.kind != EntryKind::Dir && e.nlink > 1)
            {
                return Ok(());
            }
            if !child.set(dir) || !child.push(e.name) {
                return Ok(()); // too long to name: no rule, so no access
            }
            let p = child.as_bytes();
            if policy.in_vault(p) || policy.leads_to_held(p) {
                return Ok(()); // the vault entry itself, or the way on to a held path
            }
            if policy.is_vault_file_namesake(p) {
                return Ok(()); // a backup or save temporary of a vault file
            }
            let is_dir = e.kind == EntryKind::Dir;
            let mut a = if is_dir {
                access
            } else {
                access.intersect(Access::FILE_ONLY)
            };
            if policy.in_tool_read_only(p) {
                a = a.intersect(Access::EXEC); // the harness's program: no writes
            }
            if a.is_empty() {
                Ok(())
            } else {
                sink.add(p, Some(is_dir), a)
            }
        })?;
    }
    // Recurse into each distinct next component on the way to a held path.
    let here = cur.len();
    for (i, v) in policy.held_paths().enumerate() {
        let Some(next) = next_component(v.bytes(), cur.as_bytes()) else {
            continue;
        };
        let seen = policy
            .held_paths()
            .take(i)
            .any(|w| next_component(w.bytes(), cur.as_bytes()) == Some(next));
        if seen || !cur.push(next) {
            continue;
        }
        let c = cur.as_bytes();
        if !policy.in_vault(c) && !policy.in_tool_read_only(c) && policy.leads_to_held(c) {
            expand(policy, vault_ids, cur, access, fs, sink)?;
        }
        cur.truncate(here);
    }
    Ok(())
}

/// The component of `path` right below `dir`, if `path` lies strictly under `dir`.
fn next_component<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    if path == dir || !is_within(path, dir) {
        return None;
    }
    let rest = if dir == b"/" {
        &path[1..]
    } else {
        &path[dir.len() + 1..]
    };
    Some(rest.split(|&b| b == b'/').next().unwrap_or(rest))
}
