//! `~` and `${VAR}` / `${VAR:-default}` expansion, and path checks.
//!
//! Expansion uses the harness user's home and the harness environment, both
//! supplied by the caller ([`ExpandContext`]). `$$` stands for a literal `$`.

use crate::error::ErrorKind;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// What expansion may read.
#[derive(Debug, Clone, Default)]
pub struct ExpandContext {
    /// The harness user's home directory (for `~`).
    pub home: Option<PathBuf>,
    /// The harness environment.
    pub env: BTreeMap<String, String>,
}

impl ExpandContext {
    /// A context from this process's environment and the given home.
    pub fn from_process_env(home: Option<PathBuf>) -> ExpandContext {
        ExpandContext {
            home,
            env: std::env::vars().collect(),
        }
    }
}

/// Expand `~`, `${VAR}`, `${VAR:-default}` and `$$` in `text`.
pub fn expand(text: &str, ctx: &ExpandContext) -> Result<String, ErrorKind> {
    expand_depth(text, ctx, 0, true)
}

/// Expand `${VAR}`, `${VAR:-default}` and `$$` only (environment values: a
/// leading `~` stays as it is).
pub fn expand_vars(text: &str, ctx: &ExpandContext) -> Result<String, ErrorKind> {
    expand_depth(text, ctx, 0, false)
}

