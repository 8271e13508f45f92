//! The policy image, the effective policy as the preload reads it: what agent-init writes as
//! `policy.bin` and every process's preload reads. It holds only what the
//! preload needs, already computed by the `policy` crate: the vault, the
//! secret variables, the audit sink, the Landlock mode, the probe directory,
//! the base layer's rules and its hidden paths (the tool layer is the base
//! layer minus the vault and minus the hidden paths).
//!
//! Layout, integers little-endian:
//! - the magic `AGVP` and the version byte 7;
//! - the Landlock mode: `u8` (0 required, 1 best-effort, 2 off);
//! - the audit sink: `u8` (0 off, 1 stderr, 2 a file, followed by its path,
//!   3 agent-init's stderr, the container log);
//! - the probe directory: `u8` (0 none, 1 followed by its path);
//! - the tool options: `u8` bits (bit 0: tools keep the controlling
//!   terminal, [`ToolOptions`]; other bits must be 0);
//! - the launchers (`[harness] launches`, as agent-init found them at
//!   start): a `u32` count, then per launcher its path and its file's
//!   device and inode numbers (two `u64`, [`FileId`]). A launched process
//!   is matched by the file's identity, never by a name;
//! - the vault: a `u32` count, then per entry its name, its path, its kind
//!   (`u8`: 0 dir, 1 file) and its tool exceptions (a `u32` count and paths);
//! - the secret variables: a `u32` count and names;
//! - the secret variable patterns: a `u32` count and patterns (names with
//!   `*` standing for any run of characters, [`glob_match`]);
//! - the kept variables: a `u32` count and names (never secret, whatever
//!   the names and patterns above say);
//! - the tool read-only paths: a `u32` count and paths (tools may read and
//!   execute there, not write; the harness keeps its base rights);
//! - the base layer's rules: a `u32` count, then per rule a path and the
//!   rights (`u64`, the kernel's `LANDLOCK_ACCESS_FS_*` bits);
//! - the hidden paths (seed sources, `[filesystem] hidden`): a `u32` count
//!   and paths. The base layer's walk grants nothing on them or beneath
//!   them, for the harness and every tool; the tool layer's walk hides them
//!   as it hides the vault, so a process that gets only the tool layer
//!   (`docker exec`) does not get them back either.
//!
//! A string is a `u32` length, the bytes, and a NUL that the length does not
//! count: the preload passes paths to system calls straight from the image.
//!
//! [`View::decode`] checks everything once (every path absolute and clean,
//! every count within its limit, every tag known, no trailing bytes), so a
//! damaged file is an error and never a different policy, and no accessor
//! can fail afterwards.

use crate::access::Access;
use crate::pathbuf::{is_within, last_component, split_last};
use core::fmt;

/// The magic and the format version.
pub const MAGIC: &[u8; 5] = b"AGVP\x07";
/// The largest image the preload reads (a real one is a few KiB).
pub const MAX_IMAGE: usize = 64 * 1024;
/// At most this many vault entries (the probe included).
pub const MAX_VAULT: usize = 64;
/// At most this many tool exceptions, over all entries.
pub const MAX_EXCEPTIONS: usize = 64;
/// At most this many secret variables.
pub const MAX_SECRET_ENV: usize = 64;
/// At most this many secret variable patterns.
pub const MAX_SECRET_PATTERNS: usize = 32;
/// At most this many kept variables.
pub const MAX_KEEP_ENV: usize = 64;
/// At most this many tool read-only paths.
pub const MAX_TOOL_READ_ONLY: usize = 32;
/// At most this many launchers.
pub const MAX_LAUNCHERS: usize = 16;
/// At most this many base-layer rules.
pub const MAX_BASE_RULES: usize = 128;
/// At most this many hidden paths.
pub const MAX_HIDDEN: usize = 64;
/// At most this many components in a vault entry's (or hidden) path: the tool-layer
/// walk recurses once per component below a base rule, with a path buffer
/// on the stack each time (a forked child's or the spawn helper thread's).
pub const MAX_VAULT_DEPTH: usize = 64;

/// A file's identity: device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// A harness program a trusted process may launch (`[harness] launches`):
/// the path the policy names and the identity of the file agent-init found
/// there at start. The encoder's input; [`View::launchers`] yields the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launcher<'a> {
    pub path: &'a [u8],
    pub id: FileId,
}

/// Whether a vault entry is a directory (and everything under it) or one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultKind {
    Dir,
    File,
}

/// How a layer is enforced: the policy's `required`, `best-effort`, `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    BestEffort,
    Off,
}

impl Mode {
    pub const fn to_byte(self) -> u8 {
        match self {
            Mode::Required => 0,
            Mode::BestEffort => 1,
            Mode::Off => 2,
        }
    }
}

/// How tools start, beyond the vault: the policy's `[tools]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToolOptions {
    /// Tools keep the harness's controlling terminal (`[tools]
    /// keep_terminal`); by default they start without one.
    pub keep_terminal: bool,
}

impl ToolOptions {
    /// The default: tools start without the controlling terminal.
    pub const DEFAULT: ToolOptions = ToolOptions {
        keep_terminal: false,
    };

    const KEEP_TERMINAL: u8 = 1;

    pub const fn to_byte(self) -> u8 {
        if self.keep_terminal {
            Self::KEEP_TERMINAL
        } else {
            0
        }
    }
}

/// Bytes followed by a NUL in their backing store (the image, or the
/// preload's buffer for its built-in policy).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CStr<'a>(&'a [u8]);

impl<'a> CStr<'a> {
    /// The empty string.
    pub const EMPTY: CStr<'static> = CStr(b"\0");

