//! `agent-init run`: the eight named steps, one function and one error
//! variant each.
//!
//! ```text
//!  agent-init (root)                          harness child
//!  1 sanitize   close fds > 2, harness env
//!  2 seed       vault dirs, seeds, link check
//!  3 record     state dir, policy.toml, policy.bin, probe, audit
//!    (prepare Landlock ruleset and seccomp BPF: errors stop here)
//!    block signals, subreaper, fork ───────────► setpgid, wait on "go" pipe
//!  3 record     harness.pid, then "go" ─────────►
//!                                               4 drop privileges, PDEATHSIG
//!                                               5 Landlock base layer
//!                                               6 seccomp filters
//!                                               7 exec (126/127 on failure)
//!    status pipe closes on exec (CLOEXEC) ◄─────
//!  8 serve      keep CAP_KILL only; forward, reap, exit with the harness code
//! ```
//!
//! Steps 4 to 6 run in the child so that agent-init itself keeps the right
//! to signal and reap; agent-init then drops everything but `CAP_KILL`,
//! becomes non-dumpable and sets `no_new_privs` ([`privs::restrict_self`]).

use crate::config::{self, Identity, LoadError};
use crate::error::{Call, CallResult};
use crate::landlock_layer::{self, LandlockError, Outcome};
use crate::log::{info, warning};
use crate::pid1::{self, Serve, ServeError};
use crate::privs::{self, PrivError};
use crate::seccomp_layer::{self, SeccompError};
use crate::seed::{self, Owner, SeedError};
use crate::state::{RecordError, StateDir};
use crate::sys;
use crate::vault_links;
use nix::unistd::{ForkResult, Pid};
use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit code: the policy, a user or an argument is invalid.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code: a step failed before the harness started.
pub const EXIT_SETUP: i32 = 1;
/// Exit code: the command exists but cannot be executed (as tini).
pub const EXIT_NOEXEC: i32 = 126;
/// Exit code: the command was not found (as tini).
pub const EXIT_NOTFOUND: i32 = 127;

/// The preload's file name.
pub const PRELOAD_NAME: &str = "libvault_preload.so";
/// Where images install it.
pub const PRELOAD_DIR: &str = "/usr/lib/agent-vault";

/// `run`'s arguments.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub policy: Option<PathBuf>,
    pub user: Option<String>,
    pub process_group: bool,
    pub grace: Duration,
    pub command: Vec<OsString>,
}

/// One variant per step.
#[derive(Debug)]
pub enum RunError {
    Config(LoadError),
    Sanitize(SanitizeError),
    Seed(SeedError),
    Record(RecordError),
    DropPrivileges(PrivError),
    Landlock(LandlockError),
    Seccomp(SeccompError),
    Start(StartError),
    Serve(ServeError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => EXIT_CONFIG,
            RunError::Sanitize(SanitizeError::NotFound(_)) => EXIT_NOTFOUND,
            RunError::Start(StartError::Exec { errno, .. }) => exec_exit_code(*errno),
            _ => EXIT_SETUP,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(e) => write!(f, "{e}"),
            RunError::Sanitize(e) => write!(f, "step 1 (sanitize): {e}"),
            RunError::Seed(e) => write!(f, "step 2 (seed): {e}"),
            RunError::Record(e) => write!(f, "step 3 (record): {e}"),
            RunError::DropPrivileges(e) => write!(f, "step 4 (drop privileges): {e}"),
            RunError::Landlock(e) => write!(f, "step 5 (landlock): {e}"),
            RunError::Seccomp(e) => write!(f, "step 6 (seccomp): {e}"),
            RunError::Start(e) => write!(f, "step 7 (start): {e}"),
            RunError::Serve(e) => write!(f, "step 8 (serve): {e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match self {
            RunError::Config(e) => e,
            RunError::Sanitize(e) => e,
            RunError::Seed(e) => e,
            RunError::Record(e) => e,
            RunError::DropPrivileges(e) => e,
            RunError::Landlock(e) => e,
            RunError::Seccomp(e) => e,
            RunError::Start(e) => e,
            RunError::Serve(e) => e,
        })
    }
}

