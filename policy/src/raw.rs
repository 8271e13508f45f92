//! The policy file as written: the raw TOML schema, before validation and
//! expansion ([`crate::load`] turns it into the resolved
//! [`crate::resolved::Policy`]). Unknown keys are errors
//! (`deny_unknown_fields`), and every string that will be checked later keeps
//! its place in the text ([`Spanned`]) so the check can name line and column.

use crate::resolved::{EnforceMode, SeedMode, Unhooked};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub harness: RawHarness,
    pub vault: RawVault,
    pub filesystem: RawFilesystem,
    #[serde(default)]
    pub landlock: RawLandlock,
    #[serde(default)]
    pub seccomp: RawSeccomp,
    #[serde(default)]
    pub seed: Vec<RawSeed>,
    #[serde(default)]
    pub audit: RawAudit,
    /// `[proxy]` ([`crate::proxy`]).
    #[serde(default)]
    pub proxy: crate::proxy::RawProxy,
    #[serde(default)]
    pub tools: RawTools,
}

/// `[harness]`: who the harness runs as, and what extra environment it gets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHarness {
    /// A user name, or `uid:gid`.
    pub user: Spanned<String>,
    /// Supplementary groups: names or numeric gids.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// Extra environment variables for the harness (values are expanded).
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// A harness the preload cannot follow: `refuse` (default) or `allow`.
    #[serde(default)]
    pub unhooked: Unhooked,
    /// Variables agent-init sets to a fresh random value for the harness
    /// (a server password for its loopback services); secret for tools.
    #[serde(default)]
    pub random_env: Vec<Spanned<String>>,
    /// Harness programs a trusted process may launch as a harness of their
    /// own (paths; agent-init identifies each file at start).
    #[serde(default)]
    pub launches: Vec<Spanned<String>>,
}

/// `[vault]`: what only the harness may touch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVault {
    /// Environment variables removed from every tool's environment.
    #[serde(default)]
    pub secret_env: Vec<Spanned<String>>,
    /// Patterns of secret variable names: `*` stands for any run of characters.
    #[serde(default)]
    pub secret_env_patterns: Vec<Spanned<String>>,
    /// Variables that tools keep although a name or pattern above says secret.
    #[serde(default)]
    pub keep_env: Vec<Spanned<String>>,
    /// `[[vault.entry]]`: harness-private directories and files.
    #[serde(default)]
    pub entry: Vec<RawVaultEntry>,
}

/// One `[[vault.entry]]`: exactly one of `dir` or `file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVaultEntry {
    /// The rule's name, shown in audit records and `explain`.
    pub name: Spanned<String>,
    #[serde(default)]
    pub dir: Option<Spanned<String>>,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Paths inside `dir`, relative to it, that tools may still use.
    #[serde(default)]
    pub tool_exceptions: Vec<Spanned<String>>,
}

/// `[filesystem]`: the base layer, an allow-list for everything in the container.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilesystem {
    #[serde(default)]
    pub read_only: Vec<Spanned<String>>,
    #[serde(default)]
    pub read_write: Vec<Spanned<String>>,
    #[serde(default)]
    pub executable: Vec<Spanned<String>>,
    /// Paths kept from the harness and every tool (secret mounts), beside
    /// the seed sources.
    #[serde(default)]
    pub hidden: Vec<Spanned<String>>,
    /// Paths tools may read and execute but not write (the harness's own
    /// program); the harness keeps its base rights there.
    #[serde(default)]
    pub tool_read_only: Vec<Spanned<String>>,
}

/// `[tools]`: how the harness's children start.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTools {
    /// Tools keep the harness's controlling terminal (default: they lose it).
    #[serde(default)]
    pub keep_terminal: bool,
}

/// `[landlock]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLandlock {
    #[serde(default)]
    pub mode: EnforceMode,
}

/// `[seccomp]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSeccomp {
    #[serde(default)]
    pub mode: EnforceMode,
    /// Extra syscalls to deny with `EPERM`, by name.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}

/// One `[[seed]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeed {
    pub source: Spanned<String>,
    pub target: Spanned<String>,
    pub mode: SeedMode,
    /// For `newest-backup`: a file name prefix followed by `*`.
    #[serde(default)]
    pub pattern: Option<Spanned<String>>,
}

/// `[audit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `"log"` (agent-init's stderr, the default), `"off"`, `"stderr"`,
    /// or an absolute file path.
    #[serde(default = "default_audit_sink")]
    pub sink: Spanned<String>,
    /// The file sink's size bound: past it the file is renamed to
    /// `<file>.1` and a new one started.
    #[serde(default)]
    pub max_bytes: Option<Spanned<u64>>,
}

fn default_audit_sink() -> Spanned<String> {
    Spanned::new(0..0, "log".to_string())
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            sink: default_audit_sink(),
            max_bytes: None,
        }
    }
}
