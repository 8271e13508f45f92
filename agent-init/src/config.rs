//! Finding and loading the policy, and resolving the harness user.

use nix::unistd::{Gid, Group, Uid, User};
use policy::{BUILTIN_NAME, GroupSpec, UserSpec};
use policy::{DEFAULT_POLICY_PATH, DEFAULT_POLICY_TOML, ExpandContext, Policy, PolicyError};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the policy came from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Builtin,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Builtin => write!(f, "{BUILTIN_NAME} ({DEFAULT_POLICY_PATH} does not exist)"),
        }
    }
}

/// `--policy FILE`, else [`DEFAULT_POLICY_PATH`] when it exists, else the
/// built-in policy.
pub fn choose(explicit: Option<&Path>) -> Source {
    match explicit {
        Some(p) => Source::File(p.to_path_buf()),
        None if Path::new(DEFAULT_POLICY_PATH).exists() => {
            Source::File(PathBuf::from(DEFAULT_POLICY_PATH))
        }
        None => Source::Builtin,
    }
}

/// A resolved user: numbers, and the home and name when /etc/passwd knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
    pub home: Option<PathBuf>,
    /// Supplementary groups (from the policy).
    pub groups: Vec<u32>,
}

/// Errors resolving users and groups.
#[derive(Debug, Clone)]
pub enum UserError {
    /// `getpwnam` found no such user.
    UnknownUser(String),
    /// A bare uid (`--user 1000`) with no `/etc/passwd` entry: no group to take.
    UnknownUid(u32),
    /// `getgrnam` found no such group.
    UnknownGroup(String),
    /// `--user` is neither a name nor `uid:gid`.
    BadSpec(String),
    /// Reading /etc/passwd or /etc/group failed.
    Lookup(String, nix::Error),
    /// The harness would run as root (uid 0) under a root agent-init.
    RootHarness,
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::UnknownUser(n) => write!(
                f,
                "no user '{n}' in /etc/passwd; use a name from it or uid:gid (numbers, like \"1000:1000\")"
            ),
            UserError::UnknownUid(uid) => write!(
                f,
                "uid {uid} has no entry in /etc/passwd, so it has no group to take; give one: --user {uid}:GID (like \"{uid}:{uid}\")"
            ),
            UserError::UnknownGroup(n) => write!(
                f,
                "unknown group {n:?}: no such entry in /etc/group; use a group that exists, or its number"
            ),
            UserError::BadSpec(s) => write!(
                f,
                "--user {s:?}: expected a user name or `uid:gid` with numbers, like \"1000:1000\""
            ),
            UserError::Lookup(what, e) => write!(f, "looking up {what}: {e}"),
            UserError::RootHarness => write!(
                f,
                "the harness user is root (uid 0): its tools would own /run/agent-vault (harness.pid, policy.toml) and could signal agent-init, even without capabilities; use an unprivileged user, like \"1000:1000\""
            ),
        }
    }
}

