//! One shape for "this call failed": the call's name, the path it was about
//! (when there is one) and the error it returned, kept as the
//! [`source`](std::error::Error::source) rather than turned into text.
//!
//! Each step keeps its own error enum (one per operation); their `Call`
//! variants wrap a [`Call`], built at the failing call with
//! [`CallResult::call_at`] or [`CallResult::call`]:
//!
//! ```ignore
//! let st = fstat(&fd).call_at("fstat", path)?; // SeedError: From<Call<Errno>>
//! ```

use nix::errno::Errno;
use std::fmt;
use std::path::{Path, PathBuf};

/// A failed call: which one, on which path, and what it returned.
#[derive(Debug)]
pub struct Call<S> {
    pub call: &'static str,
    pub path: Option<PathBuf>,
    pub source: S,
}

impl<S> Call<S> {
    /// `call` on `path` failed with `source`.
    pub fn at(call: &'static str, path: &Path, source: S) -> Call<S> {
        Call {
            call,
            path: Some(path.to_path_buf()),
            source,
        }
    }

    /// `call` failed with `source` (no path involved).
    pub fn of(call: &'static str, source: S) -> Call<S> {
        Call {
            call,
            path: None,
            source,
        }
    }

    /// The same call and path with another kind of source.
    pub fn map<T>(self, f: impl FnOnce(S) -> T) -> Call<T> {
        Call {
            call: self.call,
            path: self.path,
            source: f(self.source),
        }
    }
}

/// How a source reads in a message: an errno as its description (`Permission
/// denied`), anything else as its own `Display`.
pub trait Describe {
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Describe for Errno {
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.desc())
    }
}

impl Describe for std::io::Error {
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Describe for caps::errors::CapsError {
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `CALL PATH: why`, or `CALL: why` without a path.
impl<S: Describe> fmt::Display for Call<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} {}: ", self.call, p.display())?,
            None => write!(f, "{}: ", self.call)?,
        }
        self.source.describe(f)
    }
}

impl<S: std::error::Error + Describe + 'static> std::error::Error for Call<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Name the call (and path) that produced an error, at the call.
pub trait CallResult<T, S> {
    /// `call` on `path` failed.
    fn call_at(self, call: &'static str, path: &Path) -> Result<T, Call<S>>;
    /// `call` failed (no path involved).
    fn call(self, call: &'static str) -> Result<T, Call<S>>;
}

impl<T, S> CallResult<T, S> for Result<T, S> {
    fn call_at(self, call: &'static str, path: &Path) -> Result<T, Call<S>> {
        self.map_err(|source| Call::at(call, path, source))
    }

    fn call(self, call: &'static str) -> Result<T, Call<S>> {
        self.map_err(|source| Call::of(call, source))
    }
}

/// The errno of an I/O error (`EIO` when it carries none), for errors that
/// report errnos.
pub fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

// The errors of the modules another change reshapes (the state directory,
// and the Landlock and seccomp layers moving into the policy crate) get
// `Error` here, so the step errors that wrap them can return them as their
// source; move each impl next to its enum when that module settles.

impl std::error::Error for crate::state::RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            crate::state::RecordError::Call { err, .. } => Some(err),
            crate::state::RecordError::Untrusted { .. } => None,
            crate::state::RecordError::AuditSocket(e) => Some(e),
        }
    }
}

/// Its call errors are kept as text (`Ruleset { err: String }`).
impl std::error::Error for crate::landlock_layer::LandlockError {}

/// Its compile and apply errors are kept as text.
impl std::error::Error for crate::seccomp_layer::SeccompError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_call_and_path_and_keep_the_source() {
        let r: Result<(), Errno> = Err(Errno::EACCES);
        let c = r.call_at("fstat", Path::new("/pi-agent")).unwrap_err();
        assert_eq!(c.to_string(), "fstat /pi-agent: Permission denied");
        let src = c.source().unwrap().downcast_ref::<Errno>();
        assert_eq!(src, Some(&Errno::EACCES));

        let r: Result<(), Errno> = Err(Errno::EPERM);
        assert_eq!(
            r.call("sigprocmask").unwrap_err().to_string(),
            "sigprocmask: Operation not permitted"
        );

        let io = Call::of("setresuid", std::io::Error::from(Errno::EPERM));
        assert_eq!(
            io.to_string(),
            "setresuid: Operation not permitted (os error 1)"
        );
        let io_src = io.source().unwrap().downcast_ref::<std::io::Error>();
        assert_eq!(io_src.and_then(|e| e.raw_os_error()), Some(libc::EPERM));
    }

    #[test]
    fn step_errors_chain_to_the_failed_call() {
        let seed = crate::seed::SeedError::from(Call::at("open", Path::new("/x"), Errno::ELOOP));
        let run = crate::run::RunError::Seed(seed);
        assert_eq!(
            run.to_string(),
            "step 2 (seed): open /x: Too many symbolic links encountered"
        );
        let mut chain = Vec::new();
        let mut e: Option<&dyn std::error::Error> = Some(&run);
        while let Some(x) = e {
            chain.push(x.to_string());
            e = x.source();
        }
        assert_eq!(
            chain,
            [
                "step 2 (seed): open /x: Too many symbolic links encountered",
                "open /x: Too many symbolic links encountered",
                "ELOOP: Too many symbolic links encountered",
            ]
        );
    }
}