    /// `with_nul` must end in its only NUL.
    pub fn new(with_nul: &'a [u8]) -> Option<CStr<'a>> {
        match with_nul.split_last() {
            Some((0, rest)) if !rest.contains(&0) => Some(CStr(with_nul)),
            _ => None,
        }
    }

    /// The bytes, without the NUL.
    pub fn bytes(&self) -> &'a [u8] {
        &self.0[..self.0.len() - 1]
    }

    /// The bytes and the NUL, for a system call.
    pub fn with_nul(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Debug for CStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.bytes()) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{:?}", self.bytes()),
        }
    }
}

/// Where denial records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit<'a> {
    Off,
    /// The denied process's own stderr.
    Stderr,
    /// Sent to agent-init's audit socket; agent-init appends to this file.
    File(CStr<'a>),
    /// Sent to agent-init's audit socket; agent-init writes to its own
    /// stderr (PID 1's: the container log).
    Log,
}

/// One vault entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub name: CStr<'a>,
    pub path: CStr<'a>,
    pub kind: VaultKind,
    /// Its tool exceptions (absolute paths strictly inside it).
    pub exceptions: Strs<'a>,
}

/// Why an image was refused: what, and at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy image, byte {}: {}", self.at, self.what)
    }
}

/// A validated policy image. It keeps the bytes and where each section
/// starts, and reads entries from them on demand: a few words, no tables to
/// fill, so a process pays for the pages of its image and nothing else.
/// Every query is allocation-free.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub landlock: Mode,
    pub audit: Audit<'a>,
    pub probe: Option<CStr<'a>>,
    pub tools: ToolOptions,
    bytes: &'a [u8],
    launchers: (usize, usize),
    vault: (usize, usize),
    secret_env: (usize, usize),
    secret_patterns: (usize, usize),
    keep_env: (usize, usize),
    tool_read_only: (usize, usize),
    base: (usize, usize),
    hidden: (usize, usize),
}

/// The number of components of a clean absolute path (`/` has none).
pub fn depth(p: &[u8]) -> usize {
    if p == b"/" {
        0
    } else {
        p.iter().filter(|&&b| b == b'/').count()
    }
}

/// A clean absolute path: `/`, or `/`-separated names without `.`, `..`,
/// empty components or a trailing `/`.
pub fn is_clean_absolute(p: &[u8]) -> bool {
    if p == b"/" {
        return true;
    }
    if p.first() != Some(&b'/') || p.last() == Some(&b'/') {
        return false;
    }
    // One pass (the open hooks call this for every absolute path): after
    // each `/`, the component must not be empty, `.` or `..`.
    let mut i = 0;
    while i < p.len() {
        // p[i] == b'/'
        let rest = &p[i + 1..];
        match rest {
            [] | [b'/', ..] | [b'.'] | [b'.', b'/', ..] | [b'.', b'.'] | [b'.', b'.', b'/', ..] => {
                return false;
            }
            _ => {}
        }
        match rest.iter().position(|&b| b == b'/') {
            Some(j) => i += j + 1,
            None => break,
        }
    }
    true
}

/// A secret variable pattern: letters, digits, `_` and `*`, not empty.
pub fn is_env_pattern(p: &[u8]) -> bool {
    !p.is_empty()
        && p.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'*')
}

/// Whether `name` matches `pattern`, where `*` stands for any run of bytes
/// (none included) and every other byte for itself. No allocation: one
/// backtrack point (the last `*`), so at most `pattern.len() * name.len()`
/// steps.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    // The literal head (before the first `*`) and tail (after the last)
    // first: most names fail there, without backtracking.
    let Some(first) = pattern.iter().position(|&b| b == b'*') else {
        return pattern == name;
    };
    let last = pattern.iter().rposition(|&b| b == b'*').unwrap_or(first);
    let (head, tail) = (&pattern[..first], &pattern[last + 1..]);
    if name.len() < head.len() + tail.len() || !name.starts_with(head) || !name.ends_with(tail) {
        return false;
    }
    let (pattern, name) = (
        &pattern[first..=last],
        &name[head.len()..name.len() - tail.len()],
    );
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The strings of a section or of an entry's tool exceptions.
#[derive(Debug, Clone, Copy)]
pub struct Strs<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Strs<'a> {
    type Item = CStr<'a>;
    fn next(&mut self) -> Option<CStr<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.r.trusted().ok()
    }
}

/// The vault entries, in policy order (a rule index is a position here).
#[derive(Debug, Clone, Copy)]
pub struct Entries<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let e = self.r.entry(false).ok();
        if e.is_none() {
            self.left = 0;
        }
        e
    }
}

/// The base layer's rules: one per path, rights merged.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Rules<'a> {
    type Item = (CStr<'a>, Access);
    fn next(&mut self) -> Option<(CStr<'a>, Access)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let path = self.r.trusted().ok()?;
        let bits = self.r.u64().ok()?;
        Some((path, Access::from_bits_truncate(bits)))
    }
}

/// The launchers of a decoded image, in policy order.
pub struct Launchers<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Launchers<'a> {
    type Item = (CStr<'a>, FileId);
    fn next(&mut self) -> Option<(CStr<'a>, FileId)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let path = self.r.trusted().ok()?;
        let dev = self.r.u64().ok()?;
        let ino = self.r.u64().ok()?;
        Some((path, FileId { dev, ino }))
    }
}