impl std::error::Error for UserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UserError::Lookup(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Parse a `--user` value.
pub fn parse_user_flag(s: &str) -> Result<UserSpec, UserError> {
    if let Some((u, g)) = s.split_once(':') {
        match (u.parse(), g.parse()) {
            (Ok(uid), Ok(gid)) => Ok(UserSpec::Ids { uid, gid }),
            _ => Err(UserError::BadSpec(s.to_string())),
        }
    } else if s.is_empty() || s.starts_with('-') {
        Err(UserError::BadSpec(s.to_string()))
    } else {
        Ok(UserSpec::Name(s.to_string()))
    }
}

/// Resolve a user spec against /etc/passwd.
pub fn resolve_user(spec: &UserSpec) -> Result<Identity, UserError> {
    match spec {
        UserSpec::Name(n) => match User::from_name(n) {
            Ok(Some(u)) => Ok(Identity {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                name: Some(u.name),
                home: Some(u.dir),
                groups: Vec::new(),
            }),
            // A bare number is a uid (as `docker run --user 1000`), taken with
            // its passwd entry's group and home.
            Ok(None) => match n.parse::<u32>() {
                Ok(uid) => match User::from_uid(Uid::from_raw(uid)) {
                    Ok(Some(u)) => Ok(Identity {
                        uid,
                        gid: u.gid.as_raw(),
                        name: Some(u.name),
                        home: Some(u.dir),
                        groups: Vec::new(),
                    }),
                    Ok(None) => Err(UserError::UnknownUid(uid)),
                    Err(e) => Err(UserError::Lookup(format!("uid {uid}"), e)),
                },
                Err(_) => Err(UserError::UnknownUser(n.clone())),
            },
            Err(e) => Err(UserError::Lookup(format!("user {n:?}"), e)),
        },
        UserSpec::Ids { uid, gid } => {
            let u = User::from_uid(Uid::from_raw(*uid)).ok().flatten();
            Ok(Identity {
                uid: *uid,
                gid: *gid,
                name: u.as_ref().map(|u| u.name.clone()),
                home: u.map(|u| u.dir),
                groups: Vec::new(),
            })
        }
    }
}

/// Resolve the policy's supplementary groups.
pub fn resolve_groups(groups: &[GroupSpec]) -> Result<Vec<u32>, UserError> {
    let mut out = Vec::new();
    for g in groups {
        let gid = match g {
            GroupSpec::Gid(g) => *g,
            GroupSpec::Name(n) => match Group::from_name(n) {
                Ok(Some(gr)) => gr.gid.as_raw(),
                Ok(None) => return Err(UserError::UnknownGroup(n.clone())),
                Err(e) => return Err(UserError::Lookup(format!("group {n:?}"), e)),
            },
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

/// The identity of this process (host mode: the harness keeps it).
pub fn current_identity() -> Identity {
    let uid = Uid::current();
    let u = User::from_uid(uid).ok().flatten();
    Identity {
        uid: uid.as_raw(),
        gid: Gid::current().as_raw(),
        name: u.as_ref().map(|u| u.name.clone()),
        home: u
            .map(|u| u.dir)
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from)),
        groups: nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default(),
    }
}

/// Why loading failed.
#[derive(Debug)]
pub enum LoadError {
    /// The policy is invalid (the error names file, line and column).
    Policy(PolicyError),
    /// The harness user or a group cannot be resolved.
    User(UserError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Policy(e) => write!(f, "{e}"),
            LoadError::User(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Policy(e) => Some(e),
            LoadError::User(e) => Some(e),
        }
    }
}

/// A loaded policy with its harness identity.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policy: Policy,
    pub source: Source,
    /// The harness user as the policy (or `--user`) names it.
    pub spec: UserSpec,
    /// Resolved identity; `Err` when the user is unknown here (`check` and
    /// `explain` report it, `run` refuses).
    pub identity: Result<Identity, UserError>,
}

/// Load the policy: parse, find the harness user's home, expand with that
/// home and the process environment, validate.
///
/// `as_current_user`: agent-init is not root, so the harness keeps this
/// process's user whatever the policy says.
pub fn load(
    explicit: Option<&Path>,
    user_flag: Option<&str>,
    as_current_user: bool,
) -> Result<Loaded, LoadError> {
    let source = choose(explicit);
    let (text, file) = match &source {
        Source::File(p) => {
            let file = p.display().to_string();
            match std::fs::read_to_string(p) {
                Ok(t) => (t, file),
                Err(e) => {
                    return Err(LoadError::Policy(PolicyError {
                        file,
                        line: 0,
                        column: 0,
                        kind: policy::error::ErrorKind::Read(e.to_string()),
                    }));
                }
            }
        }
        Source::Builtin => (DEFAULT_POLICY_TOML.to_string(), BUILTIN_NAME.to_string()),
    };
    let raw = policy::load::parse_raw(&text, &file).map_err(LoadError::Policy)?;
    let mut spec = policy::load::harness_user(&raw, &text, &file).map_err(LoadError::Policy)?;
    if let Some(u) = user_flag {
        spec = parse_user_flag(u).map_err(LoadError::User)?;
    }
    let identity = if as_current_user {
        Ok(current_identity())
    } else {
        resolve_user(&spec)
    };
    let home = identity.as_ref().ok().and_then(|i| i.home.clone());
    let ctx = ExpandContext::from_process_env(home);
    // An unknown user has no home, so a `~` in the policy cannot expand:
    // the user is the cause to name, not the policy line.
    let policy = policy::load::resolve(raw, &text, &file, &ctx).map_err(|e| match &identity {
        Err(u @ UserError::UnknownUser(_)) if e.kind == policy::error::ErrorKind::NoHome => {
            LoadError::User(u.clone())
        }
        _ => LoadError::Policy(e),
    })?;
    let identity = match identity {
        Ok(mut id) => {
            if !as_current_user {
                id.groups = resolve_groups(&policy.harness.groups).map_err(LoadError::User)?;
            }
            Ok(id)
        }
        Err(e) => Err(e),
    };
    Ok(Loaded {
        policy,
        source,
        spec,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_flag_forms() {
        assert_eq!(
            parse_user_flag("1000:1001").unwrap(),
            UserSpec::Ids {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            parse_user_flag("nobody").unwrap(),
            UserSpec::Name("nobody".into())
        );
        assert!(parse_user_flag("1000:x").is_err());
        assert!(parse_user_flag("").is_err());
    }

    #[test]
    fn unknown_user_is_clear() {
        let e = resolve_user(&UserSpec::Name("no-such-user-av".into())).unwrap_err();
        assert!(e.to_string().starts_with(
            "no user 'no-such-user-av' in /etc/passwd; use a name from it or uid:gid"
        ));
    }

    #[test]
    fn a_bare_uid_takes_its_passwd_group_and_home() {
        // uid 0 is in every /etc/passwd; a name lookup of "0" finds nothing.
        let id = resolve_user(&UserSpec::Name("0".into())).unwrap();
        assert_eq!((id.uid, id.gid), (0, 0));
        assert_eq!(id.home.as_deref(), Some(Path::new("/root")));
    }

    #[test]
    fn a_bare_uid_without_a_passwd_entry_asks_for_its_group() {
        let e = resolve_user(&UserSpec::Name("3999999".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "uid 3999999 has no entry in /etc/passwd, so it has no group to take; give one: --user 3999999:GID (like \"3999999:3999999\")"
        );
    }

    #[test]
    fn root_resolves_with_home() {
        let id = resolve_user(&UserSpec::Name("root".into())).unwrap();
        assert_eq!((id.uid, id.gid), (0, 0));
        assert_eq!(id.home.as_deref(), Some(Path::new("/root")));
    }
}
