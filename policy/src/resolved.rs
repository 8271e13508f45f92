//! The resolved policy: what [`crate::load`] makes of a policy file once it
//! is validated and every path expanded. The plans ([`crate::landlock_plan`],
//! [`crate::seccomp_plan`]), the policy image ([`crate::image`]) and the
//! enforcers read only this; the file as written is [`crate::raw`].

use crate::expand;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use policy_core::layout::PROBE_ENTRY;

/// A validated, expanded policy. Every path is absolute and clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The file it came from (for messages).
    pub source: String,
    pub harness: Harness,
    pub vault: Vec<VaultEntry>,
    pub secret_env: Vec<String>,
    /// Patterns of secret variable names (`*`: any run of characters).
    pub secret_env_patterns: Vec<String>,
    /// Variables tools keep, whatever `secret_env` and the patterns say.
    pub keep_env: Vec<String>,
    pub filesystem: Filesystem,
    pub landlock: EnforceMode,
    pub seccomp: Seccomp,
    pub seeds: Vec<Seed>,
    pub audit: AuditSink,
    /// `[audit] max_bytes`: the file sink rotates past this size.
    pub audit_max_bytes: u64,
    /// `[proxy]`: the credential proxy agent-init starts.
    pub proxy: crate::proxy::Proxy,
    pub tools: Tools,
}

/// `[tools]`: how the harness's children start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tools {
    /// Tools keep the harness's controlling terminal. Off by default: a tool
    /// that opens `/dev/tty` could read what the user types to the harness.
    pub keep_terminal: bool,
}

/// Who the harness runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Harness {
    pub user: UserSpec,
    pub groups: Vec<GroupSpec>,
    pub env: BTreeMap<String, String>,
    /// Whether agent-init starts a harness whose spawns the preload cannot
    /// follow (static, Go, or another dynamic loader than glibc's).
    pub unhooked: Unhooked,
    /// Variables agent-init sets to a fresh random value for the harness
    /// unless its environment has them (a password for a server the harness
    /// runs on loopback, such as `opencode serve`'s); tools lose them like
    /// every secret variable (load adds them to `secret_env`).
    pub random_env: Vec<String>,
    /// `[harness] launches`: the harness programs a trusted process may
    /// launch (absolute, clean, each once). A path says where to look, not
    /// what to trust: agent-init identifies the file there at start
    /// ([`Policy::set_launcher_files`]) and only that file counts.
    pub launches: Vec<PathBuf>,
    /// What agent-init found at each of `launches` at start: the file's
    /// device and inode. Empty until agent-init fills it; a launcher
    /// missing here (not found at start) launches nothing trusted.
    pub launcher_files: Vec<LauncherFile>,
}

/// A launcher as agent-init found it at start: the policy's path and the
/// identity (device, inode) of the file there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LauncherFile {
    pub path: PathBuf,
    pub id: policy_core::image::FileId,
}

/// `[harness] unhooked`: what agent-init does with a harness the preload's
/// spawn hooks cannot follow. Such a harness starts its tools outside the
/// tool layer and with the whole environment, secret variables included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Unhooked {
    /// Refuse to start it (exit 2, with the reason).
    #[default]
    Refuse,
    /// Start it anyway: its tools are not kept from the vault.
    Allow,
}

impl Unhooked {
    pub fn as_str(self) -> &'static str {
        match self {
            Unhooked::Refuse => "refuse",
            Unhooked::Allow => "allow",
        }
    }
}

/// A user by name or by numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    Name(String),
    Ids { uid: u32, gid: u32 },
}

/// A supplementary group by name or number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSpec {
    Name(String),
    Gid(u32),
}

pub use policy_core::VaultKind;

/// One harness-private path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    pub name: String,
    pub path: PathBuf,
    pub kind: VaultKind,
    /// Absolute paths inside `path` that tools may still use.
    pub tool_exceptions: Vec<PathBuf>,
}

/// The base layer's allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filesystem {
    pub read_only: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
    pub executable: Vec<PathBuf>,
    /// `hidden`: kept from the harness and every tool, like the seed
    /// sources ([`crate::landlock_plan::hidden_paths`]).
    pub hidden: Vec<PathBuf>,
    /// Read and execute only, for tools: the harness's install prefix,
    /// runtime, global config and extensions (the harness keeps write, to
    /// update itself). Never inside or around a vault entry.
    pub tool_read_only: Vec<PathBuf>,
}