impl<'a> View<'a> {
    /// Check and read an image (see the module documentation).
    pub fn decode(bytes: &'a [u8]) -> Result<View<'a>, DecodeError> {
        let mut r = Reader { b: bytes, at: 0 };
        if bytes.len() > MAX_IMAGE {
            return Err(r.bad("larger than 64 KiB"));
        }
        if r.take(MAGIC.len())? != MAGIC {
            return Err(r.bad("not an agent-vault policy image (bad magic or version)"));
        }
        let landlock = r.mode()?;
        let audit = match r.u8()? {
            0 => Audit::Off,
            1 => Audit::Stderr,
            2 => Audit::File(r.path()?),
            3 => Audit::Log,
            _ => return Err(r.bad("unknown audit sink")),
        };
        let probe = match r.u8()? {
            0 => None,
            1 => Some(r.path()?),
            _ => return Err(r.bad("unknown probe tag")),
        };
        let tools = match r.u8()? {
            b if b & !ToolOptions::KEEP_TERMINAL == 0 => ToolOptions {
                keep_terminal: b & ToolOptions::KEEP_TERMINAL != 0,
            },
            _ => return Err(r.bad("unknown tool option bits")),
        };
        let n = r.count(MAX_LAUNCHERS, "more launchers than the preload holds (16)")?;
        let launchers = (r.at, n);
        for _ in 0..n {
            if r.path()?.bytes() == b"/" {
                return Err(r.bad("a launcher cannot be `/`"));
            }
            r.u64()?;
            r.u64()?;
        }
        let n_vault = r.count(MAX_VAULT, "more vault entries than the preload holds (64)")?;
        let vault = (r.at, n_vault);
        let mut exceptions = 0;
        for _ in 0..n_vault {
            let e = r.entry(true)?;
            if e.name.bytes().is_empty() {
                return Err(r.bad("a vault entry without a name"));
            }
            if e.path.bytes() == b"/" {
                return Err(r.bad("a vault entry cannot be `/`"));
            }
            if depth(e.path.bytes()) > MAX_VAULT_DEPTH {
                return Err(r.bad("a vault entry's path has more than 64 components"));
            }
            let mut xs = e.exceptions;
            exceptions += xs.left;
            if exceptions > MAX_EXCEPTIONS {
                return Err(r.bad("more tool exceptions than the preload holds (64)"));
            }
            if !xs.all(|x| x.bytes() != e.path.bytes() && is_within(x.bytes(), e.path.bytes())) {
                return Err(r.bad("a tool exception outside its vault entry"));
            }
        }
        // A tool exception of one entry must not hold another entry: the
        // tool layer grants an exception the base rights, and so would give
        // tools that entry.
        let all = Entries {
            r: Reader {
                b: bytes,
                at: vault.0,
            },
            left: n_vault,
        };
        // Nor may an exception lie inside another entry: the entry would
        // deny it and the tool layer grant it. And no two entries share a
        // path (agent-init merges them).
        for (i, e) in all.enumerate() {
            for x in all.flat_map(|f| f.exceptions) {
                if is_within(e.path.bytes(), x.bytes()) {
                    return Err(r.bad("a vault entry lies inside a tool exception"));
                }
            }
            for (j, f) in all.enumerate() {
                if i == j {
                    continue;
                }
                if f.path.bytes() == e.path.bytes() {
                    return Err(r.bad("two vault entries have one path"));
                }
                if { f.exceptions }.any(|x| is_within(x.bytes(), e.path.bytes())) {
                    return Err(r.bad("a tool exception lies inside another vault entry"));
                }
            }
        }
        let n = r.count(
            MAX_SECRET_ENV,
            "more secret variables than the preload holds (64)",
        )?;
        let secret_env = (r.at, n);
        for _ in 0..n {
            let s = r.str()?.bytes();
            if s.is_empty() || s.contains(&b'=') {
                return Err(r.bad("a secret variable's name is empty or holds `=`"));
            }
        }
        let n = r.count(
            MAX_SECRET_PATTERNS,
            "more secret variable patterns than the preload holds (32)",
        )?;
        let secret_patterns = (r.at, n);
        for _ in 0..n {
            if !is_env_pattern(r.str()?.bytes()) {
                return Err(r.bad(
                    "a secret variable pattern is empty or holds other than letters, digits, `_` and `*`",
                ));
            }
        }
        let n = r.count(
            MAX_KEEP_ENV,
            "more kept variables than the preload holds (64)",
        )?;
        let keep_env = (r.at, n);
        for _ in 0..n {
            let s = r.str()?.bytes();
            if s.is_empty() || s.contains(&b'=') {
                return Err(r.bad("a kept variable's name is empty or holds `=`"));
            }
        }
        let n = r.count(
            MAX_TOOL_READ_ONLY,
            "more tool read-only paths than the preload holds (32)",
        )?;
        let tool_read_only = (r.at, n);
        for _ in 0..n {
            let p = r.path()?.bytes();
            if p == b"/" {
                return Err(r.bad("a tool read-only path cannot be `/`"));
            }
            if depth(p) > MAX_VAULT_DEPTH {
                return Err(r.bad("a tool read-only path has more than 64 components"));
            }
            // A vault entry inside it, or it inside one: the walk would
            // have to both hide and grant one path.
            let mut vault = Entries {
                r: Reader {
                    b: bytes,
                    at: vault.0,
                },
                left: n_vault,
            };
            if vault.any(|e| is_within(p, e.path.bytes()) || is_within(e.path.bytes(), p)) {
                return Err(r.bad("a tool read-only path overlaps a vault entry"));
            }
        }
        let n = r.count(
            MAX_BASE_RULES,
            "more base rules than the preload holds (128)",
        )?;
        let base = (r.at, n);
        for _ in 0..n {
            r.path()?;
            let bits = r.u64()?;
            if Access::from_bits_truncate(bits).bits() != bits {
                return Err(r.bad("a base rule with unknown rights"));
            }
        }
        let n = r.count(MAX_HIDDEN, "more hidden paths than the preload holds (64)")?;
        let hidden = (r.at, n);
        for _ in 0..n {
            let h = r.path()?;
            if h.bytes() == b"/" {
                return Err(r.bad("a hidden path cannot be `/`"));
            }
            if depth(h.bytes()) > MAX_VAULT_DEPTH {
                return Err(r.bad("a hidden path has more than 64 components"));
            }
            // The tool layer grants a tool exception the base rights, and
            // the harness needs its vault: neither may lie in a hidden path.
            let mut vault = Entries {
                r: Reader {
                    b: bytes,
                    at: vault.0,
                },
                left: n_vault,
            };
            if vault.any(|e| {
                is_within(e.path.bytes(), h.bytes()) || is_within(h.bytes(), e.path.bytes())
            }) {
                return Err(r.bad("a hidden path holds or lies in a vault entry"));
            }
        }
        if r.at != bytes.len() {
            return Err(r.bad("trailing bytes"));
        }
        Ok(View {
            landlock,
            audit,
            probe,
            tools,
            bytes,
            launchers,
            vault,
            secret_env,
            secret_patterns,
            keep_env,
            tool_read_only,
            base,
            hidden,
        })
    }

    fn reader(&self, at: usize) -> Reader<'a> {
        Reader { b: self.bytes, at }
    }

