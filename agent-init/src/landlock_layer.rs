//! Step 5, the Landlock base layer ([`policy::landlock_plan::base_layer`]).
//!
//! The ruleset is built while agent-init's child is still root ([`prepare`]:
//! every rule path is opened `O_PATH` then, so a path the harness user cannot
//! reach still gets its rule) and enforced after the privilege drop
//! ([`Prepared::enforce`]). Rules attach to inodes, so the order is safe.
//!
//! - The plan's hidden paths (seed sources, `[filesystem] hidden`) get no
//!   rule: the rules are applied through the walk
//!   ([`policy::landlock_plan::BaseLayer::walk`]), which lists each
//!   directory on the way to a hidden path here, as root, and grants its
//!   other entries one by one. An entry created later in such a directory is
//!   out of reach of the harness (as of its tools).
//! - A path that does not exist is skipped and named in the log line, and so
//!   is a rule path that resolves to a hidden path (a symlink in a policy
//!   list). A symlink to something *beneath* a hidden directory is not
//!   caught: name real paths in the policy's lists.
//! - A rule on a non-directory keeps only the file rights (`FILE_ONLY`).
//! - Terminals stay usable: the plan's terminal rules
//!   ([`policy::landlock_plan::TERMINAL_DEVICES`]), plus the tty behind fds 0
//!   to 2 (read here, added with [`policy::landlock_plan::BaseLayer::add_terminal`]), after the
//!   policy's rules.
//! - `required` needs ABI 6 (Linux 6.12): every right of the base layer
//!   (ABI 5 for `IoctlDev`) and the signal/abstract-socket scopes that the
//!   tool layer adds. `best-effort` enforces what the kernel has and names
//!   what it does not. `off` skips.
//! - The base layer itself has no scopes: the harness may signal and connect
//!   to anything outside (the tool layer, added by the preload, scopes tools).

use crate::error::{Call, CallResult};
use crate::log::debug;
use crate::sys;
use landlock::{
    AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus,
};
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat};
use policy::access::Access;
use policy::landlock_plan::{DirEntry, EntryKind, FsView, RuleSink, base_layer};
use policy::{EnforceMode, FileId, Policy};
use std::ffi::OsStr;
use std::fmt;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The ABI `required` asks for.
pub const REQUIRED_ABI: u32 = 6;

/// What failed.
#[derive(Debug)]
pub enum LandlockError {
    /// `required`, and the kernel's ABI is too old (0: no Landlock).
    Unsupported { abi: u32 },
    /// A landlock call failed.
    Ruleset(Call<landlock::RulesetError>),
    /// `required`, and the kernel did not enforce all of it.
    NotEnforced(String),
    /// Listing a directory on the way to a hidden path failed.
    List(Call<std::io::Error>),
}

impl fmt::Display for LandlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LandlockError::Unsupported { abi: 0 } => write!(
                f,
                "landlock mode \"required\", but this kernel has no Landlock (not built in, or not in the `lsm=` list). Fix: run on Linux 6.12+ with Landlock enabled, or set `[landlock] mode = \"best-effort\"` (the vault preload is then the only file guard)"
            ),
            LandlockError::Unsupported { abi } => write!(
                f,
                "landlock mode \"required\" needs Landlock ABI {REQUIRED_ABI} (Linux 6.12: IoctlDev and the tool layer's signal and socket scopes); this kernel has ABI {abi}. Fix: a newer kernel, or `[landlock] mode = \"best-effort\"`"
            ),
            LandlockError::Ruleset(c) => write!(f, "{c}"),
            LandlockError::List(c) => write!(
                f,
                "{c} (listing the way to a hidden path: the base layer grants its siblings one by one)"
            ),
            LandlockError::NotEnforced(s) => {
                write!(f, "landlock mode \"required\", but the kernel reports: {s}")
            }
        }
    }
}

impl std::error::Error for LandlockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LandlockError::Ruleset(c) => Some(&c.source),
            LandlockError::List(c) => Some(&c.source),
            LandlockError::Unsupported { .. } | LandlockError::NotEnforced(_) => None,
        }
    }
}

