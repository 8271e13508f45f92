//! One-line log messages on stderr, prefixed `agent-init:`.
//!
//! Levels: `quiet` (errors and warnings only), `info` (the default: one line
//! per step of `run`), `debug` (details). Set by `-q`/`-v`, or by the
//! `AGENT_VAULT_LOG` environment variable (`quiet`, `info`, `debug`).

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that sets the level when no flag does.
pub const LOG_ENV: &str = "AGENT_VAULT_LOG";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet = 0,
    Info = 1,
    Debug = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Set the level from the flags, else from [`LOG_ENV`].
pub fn init(verbose: bool, quiet: bool) {
    let level = if verbose {
        Level::Debug
    } else if quiet {
        Level::Quiet
    } else {
        match std::env::var(LOG_ENV).as_deref() {
            Ok("quiet") | Ok("warn") | Ok("error") => Level::Quiet,
            Ok("debug") | Ok("trace") => Level::Debug,
            _ => Level::Info,
        }
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

/// A step or progress line (level `info`).
macro_rules! info {
    ($($t:tt)*) => {{
        if $crate::log::enabled($crate::log::Level::Info) {
            eprintln!("agent-init: {}", format_args!($($t)*));
        }
    }};
}

/// A detail line (level `debug`).
macro_rules! debug {
    ($($t:tt)*) => {{
        if $crate::log::enabled($crate::log::Level::Debug) {
            eprintln!("agent-init: {}", format_args!($($t)*));
        }
    }};
}

/// A warning: always printed.
macro_rules! warning {
    ($($t:tt)*) => {{
        eprintln!("agent-init: warning: {}", format_args!($($t)*));
    }};
}

pub(crate) use {debug, info, warning};
