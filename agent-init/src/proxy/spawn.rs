//! Starting vault-proxy, and starting it again when it dies.
//!
//! The child, before it execs: its own process group, stdin `/dev/null`,
//! `setgroups([])`, `setresgid`/`setresuid` to the proxy user, every
//! capability set cleared, securebits locked, `no_new_privs`
//! ([`privs::drop_privileges`]), death signal on agent-init's exit, the
//! harness's seccomp filters ([`seccomp_layer`]); then
//! `vault-proxy --config-fd 3 --ready-fd 4` with an empty environment.
//! The serve loop restarts the proxy while agent-init's audit thread runs,
//! so the child makes only async-signal-safe calls: everything it needs
//! (exec arguments, compiled filters, `/dev/null`, the highest capability)
//! is prepared before the fork ([`Prepared`]) and it uses raw system calls
//! only, an error being a fixed message and the errno ([`sys::fork_for_exec`]).
//! agent-init writes the config (the only copy of the secrets outside its
//! own memory) into fd 3's pipe and waits for `ready 127.0.0.1:PORT` on fd 4.
//! The listening socket is agent-init's (bound once, [`Launch::listener`])
//! and handed to the proxy at fd 5.
//!
//! [`Supervisor`] restarts a proxy that died, from agent-init's serve loop,
//! with the same config and the same listening socket, after a backoff
//! (0.1 s doubling to 10 s; reset after a minute of uptime). Meanwhile the
//! port stays bound, so no other process can take it: the harness's
//! connections wait in its queue and are served by the next proxy (nothing
//! is forwarded without it: fail closed).

use super::ProxyError;
use crate::error::{Call, io_errno};
use crate::log::{info, warning};
use crate::{pid1, privs, seccomp_layer, sys};
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vault_proxy::config::ProxyConfig;

/// How long a starting proxy may take to say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A proxy that ran this long before dying restarts after the first backoff again.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Everything needed to start the proxy (again).
pub struct Launch {
    pub binary: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// The config, with its secrets.
    pub config: ProxyConfig,
    /// For the seccomp filters (the harness's).
    pub policy: policy::Policy,
    /// The listening socket on `config.listen`, bound once by agent-init
    /// and handed to every start (fd 5, `--listen-fd 5`).
    pub listener: OwnedFd,
}

/// A started proxy.
pub struct Started {
    pub pid: Pid,
    pub addr: SocketAddr,
}

/// What the proxy child needs, all allocated before the fork.
struct Prepared {
    binary: CString,
    _args: Vec<CString>,
    /// `_args`' pointers, NULL-terminated.
    argv: Vec<*const libc::c_char>,
    envp: [*const libc::c_char; 1],
    filters: Option<seccomp_layer::Filters>,
    /// Opened close-on-exec; the child's stdin.
    devnull: OwnedFd,
    cap_last: u32,
    root: bool,
    uid: u32,
    gid: u32,
    parent: Pid,
}

impl Prepared {
    fn new(l: &Launch, filters: Option<seccomp_layer::Filters>) -> Result<Prepared, ProxyError> {
        let binary = CString::new(l.binary.as_os_str().as_bytes()).map_err(|_| {
            ProxyError::Spawn(Call::at("exec", &l.binary, nix::errno::Errno::EINVAL))
        })?;
        let args: Vec<CString> = [
            "vault-proxy",
            "--config-fd",
            "3",
            "--ready-fd",
            "4",
            "--listen-fd",
            "5",
        ]
        .iter()
        .map(|a| CString::new(*a).expect("no NUL"))
        .collect();
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let devnull = std::fs::File::open("/dev/null")
            .map_err(|e| ProxyError::Spawn(Call::of("open /dev/null", io_errno(&e))))?
            .into();
        Ok(Prepared {
            binary,
            _args: args,
            argv,
            envp: [std::ptr::null()],
            filters,
            devnull,
            cap_last: privs::cap_last_cap(),
            root: nix::unistd::geteuid().is_root(),
            uid: l.uid,
            gid: l.gid,
            parent: Pid::this(),
        })
    }
}

