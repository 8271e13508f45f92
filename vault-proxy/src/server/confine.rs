//! Self-confinement at start, after the config is read, the trust anchors
//! are loaded and the listener is bound, before any request is served: the
//! proxy holds the real credential, so a bug in it must reach as little as
//! possible.
//!
//! Steps, one function each:
//! 1. [`refuse_root`]: uid 0 is refused unless `--allow-root`.
//! 2. [`not_dumpable`]: `PR_SET_DUMPABLE 0` (no core, no ptrace or
//!    `/proc/<pid>/mem` by the same uid).
//! 3. [`no_new_privs`]: `PR_SET_NO_NEW_PRIVS` (needed for Landlock too).
//! 4. [`landlock_layer`]: file access only to `state_dir` (read-write) and what
//!    name resolution reads (`/etc/resolv.conf`, `/etc/hosts`,
//!    `/etc/nsswitch.conf`, and the NSS libraries); the trust store was read
//!    before, so it is not in the layer. Network: `ConnectTcp` to the
//!    upstream ports (and 53 when a host name is resolved); no `BindTcp` at
//!    all (the listener is already bound). Signal and abstract-socket scopes.
//!    Best effort: a kernel without network rules (ABI < 4) or scopes
//!    (ABI < 6) gets what it has, and the start line says which.
//!
//! Called on the process's only thread: threads started later (tokio's
//! blocking pool for name resolution) inherit the layer.

use crate::config::{ValidCredential, Validated};
use crate::sys;
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The ABI whose rights the layer asks for (fs to ABI 5, net ABI 4, scopes ABI 6).
const TARGET_ABI: ABI = ABI::V6;

/// Files name resolution reads.
const RESOLVER_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ld.so.cache",
];

/// Where glibc's NSS modules live (dlopen'd by getaddrinfo).
const LIBRARY_DIRS: &[&str] = &["/lib", "/lib64", "/usr/lib", "/usr/lib64"];

/// A confinement step failed.
#[derive(Debug)]
pub enum ConfineError {
    Root,
    Prctl {
        call: &'static str,
        err: io::Error,
    },
    Landlock {
        call: &'static str,
        path: Option<PathBuf>,
        err: String,
    },
}

impl fmt::Display for ConfineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfineError::Root => write!(
                f,
                "refusing to run as root: the proxy holds the real credential and must run under its own uid. Fix: start it as a dedicated non-root uid (agent-init does), or pass --allow-root"
            ),
            ConfineError::Prctl { call, err } => write!(f, "prctl({call}): {err}"),
            ConfineError::Landlock { call, path, err } => match path {
                Some(p) => write!(f, "landlock {call} {}: {err}", p.display()),
                None => write!(f, "landlock {call}: {err}"),
            },
        }
    }
}

impl std::error::Error for ConfineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfineError::Prctl { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// Step 1.
pub fn refuse_root(allow_root: bool) -> Result<(), ConfineError> {
    if sys::uid() == 0 && !allow_root {
        return Err(ConfineError::Root);
    }
    Ok(())
}

/// Step 2.
pub fn not_dumpable() -> Result<(), ConfineError> {
    sys::set_not_dumpable().map_err(|err| ConfineError::Prctl {
        call: "PR_SET_DUMPABLE",
        err,
    })
}

/// Step 3.
pub fn no_new_privs() -> Result<(), ConfineError> {
    sys::set_no_new_privs().map_err(|err| ConfineError::Prctl {
        call: "PR_SET_NO_NEW_PRIVS",
        err,
    })
}

fn needs_dns(cfg: &Validated) -> bool {
    let is_name = |h: &str| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_err()
    };
    cfg.routes.iter().any(|r| {
        is_name(&r.upstream.host)
            || matches!(&r.credential, ValidCredential::Oauth(o) if is_name(&o.token_url.host))
    })
}

fn lerr(
    call: &'static str,
    path: Option<&Path>,
) -> impl FnOnce(landlock::RulesetError) -> ConfineError {
    let path = path.map(Path::to_path_buf);
    move |e| ConfineError::Landlock {
        call,
        path,
        err: e.to_string(),
    }
}

/// Step 4. Returns the summary for the start line.
pub fn landlock_layer(cfg: &Validated) -> Result<String, ConfineError> {
    let abi = sys::landlock_abi();
    if abi == 0 {
        return Ok("landlock: unavailable on this kernel (no layer)".to_string());
    }
    let dns = needs_dns(cfg);
    let mut ports = cfg.upstream_ports();
    if dns {
        ports.push(53);
        ports.sort_unstable();
        ports.dedup();
    }
    let read = AccessFs::from_read(TARGET_ABI);
    let read_file: BitFlags<AccessFs> = AccessFs::ReadFile.into();
    let mut rs = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .map_err(lerr("handle_access(fs)", None))?
        .handle_access(AccessNet::from_all(TARGET_ABI))
        .map_err(lerr("handle_access(net)", None))?
        .scope(Scope::from_all(TARGET_ABI))
        .map_err(lerr("scope", None))?
        .create()
        .map_err(lerr("create", None))?;
    let state_fd = PathFd::new(&cfg.state_dir).map_err(|e| ConfineError::Landlock {
        call: "open",
        path: Some(cfg.state_dir.clone()),
        err: e.to_string(),
    })?;
    rs = rs
        .add_rule(PathBeneath::new(state_fd, AccessFs::from_all(TARGET_ABI)))
        .map_err(lerr("add_rule", Some(&cfg.state_dir)))?;
    if dns {
        for f in RESOLVER_FILES {
            if let Ok(fd) = PathFd::new(f) {
                rs = rs
                    .add_rule(PathBeneath::new(fd, read_file))
                    .map_err(lerr("add_rule", Some(Path::new(f))))?;
            }
        }
        for d in LIBRARY_DIRS {
            if let Ok(fd) = PathFd::new(d) {
                rs = rs
                    .add_rule(PathBeneath::new(fd, read | AccessFs::Execute))
                    .map_err(lerr("add_rule", Some(Path::new(d))))?;
            }
        }
    }
    for p in &ports {
        rs = rs
            .add_rule(NetPort::new(*p, AccessNet::ConnectTcp))
            .map_err(lerr("add_rule(net)", None))?;
    }
    let status = rs.restrict_self().map_err(lerr("restrict_self", None))?;
    let ports_s: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut missing = Vec::new();
    if abi < 4 {
        missing.push("network rules (ABI 4): outgoing ports not restricted");
    }
    if abi < 6 {
        missing.push("signal/abstract-socket scopes (ABI 6)");
    }
    let state = match status.ruleset {
        RulesetStatus::FullyEnforced => "enforced",
        RulesetStatus::PartiallyEnforced => "partly enforced",
        RulesetStatus::NotEnforced => "NOT enforced",
    };
    let mut s = format!(
        "landlock ABI {abi} {state}: rw {}, connect tcp {{{}}}, no bind",
        cfg.state_dir.display(),
        ports_s.join(",")
    );
    if !missing.is_empty() {
        s.push_str("; kernel lacks ");
        s.push_str(&missing.join(", "));
    }
    Ok(s)
}