    /// The launchers: each path with the identity of its file at start.
    pub fn launchers(&self) -> Launchers<'a> {
        Launchers {
            r: self.reader(self.launchers.0),
            left: self.launchers.1,
        }
    }

    /// `id` is the file of a launcher (the one test of launcher-ness: a
    /// path or a name proves nothing).
    pub fn is_launcher(&self, id: FileId) -> bool {
        self.launchers().any(|(_, l)| l == id)
    }

    /// The vault entries, in policy order (a rule index is a position here).
    pub fn vault(&self) -> Entries<'a> {
        Entries {
            r: self.reader(self.vault.0),
            left: self.vault.1,
        }
    }

    /// Vault entry `i`.
    pub fn entry(&self, i: usize) -> Option<Entry<'a>> {
        self.vault().nth(i)
    }

    /// Every tool exception, of every entry.
    pub fn exceptions(&self) -> impl Iterator<Item = CStr<'a>> + use<'a> {
        self.vault().flat_map(|e| e.exceptions)
    }

    pub fn secret_env(&self) -> Strs<'a> {
        Strs {
            r: self.reader(self.secret_env.0),
            left: self.secret_env.1,
        }
    }

    /// The secret variable patterns.
    pub fn secret_patterns(&self) -> Strs<'a> {
        Strs {
            r: self.reader(self.secret_patterns.0),
            left: self.secret_patterns.1,
        }
    }

    /// The kept variables.
    pub fn keep_env(&self) -> Strs<'a> {
        Strs {
            r: self.reader(self.keep_env.0),
            left: self.keep_env.1,
        }
    }

    /// Whether tools lose the variable `name`: it is not kept, and it is a
    /// secret variable or matches a secret pattern.
    pub fn is_secret_env(&self, name: &[u8]) -> bool {
        if self.keep_env().any(|k| k.bytes() == name) {
            return false;
        }
        self.secret_env().any(|s| s.bytes() == name)
            || self.secret_patterns().any(|p| glob_match(p.bytes(), name))
    }

    /// The tool read-only paths: tools may read and execute there, not write.
    pub fn tool_read_only(&self) -> Strs<'a> {
        Strs {
            r: self.reader(self.tool_read_only.0),
            left: self.tool_read_only.1,
        }
    }

    /// `path` is a tool read-only path or lies under one.
    pub fn in_tool_read_only(&self, path: &[u8]) -> bool {
        self.tool_read_only().any(|p| is_within(path, p.bytes()))
    }

    /// The paths the tool layer does not simply grant the base rights on:
    /// the vault entries, then the tool read-only paths.
    pub fn held_paths(&self) -> impl Iterator<Item = CStr<'a>> + use<'a> {
        self.vault().map(|e| e.path).chain(self.tool_read_only())
    }

    /// `path` is a strict ancestor of a vault entry or of a tool read-only
    /// path: the tool layer walks down through it.
    pub fn leads_to_held(&self, path: &[u8]) -> bool {
        self.held_paths()
            .any(|h| h.bytes() != path && is_within(h.bytes(), path))
    }

    /// The hidden paths: seed sources and `[filesystem] hidden`.
    pub fn hidden(&self) -> Strs<'a> {
        Strs {
            r: self.reader(self.hidden.0),
            left: self.hidden.1,
        }
    }

    /// The base layer's rules: one per path, rights merged.
    pub fn base(&self) -> Rules<'a> {
        Rules {
            r: self.reader(self.base.0),
            left: self.base.1,
        }
    }

    /// The vault entry that covers a clean absolute path, if any: the path
    /// is the entry, or lies under a `dir` entry and not under one of its
    /// tool exceptions.
    pub fn match_path(&self, path: &[u8]) -> Option<usize> {
        self.vault().position(|e| match e.kind {
            VaultKind::File => path == e.path.bytes(),
            VaultKind::Dir => {
                is_within(path, e.path.bytes())
                    && !{ e.exceptions }.any(|x| is_within(path, x.bytes()))
            }
        })
    }

    /// True when `path` is a strict ancestor of some entry (tools may list it).
    pub fn is_ancestor(&self, path: &[u8]) -> bool {
        self.vault()
            .any(|e| e.path.bytes() != path && is_within(e.path.bytes(), path))
    }

    /// False when `path` cannot name a vault entry lexically: it holds no
    /// entry's last component (normalization only removes components). A
    /// cheap pre-filter for the open hooks.
    pub fn may_match(&self, path: &[u8]) -> bool {
        self.vault().any(|e| {
            let name = last_component(e.path.bytes());
            name.is_empty() || path.windows(name.len()).any(|w| w == name)
        })
    }

    /// Inside a vault entry and not inside one of its tool exceptions: the
    /// walk's test, the same as [`View::match_path`]'s.
    pub fn in_vault(&self, path: &[u8]) -> bool {
        self.match_path(path).is_some()
    }

    /// `path` is named like a vault `file` entry in the same directory,
    /// with more after the name: `~/.claude.json.backup`,
    /// `~/.claude.json.tmp.123` beside `~/.claude.json`. Backups of a
    /// credential file are credentials too, and an atomic save renames such
    /// a temporary file over the vault file: a Landlock rule granted on it
    /// would follow its inode into the vault.
    pub fn is_vault_file_namesake(&self, path: &[u8]) -> bool {
        let Some((dir, name)) = split_last(path) else {
            return false;
        };
        self.vault().any(|e| {
            let Some((edir, ename)) = split_last(e.path.bytes()) else {
                return false;
            };
            e.kind == VaultKind::File
                && edir == dir
                && name.len() > ename.len()
                && name.starts_with(ename)
        })
    }
}

