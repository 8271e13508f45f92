//! Parse ([`crate::raw`]), validate and expand a policy into the resolved
//! [`Policy`] ([`crate::resolved`]).

use crate::error::{ErrorKind, PolicyError};
use crate::expand::{self, ExpandContext};
use crate::raw::{
    RawAudit, RawFilesystem, RawHarness, RawPolicy, RawSeccomp, RawSeed, RawTools, RawVault,
};
use crate::resolved::{
    AuditSink, DEFAULT_AUDIT_MAX_BYTES, Filesystem, GroupSpec, Harness, MIN_AUDIT_MAX_BYTES,
    Policy, Seccomp, Seed, SeedMode, Tools, UserSpec, VaultEntry, VaultKind,
};
use crate::syscalls;
use policy_core::layout::STATE_DIR;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where agent-init and the preload look for the policy.
pub const DEFAULT_POLICY_PATH: &str = "/etc/agent-vault/policy.toml";

/// The built-in policy, used when [`DEFAULT_POLICY_PATH`] does not exist.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../default.toml");

/// The name errors give the built-in policy.
pub const BUILTIN_NAME: &str = "<built-in policy>";

/// Parse a policy file's text into its raw form (no expansion yet): the
/// caller reads `harness.user` from it to find the home for `~`.
pub fn parse_raw(text: &str, file: &str) -> Result<RawPolicy, PolicyError> {
    toml::from_str::<RawPolicy>(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let msg = e.message().trim_end().replace('\n', "; ");
        PolicyError::at(file, text, offset, ErrorKind::Syntax(msg))
    })
}

/// Read and load a policy file.
pub fn load_file(path: &Path, ctx: &ExpandContext) -> Result<Policy, PolicyError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: file.clone(),
        line: 0,
        column: 0,
        kind: ErrorKind::Read(e.to_string()),
    })?;
    load_str(&text, &file, ctx)
}

/// Parse, validate and expand a policy's text.
pub fn load_str(text: &str, file: &str, ctx: &ExpandContext) -> Result<Policy, PolicyError> {
    let raw = parse_raw(text, file)?;
    resolve(raw, text, file, ctx)
}

/// The raw `harness.user` of a policy text, for finding the home before expansion.
pub fn harness_user(raw: &RawPolicy, text: &str, file: &str) -> Result<UserSpec, PolicyError> {
    parse_user(&raw.harness.user, text, file)
}

/// Where an error points: the policy's text and its file name.
#[derive(Clone, Copy)]
struct Source<'a> {
    text: &'a str,
    file: &'a str,
}

impl Source<'_> {
    /// An error at `s`'s place in the text.
    fn err(&self, s: &Spanned<String>, kind: ErrorKind) -> PolicyError {
        PolicyError::at(self.file, self.text, s.span().start, kind)
    }

    /// `s` expanded to an absolute, clean path.
    fn path(&self, s: &Spanned<String>, ctx: &ExpandContext) -> Result<PathBuf, PolicyError> {
        expand::absolute_path(s.get_ref(), ctx).map_err(|k| self.err(s, k))
    }
}