/// Fork and exec the proxy; wait for its `ready` line.
pub fn start(l: &Launch) -> Result<Started, ProxyError> {
    let filters = seccomp_layer::compile(&l.policy).map_err(ProxyError::Seccomp)?;
    let config = l.config.to_toml().map_err(ProxyError::Config)?;
    let spawn = |c| move |e| ProxyError::Spawn(Call::of(c, e));
    let prepared = Prepared::new(l, filters)?;
    let (cfg_r, cfg_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(spawn("pipe2"))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(spawn("pipe2"))?;
    // SAFETY: `child` makes only async-signal-safe calls on `prepared` and
    // the pipe fds, then execs or `_exit`s (see its doc).
    let pid = match unsafe { sys::fork_for_exec() } {
        Ok(ForkResult::Child) => child(
            &prepared,
            cfg_r.as_raw_fd(),
            ready_w.as_raw_fd(),
            l.listener.as_raw_fd(),
        ),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(ProxyError::Spawn(Call::of("fork", e))),
    };
    drop(prepared);
    drop(cfg_r);
    drop(ready_w);
    let _ = nix::unistd::setpgid(pid, pid);
    let fail = |e: ProxyError| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        e
    };
    // The proxy reads to EOF before anything else; a dead child gives EPIPE
    // (SIGPIPE is blocked or ignored in agent-init).
    let mut w = std::fs::File::from(cfg_w);
    if let Err(e) = w.write_all(config.as_bytes()) {
        return Err(fail(ProxyError::Ready(format!(
            "writing its config: {e} (vault-proxy's own line above says why)"
        ))));
    }
    drop(w);
    drop(config);
    match read_ready(ready_r) {
        Ok(addr) => Ok(Started { pid, addr }),
        Err(e) => Err(fail(e)),
    }
}

/// `ready 127.0.0.1:PORT\n` on the ready pipe, within [`READY_TIMEOUT`].
fn read_ready(fd: OwnedFd) -> Result<SocketAddr, ProxyError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut f = std::fs::File::from(fd);
    let mut line = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match sys::wait_readable(std::os::fd::AsFd::as_fd(&f), left.as_millis() as i32) {
            Ok(true) => {}
            Ok(false) => {
                return Err(ProxyError::Ready(format!(
                    "no `ready` line within {READY_TIMEOUT:?}"
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProxyError::Spawn(Call::of("poll", io_errno(&e)))),
        }
        let mut buf = [0u8; 128];
        let n = f
            .read(&mut buf)
            .map_err(|e| ProxyError::Spawn(Call::of("read", io_errno(&e))))?;
        if n == 0 {
            return Err(ProxyError::Ready(
                "vault-proxy exited before it was ready (its own line above says why)".into(),
            ));
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            return text
                .strip_prefix("ready ")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| ProxyError::Ready(format!("unexpected ready line {text:?}")));
        }
        if line.len() > 256 {
            return Err(ProxyError::Ready("ready line too long".into()));
        }
    }
}

/// The proxy child. Never returns. Async-signal-safe throughout: raw
/// system calls on `p` (prepared before the fork) and the two pipe fds; no
/// allocation, lock, formatting or logging (agent-init's audit thread may
/// hold any of those at the fork). An error writes a fixed message naming
/// the step and its errno, then `_exit`s.
fn child(p: &Prepared, cfg: RawFd, ready: RawFd, listen: RawFd) -> ! {
    let fail = |step: &[u8], e: std::io::Error| -> ! {
        let mut digits = [0u8; 12];
        let mut n = digits.len();
        let mut v = e.raw_os_error().unwrap_or(0).unsigned_abs();
        loop {
            n -= 1;
            digits[n] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        sys::write_stderr(b"agent-init: error: starting vault-proxy: ");
        sys::write_stderr(step);
        sys::write_stderr(b" failed (errno ");
        sys::write_stderr(&digits[n..]);
        sys::write_stderr(b")\n");
        sys::exit_now(crate::run::EXIT_SETUP)
    };
    let nix_io = std::io::Error::from;
    pid1::unblock_all();
    let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGPIPE, false);
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if p.root {
        // privs::drop_privileges' steps, without its allocations.
        for cap in 0..=p.cap_last {
            match sys::capbset_drop(cap) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => fail(b"prctl(PR_CAPBSET_DROP)", e),
            }
        }
        if let Err(e) = sys::ambient_clear_all() {
            fail(b"prctl(PR_CAP_AMBIENT_CLEAR_ALL)", e);
        }
        if let Err(e) = sys::set_securebits(privs::SECUREBITS) {
            fail(b"prctl(PR_SET_SECUREBITS)", e);
        }
        if let Err(e) = nix::unistd::setgroups(&[]) {
            fail(b"setgroups", nix_io(e));
        }
        let g = nix::unistd::Gid::from_raw(p.gid);
        if let Err(e) = nix::unistd::setresgid(g, g, g) {
            fail(b"setresgid", nix_io(e));
        }
        let u = nix::unistd::Uid::from_raw(p.uid);
        if let Err(e) = nix::unistd::setresuid(u, u, u) {
            fail(b"setresuid", nix_io(e));
        }
    } else {
        let _ = sys::ambient_clear_all();
    }
    if let Err(e) = sys::capset_clear_all() {
        fail(b"capset", e);
    }
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        fail(b"prctl(PR_SET_NO_NEW_PRIVS)", nix_io(e));
    }
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        fail(b"setrlimit(RLIMIT_CORE)", nix_io(e));
    }
    // Read back: no capability left (the bounding set too, when root swept it).
    match sys::caps_all_empty() {
        Ok(true) => {}
        Ok(false) => fail(
            b"capget (capabilities left)",
            std::io::Error::from_raw_os_error(0),
        ),
        Err(e) => fail(b"capget", e),
    }
    if p.root && (0..=p.cap_last).any(|c| sys::capbset_read(c).unwrap_or(false)) {
        fail(
            b"prctl(PR_CAPBSET_READ) (bounding set left)",
            std::io::Error::from_raw_os_error(0),
        );
    }
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != p.parent {
        sys::exit_now(crate::run::EXIT_SETUP);
    }
    if let Some(f) = &p.filters {
        for (_, prog) in &f.programs {
            if seccompiler::apply_filter(prog).is_err() {
                let e = std::io::Error::last_os_error();
                if f.best_effort {
                    break;
                }
                fail(b"seccomp", e);
            }
        }
    }
    if let Err(e) = place_fds(p.devnull.as_raw_fd(), cfg, ready, listen) {
        fail(b"placing fds (dup2/close_range)", e);
    }
    let e = sys::execve(&p.binary, &p.argv, &p.envp);
    fail(b"execve of the vault-proxy binary", e)
}

