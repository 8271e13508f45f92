//! Step 8, serving as PID 1: forward signals, reap every zombie, and when
//! the harness exits, stop the remaining processes within a grace period
//! and exit with the harness's code (or 128+signal).
//!
//! Signals are blocked (all but the synchronous ones, as tini does) before
//! the fork and taken with `sigtimedwait`, so none is lost and PID 1's
//! "no default action" rule does not matter. When agent-init is not PID 1 it
//! is a child subreaper, so orphaned descendants are reparented to it.

use crate::error::{Call, CallResult};
use crate::log::{debug, info, notice};
use crate::sys;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::fmt;
use std::time::{Duration, Instant};

/// The signals agent-init forwards to the harness.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Signals left unblocked: the synchronous ones (a fault in agent-init must
/// still kill it) and the terminal stop signals.
const UNBLOCKED: &[Signal] = &[
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// What failed.
#[derive(Debug)]
pub enum ServeError {
    /// A named call failed.
    Call(Call<Errno>),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Call(c) => write!(f, "{c}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Call(c) => Some(&c.source),
        }
    }
}

impl From<Call<Errno>> for ServeError {
    fn from(c: Call<Errno>) -> ServeError {
        ServeError::Call(c)
    }
}

/// The set agent-init blocks and waits for.
pub fn signal_set() -> SigSet {
    let mut s = SigSet::all();
    for sig in UNBLOCKED {
        s.remove(*sig);
    }
    s
}

/// Block [`signal_set`] (before the fork) and become a subreaper when not PID 1.
pub fn block_signals() -> Result<SigSet, ServeError> {
    let set = signal_set();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).call("sigprocmask")?;
    if std::process::id() != 1 {
        nix::sys::prctl::set_child_subreaper(true).call("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    Ok(set)
}

/// Undo [`block_signals`] in the harness child.
pub fn unblock_all() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// How to serve.
#[derive(Debug, Clone, Copy)]
pub struct Serve {
    pub harness: Pid,
    pub process_group: bool,
    pub grace: Duration,
}

/// A helper process the serve loop keeps running beside the harness (the
/// credential proxy): told when it exits, asked when to start it again.
pub trait Supervised {
    /// Its pid while it runs.
    fn pid(&self) -> Option<Pid>;
    /// It exited with `ws` (reaped).
    fn exited(&mut self, ws: WaitStatus);
    /// When it should be started again, if it is down.
    fn due(&self) -> Option<Instant>;
    /// Start it again (and log one line).
    fn restart(&mut self);
}

/// The exit code for a wait status.
pub fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// How the harness ended, in words: "harness killed by SIGTERM", not "code 143".
pub fn end_words(ws: WaitStatus) -> Option<String> {
    match ws {
        WaitStatus::Exited(_, c) => Some(format!("harness exited with code {c}")),
        WaitStatus::Signaled(_, s, core) => Some(format!(
            "harness killed by {}{} (agent-init exits {})",
            s.as_str(),
            if core { ", core dumped" } else { "" },
            128 + s as i32
        )),
        _ => None,
    }
}

/// One line when the harness ends: by default only when it did not exit 0.
fn log_harness_end(ws: WaitStatus) {
    let Some(words) = end_words(ws) else { return };
    if matches!(ws, WaitStatus::Exited(_, 0)) {
        info!("exit: {words}");
    } else {
        notice!("exit: {words}");
    }
}

/// Reap every child that has exited. Returns whether children remain.
fn reap(
    harness: Pid,
    code: &mut Option<i32>,
    mut helper: Option<&mut (dyn Supervised + '_)>,
) -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(ws) => {
                // Once the harness has exited the helper is being stopped, not restarted.
                if let Some(h) = helper.as_deref_mut()
                    && code.is_none()
                    && ws.pid().is_some()
                    && h.pid() == ws.pid()
                    && exit_code(ws).is_some()
                {
                    h.exited(ws);
                } else if ws.pid() == Some(harness) {
                    if let Some(c) = exit_code(ws) {
                        log_harness_end(ws);
                        *code = Some(c);
                    }
                } else {
                    debug!("reaped {:?}", ws);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return false, // ECHILD: none left
        }
    }
}

/// Every descendant of this process (from /proc), or, as PID 1, "all".
fn signal_rest(sig: Signal) -> usize {
    if std::process::id() == 1 {
        // kill(-1) reaches every process of our PID namespace but us.
        let _ = kill(Pid::from_raw(-1), sig);
        return descendants().len();
    }
    let d = descendants();
    for p in &d {
        let _ = kill(*p, sig);
    }
    d.len()
}

fn descendants() -> Vec<Pid> {
    let me = std::process::id() as i32;
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) S ppid ...": comm may hold spaces and parens.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let state = f.next();
            let ppid = f.next().and_then(|s| s.parse::<i32>().ok());
            if let (Some(ppid), Some(st)) = (ppid, state)
                && st != "Z"
            {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out: Vec<i32> = Vec::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parent_of {
            if pp == p && c != me && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out.into_iter().map(Pid::from_raw).collect()
}

/// Serve until the harness and every other child are gone. Returns the exit
/// code. `helper` (the proxy) is restarted when it dies while the harness runs.
pub fn serve(
    set: &SigSet,
    cfg: Serve,
    mut helper: Option<&mut (dyn Supervised + '_)>,
) -> Result<i32, ServeError> {
    let mut code: Option<i32> = None;
    let mut deadline: Option<Instant> = None;
    let target = if cfg.process_group {
        Pid::from_raw(-cfg.harness.as_raw())
    } else {
        cfg.harness
    };
    loop {
        let remaining = reap(cfg.harness, &mut code, helper.as_deref_mut());
        if code.is_none()
            && let Some(h) = helper.as_deref_mut()
            && h.due().is_some_and(|t| t <= Instant::now())
        {
            h.restart();
            continue;
        }
        if let Some(c) = code {
            if !remaining {
                debug!("exit: no process left; exiting {c}");
                return Ok(c);
            }
            let now = Instant::now();
            match deadline {
                None => {
                    let n = signal_rest(Signal::SIGTERM);
                    info!(
                        "exit: harness exited (code {c}); SIGTERM to {n} remaining processes, waiting up to {:?}",
                        cfg.grace
                    );
                    deadline = Some(now + cfg.grace);
                    continue;
                }
                Some(d) if now >= d => {
                    let n = signal_rest(Signal::SIGKILL);
                    info!("exit: grace period over; SIGKILL to {n} remaining processes");
                    while let Ok(_) | Err(Errno::EINTR) = waitpid(Pid::from_raw(-1), None) {}
                    return Ok(c);
                }
                Some(_) => {}
            }
        }
        let restart = helper
            .as_deref()
            .and_then(|h| h.due())
            .filter(|_| code.is_none());
        let wake = match (deadline, restart) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = wake.map(|d| d.saturating_duration_since(Instant::now()));
        let sig = sys::sigtimedwait(set, timeout)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
            .call("sigtimedwait")?;
        let Some(sig) = sig.and_then(|s| Signal::try_from(s).ok()) else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            continue;
        }
        if FORWARDED.contains(&sig) && code.is_none() {
            debug!("forwarding {sig} to {target}");
            if let Err(e) = kill(target, sig) {
                debug!("kill({target}, {sig}): {}", e.desc());
            }
        }
    }
}