/// Validate and expand a parsed policy, one section at a time.
pub fn resolve(
    raw: RawPolicy,
    text: &str,
    file: &str,
    ctx: &ExpandContext,
) -> Result<Policy, PolicyError> {
    let src = Source { text, file };
    let harness = resolve_harness(&raw.harness, src, ctx)?;
    let mut secret_env = resolve_secret_env(&raw.vault, src)?;
    // The harness's random secrets are secret for tools too.
    for name in &harness.random_env {
        if !secret_env.contains(name) {
            secret_env.push(name.clone());
        }
    }
    let (secret_env_patterns, keep_env) = resolve_env_patterns(&raw.vault, src)?;
    let vault = resolve_vault(&raw.vault, src, ctx)?;
    check_exceptions(&vault, &raw.vault, src)?;
    let tool_read_only = resolve_tool_read_only(&raw.filesystem, &vault, src, ctx)?;
    let mut policy = Policy {
        source: file.to_string(),
        harness,
        vault,
        secret_env,
        secret_env_patterns,
        keep_env,
        filesystem: Filesystem {
            tool_read_only,
            ..resolve_filesystem(&raw.filesystem, src, ctx)?
        },
        landlock: raw.landlock.mode,
        seccomp: resolve_seccomp(&raw.seccomp, src)?,
        seeds: resolve_seeds(&raw.seed, src, ctx)?,
        audit: resolve_audit(&raw.audit, src, ctx)?,
        audit_max_bytes: resolve_audit_max_bytes(&raw.audit, src)?,
        proxy: Default::default(),
        tools: resolve_tools(&raw.tools),
    };
    let harness_uid = match &policy.harness.user {
        UserSpec::Ids { uid, .. } => Some(*uid),
        UserSpec::Name(_) => None,
    };
    policy.proxy = crate::proxy::resolve(&raw.proxy, harness_uid, &|s, k| src.err(s, k), ctx)?;
    grant_proxy_state_dir(&mut policy);
    check_hidden(&policy, &raw, src, ctx)?;
    check_image_limits(&policy, &raw, src, ctx)?;
    Ok(policy)
}

/// With the proxy on, its state directory joins the base layer's
/// `read_write` list: a dynamically linked vault-proxy gets the tool layer
/// from the preload (`/etc/ld.so.preload`) before its own Landlock layer,
/// and must still write its state. File modes keep everyone else out (the
/// directory is 0700 and the proxy uid's), as they do for another user's home.
fn grant_proxy_state_dir(policy: &mut Policy) {
    let dir = &policy.proxy.state_dir;
    let fs = &mut policy.filesystem;
    if policy.proxy.mode == crate::proxy::ProxyMode::On
        && !fs.read_write.iter().any(|p| dir.starts_with(p))
    {
        fs.read_write.push(dir.clone());
    }
}

