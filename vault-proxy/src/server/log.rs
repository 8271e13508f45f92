//! One-line log messages on stderr, prefixed `vault-proxy:`.
//!
//! `info` (the default) is one line per start plus rare events (an OAuth
//! refresh, an upstream failure); `-v` adds one line per request. No line
//! ever holds a credential, a placeholder or a header value.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turn per-request lines on (`-v`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Write one line with one `write`: stderr is shared with agent-init and
/// the harness (the container log), and `eprintln!` writes each formatted
/// piece separately, so another process's line could land inside ours.
pub fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = format!("vault-proxy: {args}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A start or rare-event line.
macro_rules! info {
    ($($t:tt)*) => {{
        $crate::log::line(format_args!($($t)*));
    }};
}

/// A per-request line (only with `-v`).
macro_rules! debug {
    ($($t:tt)*) => {{
        if $crate::log::verbose() {
            $crate::log::line(format_args!($($t)*));
        }
    }};
}

pub(crate) use {debug, info};
