//! A fixed-size, NUL-terminated path buffer and lexical normalization, for
//! code that must not allocate (the preload's hooks and its tool-layer walk).

/// Linux `PATH_MAX`, terminating NUL included.
pub const PATH_MAX: usize = 4096;

/// An absolute path of at most `PATH_MAX - 1` bytes, always NUL-terminated.
pub struct FixedPath {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl Default for FixedPath {
    fn default() -> Self {
        Self::new()
    }
}

impl FixedPath {
    pub const fn new() -> FixedPath {
        FixedPath {
            buf: [0; PATH_MAX],
            len: 0,
        }
    }

    /// A copy of `bytes`; `None` if too long or it contains a NUL.
    pub fn from_bytes(bytes: &[u8]) -> Option<FixedPath> {
        let mut p = FixedPath::new();
        p.set(bytes).then_some(p)
    }

    /// Replace the content; false (and unchanged) if too long or it holds a NUL.
    pub fn set(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() >= PATH_MAX || bytes.contains(&0) {
            return false;
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.buf[bytes.len()] = 0;
        self.len = bytes.len();
        true
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The bytes with the terminating NUL, for a C call.
    pub fn as_bytes_with_nul(&self) -> &[u8] {
        &self.buf[..=self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cut back to `len` bytes (from an earlier [`FixedPath::len`]).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            self.buf[len] = 0;
        }
    }

    /// Append `bytes` as they are (no separator); false (and unchanged) if
    /// too long or they hold a NUL.
    pub fn extend(&mut self, bytes: &[u8]) -> bool {
        let new_len = self.len + bytes.len();
        if new_len >= PATH_MAX || bytes.contains(&0) {
            return false;
        }
        self.buf[self.len..new_len].copy_from_slice(bytes);
        self.buf[new_len] = 0;
        self.len = new_len;
        true
    }

    /// Append `/name` (or `name` after a trailing `/`); false if too long.
    pub fn push(&mut self, name: &[u8]) -> bool {
        let slash = usize::from(self.len == 0 || self.buf[self.len - 1] != b'/');
        let new_len = self.len + slash + name.len();
        if new_len >= PATH_MAX || name.contains(&0) {
            return false;
        }
        if slash == 1 {
            self.buf[self.len] = b'/';
        }
        self.buf[self.len + slash..new_len].copy_from_slice(name);
        self.buf[new_len] = 0;
        self.len = new_len;
        true
    }
}

/// Lexically normalize `path` into `out`: relative paths are joined to
/// `base` (an absolute, clean directory); `.`, empty components and `..` are
/// resolved without looking at the file system (so a symlink followed by `..`
/// is not what the kernel would reach: callers match inodes too).
/// Returns false when the result does not fit.
pub fn normalize_into(base: &[u8], path: &[u8], out: &mut FixedPath) -> bool {
    out.truncate(0);
    if !path.starts_with(b"/") {
        for comp in base.split(|&b| b == b'/') {
            if !apply_component(out, comp) {
                return false;
            }
        }
    }
    for comp in path.split(|&b| b == b'/') {
        if !apply_component(out, comp) {
            return false;
        }
    }
    if out.is_empty() {
        return out.set(b"/");
    }
    true
}

fn apply_component(out: &mut FixedPath, comp: &[u8]) -> bool {
    match comp {
        b"" | b"." => true,
        b".." => {
            let b = out.as_bytes();
            let cut = b.iter().rposition(|&c| c == b'/').unwrap_or(0);
            out.truncate(cut);
            true
        }
        name => out.push(name),
    }
}

/// A path's directory and last component, split at its last `/` (`None`
/// without one).
pub fn split_last(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let cut = path.iter().rposition(|&b| b == b'/')?;
    Some((&path[..cut], &path[cut + 1..]))
}

/// A path's last component (all of it without a `/`).
pub fn last_component(path: &[u8]) -> &[u8] {
    split_last(path).map_or(path, |(_, name)| name)
}

/// True when `path` is `dir` or lies under it (both clean and absolute).
pub fn is_within(path: &[u8], dir: &[u8]) -> bool {
    if dir == b"/" {
        return path.starts_with(b"/");
    }
    path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec;

    fn norm(base: &str, p: &str) -> String {
        let mut out = FixedPath::new();
        assert!(normalize_into(base.as_bytes(), p.as_bytes(), &mut out));
        String::from_utf8(out.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn normalizes_like_a_lexical_realpath() {
        assert_eq!(norm("/", "/a//b/./c/"), "/a/b/c");
        assert_eq!(norm("/home/u", "x/../.claude/auth"), "/home/u/.claude/auth");
        assert_eq!(norm("/a/b", "../../../../etc"), "/etc");
        assert_eq!(norm("/a", ".."), "/");
        assert_eq!(norm("/", ""), "/");
    }

    #[test]
    fn within() {
        assert!(is_within(b"/claude/x", b"/claude"));
        assert!(is_within(b"/claude", b"/claude"));
        assert!(!is_within(b"/claudex", b"/claude"));
        assert!(is_within(b"/x", b"/"));
    }

    #[test]
    fn too_long_is_refused() {
        let long = vec![b'a'; PATH_MAX];
        assert!(FixedPath::from_bytes(&long).is_none());
        let mut p = FixedPath::from_bytes(b"/x").unwrap();
        assert!(!p.push(&long));
        assert_eq!(p.as_bytes(), b"/x");
        assert_eq!(p.as_bytes_with_nul(), b"/x\0");
    }
}
