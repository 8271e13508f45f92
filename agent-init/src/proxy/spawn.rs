//! Starting vault-proxy, and starting it again when it dies.
//!
//! The child, before it execs: its own process group, stdin `/dev/null`,
//! `setgroups([])`, `setresgid`/`setresuid` to the proxy user, every
//! capability set cleared, securebits locked, `no_new_privs`
//! ([`privs::drop_privileges`]), death signal on agent-init's exit, the
//! harness's seccomp filters ([`seccomp_layer`]); then
//! `vault-proxy --config-fd 3 --ready-fd 4` with an empty environment.
//! agent-init writes the config (the only copy of the secrets outside its
//! own memory) into fd 3's pipe and waits for `ready 127.0.0.1:PORT` on fd 4.
//!
//! [`Supervisor`] restarts a proxy that died, from agent-init's serve loop,
//! with the same config on the same port, after a backoff (0.1 s doubling to
//! 10 s; reset after a minute of uptime). Meanwhile the harness's requests
//! are refused (connection refused): fail closed.

use super::ProxyError;
use crate::config::Identity;
use crate::error::{Call, CallResult, io_errno};
use crate::log::{info, warning};
use crate::{pid1, privs, seccomp_layer, sys};
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
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
}

/// A started proxy.
pub struct Started {
    pub pid: Pid,
    pub addr: SocketAddr,
}

/// Fork and exec the proxy; wait for its `ready` line.
pub fn start(l: &Launch) -> Result<Started, ProxyError> {
    let filters = seccomp_layer::compile(&l.policy).map_err(ProxyError::Seccomp)?;
    let config = l.config.to_toml().map_err(ProxyError::Config)?;
    let spawn = |c| move |e| ProxyError::Spawn(Call::of(c, e));
    let (cfg_r, cfg_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(spawn("pipe2"))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(spawn("pipe2"))?;
    let parent = Pid::this();
    let pid = match sys::fork() {
        Ok(ForkResult::Child) => {
            drop(cfg_w);
            drop(ready_r);
            child(l, filters, parent, cfg_r, ready_w)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(ProxyError::Spawn(Call::of("fork", e))),
    };
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

/// The proxy child. Never returns.
fn child(
    l: &Launch,
    filters: Option<seccomp_layer::Filters>,
    parent: Pid,
    cfg: OwnedFd,
    ready: OwnedFd,
) -> ! {
    let die = |what: String| -> ! {
        eprintln!("agent-init: error: starting vault-proxy: {what}");
        std::process::exit(crate::run::EXIT_SETUP);
    };
    pid1::unblock_all();
    let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGPIPE, false);
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let who = Identity {
        uid: l.uid,
        gid: l.gid,
        name: None,
        home: None,
        groups: Vec::new(),
    };
    if let Err(e) = privs::drop_privileges(&who, true) {
        die(format!("drop privileges: {e}"));
    }
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(crate::run::EXIT_SETUP);
    }
    if let Err(e) = seccomp_layer::apply_filters(filters) {
        die(format!("seccomp: {e}"));
    }
    if let Err(e) = place_fds(cfg, ready) {
        die(e.to_string());
    }
    let path = CString::new(l.binary.as_os_str().as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = ["vault-proxy", "--config-fd", "3", "--ready-fd", "4"]
        .iter()
        .map(|a| CString::new(*a).expect("no NUL"))
        .collect();
    let env: [CString; 0] = [];
    let e = match nix::unistd::execve(&path, &argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    die(format!("exec {}: {}", l.binary.display(), e.desc()))
}

/// stdin `/dev/null`, the config pipe at fd 3, the ready pipe at fd 4,
/// everything above closed.
fn place_fds(cfg: OwnedFd, ready: OwnedFd) -> Result<(), Call<std::io::Error>> {
    let null = std::fs::File::open("/dev/null").map_err(|e| Call::of("open /dev/null", e))?;
    // Out of the way of 0, 3 and 4 first, then into place (dup2 clears CLOEXEC).
    let high_cfg = sys::dup_above(cfg.as_raw_fd(), 10).call("fcntl(F_DUPFD_CLOEXEC)")?;
    let high_ready = sys::dup_above(ready.as_raw_fd(), 10).call("fcntl(F_DUPFD_CLOEXEC)")?;
    sys::dup_to(null.as_raw_fd(), 0).call("dup2")?;
    sys::dup_to(high_cfg, 3).call("dup2")?;
    sys::dup_to(high_ready, 4).call("dup2")?;
    // Everything from 5 up goes, the originals and the high copies with it.
    std::mem::forget((cfg, ready, null));
    sys::close_from(5).call("close_range")?;
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
    /// A proxy [`start`]ed with `launch`; restarts bind `started.addr` again.
    pub fn new(mut launch: Launch, started: Started) -> Supervisor {
        launch.config.listen = started.addr.to_string();
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
            "proxy: vault-proxy exited ({}); restarting in {:?} on {} (requests are refused until then)",
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
