//! Can the vault preload follow this harness? The tool layer and the
//! removal of the secret variables happen in the preload's spawn hooks,
//! inside the harness, when it starts a program through libc. A harness the
//! hooks never see leaves every program it starts outside the tool layer,
//! with the whole environment: a static tool it runs then reads the vault
//! and the secret variables. So agent-init looks at the resolved command
//! before anything starts ([`inspect`]) and, unless the policy says
//! `[harness] unhooked = "allow"`, refuses one that is:
//!
//! - statically linked (no `PT_INTERP`): ld.so never runs, so neither
//!   `/etc/ld.so.preload` nor `LD_PRELOAD` loads the preload into it;
//! - run by another loader than glibc's `ld-linux*` (musl's `ld-musl-*`,
//!   for one), which does not read glibc's preload list;
//! - a Go program (a `.go.buildinfo` or `.note.go.buildid` section, or,
//!   without section headers, the `\xff Go buildinf:` magic): Go's runtime
//!   starts programs with raw `clone` and `execve` system calls, past libc;
//! - a `#!` script whose interpreter (followed one level, and through
//!   `/usr/bin/env NAME` to NAME in the harness's `PATH`) is any of these,
//!   or is itself a script, or is neither ELF nor script.
//!
//! What this cannot see: a dynamically linked glibc harness that makes raw
//! `clone`/`fork` + `execve` system calls itself (hand-written assembly, a
//! JIT, a runtime that bypasses libc for some spawns), one that `dlopen`s
//! such code, or a script whose interpreter execs something else at run
//! time. Those still leave their children unhooked; the seccomp filter and
//! the base Landlock layer are then all that holds.

use crate::error::{Call, CallResult};
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What the check found about the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Dynamically linked, run by glibc's loader `loader`, not Go.
    Hooked { loader: PathBuf },
    /// The preload's hooks cannot follow it.
    Unhooked(Unfollowable),
    /// Not a regular file with an execute bit: `execve` will refuse it
    /// (126), so nothing starts either way.
    NotExecutable,
}

/// A harness the hooks cannot follow: the file that decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfollowable {
    /// The command as resolved.
    pub command: PathBuf,
    /// For a `#!` script: the interpreter that decided.
    pub interpreter: Option<PathBuf>,
    pub why: Why,
}

/// Why the hooks cannot follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// No `PT_INTERP`.
    Static,
    /// A `PT_INTERP` other than glibc's `ld-linux*`.
    ForeignLoader(PathBuf),
    /// A Go program.
    Go,
    /// A script's interpreter is a script too (only one level is followed).
    NestedScript,
    /// Neither an ELF executable nor a `#!` script.
    Unknown,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Static => f.write_str(
                "statically linked (no ELF interpreter), so the preload is never loaded into it",
            ),
            Why::ForeignLoader(l) => write!(
                f,
                "run by the loader {}, not glibc's ld-linux, which does not load the preload",
                l.display()
            ),
            Why::Go => f.write_str(
                "a Go program, whose runtime starts programs with raw clone and execve system calls past the preload",
            ),
            Why::NestedScript => f.write_str(
                "a #! script too (agent-init follows one level of interpreter)",
            ),
            Why::Unknown => f.write_str(
                "neither an ELF executable nor a #! script, so agent-init cannot tell whether the preload follows it",
            ),
        }
    }
}

impl Unfollowable {
    /// What it is, without the consequence and the fix.
    pub fn why_line(&self) -> String {
        match &self.interpreter {
            None => format!("{} is {}", self.command.display(), self.why),
            Some(i) => format!(
                "{} is a #! script for {}, which is {}",
                self.command.display(),
                i.display(),
                self.why
            ),
        }
    }
}

impl fmt::Display for Unfollowable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why_line())?;
        f.write_str(
            "; the programs it starts would run outside the tool layer with the secret variables. Nothing was started. Fix: use a dynamically linked glibc build of the harness, or set `unhooked = \"allow\"` under [harness] in the policy to start it anyway (its tools are then not kept from the vault)",
        )
    }
}

