//! Policy errors. Every error names the file, the line and the column, and
//! says what was expected, in the form `FILE:LINE:COL: message`.

use std::fmt;

/// A policy that cannot be used, and where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file name as given (or `<built-in>`).
    pub file: String,
    /// 1-based line; 0 when the error is not about a place in the text
    /// (for example the file cannot be read).
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `read` of the policy file failed.
    Read(String),
    /// TOML syntax, a wrong type, a missing or unknown key.
    Syntax(String),
    /// A path that must be absolute after expansion is not.
    RelativePath(String),
    /// A path with a `..` component.
    DotDot(String),
    /// An empty string where a path or a name is needed.
    Empty(&'static str),
    /// `${VAR}` with `VAR` unset and no default.
    UnsetVariable(String),
    /// `${` without `}`, or a bad variable name.
    BadExpansion(String),
    /// `~` used but the harness user's home is unknown.
    NoHome,
    /// Any other value that is not allowed, with what is expected.
    Invalid(String),
}

impl PolicyError {
    pub(crate) fn at(file: &str, text: &str, offset: usize, kind: ErrorKind) -> PolicyError {
        let (line, column) = line_col(text, offset);
        PolicyError {
            file: file.to_string(),
            line,
            column,
            kind,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Read(e) => write!(f, "cannot read the policy: {e}"),
            ErrorKind::Syntax(e) => write!(f, "{e}"),
            ErrorKind::RelativePath(p) => write!(
                f,
                "path {p:?} is relative; expected an absolute path (starting with `/`, `~` or a `${{VAR}}` that holds one)"
            ),
            ErrorKind::DotDot(p) => write!(
                f,
                "path {p:?} has a `..` component; expected a path without `..` (write the directory it means)"
            ),
            ErrorKind::Empty(what) => write!(f, "empty {what}; expected a non-empty value"),
            ErrorKind::UnsetVariable(v) => write!(
                f,
                "variable `{v}` is not set; set it, or give a default as `${{{v}:-/some/path}}`"
            ),
            ErrorKind::BadExpansion(e) => write!(f, "{e}"),
            ErrorKind::NoHome => write!(
                f,
                "`~` used, but the harness user has no known home directory; set `harness.user` to a user with a home in /etc/passwd, or write the path in full"
            ),
            ErrorKind::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.kind)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.kind
            )
        }
    }
}

impl std::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 9), (2, 3));
        assert_eq!(line_col(t, 1000), (3, 1));
    }
}
