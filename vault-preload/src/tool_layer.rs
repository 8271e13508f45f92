//! The tool layer: a Landlock domain that grants what the base layer grants
//! except the vault (`policy_core::walk`), applied with raw system calls.
//! Allocation-free, so it runs in a forked or vforked child of the harness,
//! in a helper thread, or in a tool's constructor.
//!
//! The parts, each in its own module:
//! - [`ruleset`]: build a ruleset (a walk over the vault's ancestors);
//! - [`recorder`]: what a built ruleset depends on (listed directories'
//!   identity and mtime, base rule paths' identity);
//! - [`cache`]: the harness keeps one built ruleset and rebuilds it only
//!   when a dependency changed (checked before a fork or spawn, at most
//!   every 50 ms);
//!   children apply the cached ruleset after re-validating it (a few
//!   `stat`s), or build a fresh one when it is stale or missing;
//! - [`probe`]: is this process already under the tool layer?
//! - [`apply`](mod@apply): when to apply it (once per process);
//! - [`error`]: why it could not be applied.

pub mod apply;
pub mod cache;
pub mod error;
pub mod probe;
pub mod recorder;
pub mod ruleset;

pub use apply::{apply, ensure, ensure_in_harness_child, note_applied};
pub use cache::{cache_fd, refresh_cache};
pub use error::{LandlockError, report};
pub use probe::{Probe, probe_file};
