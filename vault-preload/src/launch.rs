//! Trusted launchers, the child's half: a child of the harness (or of a
//! launched harness) about to exec one of the policy's launchers
//! (`[harness] launches`, matched by the file's device and inode, never by
//! a name) asks agent-init to record it as a launched harness, then runs
//! exactly the file it checked. agent-init's half and the whole design are
//! agent-init's `launchers` and `launch_registry` modules; the record and
//! request formats are `policy_core::layout`'s ([`LaunchRequest`]).
//!
//! In the exec hook, before the tool layer is applied ([`find`] then
//! [`register_and_exec`]):
//! 1. the program is opened as exec would find it (a path, or `PATH` for
//!    the `execvp` family) and `fstat`ed; not a launcher: nothing more
//!    happens here (the hook goes on as for any tool);
//! 2. a launcher: one datagram to agent-init's launch socket, passing a
//!    fresh read descriptor of the tool-layer probe file (the proof of
//!    being outside the tool layer) and one end of a socket pair for the
//!    reply; the wait for the reply is bounded
//!    ([`LAUNCH_REPLY_TIMEOUT_MS`]);
//! 3. accepted: `execveat(fd, "", AT_EMPTY_PATH)` of the descriptor
//!    checked, with the caller's environment (a launched harness is a
//!    harness: its own variables, no tool layer). If that exec fails the
//!    process exits 127: a record names this process, so no other program
//!    may be tried in it (an `execvp` retry along `PATH` would otherwise
//!    run a file nobody checked in a recorded process);
//! 4. refused, or no reply: the hook goes on as for any tool (fail closed).
//!
//! A script launcher (`#!`) is executed through its descriptor, which
//! stays open across the exec (the kernel hands the interpreter
//! `/dev/fd/<fd>`); its number is in the record, and the new image checks
//! that descriptor instead of `/proc/self/exe` (the interpreter's). The
//! interpreter itself (and, for `#!/usr/bin/env node`, `node` as found on
//! `PATH`) is not checked: it must be kept from tools
//! (`[filesystem] tool_read_only`).

use crate::state::State;
use crate::{state_dir, sys};
use core::ffi::{c_char, c_int};
use core::mem::MaybeUninit;
use policy_core::FileId;
use policy_core::layout::{
    LAUNCH_REPLY_OK, LAUNCH_REPLY_TIMEOUT_MS, LAUNCH_REQUEST_MAX, LaunchRequest, PROBE_FILE,
};
use policy_core::pathbuf::FixedPath;

/// What an exec hook was asked to run.
#[derive(Clone, Copy)]
pub enum ExecTarget {
    /// A path (`execve`, `execv`, `execl`, `execle`).
    Path(*const c_char),
    /// A name looked up in `PATH` unless it holds a `/` (`execvp`,
    /// `execvpe`, `execlp`).
    Search(*const c_char),
    /// A descriptor (`fexecve`, `execveat`): never a launcher here; such a
    /// program runs as a tool.
    Other,
}

/// A launcher, opened.
pub struct Launcher {
    fd: c_int,
    id: FileId,
    script: bool,
}

impl Launcher {
    /// Close it (a parent that only asked whether `target` is a launcher).
    pub fn close(self) {
        sys::close(self.fd);
    }
}

/// What an exec's target is, for the launcher check.
pub enum Found {
    /// A launcher, opened.
    Launcher(Launcher),
    /// A path that names nothing (`ENOENT`, `ENOTDIR`: the errno): the
    /// exec would fail without running anything. A runner that searches
    /// `PATH` itself (Python's `subprocess`, Node's `spawn`) tries such
    /// paths before the one that exists; the hook fails them as exec
    /// would, before it puts the process under the tool layer, so the
    /// launcher found later on `PATH` is still launched.
    Nothing(c_int),
    /// Anything else: the hook goes on as for a tool.
    Other,
}