impl From<Call<landlock::RulesetError>> for LandlockError {
    fn from(c: Call<landlock::RulesetError>) -> LandlockError {
        LandlockError::Ruleset(c)
    }
}

/// A ruleset ready to enforce.
pub struct Prepared {
    ruleset: RulesetCreated,
    mode: EnforceMode,
    abi: u32,
    summary: String,
}

/// The outcome of step 5 for the log line.
pub enum Outcome {
    Off,
    Ready(Box<Prepared>),
    /// best-effort on a kernel without Landlock.
    Unavailable,
}

fn flags(a: Access) -> BitFlags<AccessFs> {
    BitFlags::<AccessFs>::from_bits_truncate(a.bits())
}

/// The ttys behind fds 0 to 2 (a fact of this process; the plan holds the
/// fixed terminal devices).
pub fn std_fd_terminals() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for fd in 0..3 {
        if let Ok(t) = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            && t.starts_with("/dev/")
        {
            v.push(t);
        }
    }
    v
}

/// `required` needs ABI [`REQUIRED_ABI`].
pub fn check_abi(mode: EnforceMode, abi: u32) -> Result<(), LandlockError> {
    if mode == EnforceMode::Required && abi < REQUIRED_ABI {
        return Err(LandlockError::Unsupported { abi });
    }
    Ok(())
}

/// Build the ruleset (step 5, first half; while still privileged).
pub fn prepare(policy: &Policy) -> Result<Outcome, LandlockError> {
    let mode = policy.landlock;
    if mode == EnforceMode::Off {
        return Ok(Outcome::Off);
    }
    let abi = sys::landlock_abi();
    check_abi(mode, abi)?;
    if abi == 0 {
        return Ok(Outcome::Unavailable);
    }
    let supported = Access::supported_by_abi(abi);
    let mut plan = base_layer(policy);
    for t in std_fd_terminals() {
        plan.add_terminal(t);
    }
    let handled = plan.handled.intersect(supported);
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(flags(handled))
        .call("landlock_create_ruleset")?
        .create()
        .call("landlock_create_ruleset")?;
    let hidden_ids: Vec<FileId> = plan
        .hidden
        .iter()
        .filter_map(|h| std::fs::metadata(&h.path).ok())
        .map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
        .collect();
    let mut sink = Sink {
        ruleset,
        handled,
        hidden_ids: &hidden_ids,
        skipped: Vec::new(),
        count: 0,
    };
    plan.walk(&hidden_ids, &mut Listing, &mut sink)?;
    for t in &plan.terminals {
        sink.add(t.path.as_os_str().as_bytes(), None, t.access)?;
    }
    let Sink {
        ruleset,
        skipped,
        count,
        ..
    } = sink;
    let missing = Access::ALL.without(supported);
    let mut summary = format!("ABI {abi}, {count} rules");
    if !plan.hidden.is_empty() {
        let h: Vec<String> = plan
            .hidden
            .iter()
            .map(|h| h.path.display().to_string())
            .collect();
        summary.push_str(&format!("; hidden: {}", h.join(", ")));
    }
    if !skipped.is_empty() {
        summary.push_str(&format!("; skipped: {}", skipped.join(", ")));
    }
    if mode == EnforceMode::BestEffort {
        if !missing.is_empty() {
            summary.push_str(&format!(
                "; NOT enforced on this kernel: {}",
                missing.names().collect::<Vec<_>>().join(", ")
            ));
        }
        if abi < REQUIRED_ABI {
            summary.push_str(
                "; NOT available: signal and abstract-socket scopes for the tool layer (ABI 6)",
            );
        }
    }
    Ok(Outcome::Ready(Box::new(Prepared {
        ruleset,
        mode,
        abi,
        summary,
    })))
}

/// The walk's directory listings, read as root (agent-init's child before
/// the privilege drop): a directory the harness user cannot list still gets
/// its siblings' rules.
struct Listing;

