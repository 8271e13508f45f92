//! A stop asked for before the harness starts. As PID 1 in a container,
//! a signal with no handler and not blocked is dropped by the kernel, so a
//! `docker stop` during seeding used to be lost and the harness started
//! anyway. `agent-init` therefore blocks TERM and INT as its first action
//! ([`hold`]); they stay pending, and the start-up polls for them between
//! units of work ([`check`]: between files while seeding, between steps)
//! and stops with 143 (TERM) or 130 (INT) before anything is started.
//! Once the harness runs, [`crate::pid1`] takes them and forwards them.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use std::fmt;
use std::time::Duration;

/// The signals that stop agent-init before the harness starts.
const STOP: &[Signal] = &[Signal::SIGTERM, Signal::SIGINT];

fn stop_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in STOP {
        s.add(*sig);
    }
    s
}

/// Block TERM and INT, so that one sent now stays pending until [`check`]
/// takes it. The first thing `main` does.
pub fn hold() {
    // Cannot fail with a valid set and `how`.
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop_set()), None);
}

/// Undo [`hold`] for the commands that do not start a harness (`check`,
/// `explain`, `self-test`): a pending TERM or INT then ends them as usual.
pub fn release() {
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&stop_set()), None);
}

/// A stop signal arrived before the harness started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped(pub Signal);

impl Stopped {
    /// 128 + the signal: 143 for TERM, 130 for INT (as a shell reports it).
    pub fn exit_code(self) -> i32 {
        128 + self.0 as i32
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stopped by {} before the harness started; nothing was started, and every seeded file is complete (the next start copies what is missing)",
            self.0
        )
    }
}

impl std::error::Error for Stopped {}

/// Take a pending TERM or INT, if one arrived (never waits).
pub fn check() -> Result<(), Stopped> {
    match crate::sys::sigtimedwait(&stop_set(), Some(Duration::ZERO)) {
        Ok(Some(n)) => match Signal::try_from(n) {
            Ok(sig) => Err(Stopped(sig)),
            Err(_) => Ok(()),
        },
        // EAGAIN (none pending) is `Ok(None)`; the call fails only on an
        // invalid set, which this is not.
        Ok(None) | Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_term_is_taken_once_and_names_143() {
        // The test harness runs tests on threads: block in this thread only,
        // and send the signal to it alone.
        hold();
        assert_eq!(check(), Ok(()));
        // raise(3) signals the calling thread.
        nix::sys::signal::raise(Signal::SIGTERM).unwrap();
        let stopped = check().unwrap_err();
        assert_eq!(stopped, Stopped(Signal::SIGTERM));
        assert_eq!(stopped.exit_code(), 143);
        assert_eq!(Stopped(Signal::SIGINT).exit_code(), 130);
        assert_eq!(check(), Ok(()));
        release();
    }
}