/// What one file is, as far as the hooks go.
enum Kind {
    Elf(Verdict),
    Script {
        interpreter: PathBuf,
        arg: Option<OsString>,
    },
    Unknown,
}

/// Look at the resolved command (and a script's interpreter, one level;
/// `path_var`: the harness's `PATH`, for `#!/usr/bin/env NAME`).
pub fn inspect(
    command: &Path,
    path_var: Option<&OsString>,
) -> Result<Verdict, Call<std::io::Error>> {
    let unhooked = |interpreter: Option<PathBuf>, why| {
        Verdict::Unhooked(Unfollowable {
            command: command.to_path_buf(),
            interpreter,
            why,
        })
    };
    let executable = std::fs::metadata(command).is_ok_and(|m| {
        m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
    });
    if !executable {
        return Ok(Verdict::NotExecutable);
    }
    let (interp, arg) = match kind(command)? {
        Kind::Elf(Verdict::Unhooked(u)) => return Ok(unhooked(None, u.why)),
        Kind::Elf(hooked) => return Ok(hooked),
        Kind::Unknown => return Ok(unhooked(None, Why::Unknown)),
        Kind::Script { interpreter, arg } => (interpreter, arg),
    };
    // `#!/usr/bin/env NAME`: what env runs is NAME, found in PATH.
    let target = match env_target(&interp, arg.as_ref()) {
        Some(name) => crate::run::resolve_command(&name, path_var).ok_or_else(|| {
            Call::at(
                "resolve",
                Path::new(&name),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?,
        None => interp,
    };
    Ok(match kind(&target)? {
        Kind::Elf(Verdict::Unhooked(u)) => unhooked(Some(target), u.why),
        Kind::Elf(hooked) => hooked,
        Kind::Script { .. } => unhooked(Some(target), Why::NestedScript),
        Kind::Unknown => unhooked(Some(target), Why::Unknown),
    })
}

/// For `#!/usr/bin/env [-S] NAME ...`: NAME.
fn env_target(interp: &Path, arg: Option<&OsString>) -> Option<OsString> {
    if interp.file_name()? != "env" {
        return None;
    }
    let arg = arg?.as_bytes();
    arg.split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .find(|w| !w.starts_with(b"-") && !w.contains(&b'='))
        .map(|w| OsString::from(std::ffi::OsStr::from_bytes(w)))
}

fn open(path: &Path) -> Result<File, Call<std::io::Error>> {
    // O_NONBLOCK: a FIFO in place of the command must not hang agent-init.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .call_at("open", path)
}

/// Read up to `buf.len()` bytes at `off`; fewer at the end of the file.
fn read_at(f: &File, path: &Path, buf: &mut [u8], off: u64) -> Result<usize, Call<std::io::Error>> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Call::at("read", path, e)),
        }
    }
    Ok(done)
}

fn kind(path: &Path) -> Result<Kind, Call<std::io::Error>> {
    let f = open(path)?;
    let mut head = [0u8; 256];
    let n = read_at(&f, path, &mut head, 0)?;
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") {
        return Ok(match Elf::parse(head) {
            Some(elf) => Kind::Elf(elf.verdict(&f, path)?),
            None => Kind::Unknown,
        });
    }
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.trim_ascii();
        // As the kernel: the interpreter, then at most one argument.
        let (interp, arg) = match line.iter().position(|b| b.is_ascii_whitespace()) {
            Some(i) => (&line[..i], Some(line[i..].trim_ascii())),
            None => (line, None),
        };
        if interp.is_empty() {
            return Ok(Kind::Unknown);
        }
        return Ok(Kind::Script {
            interpreter: PathBuf::from(std::ffi::OsStr::from_bytes(interp)),
            arg: arg
                .filter(|a| !a.is_empty())
                .map(|a| OsString::from(std::ffi::OsStr::from_bytes(a))),
        });
    }
    Ok(Kind::Unknown)
}