impl FsView for Listing {
    type Error = LandlockError;
    fn list(
        &mut self,
        dir: &[u8],
        f: &mut dyn FnMut(&DirEntry<'_>) -> Result<(), LandlockError>,
    ) -> Result<(), LandlockError> {
        let dir = Path::new(OsStr::from_bytes(dir));
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            // A hidden path below a missing directory: nothing to grant there.
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
                return Ok(());
            }
            Err(source) => return Err(LandlockError::List(Call::at("opendir", dir, source))),
        };
        for e in entries {
            let e = e.map_err(|source| LandlockError::List(Call::at("readdir", dir, source)))?;
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue; // vanished
            };
            let kind = if m.file_type().is_symlink() {
                EntryKind::Symlink
            } else if m.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::Other
            };
            let name = e.file_name();
            f(&DirEntry {
                name: name.as_bytes(),
                kind,
                nlink: m.nlink(),
                id: FileId {
                    dev: m.dev(),
                    ino: m.ino(),
                },
            })?;
        }
        Ok(())
    }
}

/// The ruleset the walk's rules go to.
struct Sink<'h> {
    ruleset: RulesetCreated,
    handled: Access,
    /// The identities of the hidden paths: a rule path that resolves to one
    /// of them (a symlink in a policy list) gets no rule.
    hidden_ids: &'h [FileId],
    /// Rule paths that do not exist (named in the log line).
    skipped: Vec<String>,
    count: usize,
}

impl RuleSink for Sink<'_> {
    type Error = LandlockError;
    fn add(
        &mut self,
        path: &[u8],
        is_dir: Option<bool>,
        access: Access,
    ) -> Result<(), LandlockError> {
        let path = Path::new(OsStr::from_bytes(path));
        // A sibling the walk found: never follow a symlink swapped in since.
        let nofollow = if is_dir.is_some() {
            OFlag::O_NOFOLLOW
        } else {
            OFlag::empty()
        };
        let fd: OwnedFd = match nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_CLOEXEC | nofollow,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(_) => {
                if is_dir.is_none() {
                    self.skipped.push(path.display().to_string());
                }
                return Ok(());
            }
        };
        let st = fstat(&fd).ok();
        let is_dir = st.is_some_and(|st| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
        });
        let is_link = st.is_some_and(|st| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
        });
        if is_link {
            return Ok(()); // swapped for a symlink since the listing: no rule
        }
        if st.is_some_and(|st| {
            self.hidden_ids.contains(&FileId {
                dev: st.st_dev,
                ino: st.st_ino,
            })
        }) {
            self.skipped
                .push(format!("{} (a hidden path)", path.display()));
            return Ok(());
        }
        let mut a = access.intersect(self.handled);
        if !is_dir {
            a = a.intersect(Access::FILE_ONLY);
        }
        if a.is_empty() {
            return Ok(());
        }
        debug!("landlock: {} {}", path.display(), a.to_string());
        self.count += 1;
        (&mut self.ruleset)
            .add_rule(PathBeneath::new(fd, flags(a)))
            .call_at("landlock_add_rule", path)?;
        Ok(())
    }
}

impl Prepared {
    /// Enforce (step 5, second half; after the privilege drop). Returns the
    /// log line.
    pub fn enforce(self) -> Result<String, LandlockError> {
        let status = self
            .ruleset
            .restrict_self()
            .call("landlock_restrict_self")?;
        let word = match status.ruleset {
            RulesetStatus::FullyEnforced => "fully enforced",
            RulesetStatus::PartiallyEnforced => "partially enforced",
            RulesetStatus::NotEnforced => "NOT enforced",
        };
        if self.mode == EnforceMode::Required && status.ruleset != RulesetStatus::FullyEnforced {
            return Err(LandlockError::NotEnforced(format!(
                "ruleset {word} (ABI {})",
                self.abi
            )));
        }
        Ok(format!("{word}, {}", self.summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_needs_abi_6_and_says_so() {
        let e = check_abi(EnforceMode::Required, 5).unwrap_err().to_string();
        assert!(
            e.contains("needs Landlock ABI 6") && e.contains("this kernel has ABI 5"),
            "{e}"
        );
        assert!(e.contains("best-effort"), "{e}");
        let e = check_abi(EnforceMode::Required, 0).unwrap_err().to_string();
        assert!(e.contains("no Landlock"), "{e}");
        assert!(check_abi(EnforceMode::Required, 6).is_ok());
        assert!(check_abi(EnforceMode::BestEffort, 0).is_ok());
    }
}
