//! The walks that turn grants into Landlock rules when some paths beneath
//! them must stay out of reach: the base layer's (agent-init hides the seed
//! sources and `[filesystem] hidden` from the harness and every tool) and
//! the tool layer's (the preload hides those and the vault from every
//! process the harness spawns).
//!
//! Landlock only grants; it has no deny rule. A walk therefore grants its
//! rules as they are, except on the way to each hidden path: there it
//! grants only `read_dir` on each ancestor, and the rule's rights to every
//! sibling along the path, leaving out siblings that are symlinks (the rule
//! would land on their target), non-directories with more than one link
//! (possibly a hard link to a hidden file: rules attach to inodes), and, in
//! the tool layer, siblings named like a vault `file` entry with more after
//! the name (its backups, and the temporary an atomic save renames over it:
//! a rule would follow that inode into the vault).
//!
//! Tool read-only paths (the harness's own program: its install prefix,
//! runtime, extensions) are walked to the same way, and found in their
//! parent's listing get the base rights less every write right: read and
//! execute ([`Access::EXEC`]). A base rule inside one is cut the same way.
//! Their ancestors are list-only for tools, as a vault entry's are, so a
//! tool can neither write in them nor rename them away.
//!
//! The walk is allocation-free and generic over the held set ([`Held`]),
//! the file system ([`FsView`]) and the rule sink ([`RuleSink`]): the preload
//! runs the tool layer's with raw system calls in a freshly forked child,
//! agent-init the base layer's as root before it drops privileges, and the
//! `policy` crate's golden tests both on listings they make up.

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

/// The paths a walk does not simply grant its rules' rights on: the hidden
/// ones (nothing on them or beneath them) and the cut ones (rights reduced
/// to a mask). The walk lists its way down to each.
pub trait Held {
    /// The held paths (absolute, clean), in a fixed order.
    fn paths(&self) -> impl Iterator<Item = &[u8]> + Clone;
    /// `path` is hidden: it is, or lies beneath, a hidden path.
    fn covers(&self, path: &[u8]) -> bool;
    /// The rights `path` keeps at most, when it is, or lies beneath, a cut
    /// path (the tool layer's tool read-only paths: read and execute).
    fn cut(&self, _path: &[u8]) -> Option<Access> {
        None
    }
    /// `path` is a strict ancestor of a held path (the walk lists it).
    fn leads_to_held(&self, path: &[u8]) -> bool {
        self.paths().any(|h| h != path && is_within(h, path))
    }
    /// `path` must get no rule although it is not hidden itself (the tool
    /// layer: a backup or save temporary of a vault file).
    fn is_namesake(&self, _path: &[u8]) -> bool {
        false
    }
}

/// A list of hidden paths: the base layer's (agent-init builds it from the
/// plan).
impl<T: AsRef<[u8]>> Held for [T] {
    fn paths(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.iter().map(AsRef::as_ref)
    }
    fn covers(&self, path: &[u8]) -> bool {
        self.paths().any(|h| is_within(path, h))
    }
}

/// The tool layer's held set: the vault (less its tool exceptions) and the
/// image's hidden paths, hidden; the tool read-only paths, cut to
/// read and execute.
struct ToolHeld<'a>(View<'a>);

impl Held for ToolHeld<'_> {
    fn paths(&self) -> impl Iterator<Item = &[u8]> + Clone {
        // `View::held_paths`, then the hidden paths.
        let vault = self.0.vault().map(|e| e.path.bytes());
        let read_only = self.0.tool_read_only().map(|p| p.bytes());
        vault
            .chain(read_only)
            .chain(self.0.hidden().map(|h| h.bytes()))
    }
    fn covers(&self, path: &[u8]) -> bool {
        self.0.in_vault(path) || self.0.hidden().any(|h| is_within(path, h.bytes()))
    }
    fn cut(&self, path: &[u8]) -> Option<Access> {
        self.0.in_tool_read_only(path).then_some(Access::EXEC)
    }
    fn is_namesake(&self, path: &[u8]) -> bool {
        self.0.is_vault_file_namesake(path)
    }
}

/// Run the walk over `rules` (path, rights; one per path): every rule that
/// keeps `held` out of reach (or cut) goes to `sink`. `hidden_ids`: the
/// identities of the hidden paths that exist (the caller stats them), so
/// that a sibling that is one of them under another name gets no rule.
pub fn walk<'r, E>(
    rules: impl Iterator<Item = (&'r [u8], Access)>,
    held: &(impl Held + ?Sized),
    hidden_ids: &[FileId],
    fs: &mut impl FsView<Error = E>,
    sink: &mut impl RuleSink<Error = E>,
) -> Result<(), E> {
    let mut cur = FixedPath::new();
    for (path, access) in rules {
        if held.covers(path) {
            continue;
        }
        if let Some(mask) = held.cut(path) {
            let a = access.intersect(mask);
            if !a.is_empty() {
                sink.add(path, None, a)?;
            }
            continue;
        }
        if held.leads_to_held(path) {
            if cur.set(path) {
                expand(held, hidden_ids, &mut cur, access, fs, sink)?;
            }
        } else {
            sink.add(path, None, access)?;
        }
    }
    Ok(())
}

/// Run the walk over `policy`'s base rules, hiding the vault and the hidden
/// paths and cutting the tool read-only paths: every rule of the tool
/// layer goes to `sink`. `vault_ids`: the identities of the vault entries
/// and hidden paths that exist (the caller stats them), so that a sibling
/// that is one of them under another name gets no rule.
pub fn tool_layer<E>(
    policy: &View<'_>,
    vault_ids: &[FileId],
    fs: &mut impl FsView<Error = E>,
    sink: &mut impl RuleSink<Error = E>,
) -> Result<(), E> {
    let rules = policy.base().map(|(p, a)| (p.bytes(), a));
    walk(rules, &ToolHeld(*policy), vault_ids, fs, sink)?;
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

/// `cur` is a strict ancestor of at least one held path.
fn expand<E>(
    held: &(impl Held + ?Sized),
    hidden_ids: &[FileId],
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
                || hidden_ids.contains(&e.id)
                || (e.kind != EntryKind::Dir && e.nlink > 1)
            {
                return Ok(());
            }
            if !child.set(dir) || !child.push(e.name) {
                return Ok(()); // too long to name: no rule, so no access
            }
            let p = child.as_bytes();
            if held.covers(p) || held.leads_to_held(p) {
                return Ok(()); // a hidden path itself, or the way on to a held path
            }
            if held.is_namesake(p) {
                return Ok(()); // a backup or save temporary of a vault file
            }
            let is_dir = e.kind == EntryKind::Dir;
            let mut a = if is_dir {
                access
            } else {
                access.intersect(Access::FILE_ONLY)
            };
            if let Some(mask) = held.cut(p) {
                a = a.intersect(mask); // the harness's program: no writes
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
    for (i, v) in held.paths().enumerate() {
        let Some(next) = next_component(v, cur.as_bytes()) else {
            continue;
        };
        let seen = held
            .paths()
            .take(i)
            .any(|w| next_component(w, cur.as_bytes()) == Some(next));
        if seen || !cur.push(next) {
            continue;
        }
        let c = cur.as_bytes();
        if !held.covers(c) && held.cut(c).is_none() && held.leads_to_held(c) {
            expand(held, hidden_ids, cur, access, fs, sink)?;
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