/// stdin `/dev/null`, the config pipe at fd 3, the ready pipe at fd 4, the
/// listening socket at fd 5, everything above closed. Raw calls only (the
/// child's).
fn place_fds(null: RawFd, cfg: RawFd, ready: RawFd, listen: RawFd) -> std::io::Result<()> {
    // Out of the way of 0 and 3-5 first, then into place (dup2 clears CLOEXEC).
    let high_cfg = sys::dup_above(cfg, 10)?;
    let high_ready = sys::dup_above(ready, 10)?;
    let high_listen = sys::dup_above(listen, 10)?;
    sys::dup_to(null, 0)?;
    sys::dup_to(high_cfg, 3)?;
    sys::dup_to(high_ready, 4)?;
    sys::dup_to(high_listen, 5)?;
    // Everything from 6 up goes, the originals and the high copies with it.
    sys::close_from(6)?;
    Ok(())
}

/// The running proxy, for the serve loop.
pub struct Supervisor {
    launch: Launch,
    pid: Option<Pid>,
    pub addr: SocketAddr,
    started_at: Instant,
    backoff: Duration,
    restart_at: Option<Instant>,
    pub restarts: u32,
}

impl Supervisor {
    /// A proxy [`start`]ed with `launch`; restarts get the same listening socket.
    pub fn new(launch: Launch, started: Started) -> Supervisor {
        Supervisor {
            launch,
            pid: Some(started.pid),
            addr: started.addr,
            started_at: Instant::now(),
            backoff: BACKOFF_FIRST,
            restart_at: None,
            restarts: 0,
        }
    }
}

impl pid1::Supervised for Supervisor {
    fn pid(&self) -> Option<Pid> {
        self.pid
    }

    fn exited(&mut self, ws: WaitStatus) {
        self.pid = None;
        if self.started_at.elapsed() >= STABLE_AFTER {
            self.backoff = BACKOFF_FIRST;
        }
        warning!(
            "proxy: vault-proxy exited ({}); restarting in {:?} on {} (requests wait until then)",
            describe(ws),
            self.backoff,
            self.addr
        );
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn due(&self) -> Option<Instant> {
        self.restart_at
    }

    fn restart(&mut self) {
        self.restart_at = None;
        match start(&self.launch) {
            Ok(s) => {
                self.restarts += 1;
                self.pid = Some(s.pid);
                self.started_at = Instant::now();
                info!(
                    "proxy: vault-proxy restarted as pid {} on {} (restart {})",
                    s.pid, s.addr, self.restarts
                );
            }
            Err(e) => {
                warning!(
                    "proxy: restarting vault-proxy failed: {e}; trying again in {:?}",
                    self.backoff
                );
                self.restart_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn describe(ws: WaitStatus) -> String {
    match ws {
        WaitStatus::Exited(_, c) => format!("code {c}"),
        WaitStatus::Signaled(_, s, _) => format!("killed by {s}"),
        other => format!("{other:?}"),
    }
}