/// Step 1 errors.
#[derive(Debug)]
pub enum SanitizeError {
    /// `close_range` failed.
    CloseRange(std::io::Error),
    /// The command is not in PATH (or the path does not exist).
    NotFound(String),
    /// A NUL byte in an argument or the environment.
    Nul(String),
}

impl fmt::Display for SanitizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanitizeError::CloseRange(e) => write!(f, "close_range(3, ~0): {e}"),
            SanitizeError::NotFound(c) => {
                write!(f, "{c}: command not found (nothing was started)")
            }
            SanitizeError::Nul(s) => write!(f, "{s:?} contains a NUL byte"),
        }
    }
}

impl std::error::Error for SanitizeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SanitizeError::CloseRange(e) => Some(e),
            SanitizeError::NotFound(_) | SanitizeError::Nul(_) => None,
        }
    }
}

/// Step 7 errors.
#[derive(Debug)]
pub enum StartError {
    /// `fork` or `pipe` failed.
    Call(Call<nix::Error>),
    /// `execve` failed.
    Exec { path: PathBuf, errno: nix::Error },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Call(c) => write!(f, "{c}"),
            StartError::Exec { path, errno } => {
                write!(f, "cannot execute {}: {}", path.display(), errno.desc())
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Call(c) => Some(&c.source),
            StartError::Exec { errno, .. } => Some(errno),
        }
    }
}

fn exec_exit_code(e: nix::Error) -> i32 {
    match e {
        nix::Error::ENOENT | nix::Error::ENOTDIR => EXIT_NOTFOUND,
        _ => EXIT_NOEXEC,
    }
}

/// What step 1 produces.
pub struct Sanitized {
    pub env: BTreeMap<OsString, OsString>,
    pub path: PathBuf,
    pub argv: Vec<CString>,
}

/// Step 1: close inherited fds above 2; the harness environment is the
/// process environment plus `[harness.env]` (and, when switching users,
/// `HOME`, `USER`, `LOGNAME` of the harness user unless the policy sets
/// them); resolve the command now so a missing one starts nothing.
pub fn sanitize(
    policy: &policy::Policy,
    who: &Identity,
    switching: bool,
    command: &[OsString],
) -> Result<Sanitized, SanitizeError> {
    let closed = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(4))
        .unwrap_or(0);
    sys::close_from(3).map_err(SanitizeError::CloseRange)?;
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    if switching {
        if let Some(h) = &who.home {
            env.insert("HOME".into(), h.as_os_str().to_owned());
        }
        if let Some(n) = &who.name {
            env.insert("USER".into(), n.into());
            env.insert("LOGNAME".into(), n.into());
        }
    }
    for (k, v) in &policy.harness.env {
        env.insert(k.into(), v.into());
    }
    let cmd = &command[0];
    let path = resolve_command(cmd, env.get(std::ffi::OsStr::new("PATH")))
        .ok_or_else(|| SanitizeError::NotFound(cmd.to_string_lossy().into_owned()))?;
    let mut argv = Vec::new();
    for a in command {
        argv.push(
            CString::new(a.as_bytes())
                .map_err(|_| SanitizeError::Nul(a.to_string_lossy().into_owned()))?,
        );
    }
    info!(
        "[1/8] sanitize: closed {closed} inherited fds; harness env {} variables ({} from the policy); command {}",
        env.len(),
        policy.harness.env.len(),
        path.display()
    );
    Ok(Sanitized { env, path, argv })
}

