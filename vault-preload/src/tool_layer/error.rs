//! Why the tool layer could not be applied, and the one line that says so.
//!
//! Its own module so that every part of the tool layer (and the spawn
//! hooks) reports the same way without depending on each other.

use crate::sys;

/// Why the tool layer could not be applied.
#[derive(Debug, Clone, Copy)]
pub struct LandlockError {
    pub what: &'static str,
    pub errno: i32,
}

/// One line on stderr: why the tool layer is missing.
pub fn report(e: LandlockError, consequence: &[u8]) {
    let mut d = [0u8; 20];
    sys::write_all(2, b"agent-vault: cannot apply the tool layer: ");
    sys::write_all(2, e.what.as_bytes());
    sys::write_all(2, b" (errno ");
    sys::write_all(2, sys::fmt_u64(e.errno.max(0) as u64, &mut d));
    sys::write_all(2, b")");
    sys::write_all(2, consequence);
    sys::write_all(2, b"\n");
}