/// `[seccomp]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    pub mode: EnforceMode,
    /// Extra syscall names, each known to [`crate::syscalls`].
    pub extra_deny: Vec<String>,
}

/// One seed, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub source: PathBuf,
    pub target: PathBuf,
    pub mode: SeedMode,
    /// For `newest-backup`: the file name prefix (the pattern without `*`).
    pub prefix: Option<String>,
}

/// How hard a kernel layer is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EnforceMode {
    /// Refuse to start unless the kernel enforces all of it.
    #[default]
    Required,
    /// Enforce what the kernel can, and log exactly what is not enforced.
    BestEffort,
    /// Do not apply this layer.
    Off,
}

impl EnforceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforceMode::Required => "required",
            EnforceMode::BestEffort => "best-effort",
            EnforceMode::Off => "off",
        }
    }
}

/// How a seed is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeedMode {
    /// Copy the source tree into the target; files that exist are kept.
    CopyMissing,
    /// When the target file is missing, restore it from the newest file in the
    /// source directory whose name starts with `pattern`'s prefix.
    NewestBackup,
}

impl SeedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SeedMode::CopyMissing => "copy-missing",
            SeedMode::NewestBackup => "newest-backup",
        }
    }
}

/// Where denial records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Not recorded.
    Off,
    /// The denied program's own stderr.
    Stderr,
    /// A JSON-lines file, appended by agent-init, rotated past
    /// [`Policy::audit_max_bytes`].
    File(std::path::PathBuf),
    /// agent-init's own stderr (PID 1's: the container log), rate-limited.
    Log,
}

/// The file sink's default size bound (16 MiB).
pub const DEFAULT_AUDIT_MAX_BYTES: u64 = 16 << 20;

/// The smallest `[audit] max_bytes` a policy may set.
pub const MIN_AUDIT_MAX_BYTES: u64 = 4096;

