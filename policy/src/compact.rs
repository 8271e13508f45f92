//! The effective policy in a compact binary form, for the preload.
//!
//! Every process in the container loads the preload, and parsing TOML costs
//! each of them about as much as the rest of its start-up (hundreds of
//! thousands of instructions and dozens of page faults). agent-init writes
//! this form beside the effective TOML; decoding it is a linear read with
//! no dependencies. Decoding checks what loading TOML checks of an expanded
//! policy (absolute clean paths, known syscall names, names and modes), so a
//! corrupt file is an error, never a different policy.
//!
//! Layout: the magic `AGVP` and a version byte, then the fields of
//! [`Policy`] in declaration order; integers little-endian `u32`; strings
//! and paths as a length and bytes; lists as a count and items.

use crate::expand::check_clean_absolute;
use crate::load::{
    Filesystem, GroupSpec, Harness, Policy, Seccomp, Seed, UserSpec, VaultEntry, VaultKind,
};
use crate::model::{AuditSink, EnforceMode, SeedMode};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 5] = b"AGVP\x01";
/// No real policy comes near this; a larger count is corruption.
const MAX_COUNT: u32 = 1 << 16;

impl Policy {
    /// Encode an expanded policy.
    pub fn to_compact(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(2048));
        w.0.extend_from_slice(MAGIC);
        w.str(&self.source);
        match &self.harness.user {
            UserSpec::Name(n) => {
                w.u8(0);
                w.str(n);
            }
            UserSpec::Ids { uid, gid } => {
                w.u8(1);
                w.u32(*uid);
                w.u32(*gid);
            }
        }
        w.len(self.harness.groups.len());
        for g in &self.harness.groups {
            match g {
                GroupSpec::Name(n) => {
                    w.u8(0);
                    w.str(n);
                }
                GroupSpec::Gid(g) => {
                    w.u8(1);
                    w.u32(*g);
                }
            }
        }
        w.len(self.harness.env.len());
        for (k, v) in &self.harness.env {
            w.str(k);
            w.str(v);
        }
        w.len(self.vault.len());
        for e in &self.vault {
            w.str(&e.name);
            w.path(&e.path);
            w.u8(match e.kind {
                VaultKind::Dir => 0,
                VaultKind::File => 1,
            });
            w.paths(&e.tool_exceptions);
        }
        w.len(self.secret_env.len());
        self.secret_env.iter().for_each(|s| w.str(s));
        w.paths(&self.filesystem.read_only);
        w.paths(&self.filesystem.read_write);
        w.paths(&self.filesystem.executable);
        w.u8(mode_byte(self.landlock));
        w.u8(mode_byte(self.seccomp.mode));
        w.len(self.seccomp.extra_deny.len());
        self.seccomp.extra_deny.iter().for_each(|s| w.str(s));
        w.len(self.seeds.len());
        for s in &self.seeds {
            w.path(&s.source);
            w.path(&s.target);
            w.u8(match s.mode {
                SeedMode::CopyMissing => 0,
                SeedMode::NewestBackup => 1,
            });
            match &s.prefix {
                None => w.u8(0),
                Some(p) => {
                    w.u8(1);
                    w.str(p);
                }
            }
        }
        match &self.audit {
            AuditSink::Off => w.u8(0),
            AuditSink::Stderr => w.u8(1),
            AuditSink::File(p) => {
                w.u8(2);
                w.path(p);
            }
        }
        w.0
    }

    /// Decode what [`Policy::to_compact`] wrote. Errors say what is wrong
    /// and where (byte offset).
    pub fn from_compact(bytes: &[u8]) -> Result<Policy, String> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err("not an agent-vault compact policy (bad magic or version)".into());
        }
        let source = r.string()?;
        let user = match r.u8()? {
            0 => UserSpec::Name(r.string()?),
            1 => UserSpec::Ids {
                uid: r.u32()?,
                gid: r.u32()?,
            },
            t => return Err(r.bad(format!("user tag {t}"))),
        };
        let mut groups = Vec::new();
        for _ in 0..r.count()? {
            groups.push(match r.u8()? {
                0 => GroupSpec::Name(r.string()?),
                1 => GroupSpec::Gid(r.u32()?),
                t => return Err(r.bad(format!("group tag {t}"))),
            });
        }
        let mut env = BTreeMap::new();
        for _ in 0..r.count()? {
            let k = r.string()?;
            env.insert(k, r.string()?);
        }
        let mut vault = Vec::new();
        for _ in 0..r.count()? {
            let name = r.string()?;
            let path = r.path()?;
            let kind = match r.u8()? {
                0 => VaultKind::Dir,
                1 => VaultKind::File,
                t => return Err(r.bad(format!("vault kind {t}"))),
            };
            let tool_exceptions = r.paths()?;
            if tool_exceptions
                .iter()
                .any(|x| !x.starts_with(&path) || x == &path)
            {
                return Err(r.bad(format!("a tool exception of {name:?} is not inside it")));
            }
            vault.push(VaultEntry {
                name,
                path,
                kind,
                tool_exceptions,
            });
        }
        let mut secret_env = Vec::new();
        for _ in 0..r.count()? {
            secret_env.push(r.string()?);
        }
        let filesystem = Filesystem {
            read_only: r.paths()?,
            read_write: r.paths()?,
            executable: r.paths()?,
        };
        let landlock = r.mode()?;
        let mode = r.mode()?;
        let mut extra_deny = Vec::new();
        for _ in 0..r.count()? {
            let n = r.string()?;
            if crate::syscalls::lookup(&n).is_none() {
                return Err(r.bad(format!("unknown syscall {n:?}")));
            }
            extra_deny.push(n);
        }
        let mut seeds = Vec::new();
        for _ in 0..r.count()? {
            let source = r.path()?;
            let target = r.path()?;
            let mode = match r.u8()? {
                0 => SeedMode::CopyMissing,
                1 => SeedMode::NewestBackup,
                t => return Err(r.bad(format!("seed mode {t}"))),
            };
            let prefix = match r.u8()? {
                0 => None,
                1 => Some(r.string()?),
                t => return Err(r.bad(format!("seed prefix tag {t}"))),
            };
            seeds.push(Seed {
                source,
                target,
                mode,
                prefix,
            });
        }
        let audit = match r.u8()? {
            0 => AuditSink::Off,
            1 => AuditSink::Stderr,
            2 => AuditSink::File(r.path()?),
            t => return Err(r.bad(format!("audit tag {t}"))),
        };
        if r.at != bytes.len() {
            return Err(r.bad("trailing bytes".into()));
        }
        Ok(Policy {
            source,
            harness: Harness { user, groups, env },
            vault,
            secret_env,
            filesystem,
            landlock,
            seccomp: Seccomp { mode, extra_deny },
            seeds,
            audit,
        })
    }
}

