//! Log lines on stderr, shaped for a log pipeline.
//!
//! Quiet by default, as tini is: when all is well `run` says one line per
//! start ([`notice`]); `-v` adds a line per step ([`info`]) and the details
//! ([`debug`]); `-q` leaves warnings and errors only. The format is text
//! (`agent-init: ...`) or JSON, one object a line with a UTC timestamp:
//! `{"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"..."}`.
//!
//! Set by the flags (`-v`, `-q`, `--log-format`), else by
//! `AGENT_VAULT_LOG`: comma-separated words from [`ACCEPTED`]
//! (`json,debug`). An unknown word is refused ([`LogSpecError`]), and the
//! variable is agent-init's alone: `run` does not pass it to the harness.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that sets the level and format when no flag does.
pub const LOG_ENV: &str = "AGENT_VAULT_LOG";

/// The words [`LOG_ENV`] accepts.
pub const ACCEPTED: &str = "quiet, info, debug, text, json";

/// How much is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Warnings and errors only.
    Quiet = 0,
    /// The default: also one line per start (and a harness that dies badly).
    Info = 1,
    /// Also one line per step, and the details.
    Debug = 2,
}

/// How it is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `agent-init: message`.
    Text = 0,
    /// One JSON object a line, with a timestamp.
    Json = 1,
}

/// The level and format [`LOG_ENV`] asks for (`None`: not given there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSpec {
    pub level: Option<Level>,
    pub format: Option<Format>,
}

/// [`LOG_ENV`] holds a word agent-init does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpecError {
    pub value: String,
}

impl fmt::Display for LogSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{LOG_ENV}={:?}: not a log setting; accepted: {ACCEPTED} (comma-separated, like \"json,debug\")",
            self.value
        )
    }
}

impl std::error::Error for LogSpecError {}

/// Parse a [`LOG_ENV`] value. Empty means "not set".
pub fn parse_spec(value: &str) -> Result<LogSpec, LogSpecError> {
    let mut spec = LogSpec::default();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "quiet" => spec.level = Some(Level::Quiet),
            "info" => spec.level = Some(Level::Info),
            "debug" => spec.level = Some(Level::Debug),
            "text" => spec.format = Some(Format::Text),
            "json" => spec.format = Some(Format::Json),
            _ => {
                return Err(LogSpecError {
                    value: value.to_string(),
                });
            }
        }
    }
    Ok(spec)
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static FORMAT: AtomicU8 = AtomicU8::new(Format::Text as u8);

/// Set the level and format from the flags, else from [`LOG_ENV`]. An
/// unknown [`LOG_ENV`] is refused (the caller exits).
pub fn init(verbose: bool, quiet: bool, format: Option<Format>) -> Result<(), LogSpecError> {
    let env = std::env::var(LOG_ENV).unwrap_or_default();
    let spec = parse_spec(&env);
    let given = spec.clone().unwrap_or_default();
    let level = if verbose {
        Level::Debug
    } else if quiet {
        Level::Quiet
    } else {
        given.level.unwrap_or(Level::Info)
    };
    let format = format.or(given.format).unwrap_or(Format::Text);
    LEVEL.store(level as u8, Ordering::Relaxed);
    FORMAT.store(format as u8, Ordering::Relaxed);
    spec.map(drop)
}

pub fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

fn json() -> bool {
    FORMAT.load(Ordering::Relaxed) == Format::Json as u8
}

/// Write one line in the chosen format. `level`: the word a JSON line
/// carries (`info`, `debug`, `warning`, `error`).
pub fn emit(level: &str, msg: fmt::Arguments<'_>) {
    if json() {
        let line = serde_json::json!({
            "ts": utc_timestamp(std::time::SystemTime::now()),
            "level": level,
            "msg": msg.to_string(),
        });
        eprintln!("{line}");
    } else if level == "warning" || level == "error" {
        eprintln!("agent-init: {level}: {msg}");
    } else {
        eprintln!("agent-init: {msg}");
    }
}

/// RFC 3339 UTC with milliseconds: `2026-01-02T03:04:05.678Z`.
pub fn utc_timestamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The one line a start says by default (level `info`).
macro_rules! notice {
    ($($t:tt)*) => {{
        if $crate::log::enabled($crate::log::Level::Info) {
            $crate::log::emit("info", format_args!($($t)*));
        }
    }};
}

/// A step or progress line (shown with `-v`).
macro_rules! info {
    ($($t:tt)*) => {{
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::emit("info", format_args!($($t)*));
        }
    }};
}

/// A detail line (shown with `-v`).
macro_rules! debug {
    ($($t:tt)*) => {{
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::emit("debug", format_args!($($t)*));
        }
    }};
}

/// A warning: always printed.
macro_rules! warning {
    ($($t:tt)*) => {{
        $crate::log::emit("warning", format_args!($($t)*));
    }};
}

/// An error: always printed.
macro_rules! error {
    ($($t:tt)*) => {{
        $crate::log::emit("error", format_args!($($t)*));
    }};
}

pub(crate) use {debug, error, info, notice, warning};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(utc_timestamp(t), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn spec_words() {
        assert_eq!(
            parse_spec("json,debug").unwrap(),
            LogSpec {
                level: Some(Level::Debug),
                format: Some(Format::Json)
            }
        );
        assert_eq!(parse_spec("").unwrap(), LogSpec::default());
        let e = parse_spec("verbose").unwrap_err().to_string();
        assert!(
            e.contains("accepted: quiet, info, debug, text, json"),
            "{e}"
        );
    }
}