/// The launcher `target` names, opened ([`Found`]); a policy without
/// launchers finds nothing here and makes no system call.
///
/// # Safety
/// The pointers in `target` are C strings valid for the call.
#[inline]
pub unsafe fn find(st: &State, target: ExecTarget) -> Found {
    if st.launch_socket.is_none() {
        return Found::Other;
    }
    // SAFETY: this function's contract.
    unsafe { find_launcher(st, target) }
}

/// [`find`] in a policy with launchers. Out of line: its path buffer's
/// stack pages are then touched only there (every stack page a harness
/// child writes is a page fault, bench/RESULTS.md run 12).
///
/// # Safety
/// As [`find`].
#[inline(never)]
unsafe fn find_launcher(st: &State, target: ExecTarget) -> Found {
    let (name, search) = match target {
        // SAFETY: the caller's C string (this function's contract).
        ExecTarget::Path(p) if !p.is_null() => (unsafe { sys::cstr_bytes(p) }, false),
        // SAFETY: as above.
        ExecTarget::Search(p) if !p.is_null() => (unsafe { sys::cstr_bytes(p) }, true),
        _ => return Found::Other,
    };
    if name.is_empty() {
        return Found::Other;
    }
    let mut path = FixedPath::default();
    if !search || name.contains(&b'/') {
        if !path.set(name) {
            return Found::Other;
        }
        return match open_launcher(st, &path) {
            Ok(Some(l)) => Found::Launcher(l),
            // Only a path given as is: an `execvp`-style search that finds
            // nothing is glibc's to report.
            Err(e) if !search && (e == libc::ENOENT || e == libc::ENOTDIR) => Found::Nothing(e),
            _ => Found::Other,
        };
    }
    // As glibc's execvp: `PATH` of this process, `/bin:/usr/bin` without
    // one; an empty element is the current directory. The first regular,
    // executable file found is what exec would run.
    // SAFETY: read now, not kept past this call.
    let dirs = unsafe { sys::getenv(b"PATH") }.unwrap_or(b"/bin:/usr/bin");
    for dir in dirs.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if !path.set(dir) || !path.push(name) {
            continue;
        }
        let mut buf = MaybeUninit::uninit();
        if let Some(s) = sys::fstatat(libc::AT_FDCWD, path.as_bytes_with_nul(), 0, &mut buf)
            && s.st_mode & libc::S_IFMT == libc::S_IFREG
            && s.st_mode & 0o111 != 0
        {
            return match open_launcher(st, &path) {
                Ok(Some(l)) => Found::Launcher(l),
                _ => Found::Other,
            };
        }
    }
    Found::Other
}

/// Open `path` (read, else path-only: a binary need not be readable;
/// non-blocking, so a FIFO put there never hangs the caller) and keep it
/// when its file is a launcher. Err: the negated-errno of the open.
fn open_launcher(st: &State, path: &FixedPath) -> Result<Option<Launcher>, c_int> {
    let p = path.as_bytes_with_nul();
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    let mut fd = sys::openat(libc::AT_FDCWD, p, libc::O_RDONLY | flags, 0);
    let readable = fd >= 0;
    if !readable {
        fd = sys::openat(libc::AT_FDCWD, p, libc::O_PATH | libc::O_CLOEXEC, 0);
    }
    if fd < 0 {
        return Err(-fd);
    }
    let mut buf = MaybeUninit::uninit();
    let id = match sys::fstat(fd, &mut buf) {
        Ok(s) if state_dir::fit_launcher(s) => FileId {
            dev: s.st_dev,
            ino: s.st_ino,
        },
        _ => {
            sys::close(fd);
            return Ok(None);
        }
    };
    if !st.policy.is_launcher(id) {
        sys::close(fd);
        return Ok(None);
    }
    let mut magic = [0u8; 2];
    let script = readable && sys::pread_start(fd, &mut magic) == 2 && magic == *b"#!";
    Ok(Some(Launcher { fd, id, script }))
}