/// execvp's search: a name with `/` is used as is; otherwise the first PATH
/// entry where it exists (preferring an executable one).
pub fn resolve_command(cmd: &std::ffi::OsStr, path: Option<&OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        return p.exists().then_some(p);
    }
    if cmd.is_empty() {
        return None;
    }
    let default = OsString::from("/usr/local/bin:/usr/bin:/bin");
    let path = path.unwrap_or(&default);
    let mut first = None;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let p = dir.join(cmd);
        if let Ok(md) = std::fs::metadata(&p) {
            if md.is_dir() {
                continue;
            }
            if md.permissions().mode() & 0o111 != 0 {
                return Some(p);
            }
            first.get_or_insert(p);
        }
    }
    first
}

/// Step 2: seeding ([`seed::run`]), then every vault file has one name
/// ([`vault_links::check`]).
pub fn seed_step(
    policy: &policy::Policy,
    who: &Identity,
    root: bool,
) -> Result<seed::Stats, SeedError> {
    let owner = Owner {
        uid: who.uid,
        gid: who.gid,
        chown: root,
    };
    let stats = seed::run(policy, owner, root)?;
    vault_links::check(policy)?;
    info!("[2/8] seed: {stats}; harness dirs owned by uid {}", who.uid);
    Ok(stats)
}

/// Started as non-root, agent-init cannot create files in root's
/// `/run/agent-vault`: an audit file there (the default) moves to the host
/// state directory, and says so.
fn relocate_audit_for_host_mode(policy: &mut policy::Policy) {
    let uid = nix::unistd::geteuid().as_raw();
    if let policy::AuditSink::File(f) = &policy.audit
        && let Ok(rest) = f.strip_prefix(policy::STATE_DIR)
    {
        let moved = policy::host_state_dir(uid).join(rest);
        info!(
            "audit: not root, so {} moves to {}",
            f.display(),
            moved.display()
        );
        policy.audit = policy::AuditSink::File(moved);
    }
}

/// Step 3 (before the fork): state dir, effective policy, probe, audit file.
pub fn record_step(policy: &mut policy::Policy) -> Result<StateDir, RecordError> {
    let mut state = StateDir::for_process();
    policy.add_probe(state.probe());
    state.prepare(policy)?;
    Ok(state)
}

/// Where the preload is, and whether /etc/ld.so.preload lists it.
pub enum Preload {
    /// /etc/ld.so.preload lists it: every process already has it.
    System(String),
    /// Host mode: injected with LD_PRELOAD.
    Injected(PathBuf),
    /// Not found: tools are not hidden from the vault.
    Missing(Vec<PathBuf>),
}

/// The environment variable that overrides where agent-init looks for the
/// preload in host mode: a path, or `off` (never inject; warned).
pub const PRELOAD_ENV: &str = "AGENT_VAULT_PRELOAD";

/// Step 7's preload decision (host mode injects `LD_PRELOAD`).
pub fn find_preload() -> Preload {
    if let Some(v) = std::env::var_os(PRELOAD_ENV) {
        if v == "off" {
            return Preload::Missing(Vec::new());
        }
        let p = PathBuf::from(v);
        return if p.is_file() {
            Preload::Injected(p)
        } else {
            Preload::Missing(vec![p])
        };
    }
    if let Ok(text) = std::fs::read_to_string("/etc/ld.so.preload")
        && let Some(line) = text
            .split_whitespace()
            .find(|w| !w.starts_with('#') && w.contains("vault_preload"))
    {
        return Preload::System(line.to_string());
    }
    let mut looked = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        looked.push(dir.join(PRELOAD_NAME));
    }
    looked.push(Path::new(PRELOAD_DIR).join(PRELOAD_NAME));
    match looked.iter().find(|p| p.is_file()) {
        Some(p) => Preload::Injected(p.clone()),
        None => Preload::Missing(looked),
    }
}

/// Everything the child needs.
struct ChildPlan {
    who: Identity,
    switch: bool,
    landlock: Outcome,
    seccomp: Option<seccomp_layer::Filters>,
    sanitized: Sanitized,
    preload_note: String,
}

/// `agent-init run`. Returns the process exit code.
pub fn run(args: RunArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agent-init: error: {e}");
            e.exit_code()
        }
    }
}