/// The hidden paths ([`crate::landlock_plan::hidden_paths`]) keep the
/// harness's own files reachable: none is `/`, and none holds or lies in a
/// vault entry, the audit file or the state directory (the base layer would
/// take them from the harness).
fn check_hidden(
    policy: &Policy,
    raw: &RawPolicy,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<(), PolicyError> {
    let overlap = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    for h in crate::landlock_plan::hidden_paths(policy) {
        let site = raw
            .filesystem
            .hidden
            .iter()
            .chain(raw.seed.iter().map(|s| &s.source))
            .find(|s| src.path(s, ctx).is_ok_and(|p| p == h.path));
        let refuse = |what: String| {
            let kind = ErrorKind::Invalid(format!(
                "{} {} {what}; the base layer hides it from the harness too. Expected a path apart from the harness's own files",
                h.why.noun(),
                h.path.display()
            ));
            match site {
                Some(s) => Err(src.err(s, kind)),
                None => Err(PolicyError::at(src.file, src.text, 0, kind)),
            }
        };
        if h.path == Path::new("/") {
            return refuse("is `/` (it would hide everything)".into());
        }
        if let Some(e) = policy.vault.iter().find(|e| overlap(&e.path, &h.path)) {
            return refuse(format!(
                "overlaps vault entry \"{}\" ({})",
                e.name,
                e.path.display()
            ));
        }
        if let AuditSink::File(f) = &policy.audit
            && f.starts_with(&h.path)
        {
            return refuse(format!("holds the audit file {}", f.display()));
        }
        if Path::new(STATE_DIR).starts_with(&h.path) {
            return refuse(format!("holds agent-init's state directory {STATE_DIR}"));
        }
    }
    Ok(())
}

/// `[harness]`: the user, its groups, its extra environment.
fn resolve_harness(
    raw: &RawHarness,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<Harness, PolicyError> {
    let err = |s: &Spanned<String>, kind: ErrorKind| src.err(s, kind);
    let user = parse_user(&raw.user, src.text, src.file)?;
    let mut groups = Vec::new();
    for g in &raw.groups {
        let v = g.get_ref();
        if v.is_empty() {
            return Err(err(g, ErrorKind::Empty("group")));
        }
        groups.push(match v.parse::<u32>() {
            Ok(gid) => GroupSpec::Gid(gid),
            Err(_) => {
                check_name(v).map_err(|k| err(g, k))?;
                GroupSpec::Name(v.clone())
            }
        });
    }
    let mut env = BTreeMap::new();
    for (k, v) in &raw.env {
        if !valid_env_name(k) {
            return Err(err(
                v,
                ErrorKind::Invalid(format!(
                    "environment variable name {k:?} is not valid; expected letters, digits and `_`"
                )),
            ));
        }
        env.insert(
            k.clone(),
            expand::expand_vars(v.get_ref(), ctx).map_err(|kind| err(v, kind))?,
        );
    }
    Ok(Harness {
        user,
        groups,
        env,
        unhooked: raw.unhooked,
        random_env: resolve_random_env(raw, src)?,
        launches: resolve_launches(raw, src, ctx)?,
        launcher_files: Vec::new(),
    })
}

/// `harness.launches`: absolute, clean paths of files, each once, at most
/// as many as the policy image holds.
fn resolve_launches(
    raw: &RawHarness,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<Vec<PathBuf>, PolicyError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for s in &raw.launches {
        let p = src.path(s, ctx)?;
        if p == Path::new("/") {
            return Err(src.err(
                s,
                ErrorKind::Invalid("a launcher is a program file, not `/`".into()),
            ));
        }
        if !out.contains(&p) {
            out.push(p);
        }
        if out.len() > policy_core::image::MAX_LAUNCHERS {
            return Err(src.err(
                s,
                ErrorKind::Invalid(format!(
                    "more than {} launchers; the preload holds at most that many",
                    policy_core::image::MAX_LAUNCHERS
                )),
            ));
        }
    }
    Ok(out)
}

/// `harness.random_env`: variable names, each once.
fn resolve_random_env(raw: &RawHarness, src: Source<'_>) -> Result<Vec<String>, PolicyError> {
    let mut out = Vec::new();
    for s in &raw.random_env {
        if !valid_env_name(s.get_ref()) {
            return Err(src.err(
                s,
                ErrorKind::Invalid(format!(
                    "random_env entry {:?} is not a variable name; expected letters, digits and `_`",
                    s.get_ref()
                )),
            ));
        }
        if !out.contains(s.get_ref()) {
            out.push(s.get_ref().clone());
        }
    }
    Ok(out)
}

/// `vault.secret_env`: variable names, each once.
fn resolve_secret_env(raw: &RawVault, src: Source<'_>) -> Result<Vec<String>, PolicyError> {
    let err = |s: &Spanned<String>, kind: ErrorKind| src.err(s, kind);
    let mut secret_env = Vec::new();
    for s in &raw.secret_env {
        if !valid_env_name(s.get_ref()) {
            return Err(err(
                s,
                ErrorKind::Invalid(format!(
                    "secret_env entry {:?} is not a variable name; expected letters, digits and `_`",
                    s.get_ref()
                )),
            ));
        }
        if !secret_env.contains(s.get_ref()) {
            secret_env.push(s.get_ref().clone());
        }
    }
    Ok(secret_env)
}

/// `vault.secret_env_patterns` (names with `*`) and `vault.keep_env`
/// (names), each once.
fn resolve_env_patterns(
    raw: &RawVault,
    src: Source<'_>,
) -> Result<(Vec<String>, Vec<String>), PolicyError> {
    let mut patterns = Vec::new();
    for s in &raw.secret_env_patterns {
        if !policy_core::image::is_env_pattern(s.get_ref().as_bytes()) {
            return Err(src.err(
                s,
                ErrorKind::Invalid(format!(
                    "secret_env_patterns entry {:?} is not a pattern; expected letters, digits, `_` and `*` (any run of characters)",
                    s.get_ref()
                )),
            ));
        }
        if !patterns.contains(s.get_ref()) {
            patterns.push(s.get_ref().clone());
        }
    }
    let mut keep = Vec::new();
    for s in &raw.keep_env {
        if !valid_env_name(s.get_ref()) {
            return Err(src.err(
                s,
                ErrorKind::Invalid(format!(
                    "keep_env entry {:?} is not a variable name; expected letters, digits and `_`",
                    s.get_ref()
                )),
            ));
        }
        if !keep.contains(s.get_ref()) {
            keep.push(s.get_ref().clone());
        }
    }
    Ok((patterns, keep))
}

/// `[tools]`: nothing to check (booleans).
fn resolve_tools(raw: &RawTools) -> Tools {
    Tools {
        keep_terminal: raw.keep_terminal,
    }
}

/// `[[vault.entry]]`: names, paths and tool exceptions; two entries for
/// one path are merged.
fn resolve_vault(
    raw: &RawVault,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<Vec<VaultEntry>, PolicyError> {
    let err = |s: &Spanned<String>, kind: ErrorKind| src.err(s, kind);
    let path = |s: &Spanned<String>| src.path(s, ctx);
    let mut vault: Vec<VaultEntry> = Vec::new();
    for e in &raw.entry {
        let name = e.name.get_ref();
        if name.is_empty() {
            return Err(err(&e.name, ErrorKind::Empty("vault entry name")));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(err(
                &e.name,
                ErrorKind::Invalid(format!(
                    "vault entry name {name:?}: expected letters, digits, `-`, `_` and `.`"
                )),
            ));
        }
        if vault.iter().any(|v| &v.name == name) {
            return Err(err(
                &e.name,
                ErrorKind::Invalid(format!("vault entry name {name:?} is used twice")),
            ));
        }
        let (p, kind) = match (&e.dir, &e.file) {
            (Some(d), None) => (path(d)?, VaultKind::Dir),
            (None, Some(f)) => (path(f)?, VaultKind::File),
            _ => {
                return Err(err(
                    &e.name,
                    ErrorKind::Invalid(format!(
                        "vault entry {name:?} needs exactly one of `dir = \"...\"` or `file = \"...\"`"
                    )),
                ));
            }
        };
        if p == Path::new("/") {
            let s = e.dir.as_ref().or(e.file.as_ref()).expect("one is set");
            return Err(err(
                s,
                ErrorKind::Invalid("a vault entry cannot be `/`".into()),
            ));
        }
        if kind == VaultKind::File && !e.tool_exceptions.is_empty() {
            return Err(err(
                &e.tool_exceptions[0],
                ErrorKind::Invalid("tool_exceptions only go with a `dir` entry".into()),
            ));
        }
        let mut tool_exceptions = Vec::new();
        for x in &e.tool_exceptions {
            let rel = expand::relative_inside(x.get_ref()).map_err(|k| err(x, k))?;
            tool_exceptions.push(p.join(rel));
        }
        // Two rules for one path (say $CLAUDE_CONFIG_DIR set to ~/.claude):
        // keep the first, merge exceptions.
        if let Some(prev) = vault.iter_mut().find(|v| v.path == p) {
            prev.tool_exceptions.extend(tool_exceptions);
            continue;
        }
        vault.push(VaultEntry {
            name: name.clone(),
            path: p,
            kind,
            tool_exceptions,
        });
    }
    Ok(vault)
}

/// Tool exceptions and vault entries must not nest across entries.
fn check_exceptions(
    vault: &[VaultEntry],
    raw: &RawVault,
    src: Source<'_>,
) -> Result<(), PolicyError> {
    let err = |s: &Spanned<String>, kind: ErrorKind| src.err(s, kind);
    // The tool layer grants a tool exception the base rights: an entry
    // inside another entry's exception would be granted to tools with it,
    // and an exception inside another entry would be granted although that
    // entry denies it.
    for o in vault {
        for x in &o.tool_exceptions {
            if let Some(e) = vault
                .iter()
                .find(|e| e.path != o.path && x.starts_with(&e.path))
            {
                let Some(raw_o) = raw.entry.iter().find(|r| r.name.get_ref() == &o.name) else {
                    continue;
                };
                return Err(err(
                    &raw_o.name,
                    ErrorKind::Invalid(format!(
                        "tool exception {} of vault entry {:?} lies inside vault entry {:?} ({}); a tool exception must stay inside its own entry only",
                        x.display(),
                        o.name,
                        e.name,
                        e.path.display()
                    )),
                ));
            }
        }
    }
    for e in vault {
        let Some(raw_e) = raw.entry.iter().find(|r| r.name.get_ref() == &e.name) else {
            continue;
        };
        if let Some((owner, x)) = vault
            .iter()
            .flat_map(|o| o.tool_exceptions.iter().map(move |x| (o, x)))
            .find(|(_, x)| e.path.starts_with(x))
        {
            return Err(err(
                &raw_e.name,
                ErrorKind::Invalid(format!(
                    "vault entry {:?} ({}) lies inside tool exception {} of {:?}; a tool exception must not hold a vault entry",
                    e.name,
                    e.path.display(),
                    x.display(),
                    owner.name
                )),
            ));
        }
    }
    Ok(())
}

/// `[filesystem]`: the base layer's lists, each path once.
fn resolve_filesystem(
    raw: &RawFilesystem,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<Filesystem, PolicyError> {
    let path = |s: &Spanned<String>| src.path(s, ctx);
    let list = |v: &[Spanned<String>]| -> Result<Vec<PathBuf>, PolicyError> {
        let mut out = Vec::new();
        for s in v {
            let p = path(s)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    };
    let filesystem = Filesystem {
        read_only: list(&raw.read_only)?,
        read_write: list(&raw.read_write)?,
        executable: list(&raw.executable)?,
        hidden: list(&raw.hidden)?,
        tool_read_only: Vec::new(),
    };
    Ok(filesystem)
}

/// `filesystem.tool_read_only`: expanded paths, each once, none `/` and
/// none inside or around a vault entry (the tool layer would have to both
/// hide and grant it).
fn resolve_tool_read_only(
    raw: &RawFilesystem,
    vault: &[VaultEntry],
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<Vec<PathBuf>, PolicyError> {
    let mut out = Vec::new();
    for s in &raw.tool_read_only {
        let p = src.path(s, ctx)?;
        if p == Path::new("/") {
            return Err(src.err(
                s,
                ErrorKind::Invalid(
                    "tool_read_only cannot be `/`; name the harness's own directories".into(),
                ),
            ));
        }
        if let Some(e) = vault
            .iter()
            .find(|e| p.starts_with(&e.path) || e.path.starts_with(&p))
        {
            return Err(src.err(
                s,
                ErrorKind::Invalid(format!(
                    "tool_read_only {} overlaps vault entry {:?} ({}): tools may not read a vault entry at all",
                    p.display(),
                    e.name,
                    e.path.display()
                )),
            ));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// `[seccomp]`: the mode, and extra syscalls each known to [`syscalls`].
fn resolve_seccomp(raw: &RawSeccomp, src: Source<'_>) -> Result<Seccomp, PolicyError> {
    let err = |s: &Spanned<String>, kind: ErrorKind| src.err(s, kind);
    let mut extra_deny = Vec::new();
    for s in &raw.deny {
        let n = s.get_ref();
        if syscalls::lookup(n).is_none() {
            return Err(err(
                s,
                ErrorKind::Invalid(format!(
                    "unknown syscall {n:?}; expected one of: {}",
                    syscalls::names().collect::<Vec<_>>().join(", ")
                )),
            ));
        }
        if !extra_deny.contains(n) {
            extra_deny.push(n.clone());
        }
    }
    Ok(Seccomp {
        mode: raw.mode,
        extra_deny,
    })
}

/// `[[seed]]`: separate source and target trees, and a pattern only for
/// `newest-backup`.
fn resolve_seeds(
    raw: &[RawSeed],
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<Vec<Seed>, PolicyError> {
    let err = |s: &Spanned<String>, kind: ErrorKind| src.err(s, kind);
    let path = |s: &Spanned<String>| src.path(s, ctx);
    let mut seeds = Vec::new();
    for s in raw {
        let source = path(&s.source)?;
        let target = path(&s.target)?;
        if source.starts_with(&target) || target.starts_with(&source) {
            return Err(err(
                &s.target,
                ErrorKind::Invalid(format!(
                    "seed source {} and target {} overlap; expected two separate trees",
                    source.display(),
                    target.display()
                )),
            ));
        }
        let prefix = match (s.mode, &s.pattern) {
            (SeedMode::NewestBackup, Some(p)) => {
                let v = p.get_ref();
                let Some(prefix) = v.strip_suffix('*') else {
                    return Err(err(
                        p,
                        ErrorKind::Invalid(format!(
                            "pattern {v:?}: expected a file name prefix followed by `*`, like \".claude.json.backup.*\""
                        )),
                    ));
                };
                if prefix.is_empty() || prefix.contains(['/', '*', '?', '[']) {
                    return Err(err(
                        p,
                        ErrorKind::Invalid(format!(
                            "pattern {v:?}: expected a plain file name prefix followed by one `*`"
                        )),
                    ));
                }
                Some(prefix.to_string())
            }
            (SeedMode::NewestBackup, None) => {
                return Err(err(
                    &s.source,
                    ErrorKind::Invalid(
                        "mode \"newest-backup\" needs `pattern = \"PREFIX*\"`".into(),
                    ),
                ));
            }
            (SeedMode::CopyMissing, Some(p)) => {
                return Err(err(
                    p,
                    ErrorKind::Invalid("`pattern` only goes with mode \"newest-backup\"".into()),
                ));
            }
            (SeedMode::CopyMissing, None) => None,
        };
        seeds.push(Seed {
            source,
            target,
            mode: s.mode,
            prefix,
        });
    }
    Ok(seeds)
}

/// `[audit] sink`: `log`, `off`, `stderr` or an absolute file path.
fn resolve_audit(
    raw: &RawAudit,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<AuditSink, PolicyError> {
    let path = |s: &Spanned<String>| src.path(s, ctx);
    let sink = raw.sink.get_ref();
    let audit = match sink.as_str() {
        "log" => AuditSink::Log,
        "off" => AuditSink::Off,
        "stderr" => AuditSink::Stderr,
        _ => AuditSink::File(path(&raw.sink).map_err(|mut e| {
            if let ErrorKind::RelativePath(p) = &e.kind {
                e.kind = ErrorKind::Invalid(format!(
                    "audit sink {p:?}: expected \"log\", \"off\", \"stderr\" or an absolute file path"
                ));
            }
            e
        })?),
    };
    Ok(audit)
}

/// `[audit] max_bytes`: at least [`MIN_AUDIT_MAX_BYTES`]; default
/// [`DEFAULT_AUDIT_MAX_BYTES`].
fn resolve_audit_max_bytes(raw: &RawAudit, src: Source<'_>) -> Result<u64, PolicyError> {
    match &raw.max_bytes {
        None => Ok(DEFAULT_AUDIT_MAX_BYTES),
        Some(m) if *m.get_ref() >= MIN_AUDIT_MAX_BYTES => Ok(*m.get_ref()),
        Some(m) => Err(PolicyError::at(
            src.file,
            src.text,
            m.span().start,
            ErrorKind::Invalid(format!(
                "audit max_bytes {}: must be at least {MIN_AUDIT_MAX_BYTES}",
                m.get_ref()
            )),
        )),
    }
}

/// The raw strings that name paths, each with its expansion: where a limit
/// error points (the resolved policy keeps no places in the text).
fn path_sites<'r>(raw: &'r RawPolicy, ctx: &ExpandContext) -> Vec<(&'r Spanned<String>, PathBuf)> {
    let mut sites = Vec::new();
    let mut add = |s: &'r Spanned<String>| {
        if let Ok(p) = expand::absolute_path(s.get_ref(), ctx) {
            sites.push((s, p));
        }
    };
    for e in &raw.vault.entry {
        e.dir.iter().chain(e.file.iter()).for_each(&mut add);
    }
    let fs = &raw.filesystem;
    fs.read_only
        .iter()
        .chain(&fs.read_write)
        .chain(&fs.executable)
        .chain(&fs.hidden)
        .for_each(&mut add);
    add(&raw.audit.sink);
    for e in &raw.vault.entry {
        let Some(Ok(base)) = e
            .dir
            .as_ref()
            .map(|d| expand::absolute_path(d.get_ref(), ctx))
        else {
            continue;
        };
        for x in &e.tool_exceptions {
            if let Ok(rel) = expand::relative_inside(x.get_ref()) {
                sites.push((x, base.join(rel)));
            }
        }
    }
    sites
}

/// The preload holds the policy in fixed tables (it never allocates): a
/// policy that does not fit them is refused here, not cut short there. The
/// error points at the first item past the limit.
fn check_image_limits(
    p: &Policy,
    raw: &RawPolicy,
    src: Source<'_>,
    ctx: &ExpandContext,
) -> Result<(), PolicyError> {
    use policy_core::image::{
        MAX_BASE_RULES, MAX_EXCEPTIONS, MAX_IMAGE, MAX_KEEP_ENV, MAX_SECRET_ENV,
        MAX_SECRET_PATTERNS, MAX_TOOL_READ_ONLY, MAX_VAULT, MAX_VAULT_DEPTH,
    };
    let at = |s: Option<&Spanned<String>>, kind: ErrorKind| match s {
        Some(s) => src.err(s, kind),
        None => PolicyError::at(src.file, src.text, 0, kind),
    };
    let too_many = |what: &str, n: usize, max: usize| {
        ErrorKind::Invalid(format!("{n} {what}; the preload holds at most {max}"))
    };
    let entry_named = |name: &str| raw.vault.entry.iter().find(|r| r.name.get_ref() == name);
    let sites = path_sites(raw, ctx);
    let site_of = |path: &Path| sites.iter().find(|(_, p)| p == path).map(|(s, _)| *s);
    // One vault slot stays free for agent-init's probe entry.
    if p.vault.len() >= MAX_VAULT {
        let first_past = entry_named(&p.vault[MAX_VAULT - 1].name).map(|r| &r.name);
        return Err(at(
            first_past,
            too_many("vault entries", p.vault.len(), MAX_VAULT - 1),
        ));
    }
    if let Some(e) = p.vault.iter().find(|e| {
        policy_core::image::depth(e.path.as_os_str().as_encoded_bytes()) > MAX_VAULT_DEPTH
    }) {
        let path = entry_named(&e.name).and_then(|r| r.dir.as_ref().or(r.file.as_ref()));
        return Err(at(
            path,
            ErrorKind::Invalid(format!(
                "vault entry {:?} is more than {MAX_VAULT_DEPTH} directories deep",
                e.name
            )),
        ));
    }
    let exceptions: usize = p.vault.iter().map(|e| e.tool_exceptions.len()).sum();
    if exceptions > MAX_EXCEPTIONS {
        let first_past = raw
            .vault
            .entry
            .iter()
            .flat_map(|e| &e.tool_exceptions)
            .nth(MAX_EXCEPTIONS);
        return Err(at(
            first_past,
            too_many("tool exceptions", exceptions, MAX_EXCEPTIONS),
        ));
    }
    if p.secret_env.len() > MAX_SECRET_ENV {
        let name = &p.secret_env[MAX_SECRET_ENV];
        let first_past = raw.vault.secret_env.iter().find(|s| s.get_ref() == name);
        return Err(at(
            first_past,
            too_many("secret variables", p.secret_env.len(), MAX_SECRET_ENV),
        ));
    }
    for (list, raw_list, max, what) in [
        (
            &p.secret_env_patterns,
            &raw.vault.secret_env_patterns,
            MAX_SECRET_PATTERNS,
            "secret variable patterns",
        ),
        (
            &p.keep_env,
            &raw.vault.keep_env,
            MAX_KEEP_ENV,
            "kept variables",
        ),
    ] {
        if list.len() > max {
            let first_past = raw_list.iter().find(|s| s.get_ref() == &list[max]);
            return Err(at(first_past, too_many(what, list.len(), max)));
        }
    }
    if p.filesystem.tool_read_only.len() > MAX_TOOL_READ_ONLY {
        let first_past = raw.filesystem.tool_read_only.get(MAX_TOOL_READ_ONLY);
        return Err(at(
            first_past,
            too_many(
                "tool read-only paths",
                p.filesystem.tool_read_only.len(),
                MAX_TOOL_READ_ONLY,
            ),
        ));
    }
    // The probe entry adds one base rule.
    let rules = crate::landlock_plan::base_layer(p).rules;
    if rules.len() + 1 > MAX_BASE_RULES {
        // Rules are in path order: point at the first path past the limit.
        let first_past = site_of(&rules[MAX_BASE_RULES - 1].path);
        return Err(at(
            first_past,
            too_many(
                "distinct filesystem and vault paths",
                rules.len() + 1,
                MAX_BASE_RULES,
            ),
        ));
    }
    let mut with_probe = p.clone();
    with_probe.add_probe(PathBuf::from(STATE_DIR).join(policy_core::layout::PROBE_DIR.name));
    // Whatever this crate accepts, the preload must read back.
    let image = with_probe.to_image();
    if let Err(e) = policy_core::View::decode(&image) {
        let too_long = sites
            .iter()
            .find(|(_, p)| p.as_os_str().len() >= policy_core::pathbuf::PATH_MAX)
            .map(|(s, _)| *s);
        return Err(at(
            too_long,
            ErrorKind::Invalid(format!("the preload could not read this policy ({e})")),
        ));
    }
    let size = image.len() + 2 * 4096;
    if size > MAX_IMAGE {
        return Err(at(
            None,
            ErrorKind::Invalid(format!(
                "the policy's paths add up to about {size} bytes; the preload reads at most {MAX_IMAGE}"
            )),
        ));
    }
    Ok(())
}

fn parse_user(s: &Spanned<String>, text: &str, file: &str) -> Result<UserSpec, PolicyError> {
    let err = |kind| PolicyError::at(file, text, s.span().start, kind);
    let v = s.get_ref();
    if v.is_empty() {
        return Err(err(ErrorKind::Empty("harness.user")));
    }
    if let Some((u, g)) = v.split_once(':') {
        match (u.parse::<u32>(), g.parse::<u32>()) {
            (Ok(uid), Ok(gid)) => Ok(UserSpec::Ids { uid, gid }),
            _ => Err(err(ErrorKind::Invalid(format!(
                "harness.user {v:?}: expected a user name or `uid:gid` with numbers, like \"1000:1000\""
            )))),
        }
    } else {
        check_name(v).map_err(err)?;
        Ok(UserSpec::Name(v.clone()))
    }
}

fn check_name(v: &str) -> Result<(), ErrorKind> {
    let ok = v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.$".contains(c))
        && !v.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::Invalid(format!(
            "{v:?} is not a valid user or group name; expected letters, digits, `-`, `_`, `.`"
        )))
    }
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Policy {
    /// The built-in default policy, expanded with `ctx`.
    pub fn builtin(ctx: &ExpandContext) -> Result<Policy, PolicyError> {
        load_str(DEFAULT_POLICY_TOML, BUILTIN_NAME, ctx)
    }
}
