//! `~`, `${VAR}`, `${VAR:-default}` and `$$` expansion of a path template
//! into a fixed buffer: the preload's built-in policy, expanded with the
//! process's own home and environment when no agent-init session exists.
//!
//! The grammar and its refusals are those of the `policy` crate's
//! `expand::absolute_path` (a differential test there holds the two
//! together); this one only says yes or no.

use crate::image::is_clean_absolute;
use crate::pathbuf::{FixedPath, normalize_into};

/// Where expansion reads variables and the home directory.
pub trait Lookup {
    /// The value of `name`; an empty value counts as unset.
    fn var(&self, name: &[u8]) -> Option<&[u8]>;
    /// The home directory (for `~`).
    fn home(&self) -> Option<&[u8]>;
}

/// Expand `template` and clean the result into `out`. False when the
/// template is malformed, names an unset variable without a default, uses
/// `~` without a home, or does not give an absolute path without `..`.
pub fn absolute_path(template: &[u8], env: &dyn Lookup, out: &mut FixedPath) -> bool {
    let mut raw = FixedPath::new();
    if template.is_empty() || !expand(template, env, 0, &mut raw) || raw.is_empty() {
        return false;
    }
    let r = raw.as_bytes();
    if r.first() != Some(&b'/') || r.split(|&b| b == b'/').any(|c| c == b"..") {
        return false;
    }
    normalize_into(b"/", r, out) && is_clean_absolute(out.as_bytes())
}

fn expand(text: &[u8], env: &dyn Lookup, depth: u32, out: &mut FixedPath) -> bool {
    if depth > 8 {
        return false;
    }
    let mut rest = text;
    if rest == b"~" || rest.starts_with(b"~/") {
        let Some(home) = env.home() else { return false };
        if !out.extend(home) {
            return false;
        }
        rest = &rest[1..];
    } else if rest.starts_with(b"~") {
        return false;
    }
    while let Some(i) = rest.iter().position(|&b| b == b'$') {
        if !out.extend(&rest[..i]) {
            return false;
        }
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix(b"$") {
            if !out.extend(b"$") {
                return false;
            }
            rest = r;
            continue;
        }
        let Some(r) = rest.strip_prefix(b"{") else {
            return false;
        };
        let Some(close) = matching_brace(r) else {
            return false;
        };
        let inner = &r[..close];
        rest = &r[close + 1..];
        let (name, default) = match inner.windows(2).position(|w| w == b":-") {
            Some(j) => (&inner[..j], Some(&inner[j + 2..])),
            None => (inner, None),
        };
        if name.is_empty()
            || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            || name[0].is_ascii_digit()
        {
            return false;
        }
        match (env.var(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => {
                if !out.extend(v) {
                    return false;
                }
            }
            (None, Some(d)) => {
                if !expand(d, env, depth + 1, out) {
                    return false;
                }
            }
            (None, None) => return false,
        }
    }
    out.extend(rest)
}

/// Index of the `}` that closes a `${` whose body starts at `s[0]` (also
/// `policy::expand`'s).
pub fn matching_brace(s: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'$' if s.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}