impl Policy {
    /// The effective policy as TOML: every path expanded, so that loading it
    /// again (with any context) gives the same policy. agent-init writes this
    /// for the preload, so that no process's environment can move the vault.
    pub fn to_effective_toml(&self) -> String {
        let q = |s: &str| toml_string(&expand::escape(s));
        let qp = |p: &Path| q(&p.to_string_lossy());
        let list = |v: &[PathBuf]| v.iter().map(|p| qp(p)).collect::<Vec<_>>().join(", ");
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# Effective agent-vault policy, expanded from {}",
            self.source
        );
        let _ = writeln!(o, "[harness]");
        let user = match &self.harness.user {
            UserSpec::Name(n) => n.clone(),
            UserSpec::Ids { uid, gid } => format!("{uid}:{gid}"),
        };
        let _ = writeln!(o, "user = {}", toml_string(&user));
        let groups: Vec<String> = self
            .harness
            .groups
            .iter()
            .map(|g| match g {
                GroupSpec::Name(n) => toml_string(n),
                GroupSpec::Gid(g) => toml_string(&g.to_string()),
            })
            .collect();
        let _ = writeln!(o, "groups = [{}]", groups.join(", "));
        let _ = writeln!(
            o,
            "unhooked = {}",
            toml_string(self.harness.unhooked.as_str())
        );
        let random: Vec<String> = self
            .harness
            .random_env
            .iter()
            .map(|s| toml_string(s))
            .collect();
        let _ = writeln!(o, "random_env = [{}]", random.join(", "));
        let launches: Vec<String> = self.harness.launches.iter().map(|p| qp(p)).collect();
        let _ = writeln!(o, "launches = [{}]", launches.join(", "));
        let _ = writeln!(o, "[harness.env]");
        for (k, v) in &self.harness.env {
            let _ = writeln!(o, "{k} = {}", q(v));
        }
        let _ = writeln!(o, "\n[vault]");
        let secrets: Vec<String> = self.secret_env.iter().map(|s| toml_string(s)).collect();
        let _ = writeln!(o, "secret_env = [{}]", secrets.join(", "));
        let strings = |v: &[String]| {
            v.iter()
                .map(|s| toml_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "secret_env_patterns = [{}]",
            strings(&self.secret_env_patterns)
        );
        let _ = writeln!(o, "keep_env = [{}]", strings(&self.keep_env));
        for e in &self.vault {
            let _ = writeln!(o, "\n[[vault.entry]]\nname = {}", toml_string(&e.name));
            let key = if e.kind == VaultKind::Dir {
                "dir"
            } else {
                "file"
            };
            let _ = writeln!(o, "{key} = {}", qp(&e.path));
            if !e.tool_exceptions.is_empty() {
                let rel: Vec<String> = e
                    .tool_exceptions
                    .iter()
                    .map(|x| qp(x.strip_prefix(&e.path).unwrap_or(x)))
                    .collect();
                let _ = writeln!(o, "tool_exceptions = [{}]", rel.join(", "));
            }
        }
        let fs = &self.filesystem;
        let _ = writeln!(o, "\n[filesystem]");
        let _ = writeln!(o, "read_only = [{}]", list(&fs.read_only));
        let _ = writeln!(o, "read_write = [{}]", list(&fs.read_write));
        let _ = writeln!(o, "executable = [{}]", list(&fs.executable));
        let _ = writeln!(o, "hidden = [{}]", list(&fs.hidden));
        let _ = writeln!(o, "tool_read_only = [{}]", list(&fs.tool_read_only));
        let _ = writeln!(
            o,
            "\n[landlock]\nmode = {}",
            toml_string(self.landlock.as_str())
        );
        let deny: Vec<String> = self
            .seccomp
            .extra_deny
            .iter()
            .map(|s| toml_string(s))
            .collect();
        let _ = writeln!(
            o,
            "\n[seccomp]\nmode = {}\ndeny = [{}]",
            toml_string(self.seccomp.mode.as_str()),
            deny.join(", ")
        );
        for s in &self.seeds {
            let _ = writeln!(
                o,
                "\n[[seed]]\nsource = {}\ntarget = {}",
                qp(&s.source),
                qp(&s.target)
            );
            let _ = writeln!(o, "mode = {}", toml_string(s.mode.as_str()));
            if let Some(p) = &s.prefix {
                let _ = writeln!(o, "pattern = {}", toml_string(&format!("{p}*")));
            }
        }
        let sink = match &self.audit {
            AuditSink::Off => toml_string("off"),
            AuditSink::Stderr => toml_string("stderr"),
            AuditSink::File(p) => qp(p),
            AuditSink::Log => toml_string("log"),
        };
        let _ = writeln!(
            o,
            "\n[audit]\nsink = {sink}\nmax_bytes = {}",
            self.audit_max_bytes
        );
        self.proxy.write_effective(&mut o, &q);
        let _ = writeln!(o, "\n[tools]\nkeep_terminal = {}", self.tools.keep_terminal);
        o
    }

    /// Add agent-init's tool-layer probe: an empty directory, made a vault
    /// entry, that the tool layer denies. A process that can open it is not
    /// under the tool layer yet (a kernel-held fact no process can forge).
    pub fn add_probe(&mut self, dir: PathBuf) {
        if self.vault_entry(PROBE_ENTRY).is_none() {
            self.vault.push(VaultEntry {
                name: PROBE_ENTRY.to_string(),
                path: dir,
                kind: VaultKind::Dir,
                tool_exceptions: Vec::new(),
            });
        }
    }

    /// Record what agent-init found at `[harness] launches` at start: each
    /// file's identity, which the policy image carries. Called once, before
    /// the image is written; a path of `launches` absent from `files` (not
    /// found) is no launcher.
    pub fn set_launcher_files(&mut self, files: Vec<LauncherFile>) {
        self.harness.launcher_files = files;
    }

    /// The probe directory, when agent-init added one.
    pub fn probe_dir(&self) -> Option<&Path> {
        self.vault_entry(PROBE_ENTRY).map(|e| e.path.as_path())
    }

    /// Whether tools lose the variable `name` (the preload's test,
    /// `policy_core::View::is_secret_env`): not kept, and named in
    /// `secret_env` or matching a pattern.
    pub fn is_secret_env(&self, name: &str) -> bool {
        !self.keep_env.iter().any(|k| k == name)
            && (self.secret_env.iter().any(|s| s == name)
                || self
                    .secret_env_patterns
                    .iter()
                    .any(|p| policy_core::image::glob_match(p.as_bytes(), name.as_bytes())))
    }

    /// The vault entry with this name.
    pub fn vault_entry(&self, name: &str) -> Option<&VaultEntry> {
        self.vault.iter().find(|e| e.name == name)
    }
}

/// A TOML basic string with everything escaped that needs it.
pub(crate) fn toml_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