/// The parts of an ELF header this check reads.
struct Elf {
    is64: bool,
    le: bool,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

const PT_INTERP: u32 = 3;
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Bounds on what is read: no real header table or name is larger.
const MAX_TABLE: u64 = 1 << 22;
const MAX_INTERP: u64 = 4096;

impl Elf {
    fn parse(h: &[u8]) -> Option<Elf> {
        if h.len() < 64 {
            return None;
        }
        let is64 = match h[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let le = match h[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let e = Elf {
            is64,
            le,
            phoff: 0,
            phentsize: 0,
            phnum: 0,
            shoff: 0,
            shentsize: 0,
            shnum: 0,
            shstrndx: 0,
        };
        Some(if is64 {
            Elf {
                phoff: e.word(h, 0x20, 8),
                shoff: e.word(h, 0x28, 8),
                phentsize: e.word(h, 0x36, 2),
                phnum: e.word(h, 0x38, 2),
                shentsize: e.word(h, 0x3a, 2),
                shnum: e.word(h, 0x3c, 2),
                shstrndx: e.word(h, 0x3e, 2),
                ..e
            }
        } else {
            Elf {
                phoff: e.word(h, 0x1c, 4),
                shoff: e.word(h, 0x20, 4),
                phentsize: e.word(h, 0x2a, 2),
                phnum: e.word(h, 0x2c, 2),
                shentsize: e.word(h, 0x2e, 2),
                shnum: e.word(h, 0x30, 2),
                shstrndx: e.word(h, 0x32, 2),
                ..e
            }
        })
    }

    /// The `len`-byte unsigned field at `at` (0 when out of bounds).
    fn word(&self, b: &[u8], at: usize, len: usize) -> u64 {
        let Some(bytes) = b.get(at..at + len) else {
            return 0;
        };
        let mut v = 0u64;
        for i in 0..len {
            let byte = if self.le {
                bytes[len - 1 - i]
            } else {
                bytes[i]
            };
            v = (v << 8) | byte as u64;
        }
        v
    }

    /// A whole table (`num` entries of `size` bytes at `off`), bounded.
    fn table(
        &self,
        f: &File,
        path: &Path,
        off: u64,
        size: u64,
        num: u64,
    ) -> Result<Vec<u8>, Call<std::io::Error>> {
        let len = size.saturating_mul(num).min(MAX_TABLE);
        let mut buf = vec![0u8; len as usize];
        let n = read_at(f, path, &mut buf, off)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn verdict(&self, f: &File, path: &Path) -> Result<Verdict, Call<std::io::Error>> {
        let unhooked = |why| {
            Verdict::Unhooked(Unfollowable {
                command: path.to_path_buf(),
                interpreter: None,
                why,
            })
        };
        if self.is_go(f, path)? {
            return Ok(unhooked(Why::Go));
        }
        let Some(loader) = self.interpreter(f, path)? else {
            return Ok(unhooked(Why::Static));
        };
        let glibc = loader.file_name().is_some_and(|n| {
            n.as_bytes().starts_with(b"ld-linux") || n.as_bytes().starts_with(b"ld64.so.")
        });
        Ok(if glibc {
            Verdict::Hooked { loader }
        } else {
            unhooked(Why::ForeignLoader(loader))
        })
    }

    /// The `PT_INTERP` path, if there is one.
    fn interpreter(&self, f: &File, path: &Path) -> Result<Option<PathBuf>, Call<std::io::Error>> {
        let (off_at, size_at, wlen) = if self.is64 {
            (8, 0x20, 8)
        } else {
            (4, 0x10, 4)
        };
        if self.phentsize < size_at as u64 + wlen as u64 {
            return Ok(None);
        }
        let ph = self.table(f, path, self.phoff, self.phentsize, self.phnum)?;
        for entry in ph.chunks_exact(self.phentsize as usize) {
            if self.word(entry, 0, 4) as u32 != PT_INTERP {
                continue;
            }
            let off = self.word(entry, off_at, wlen);
            let size = self.word(entry, size_at, wlen).min(MAX_INTERP);
            let mut buf = vec![0u8; size as usize];
            let n = read_at(f, path, &mut buf, off)?;
            buf.truncate(n);
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            buf.truncate(end);
            return Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(&buf))));
        }
        Ok(None)
    }