fn mode_byte(m: EnforceMode) -> u8 {
    match m {
        EnforceMode::Required => 0,
        EnforceMode::BestEffort => 1,
        EnforceMode::Off => 2,
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn path(&mut self, p: &Path) {
        self.bytes(p.as_os_str().as_bytes());
    }
    fn paths(&mut self, v: &[PathBuf]) {
        self.len(v.len());
        v.iter().for_each(|p| self.path(p));
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: String) -> String {
        format!("compact policy, byte {}: {what}", self.at)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(self.bad("truncated".into()));
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn count(&mut self) -> Result<u32, String> {
        let n = self.u32()?;
        if n > MAX_COUNT {
            return Err(self.bad(format!("count {n} is too large")));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.bad("a string is not UTF-8".into()))
    }
    fn path(&mut self) -> Result<PathBuf, String> {
        let b = self.bytes()?;
        let s = OsStr::from_bytes(b)
            .to_str()
            .ok_or_else(|| self.bad("a path is not UTF-8".into()))?;
        let clean = check_clean_absolute(s).map_err(|e| self.bad(e.to_string()))?;
        if clean.as_os_str().as_bytes() != b {
            return Err(self.bad(format!("path {s:?} is not clean")));
        }
        Ok(clean)
    }
    fn paths(&mut self) -> Result<Vec<PathBuf>, String> {
        let n = self.count()?;
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.path()?);
        }
        Ok(v)
    }
    fn mode(&mut self) -> Result<EnforceMode, String> {
        match self.u8()? {
            0 => Ok(EnforceMode::Required),
            1 => Ok(EnforceMode::BestEffort),
            2 => Ok(EnforceMode::Off),
            t => Err(self.bad(format!("mode {t}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::ExpandContext;

    fn sample() -> Policy {
        let mut env = BTreeMap::new();
        env.insert("CLAUDE_CONFIG_DIR".to_string(), "/claude".to_string());
        let ctx = ExpandContext {
            home: Some("/home/agent".into()),
            env,
        };
        let mut p = Policy::builtin(&ctx).unwrap();
        p.add_probe("/run/agent-vault/probe".into());
        p.harness.env.insert("K".into(), "v$".into());
        p.harness.groups.push(GroupSpec::Gid(44));
        p.harness.groups.push(GroupSpec::Name("video".into()));
        p.seccomp.extra_deny.push("chroot".into());
        p
    }

    #[test]
    fn round_trips() {
        let p = sample();
        assert_eq!(Policy::from_compact(&p.to_compact()).unwrap(), p);
        let mut q = p.clone();
        q.harness.user = UserSpec::Name("agent".into());
        q.audit = AuditSink::Stderr;
        q.landlock = EnforceMode::Off;
        assert_eq!(Policy::from_compact(&q.to_compact()).unwrap(), q);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = sample().to_compact();
        for n in 0..b.len() {
            assert!(
                Policy::from_compact(&b[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(
            Policy::from_compact(&longer)
                .unwrap_err()
                .contains("trailing")
        );
    }

    #[test]
    fn unclean_paths_are_refused() {
        let mut p = sample();
        p.filesystem.read_only.push(PathBuf::from("/a/../b"));
        assert!(
            Policy::from_compact(&p.to_compact())
                .unwrap_err()
                .contains("`..`")
        );
        let mut p = sample();
        p.filesystem.read_only.push(PathBuf::from("rel"));
        assert!(Policy::from_compact(&p.to_compact()).is_err());
    }
}