fn expand_depth(
    text: &str,
    ctx: &ExpandContext,
    depth: u32,
    tilde: bool,
) -> Result<String, ErrorKind> {
    if depth > 8 {
        return Err(ErrorKind::BadExpansion(
            "defaults nested more than 8 deep".into(),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    if tilde && (rest == "~" || rest.starts_with("~/")) {
        let home = ctx.home.as_ref().ok_or(ErrorKind::NoHome)?;
        out.push_str(&home.to_string_lossy());
        rest = &rest[1..];
    } else if tilde && rest.starts_with('~') {
        return Err(ErrorKind::BadExpansion(format!(
            "{text:?}: `~user` is not supported; expected `~` or `~/...` (the harness user's home)"
        )));
    }
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let Some(r) = rest.strip_prefix('{') else {
            return Err(ErrorKind::BadExpansion(format!(
                "{text:?}: `$` must start `${{VAR}}`, `${{VAR:-default}}` or `$$`"
            )));
        };
        let close = policy_core::expand::matching_brace(r.as_bytes()).ok_or_else(|| {
            ErrorKind::BadExpansion(format!("{text:?}: `${{` without its closing `}}`"))
        })?;
        let inner = &r[..close];
        rest = &r[close + 1..];
        let (name, default) = match inner.find(":-") {
            Some(j) => (&inner[..j], Some(&inner[j + 2..])),
            None => (inner, None),
        };
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(ErrorKind::BadExpansion(format!(
                "{text:?}: bad variable name {name:?}; expected letters, digits and `_`"
            )));
        }
        match (ctx.env.get(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(&expand_depth(d, ctx, depth + 1, tilde)?),
            (None, None) => return Err(ErrorKind::UnsetVariable(name.to_string())),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expand and check an absolute path: not empty, absolute, no `..`.
/// The result is clean: no `.` components, no repeated or trailing `/`.
pub fn absolute_path(text: &str, ctx: &ExpandContext) -> Result<PathBuf, ErrorKind> {
    if text.is_empty() {
        return Err(ErrorKind::Empty("path"));
    }
    let expanded = expand(text, ctx)?;
    if expanded.is_empty() {
        return Err(ErrorKind::Empty("path (after expansion)"));
    }
    check_clean_absolute(&expanded)
}

/// Check an already expanded path and return it cleaned.
pub fn check_clean_absolute(expanded: &str) -> Result<PathBuf, ErrorKind> {
    if expanded.contains('\0') {
        return Err(ErrorKind::Invalid(format!(
            "path {expanded:?} contains a NUL byte"
        )));
    }
    let p = Path::new(expanded);
    if !p.is_absolute() {
        return Err(ErrorKind::RelativePath(expanded.to_string()));
    }
    let mut clean = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(ErrorKind::DotDot(expanded.to_string())),
            Component::Normal(n) => clean.push(n),
            Component::Prefix(_) => return Err(ErrorKind::RelativePath(expanded.to_string())),
        }
    }
    Ok(clean)
}

/// Check a path relative to a vault directory (a tool exception): not empty,
/// relative, no `..`.
pub fn relative_inside(text: &str) -> Result<PathBuf, ErrorKind> {
    if text.is_empty() {
        return Err(ErrorKind::Empty("tool exception"));
    }
    let p = Path::new(text);
    if p.is_absolute() {
        return Err(ErrorKind::Invalid(format!(
            "tool exception {text:?} is absolute; expected a path relative to the vault directory, like \"shell-snapshots\""
        )));
    }
    let mut clean = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => clean.push(n),
            _ => return Err(ErrorKind::DotDot(text.to_string())),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(ErrorKind::Empty(
            "tool exception (it names the vault directory itself)",
        ));
    }
    Ok(clean)
}

/// Escape a literal string so that [`expand`] gives it back unchanged.
/// (A leading `~` is only expanded in paths, which are absolute once expanded.)
pub fn escape(literal: &str) -> String {
    literal.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ExpandContext {
        let mut env = BTreeMap::new();
        env.insert("PI".to_string(), "/pi-agent".to_string());
        env.insert("EMPTY".to_string(), String::new());
        ExpandContext {
            home: Some(PathBuf::from("/home/agent")),
            env,
        }
    }

    #[test]
    fn tilde_is_the_harness_home() {
        assert_eq!(expand("~", &ctx()).unwrap(), "/home/agent");
        assert_eq!(expand("~/.claude", &ctx()).unwrap(), "/home/agent/.claude");
        assert!(matches!(
            expand("~root/x", &ctx()),
            Err(ErrorKind::BadExpansion(_))
        ));
        let no_home = ExpandContext::default();
        assert_eq!(expand("~/.codex", &no_home), Err(ErrorKind::NoHome));
    }

    #[test]
    fn variables_and_defaults() {
        assert_eq!(
            expand("${PI}/auth.json", &ctx()).unwrap(),
            "/pi-agent/auth.json"
        );
        assert_eq!(expand("${NOPE:-/claude}", &ctx()).unwrap(), "/claude");
        assert_eq!(expand("${EMPTY:-/d}", &ctx()).unwrap(), "/d");
        assert_eq!(
            expand("${NOPE:-~/.claude}", &ctx()).unwrap(),
            "/home/agent/.claude"
        );
        assert_eq!(expand("${NOPE:-${PI}}/x", &ctx()).unwrap(), "/pi-agent/x");
        assert_eq!(expand("/a$$b", &ctx()).unwrap(), "/a$b");
        assert_eq!(
            expand("${NOPE}", &ctx()),
            Err(ErrorKind::UnsetVariable("NOPE".into()))
        );
        assert!(matches!(
            expand("$PI", &ctx()),
            Err(ErrorKind::BadExpansion(_))
        ));
        assert!(matches!(
            expand("${PI", &ctx()),
            Err(ErrorKind::BadExpansion(_))
        ));
        assert!(matches!(
            expand("${1X}", &ctx()),
            Err(ErrorKind::BadExpansion(_))
        ));
        assert!(matches!(
            expand("${}", &ctx()),
            Err(ErrorKind::BadExpansion(_))
        ));
    }

    #[test]
    fn paths_must_be_absolute_and_without_dotdot() {
        assert_eq!(
            absolute_path("//a/./b/", &ctx()).unwrap(),
            PathBuf::from("/a/b")
        );
        assert_eq!(absolute_path("", &ctx()), Err(ErrorKind::Empty("path")));
        assert!(matches!(
            absolute_path("a/b", &ctx()),
            Err(ErrorKind::RelativePath(_))
        ));
        assert!(matches!(
            absolute_path("/a/../b", &ctx()),
            Err(ErrorKind::DotDot(_))
        ));
        assert!(matches!(
            absolute_path("${EMPTY:-}", &ctx()),
            Err(ErrorKind::Empty(_))
        ));
    }

    #[test]
    fn escape_round_trips() {
        for s in ["/a$b", "/$${X}", "/plain"] {
            assert_eq!(expand(&escape(s), &ExpandContext::default()).unwrap(), s);
        }
        assert_eq!(
            expand_vars(&escape("~x$"), &ExpandContext::default()).unwrap(),
            "~x$"
        );
    }

    #[test]
    fn relative_exceptions() {
        assert_eq!(
            relative_inside("./shell-snapshots/").unwrap(),
            PathBuf::from("shell-snapshots")
        );
        assert!(relative_inside("/abs").is_err());
        assert!(relative_inside("../x").is_err());
        assert!(relative_inside(".").is_err());
        assert!(relative_inside("").is_err());
    }
}