    /// A Go section by name; without section headers, the build-info magic.
    fn is_go(&self, f: &File, path: &Path) -> Result<bool, Call<std::io::Error>> {
        let (off_at, size_at, wlen) = if self.is64 {
            (0x18, 0x20, 8)
        } else {
            (0x10, 0x14, 4)
        };
        if self.shnum == 0 || self.shentsize < size_at as u64 + wlen as u64 {
            return scan_for(f, path, GO_MAGIC);
        }
        let sh = self.table(f, path, self.shoff, self.shentsize, self.shnum)?;
        let sections: Vec<&[u8]> = sh.chunks_exact(self.shentsize as usize).collect();
        let Some(strtab) = sections.get(self.shstrndx as usize) else {
            return scan_for(f, path, GO_MAGIC);
        };
        let names = self.table(
            f,
            path,
            self.word(strtab, off_at, wlen),
            1,
            self.word(strtab, size_at, wlen),
        )?;
        Ok(sections.iter().any(|s| {
            let at = self.word(s, 0, 4) as usize;
            let name = names.get(at..).unwrap_or_default();
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            name == b".go.buildinfo" || name == b".note.go.buildid"
        }))
    }
}

/// Does `needle` occur in the file? Read in 1 MiB chunks.
fn scan_for(f: &File, path: &Path, needle: &[u8]) -> Result<bool, Call<std::io::Error>> {
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = read_at(f, path, &mut buf, off)?;
        if buf[..n].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        if n < buf.len() {
            return Ok(false);
        }
        // Overlap so a needle across two chunks is found.
        off += (n - needle.len() + 1) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(p: &str) -> Verdict {
        inspect(Path::new(p), None).unwrap()
    }

    #[test]
    fn glibc_programs_are_hooked() {
        assert!(matches!(verdict("/bin/sh"), Verdict::Hooked { .. }));
        assert!(matches!(verdict("/bin/true"), Verdict::Hooked { .. }));
    }

    fn write_executable(p: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn scripts_follow_their_interpreter() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("s");
        write_executable(&s, "#!/bin/sh -e\necho hi\n");
        assert!(matches!(
            verdict(s.to_str().unwrap()),
            Verdict::Hooked { .. }
        ));
        let nested = t.path().join("n");
        write_executable(&nested, &format!("#!{}\n", s.display()));
        let Verdict::Unhooked(u) = verdict(nested.to_str().unwrap()) else {
            panic!("a script for a script is followed one level only");
        };
        assert_eq!(u.why, Why::NestedScript);
        assert_eq!(u.interpreter.as_deref(), Some(s.as_path()));
        let data = t.path().join("d");
        std::fs::write(&data, "plain text").unwrap();
        assert_eq!(verdict(data.to_str().unwrap()), Verdict::NotExecutable);
        write_executable(&data, "plain text");
        assert!(matches!(
            verdict(data.to_str().unwrap()),
            Verdict::Unhooked(Unfollowable {
                why: Why::Unknown,
                ..
            })
        ));
    }

    #[test]
    fn env_scripts_name_their_program() {
        let arg = |s: &str| Some(OsString::from(s));
        let env = Path::new("/usr/bin/env");
        assert_eq!(env_target(env, arg("node").as_ref()), arg("node"));
        assert_eq!(env_target(env, arg("-S node --x").as_ref()), arg("node"));
        assert_eq!(env_target(Path::new("/bin/sh"), arg("-e").as_ref()), None);
    }

    #[test]
    fn go_magic_is_found_across_chunks() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("g");
        let mut data = vec![0u8; (1 << 20) - 5];
        data.extend_from_slice(GO_MAGIC);
        data.extend_from_slice(&[0; 100]);
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        assert!(scan_for(&f, &p, GO_MAGIC).unwrap());
        std::fs::write(&p, vec![0u8; 3 << 20]).unwrap();
        let f = File::open(&p).unwrap();
        assert!(!scan_for(&f, &p, GO_MAGIC).unwrap());
    }
}