/// Register with agent-init and exec `l`. Returns only when agent-init did
/// not accept (the caller goes on as for a tool); once accepted, it execs
/// or exits 127.
///
/// # Safety
/// `argv` and `envp` follow execve(2), valid for the call.
pub unsafe fn register_and_exec(
    st: &State,
    l: Launcher,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    let script_fd = if l.script {
        if sys::clear_cloexec(l.fd) < 0 {
            sys::close(l.fd);
            return;
        }
        Some(l.fd as u32)
    } else {
        None
    };
    let req = LaunchRequest {
        launcher: l.id,
        script_fd,
    };
    // SAFETY: `envp` is the caller's (this function's contract).
    if !unsafe { keeps_preload(envp) } {
        sys::write_all(
            2,
            b"agent-vault: a launcher runs as a tool: its environment drops LD_PRELOAD, so the preload would not guard what it starts. Fix: pass the runner's LD_PRELOAD on to the launcher\n",
        );
        sys::close(l.fd);
        return;
    }
    if !register(st, &req) {
        sys::close(l.fd);
        return;
    }
    // SAFETY: the caller's arrays (this function's contract).
    let r = unsafe { sys::execveat_fd(l.fd, argv, envp) };
    sys::write_all(
        2,
        b"agent-vault: exec of a launcher agent-init recorded failed; exiting 127 (no other program may run in a recorded process)\n",
    );
    let _ = r;
    sys::exit_now(127);
}

/// The new image will load the preload: without it nothing would put what
/// the launched harness starts under the tool layer. Loaded through
/// `LD_PRELOAD` (host mode): `envp` must carry the same value; else
/// `/etc/ld.so.preload` (the images) loads it into every process.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of C strings.
unsafe fn keeps_preload(envp: *const *const c_char) -> bool {
    // SAFETY: read now, not kept past this call.
    let Some(ours) = (unsafe { sys::getenv(b"LD_PRELOAD") }) else {
        return sys::stat(b"/etc/ld.so.preload\0").is_some();
    };
    if envp.is_null() {
        return false;
    }
    // Every `LD_PRELOAD=` entry: the loader takes the last one, `getenv`
    // the first.
    let (mut i, mut seen) = (0, false);
    loop {
        // SAFETY: a NULL-terminated array (this function's contract), read
        // up to its terminator.
        let e = unsafe { sys::c_array_at(envp, i) };
        if e.is_null() {
            return seen;
        }
        // SAFETY: a non-null entry is a C string.
        let b = unsafe { sys::cstr_bytes(e) };
        if let Some(v) = b.strip_prefix(b"LD_PRELOAD=") {
            if v != ours {
                return false;
            }
            seen = true;
        }
        i += 1;
    }
}

/// Send the request with the probe and reply descriptors; true when
/// agent-init answered [`LAUNCH_REPLY_OK`].
fn register(st: &State, req: &LaunchRequest) -> bool {
    let (Some(socket), Some(probe_dir)) = (st.launch_socket, st.policy.probe) else {
        return false;
    };
    let Some(probe) =
        state_dir::StatePath::new(&[probe_dir.bytes(), b"/", PROBE_FILE.name.as_bytes()])
    else {
        return false;
    };
    let probe_fd = sys::openat(
        libc::AT_FDCWD,
        probe.with_nul(),
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
    );
    if probe_fd < 0 {
        return false; // under the tool layer: nothing to prove
    }
    let mut pair: [c_int; 2] = [-1, -1];
    if sys::seqpacket_pair(&mut pair) < 0 {
        sys::close(probe_fd);
        return false;
    }
    let sock = sys::unix_dgram_socket();
    let mut buf = [0u8; LAUNCH_REQUEST_MAX];
    let bytes = req.encode(&mut buf);
    let sent =
        sock >= 0 && sys::sendmsg_fds_unix(sock, bytes, socket.bytes(), [probe_fd, pair[1]]) > 0;
    if sock >= 0 {
        sys::close(sock);
    }
    sys::close(probe_fd);
    sys::close(pair[1]);
    let mut reply = [0u8; 8];
    let ok = sent
        && sys::wait_readable(pair[0], LAUNCH_REPLY_TIMEOUT_MS)
        && sys::read(pair[0], &mut reply) == LAUNCH_REPLY_OK.len() as isize
        && reply.starts_with(LAUNCH_REPLY_OK);
    sys::close(pair[0]);
    ok
}