/// Where an [`Encoder`] writes.
pub trait Out {
    fn put(&mut self, bytes: &[u8]);
}

/// A fixed buffer; `overflow` is set (and writing stops) when it is full.
pub struct SliceOut<'b> {
    pub buf: &'b mut [u8],
    pub len: usize,
    pub overflow: bool,
}

impl Out for SliceOut<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if self.overflow || end > self.buf.len() {
            self.overflow = true;
            return;
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }
}

/// Writes an image, section by section, in the order of the layout: the
/// header, then the vault (a count, then each entry with its exceptions),
/// the secret variables, the base rules. The one encoder: the `policy`
/// crate writes `policy.bin` with it, the preload its built-in policy.
pub struct Encoder<O: Out>(pub O);

impl<O: Out> Encoder<O> {
    /// The magic, the Landlock mode, the audit sink, the probe, the
    /// tool options and the launchers.
    pub fn header(
        &mut self,
        landlock: Mode,
        audit: Audit<'_>,
        probe: Option<&[u8]>,
        tools: ToolOptions,
        launchers: &[Launcher<'_>],
    ) {
        self.0.put(MAGIC);
        self.u8(landlock.to_byte());
        match audit {
            Audit::Off => self.u8(0),
            Audit::Stderr => self.u8(1),
            Audit::File(p) => {
                self.u8(2);
                self.str(p.bytes());
            }
            Audit::Log => self.u8(3),
        }
        match probe {
            None => self.u8(0),
            Some(p) => {
                self.u8(1);
                self.str(p);
            }
        }
        self.u8(tools.to_byte());
        self.count(launchers.len());
        for l in launchers {
            self.str(l.path);
            self.0.put(&l.id.dev.to_le_bytes());
            self.0.put(&l.id.ino.to_le_bytes());
        }
    }

    /// The count of a section (vault entries, secret variables, base rules)
    /// or of an entry's tool exceptions.
    pub fn count(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0.put(&n.to_le_bytes());
    }

    /// A vault entry's name, path and kind; its exceptions' count and paths follow.
    pub fn entry(&mut self, name: &[u8], path: &[u8], kind: VaultKind) {
        self.str(name);
        self.str(path);
        self.u8(match kind {
            VaultKind::Dir => 0,
            VaultKind::File => 1,
        });
    }

    /// A base rule.
    pub fn rule(&mut self, path: &[u8], access: Access) {
        self.str(path);
        self.0.put(&access.bits().to_le_bytes());
    }

    /// A string or path: length, bytes, NUL.
    pub fn str(&mut self, b: &[u8]) {
        self.count(b.len());
        self.0.put(b);
        self.0.put(&[0]);
    }

    fn u8(&mut self, v: u8) {
        self.0.put(&[v]);
    }
}

#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &'static str) -> DecodeError {
        DecodeError { at: self.at, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.at.checked_add(n).filter(|&e| e <= self.b.len()) {
            Some(end) => {
                let s = &self.b[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(self.bad("truncated")),
        }
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn count(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(self.bad(what));
        }
        Ok(n)
    }
    /// A string already checked by [`View::decode`]: no scan for NULs.
    fn trusted(&mut self) -> Result<CStr<'a>, DecodeError> {
        let n = self.u32()? as usize;
        match n.checked_add(1).and_then(|m| self.take(m).ok()) {
            Some(s) => Ok(CStr(s)),
            None => Err(self.bad("truncated")),
        }
    }
    /// Past a string already checked by [`View::decode`].
    fn skip_str(&mut self) -> Result<(), DecodeError> {
        let n = self.u32()? as usize;
        self.take(n.checked_add(1).ok_or(self.bad("truncated"))?)?;
        Ok(())
    }
    fn str(&mut self) -> Result<CStr<'a>, DecodeError> {
        let n = self.u32()? as usize;
        let s = self.take(n.checked_add(1).ok_or(self.bad("truncated"))?)?;
        CStr::new(s).ok_or(self.bad("a string holds a NUL or lacks its terminating NUL"))
    }
    fn path(&mut self) -> Result<CStr<'a>, DecodeError> {
        let s = self.str()?;
        if s.bytes().len() >= crate::pathbuf::PATH_MAX {
            return Err(self.bad("a path is longer than PATH_MAX"));
        }
        if !is_clean_absolute(s.bytes()) {
            return Err(self.bad("a path is not absolute and clean"));
        }
        Ok(s)
    }
    /// An entry; `checked`: check its paths (decoding) or trust them
    /// (iterating a decoded image: the hot path of every open).
    fn entry(&mut self, checked: bool) -> Result<Entry<'a>, DecodeError> {
        let name = if checked {
            self.str()?
        } else {
            self.trusted()?
        };
        let (name, path) = if checked {
            (name, self.path()?)
        } else {
            (name, self.trusted()?)
        };
        let kind = match self.u8()? {
            0 => VaultKind::Dir,
            1 => VaultKind::File,
            _ => return Err(self.bad("unknown vault entry kind")),
        };
        let n = self.count(
            MAX_EXCEPTIONS,
            "more tool exceptions than the preload holds (64)",
        )?;
        let exceptions = Strs { r: *self, left: n };
        for _ in 0..n {
            if checked {
                self.path()?;
            } else {
                self.skip_str()?;
            }
        }
        Ok(Entry {
            name,
            path,
            kind,
            exceptions,
        })
    }
    fn mode(&mut self) -> Result<Mode, DecodeError> {
        match self.u8()? {
            0 => Ok(Mode::Required),
            1 => Ok(Mode::BestEffort),
            2 => Ok(Mode::Off),
            _ => Err(self.bad("unknown enforcement mode")),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    struct VecOut(Vec<u8>);
    impl Out for VecOut {
        fn put(&mut self, b: &[u8]) {
            self.0.extend_from_slice(b);
        }
    }

    fn sample() -> Vec<u8> {
        let mut e = Encoder(VecOut(Vec::new()));
        e.header(
            Mode::Required,
            Audit::Stderr,
            None,
            ToolOptions::DEFAULT,
            &[],
        );
        e.count(3);
        e.entry(b"pi", b"/pi-agent", VaultKind::Dir);
        e.count(0);
        e.entry(b"claude", b"/claude", VaultKind::Dir);
        e.count(1);
        e.str(b"/claude/shell-snapshots");
        e.entry(b"claude-json", b"/home/agent/.claude.json", VaultKind::File);
        e.count(0);
        e.count(1);
        e.str(b"ANTHROPIC_API_KEY");
        e.count(2);
        e.str(b"*_API_KEY");
        e.str(b"*_SECRET*");
        e.count(1);
        e.str(b"PUBLIC_API_KEY");
        e.count(1);
        e.str(b"/home/agent/.local/claude-code");
        e.count(1);
        e.rule(b"/", Access::EXEC);
        e.count(1);
        e.str(b"/pi-agent-ro");
        e.0.0
    }

    #[test]
    fn paths_match_their_rule() {
        let b = sample();
        let v = View::decode(&b).unwrap();
        let hit = |p: &[u8]| v.match_path(p).map(|i| v.entry(i).unwrap().name.bytes());
        assert_eq!(hit(b"/pi-agent"), Some(&b"pi"[..]));
        assert_eq!(hit(b"/pi-agent/auth.json"), Some(&b"pi"[..]));
        assert_eq!(hit(b"/pi-agent-ro/auth.json"), None);
        assert_eq!(hit(b"/claude/.credentials.json"), Some(&b"claude"[..]));
        assert_eq!(hit(b"/claude/shell-snapshots"), None);
        assert_eq!(hit(b"/claude/shell-snapshots/snap.sh"), None);
        assert_eq!(hit(b"/claude/shell-snapshotsX"), Some(&b"claude"[..]));
        assert_eq!(hit(b"/home/agent/.claude.json"), Some(&b"claude-json"[..]));
        assert_eq!(hit(b"/home/agent/.claude.json.backup"), None);
        assert_eq!(hit(b"/"), None);
        assert!(v.is_ancestor(b"/home/agent"));
        assert!(!v.is_ancestor(b"/pi-agent"));
        assert_eq!(v.exceptions().count(), 1);
        assert_eq!(v.secret_env().count(), 1);
        assert_eq!(v.base().collect::<Vec<_>>()[0].1, Access::EXEC);
        let hidden: Vec<_> = v.hidden().map(|h| h.bytes()).collect();
        assert_eq!(hidden, [&b"/pi-agent-ro"[..]]);
    }

    #[test]
    fn secret_variables_by_name_and_pattern_unless_kept() {
        let b = sample();
        let v = View::decode(&b).unwrap();
        assert!(v.is_secret_env(b"ANTHROPIC_API_KEY"));
        assert!(v.is_secret_env(b"FOO_API_KEY"));
        assert!(v.is_secret_env(b"AWS_SECRET_ACCESS_KEY"));
        assert!(v.is_secret_env(b"DB_SECRET"));
        assert!(!v.is_secret_env(b"PUBLIC_API_KEY"), "kept");
        assert!(
            !v.is_secret_env(b"API_KEY"),
            "the pattern needs `_API_KEY` after something"
        );
        assert!(!v.is_secret_env(b"FOO_API_KEYS"));
        assert!(!v.is_secret_env(b"PATH"));
    }

    #[test]
    fn tool_options_round_trip_and_unknown_bits_are_refused() {
        let image = |tools: ToolOptions| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, tools, &[]);
            (0..6).for_each(|_| e.count(0));
            e.count(0); // hidden paths
            e.0.0
        };
        let keep = ToolOptions {
            keep_terminal: true,
        };
        assert_eq!(View::decode(&image(keep)).unwrap().tools, keep);
        let b = image(ToolOptions::DEFAULT);
        assert!(!View::decode(&b).unwrap().tools.keep_terminal);
        let mut bad = b.clone();
        bad[MAGIC.len() + 3] = 2;
        assert_eq!(
            View::decode(&bad).unwrap_err().what,
            "unknown tool option bits"
        );
    }

    #[test]
    fn launchers_round_trip_by_file_identity_and_bad_ones_are_refused() {
        let image = |launchers: &[Launcher<'_>]| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, launchers);
            (0..6).for_each(|_| e.count(0));
            e.count(0); // hidden paths
            e.0.0
        };
        let pi = Launcher {
            path: b"/usr/local/bin/pi",
            id: FileId {
                dev: 0x803,
                ino: 42,
            },
        };
        let claude = Launcher {
            path: b"/usr/local/bin/claude",
            id: FileId {
                dev: u64::MAX,
                ino: u64::MAX - 1,
            },
        };
        let b = image(&[pi, claude]);
        let v = View::decode(&b).unwrap();
        let got: Vec<_> = v.launchers().map(|(p, id)| (p.bytes(), id)).collect();
        assert_eq!(got, [(pi.path, pi.id), (claude.path, claude.id)]);
        assert!(v.is_launcher(pi.id));
        assert!(v.is_launcher(claude.id));
        // The same inode on another device, or another inode on the same
        // device, is another file.
        assert!(!v.is_launcher(FileId {
            dev: 0x804,
            ino: 42
        }));
        assert!(!v.is_launcher(FileId {
            dev: 0x803,
            ino: 43
        }));
        assert_eq!(View::decode(&image(&[])).unwrap().launchers().count(), 0);

        let relative = Launcher {
            path: b"bin/pi",
            ..pi
        };
        assert_eq!(
            View::decode(&image(&[relative])).unwrap_err().what,
            "a path is not absolute and clean"
        );
        let root = Launcher { path: b"/", ..pi };
        assert_eq!(
            View::decode(&image(&[root])).unwrap_err().what,
            "a launcher cannot be `/`"
        );
        let many = [pi; MAX_LAUNCHERS + 1];
        assert_eq!(
            View::decode(&image(&many)).unwrap_err().what,
            "more launchers than the preload holds (16)"
        );
        assert!(View::decode(&image(&many[..MAX_LAUNCHERS])).is_ok());
        // Cut inside a launcher's inode number: truncated, not another policy.
        let cut = &b[..MAGIC.len() + 4 + 4 + 4 + pi.path.len() + 1 + 8 + 4];
        assert_eq!(View::decode(cut).unwrap_err().what, "truncated");
    }

    #[test]
    fn an_image_of_the_previous_version_is_refused() {
        let mut b = sample();
        b[MAGIC.len() - 1] = 6;
        assert_eq!(
            View::decode(&b).unwrap_err().what,
            "not an agent-vault policy image (bad magic or version)"
        );
    }

    #[test]
    fn tool_read_only_paths_are_read_and_overlaps_refused() {
        let b = sample();
        let v = View::decode(&b).unwrap();
        assert!(v.in_tool_read_only(b"/home/agent/.local/claude-code"));
        assert!(v.in_tool_read_only(b"/home/agent/.local/claude-code/bin/claude"));
        assert!(!v.in_tool_read_only(b"/home/agent/.local/claude-codex"));
        assert!(v.leads_to_held(b"/home/agent/.local"));
        assert!(v.leads_to_held(b"/home/agent"));
        assert!(!v.leads_to_held(b"/home/agent/.local/claude-code"));
        assert!(
            !v.is_ancestor(b"/home/agent/.local"),
            "not a vault ancestor"
        );
        let image = |ro: &[u8]| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, &[]);
            e.count(1);
            e.entry(b"pi", b"/pi-agent", VaultKind::Dir);
            e.count(0);
            (0..3).for_each(|_| e.count(0));
            e.count(1);
            e.str(ro);
            e.count(0);
            e.count(0); // hidden paths
            e.0.0
        };
        assert!(View::decode(&image(b"/opt/claude")).is_ok());
        for bad in [&b"/pi-agent/ext"[..], b"/", b"/pi-agent", b"/opt/../x"] {
            assert!(View::decode(&image(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            View::decode(&image(b"/")).unwrap_err().what,
            "a tool read-only path cannot be `/`"
        );
    }

    #[test]
    fn glob_patterns() {
        for (p, n, want) in [
            (&b"*_TOKEN"[..], &b"GH_TOKEN"[..], true),
            (b"*_TOKEN", b"_TOKEN", true),
            (b"*_TOKEN", b"TOKEN", false),
            (b"*_TOKEN", b"GH_TOKENS", false),
            (b"*_SECRET*", b"AWS_SECRET_ACCESS_KEY", true),
            (b"*_SECRET*", b"X_SECRET", true),
            (b"*_SECRET*", b"SECRET", false),
            (b"*_ACCESS_KEY*", b"AWS_ACCESS_KEY_ID", true),
            (b"A*B*C", b"AXBYBC", true),
            (b"A*B*C", b"AXBYC", true),
            (b"A*B*C", b"AXCYB", false),
            (b"EXACT", b"EXACT", true),
            (b"EXACT", b"EXACTLY", false),
            (b"*", b"", true),
            (b"**A", b"BA", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p:?} {n:?}");
        }
        assert!(is_env_pattern(b"*_API_KEY"));
        assert!(!is_env_pattern(b""));
        assert!(!is_env_pattern(b"A=B"));
        assert!(!is_env_pattern(b"A?"));
    }

    #[test]
    fn hidden_paths_that_are_root_or_touch_the_vault_are_refused() {
        let image = |hidden: &[u8]| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, &[]);
            e.count(1);
            e.entry(b"claude", b"/claude", VaultKind::Dir);
            e.count(1);
            e.str(b"/claude/shell-snapshots");
            (0..5).for_each(|_| e.count(0));
            e.count(1);
            e.str(hidden);
            e.0.0
        };
        assert!(View::decode(&image(b"/claude-ro")).is_ok());
        assert_eq!(
            View::decode(&image(b"/")).unwrap_err().what,
            "a hidden path cannot be `/`"
        );
        for touching in [
            &b"/claude"[..],
            b"/claude/backups",
            b"/claude/shell-snapshots/x",
        ] {
            assert_eq!(
                View::decode(&image(touching)).unwrap_err().what,
                "a hidden path holds or lies in a vault entry",
                "{touching:?}"
            );
        }
        assert!(View::decode(&image(b"/claude/../x")).is_err());
    }

    #[test]
    fn namesakes_of_a_vault_file_are_recognised() {
        let b = sample();
        let v = View::decode(&b).unwrap();
        assert!(v.is_vault_file_namesake(b"/home/agent/.claude.json.backup"));
        assert!(v.is_vault_file_namesake(b"/home/agent/.claude.json.tmp.42.1"));
        assert!(!v.is_vault_file_namesake(b"/home/agent/.claude.json"));
        assert!(!v.is_vault_file_namesake(b"/home/agent/.bashrc"));
        assert!(!v.is_vault_file_namesake(b"/home/other/.claude.json.backup"));
        assert!(
            !v.is_vault_file_namesake(b"/pi-agent.backup"),
            "dir entries: no"
        );
    }

    #[test]
    fn the_prefilter_needs_an_entry_name() {
        let b = sample();
        let v = View::decode(&b).unwrap();
        assert!(v.may_match(b"/x/../pi-agent/auth.json"));
        assert!(v.may_match(b"/home/agent/.claude.json"));
        assert!(!v.may_match(b"/usr/lib/libc.so.6"));
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let b = sample();
        for n in 0..b.len() {
            assert!(
                View::decode(&b[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(View::decode(&longer).unwrap_err().what, "trailing bytes");
    }

    #[test]
    fn bad_entries_are_refused() {
        let image = |name: &[u8], path: &[u8], exc: &[u8]| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, &[]);
            e.count(1);
            e.entry(name, path, VaultKind::Dir);
            if exc.is_empty() {
                e.count(0);
            } else {
                e.count(1);
                e.str(exc);
            }
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0); // hidden paths
            e.0.0
        };
        assert!(View::decode(&image(b"x", b"/a", b"/a/b")).is_ok());
        for (name, path, exc) in [
            (&b""[..], &b"/a"[..], &b""[..]),
            (b"x", b"/a/", b""),
            (b"x", b"/a/../b", b""),
            (b"x", b"a", b""),
            (b"x", b"/a", b"/b"),
            (b"x", b"/a", b"/a"),
            (b"x\0y", b"/a", b""),
        ] {
            assert!(
                View::decode(&image(name, path, exc)).is_err(),
                "{name:?} {path:?} {exc:?}"
            );
        }
        assert!(CStr::new(b"a\0b\0").is_none());
        assert!(CStr::new(b"ab").is_none());
    }

    #[test]
    fn an_entry_inside_another_entrys_exception_is_refused() {
        let mut e = Encoder(VecOut(Vec::new()));
        e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, &[]);
        e.count(2);
        e.entry(b"claude", b"/claude", VaultKind::Dir);
        e.count(1);
        e.str(b"/claude/shell-snapshots");
        e.entry(b"inner", b"/claude/shell-snapshots/keys", VaultKind::Dir);
        e.count(0);
        e.count(0);
        e.count(0);
        e.count(0);
        e.count(0);
        e.count(0);
        e.count(0); // hidden paths
        let err = View::decode(&e.0.0).unwrap_err();
        assert_eq!(err.what, "a vault entry lies inside a tool exception");
    }

    #[test]
    fn an_exception_inside_another_entry_and_duplicate_paths_are_refused() {
        let image = |second: &[u8], exc: &[u8]| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, &[]);
            e.count(2);
            e.entry(b"outer", b"/secrets", VaultKind::Dir);
            e.count(0);
            e.entry(b"inner", second, VaultKind::Dir);
            e.count(1);
            e.str(exc);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0); // hidden paths
            e.0.0
        };
        let err = View::decode(&image(b"/secrets/app", b"/secrets/app/cache")).unwrap_err();
        assert_eq!(err.what, "a tool exception lies inside another vault entry");
        let err = View::decode(&image(b"/secrets", b"/secrets/cache")).unwrap_err();
        assert_eq!(err.what, "two vault entries have one path");
        assert!(View::decode(&image(b"/other", b"/other/cache")).is_ok());
    }

    #[test]
    fn root_and_overlong_paths_are_refused() {
        let image = |path: &[u8]| {
            let mut e = Encoder(VecOut(Vec::new()));
            e.header(Mode::Off, Audit::Off, None, ToolOptions::DEFAULT, &[]);
            e.count(1);
            e.entry(b"x", path, VaultKind::Dir);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0);
            e.count(0); // hidden paths
            e.0.0
        };
        assert_eq!(
            View::decode(&image(b"/")).unwrap_err().what,
            "a vault entry cannot be `/`"
        );
        let deep: std::vec::Vec<u8> = (0..65).flat_map(|_| *b"/d").collect();
        assert!(View::decode(&image(&deep[..])).is_err());
        assert!(View::decode(&image(&deep[..128])).is_ok());
        let mut long = std::vec![b'/'];
        long.extend(std::iter::repeat_n(b'a', crate::pathbuf::PATH_MAX));
        assert!(View::decode(&image(&long)).is_err());
    }

    #[test]
    fn a_full_buffer_overflows_instead_of_writing_past_it() {
        let mut buf = [0u8; 8];
        let mut e = Encoder(SliceOut {
            buf: &mut buf,
            len: 0,
            overflow: false,
        });
        e.header(
            Mode::Off,
            Audit::Off,
            Some(b"/run/agent-vault/probe"),
            ToolOptions::DEFAULT,
            &[],
        );
        assert!(e.0.overflow);
        assert_eq!(
            e.0.len, 8,
            "the header up to the probe path, which did not fit"
        );
    }

    #[test]
    fn clean_absolute_paths() {
        assert!(is_clean_absolute(b"/"));
        assert!(is_clean_absolute(b"/a/b"));
        assert!(is_clean_absolute(b"/a/.b/..c/c."));
        for bad in [
            &b""[..],
            b"a",
            b"//",
            b"/a/",
            b"/a//b",
            b"/./a",
            b"/a/..",
            b"/a/.",
            b"/../a",
            b"/a/../b",
        ] {
            assert!(!is_clean_absolute(bad), "{bad:?}");
        }
    }
}