fn run_inner(args: RunArgs) -> Result<i32, RunError> {
    // From the start, not only once the harness runs: agent-init's memory
    // and /proc/<pid>/environ hold the harness's secrets, and in host mode
    // the harness and its tools share its uid (the harness's own exec
    // resets its dumpable flag).
    privs::no_dumps();
    let root = nix::unistd::geteuid().is_root();
    let loaded = config::load(args.policy.as_deref(), args.user.as_deref(), !root)
        .map_err(RunError::Config)?;
    if !root && args.user.is_some() {
        warning!("not root: --user is ignored; the harness keeps this process's user");
    }
    let who = loaded
        .identity
        .clone()
        .map_err(|e| RunError::Config(LoadError::User(e)))?;
    if root && who.uid == 0 {
        return Err(RunError::Config(LoadError::User(
            config::UserError::RootHarness,
        )));
    }
    let mut policy = loaded.policy;
    info!("policy: {}", loaded.source);
    if root && !privs::holds_kill() {
        warning!(
            "CAP_KILL is missing: agent-init cannot forward signals to the harness (uid {}), so a stop waits for the engine's timeout and ends in SIGKILL; add the KILL capability (--cap-add=KILL)",
            who.uid
        );
    }
    if !root {
        relocate_audit_for_host_mode(&mut policy);
    }

    // 1
    let mut sanitized = sanitize(&policy, &who, root, &args.command).map_err(RunError::Sanitize)?;
    // 2
    seed_step(&policy, &who, root).map_err(RunError::Seed)?;
    // 3 (files)
    let state = record_step(&mut policy).map_err(RunError::Record)?;
    // Prepare 5 and 6 while privileged, so their errors stop us before the fork.
    let landlock = landlock_layer::prepare(&policy).map_err(RunError::Landlock)?;
    let seccomp = seccomp_layer::compile(&policy).map_err(RunError::Seccomp)?;
    let preload_note = match find_preload() {
        Preload::System(p) => format!("preload {p} from /etc/ld.so.preload"),
        Preload::Injected(p) => {
            let mut v = p.as_os_str().to_owned();
            if let Some(old) = sanitized.env.get(std::ffi::OsStr::new("LD_PRELOAD")) {
                v.push(":");
                v.push(old);
            }
            sanitized.env.insert("LD_PRELOAD".into(), v);
            format!("host mode: LD_PRELOAD={}", p.display())
        }
        Preload::Missing(looked) => {
            let why = if looked.is_empty() {
                format!("{PRELOAD_ENV}=off")
            } else {
                format!(
                    "{} missing; not in /etc/ld.so.preload",
                    looked
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            warning!(
                "vault preload not used ({why}): tools are NOT kept out of the vault; only the kernel layers apply"
            );
            "WITHOUT the vault preload".to_string()
        }
    };

    let set = pid1::block_signals().map_err(RunError::Serve)?;
    let (go_r, go_w) = nix::unistd::pipe()
        .call("pipe")
        .map_err(|c| RunError::Start(StartError::Call(c)))?;
    let (st_r, st_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .call("pipe2")
        .map_err(|c| RunError::Start(StartError::Call(c)))?;
    let parent = Pid::this();
    let plan = ChildPlan {
        who,
        switch: root,
        landlock,
        seccomp,
        sanitized,
        preload_note,
    };
    let child = match sys::fork() {
        Ok(ForkResult::Child) => {
            drop(go_w);
            drop(st_r);
            child_main(plan, parent, go_r, st_w)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(err) => {
            return Err(RunError::Start(StartError::Call(Call::of("fork", err))));
        }
    };
    drop(plan);
    drop(go_r);
    drop(st_w);
    let _ = nix::unistd::setpgid(child, child);
    // 3 (pid)
    if let Err(e) = state.write_pid(child.as_raw()) {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(RunError::Record(e));
    }
    info!(
        "[3/8] record: harness pid {child} in {}; effective policy {}",
        state.pid_file().display(),
        state.policy_file().display()
    );
    let mut go = std::fs::File::from(go_w);
    let _ = go.write_all(b"g");
    drop(go);
    // The status pipe closes at exec (CLOEXEC): EOF = started; a byte = the
    // child failed and already said why.
    let mut st = std::fs::File::from(st_r);
    let mut buf = [0u8; 1];
    let failed = matches!(st.read(&mut buf), Ok(1));
    drop(st);
    if failed {
        let code = loop {
            match nix::sys::wait::waitpid(child, None) {
                Ok(ws) => {
                    if let Some(c) = pid1::exit_code(ws) {
                        break c;
                    }
                }
                Err(nix::Error::EINTR) => continue,
                Err(_) => break EXIT_SETUP,
            }
        };
        return Ok(code);
    }
    // 8
    privs::restrict_self();
    info!(
        "[8/8] serve: pid {}{}, forwarding TERM INT HUP QUIT USR1 USR2 WINCH to {}, grace {:?}; agent-init {}",
        std::process::id(),
        if std::process::id() == 1 {
            ""
        } else {
            " (subreaper)"
        },
        if args.process_group {
            "the harness's process group"
        } else {
            "the harness"
        },
        args.grace,
        if root && privs::holds_kill() {
            "keeps only CAP_KILL, not dumpable"
        } else if root {
            "holds no capability (no CAP_KILL: signals are not forwarded), not dumpable"
        } else {
            "is not dumpable"
        }
    );
    pid1::serve(
        &set,
        Serve {
            harness: child,
            process_group: args.process_group,
            grace: args.grace,
        },
    )
    .map_err(RunError::Serve)
}

/// The harness child: steps 4 to 7. Never returns.
fn child_main(
    plan: ChildPlan,
    parent: Pid,
    go: std::os::fd::OwnedFd,
    status: std::os::fd::OwnedFd,
) -> ! {
    pid1::unblock_all();
    let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGPIPE, false);
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // Give the harness the terminal, as tini does (stdin a tty).
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGTTOU, true);
        let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpid());
        let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGTTOU, false);
    }
    let mut status = std::fs::File::from(status);
    let mut fail = |e: RunError| -> ! {
        eprintln!("agent-init: error: {e}");
        let _ = status.write_all(b"x");
        std::process::exit(e.exit_code());
    };
    let mut g = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut g), Ok(1)) {
        // agent-init could not record us: do not start.
        std::process::exit(EXIT_SETUP);
    }
    // 4
    match privs::drop_privileges(&plan.who, plan.switch) {
        Ok(line) => info!("[4/8] drop privileges: {line}"),
        Err(e) => fail(RunError::DropPrivileges(e)),
    }
    // PDEATHSIG after the uid change (commit_creds clears it).
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(EXIT_SETUP);
    }
    // 5
    match plan.landlock {
        Outcome::Off => info!("[5/8] landlock: off (policy)"),
        Outcome::Unavailable => {
            warning!("[5/8] landlock: NOT enforced: this kernel has no Landlock (best-effort)")
        }
        Outcome::Ready(p) => match p.enforce() {
            Ok(line) => info!("[5/8] landlock: {line}"),
            Err(e) => fail(RunError::Landlock(e)),
        },
    }
    // 6
    match seccomp_layer::apply_filters(plan.seccomp) {
        Ok(line) => info!("[6/8] seccomp: {line}"),
        Err(e) => fail(RunError::Seccomp(e)),
    }
    // 7
    let s = &plan.sanitized;
    let env: Vec<CString> = s
        .env
        .iter()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    info!(
        "[7/8] start: exec {} as pid {}; {}",
        s.path.display(),
        std::process::id(),
        plan.preload_note
    );
    let Ok(path) = CString::new(s.path.as_os_str().as_bytes()) else {
        std::process::exit(EXIT_NOTFOUND)
    };
    let errno = match nix::unistd::execve(&path, &s.argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    fail(RunError::Start(StartError::Exec {
        path: s.path.clone(),
        errno,
    }))
}
