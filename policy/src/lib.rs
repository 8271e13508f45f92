//! agent-vault's policy: the TOML file, its validation, and the compiled forms
//! that the two enforcers apply.
//!
//! This crate is pure data. It never changes the process: no syscalls that
//! restrict, no file system writes. Whatever it needs from the machine (the
//! harness user's home, the environment, a directory listing, inode numbers)
//! is passed in by the caller, so every plan it computes can be tested on any
//! machine with golden inputs.
//!
//! - [`raw`]: the policy file as written (the serde TOML schema).
//! - [`load`]: parse, validate and expand a [`raw`] policy into the resolved one.
//! - [`resolved`]: the resolved policy ([`Policy`]), what everything else reads.
//! - [`image`]: the policy image, the effective policy as the preload reads
//!   it (`policy.bin`): [`Policy::to_image`] writes it; its format and
//!   reader, like the vault matcher and the tool-layer walk, live in the
//!   `no_std` crate `policy_core`, re-exported here.
//! - [`landlock_plan`]: the base layer (agent-init) and the tool layer (the preload).
//! - [`seccomp_plan`]: the deny-list as data, per architecture.
//! - [`session`]: the files of agent-init's state directory, as bytes (the
//!   names and modes: [`layout`]).
//! - [`proxy`]: `[proxy]`, the credential routes agent-init hands to vault-proxy.
//! - [`testing`]: the policy text the test suites build their policies from.
//! - [`explain`]: what the harness and what a tool may do with a path, and why.

pub mod audit;
pub mod error;
pub mod expand;
pub mod explain;
pub mod image;
pub mod landlock_plan;
pub mod load;
pub mod proxy;
pub mod raw;
pub mod resolved;
pub mod seccomp_plan;
pub mod session;
pub mod syscalls;
pub mod testing;

pub use error::PolicyError;
pub use expand::ExpandContext;
pub use load::{BUILTIN_NAME, DEFAULT_POLICY_PATH, DEFAULT_POLICY_TOML, load_file, load_str};
pub use policy_core::layout::{PROBE_ENTRY, STATE_DIR};
pub use policy_core::{Access, FileId, VaultKind, View, access, layout, pathbuf};
pub use proxy::{
    BaseUrl, FileFormat, KeyHeader, OauthPlaceholder, OauthSpec, Proxy, ProxyMode, Route,
    SecretSource,
};
pub use resolved::{
    AuditSink, DEFAULT_AUDIT_MAX_BYTES, EnforceMode, Filesystem, GroupSpec, Harness, LauncherFile,
    Policy, Seccomp, Seed, SeedMode, Tools, Unhooked, UserSpec, VaultEntry,
};
pub use session::{SessionFile, host_state_dir};
