//! `agent-init run`: the eight named steps, one function and one error
//! variant each.
//!
//! ```text
//!  agent-init (root)                          harness child
//!  1 sanitize   close fds > 2, harness env
//!  2 seed       vault dirs, seeds, link check
//!  3 record     state dir, policy.toml, policy.bin, probe, audit
//!    (prepare Landlock ruleset and seccomp BPF: errors stop here)
//!  3 proxy      [proxy] on: fork vault-proxy (own uid) ──► drop, seccomp, exec
//!               harness env/files get placeholders, base URLs
//!    block signals, subreaper, fork ───────────► setpgid, wait on "go" pipe
//!  3 record     harness.pid, then "go" ─────────►
//!                                               4 drop privileges, PDEATHSIG
//!                                               5 Landlock base layer
//!                                               6 seccomp filters
//!                                               7 exec (126/127 on failure)
//!    status pipe closes on exec (CLOEXEC) ◄─────
//!  8 serve      keep CAP_KILL only (and what restarting the proxy takes);
//!               forward, reap, restart a dead proxy, exit with the harness code
//! ```
//!
//! Steps 4 to 6 run in the child so that agent-init itself keeps the right
//! to signal and reap; agent-init then drops everything but `CAP_KILL`,
//! becomes non-dumpable and sets `no_new_privs` ([`privs::restrict_self`]).

use crate::audit_sink::{self, AuditSocket};
use crate::config::{self, Identity, LoadError};
use crate::error::{Call, CallResult};
use crate::landlock_layer::{self, LandlockError, Outcome};
use crate::launch_registry::{self, LaunchError, Registry};
use crate::launchers::{self, LauncherError};
use crate::log::{error, info, notice, warning};
use crate::pid1::{self, Serve, ServeError};
use crate::preflight::{self, MissingCaps, PreflightError};
use crate::preload;
use crate::privs::{self, PrivError};
use crate::proxy::{self, ProxyError};
use crate::seccomp_layer::{self, SeccompError};
use crate::seed::{self, Owner, SeedError};
use crate::state::{RecordError, StateDir};
use crate::stop::{self, Stopped};
use crate::sys;
use crate::unhooked::{self, Unfollowable, Verdict};
use crate::vault_links;
use nix::sys::signal::SigSet;
use nix::unistd::{ForkResult, Pid};
use policy::layout::HarnessRecord;
use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code: the policy, a user or an argument is invalid.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code: a step failed before the harness started.
pub const EXIT_SETUP: i32 = 1;
/// Exit code: the command exists but cannot be executed (as tini).
pub const EXIT_NOEXEC: i32 = 126;
/// Exit code: the command was not found (as tini).
pub const EXIT_NOTFOUND: i32 = 127;

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
    /// A root start that cannot work here ([`preflight`]).
    Preflight(PreflightError),
    /// Seeding failed while capabilities it needs are missing: they are
    /// the cause to name.
    SeedWithoutCaps(SeedError, MissingCaps),
    Sanitize(SanitizeError),
    Seed(SeedError),
    /// A `[harness] launches` file unfit to be a launcher.
    Launchers(LauncherError),
    /// The launch registry (socket, `launched/`) could not be set up.
    LaunchRegistry(LaunchError),
    Record(RecordError),
    Proxy(ProxyError),
    DropPrivileges(PrivError),
    Landlock(LandlockError),
    Seccomp(SeccompError),
    Start(StartError),
    Serve(ServeError),
    /// TERM or INT arrived between steps, before the harness started.
    Stopped(Stopped),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => EXIT_CONFIG,
            RunError::Proxy(ProxyError::NotRoot | ProxyError::SameUid(_)) => EXIT_CONFIG,
            RunError::Stopped(s) | RunError::Seed(SeedError::Stopped(s)) => s.exit_code(),
            RunError::Sanitize(SanitizeError::NotFound(_)) => EXIT_NOTFOUND,
            RunError::Sanitize(SanitizeError::Unhooked(_)) => EXIT_CONFIG,
            RunError::Start(StartError::Exec { errno, .. }) => exec_exit_code(*errno),
            _ => EXIT_SETUP,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(e) => write!(f, "{e}"),
            RunError::Preflight(e) => write!(f, "{e}"),
            RunError::SeedWithoutCaps(e, m) => {
                // One fix: the capabilities' (the seed error's own would mislead).
                let e = e.to_string();
                let what = e.split(". Fix:").next().unwrap_or(&e);
                write!(f, "step 2 (seed): {m}; seeding failed without them: {what}")
            }
            RunError::Sanitize(e) => write!(f, "step 1 (sanitize): {e}"),
            RunError::Seed(e) => write!(f, "step 2 (seed): {e}"),
            RunError::Launchers(e) => write!(f, "step 3 (record): {e}"),
            RunError::LaunchRegistry(e) => write!(f, "step 3 (record): {e}"),
            RunError::Record(e) => write!(f, "step 3 (record): {e}"),
            RunError::Proxy(e) => write!(f, "step 3 (proxy): {e}"),
            RunError::DropPrivileges(e) => write!(f, "step 4 (drop privileges): {e}"),
            RunError::Landlock(e) => write!(f, "step 5 (landlock): {e}"),
            RunError::Seccomp(e) => write!(f, "step 6 (seccomp): {e}"),
            RunError::Start(e) => write!(f, "step 7 (start): {e}"),
            RunError::Serve(e) => write!(f, "step 8 (serve): {e}"),
            RunError::Stopped(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match self {
            RunError::Config(e) => e,
            RunError::Preflight(e) => e,
            RunError::SeedWithoutCaps(e, _) => e,
            RunError::Sanitize(e) => e,
            RunError::Seed(e) => e,
            RunError::Launchers(e) => e,
            RunError::LaunchRegistry(e) => e,
            RunError::Record(e) => e,
            RunError::Proxy(e) => e,
            RunError::DropPrivileges(e) => e,
            RunError::Landlock(e) => e,
            RunError::Seccomp(e) => e,
            RunError::Start(e) => e,
            RunError::Serve(e) => e,
            RunError::Stopped(e) => e,
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
    /// The preload's hooks cannot follow the command, and the policy does
    /// not allow that ([`unhooked`]).
    Unhooked(Unfollowable),
    /// The command could not be read to check it.
    Inspect(Call<std::io::Error>),
    /// `getrandom` failed for a `[harness] random_env` variable.
    Random(std::io::Error),
}

impl fmt::Display for SanitizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanitizeError::CloseRange(e) => write!(f, "close_range(3, ~0): {e}"),
            SanitizeError::NotFound(c) => {
                write!(f, "{c}: command not found (nothing was started)")
            }
            SanitizeError::Nul(s) => write!(f, "{s:?} contains a NUL byte"),
            SanitizeError::Unhooked(u) => write!(f, "{u}"),
            SanitizeError::Inspect(c) => write!(
                f,
                "cannot check whether the preload can follow the command: {c}. Fix: make it readable, or set `unhooked = \"allow\"` under [harness] in the policy"
            ),
            SanitizeError::Random(e) => {
                write!(f, "getrandom (for the [harness] random_env variables): {e}")
            }
        }
    }
}

impl std::error::Error for SanitizeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SanitizeError::CloseRange(e) | SanitizeError::Random(e) => Some(e),
            SanitizeError::Inspect(c) => Some(c),
            SanitizeError::NotFound(_) | SanitizeError::Nul(_) | SanitizeError::Unhooked(_) => None,
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
    // AGENT_VAULT_LOG is agent-init's: the harness and its tools do not see it.
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os()
        .filter(|(k, _)| k != crate::log::LOG_ENV)
        .collect();
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
    let random = random_secrets(policy, &mut env)?;
    let cmd = &command[0];
    let path = crate::path_search::resolve_command(cmd, env.get(std::ffi::OsStr::new("PATH")))
        .ok_or_else(|| SanitizeError::NotFound(cmd.to_string_lossy().into_owned()))?;
    let hooks = check_hooks(policy, &path, env.get(std::ffi::OsStr::new("PATH")))?;
    let mut argv = Vec::new();
    for a in command {
        argv.push(
            CString::new(a.as_bytes())
                .map_err(|_| SanitizeError::Nul(a.to_string_lossy().into_owned()))?,
        );
    }
    info!(
        "[1/8] sanitize: closed {closed} inherited fds; harness env {} variables ({} from the policy, {random} random secrets); command {} ({hooks})",
        env.len(),
        policy.harness.env.len(),
        path.display()
    );
    Ok(Sanitized { env, path, argv })
}

/// `[harness] random_env`: each variable the environment lacks gets 32
/// fresh random bytes as 64 hex digits. Returns how many were set.
fn random_secrets(
    policy: &policy::Policy,
    env: &mut BTreeMap<OsString, OsString>,
) -> Result<usize, SanitizeError> {
    let mut set = 0;
    for name in &policy.harness.random_env {
        if env.contains_key(std::ffi::OsStr::new(name)) {
            continue;
        }
        let mut bytes = [0u8; 32];
        sys::getrandom(&mut bytes).map_err(SanitizeError::Random)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        env.insert(name.into(), hex.into());
        set += 1;
    }
    Ok(set)
}

/// Can the preload follow the command ([`unhooked::inspect`])? Refused
/// unless the policy says `unhooked = "allow"`, which only warns. Returns
/// the phrase for the step's log line.
fn check_hooks(
    policy: &policy::Policy,
    path: &std::path::Path,
    path_var: Option<&OsString>,
) -> Result<String, SanitizeError> {
    let allow = policy.harness.unhooked == policy::Unhooked::Allow;
    match unhooked::inspect(path, path_var) {
        Ok(Verdict::Hooked { loader }) => Ok(format!("loader {}", loader.display())),
        Ok(Verdict::NotExecutable) => Ok("not executable".into()),
        Ok(Verdict::Unhooked(u)) if allow => {
            warning!("unhooked = \"allow\": {}", u.why_line());
            Ok("UNHOOKED, allowed by the policy".into())
        }
        Ok(Verdict::Unhooked(u)) => Err(SanitizeError::Unhooked(u)),
        Err(e) if allow => {
            warning!("unhooked = \"allow\": cannot check the command: {e}");
            Ok("not checked, unhooked allowed by the policy".into())
        }
        Err(e) => Err(SanitizeError::Inspect(e)),
    }
}

/// After seeding: a `tool_read_only` path that is missing or an empty
/// directory holds no program yet (say Claude Code's install prefix, a
/// fresh volume, before its first-start install). Left read-only for tools,
/// the install (`npm`, a tool of the harness) could never write it; so for
/// this start it gets no rule, with one warning, and from the next start on
/// it is read-only for tools. A tool running while the program is first
/// installed can therefore still change it (README: what it does not stop).
fn uninstalled_programs_step(policy: &mut policy::Policy) {
    policy.filesystem.tool_read_only.retain(|p| {
        let present = match std::fs::read_dir(p) {
            Ok(mut entries) => entries.next().is_some(),
            // A file, or a directory we cannot list: there is something to protect.
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if !present {
            warning!(
                "tool_read_only {}: missing or empty, so tools may write it during this start (a first install); it is read-only for tools from the next start",
                p.display()
            );
        }
        present
    });
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

/// Step 3 (before the fork): when the audit sink is a file or the log,
/// bind the state directory's audit socket, where every process sends its
/// records (agent-init writes them: [`crate::audit_sink`]).
fn audit_step(
    policy: &policy::Policy,
    state: &StateDir,
) -> Result<Option<AuditSocket>, RecordError> {
    let target = match &policy.audit {
        policy::AuditSink::File(f) => audit_sink::Target::File {
            path: f.clone(),
            max_bytes: policy.audit_max_bytes,
        },
        policy::AuditSink::Log => audit_sink::Target::Log,
        policy::AuditSink::Off | policy::AuditSink::Stderr => return Ok(None),
    };
    audit_sink::bind(&state.dir, &target)
        .map(Some)
        .map_err(RecordError::AuditSocket)
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
            error!("{e}");
            e.exit_code()
        }
    }
}

/// The steps in order. Steps 4 to 7 run in the harness child
/// ([`child_main`]); the rest here, in agent-init.
fn run_inner(args: RunArgs) -> Result<i32, RunError> {
    // From the start, not only once the harness runs: agent-init's memory
    // and /proc/<pid>/environ hold the harness's secrets, and in host mode
    // the harness and its tools share its uid (the harness's own exec
    // resets its dumpable flag).
    privs::no_dumps();
    let root = nix::unistd::geteuid().is_root();
    let missing = if root {
        preflight_step().map_err(RunError::Preflight)?
    } else {
        MissingCaps(Vec::new())
    };
    let (mut policy, who) = load_step(&args, root).map_err(RunError::Config)?;
    proxy::check_identity(&policy, &who, root).map_err(RunError::Proxy)?;

    // A TERM or INT held since `main` began ([`stop::hold`]) stops us
    // between steps (and, in step 2, between files), before anything starts.
    stop::check().map_err(RunError::Stopped)?;
    // 1
    let mut sanitized = sanitize(&policy, &who, root, &args.command).map_err(RunError::Sanitize)?;
    // 2
    seed_step(&policy, &who, root).map_err(|e| match e {
        SeedError::Stopped(_) | SeedError::HardLinks(_) => RunError::Seed(e),
        _ if missing.0.iter().any(|n| !n.for_drop && n.name != "KILL") => {
            RunError::SeedWithoutCaps(e, missing.clone())
        }
        _ => RunError::Seed(e),
    })?;
    // 2 (the harness's program files that are there to protect)
    uninstalled_programs_step(&mut policy);
    // 3 (the launchers' files, which the policy image carries)
    launchers::identify_step(&mut policy).map_err(RunError::Launchers)?;
    // 3 (files)
    let state = record_step(&mut policy).map_err(RunError::Record)?;
    let audit = audit_step(&policy, &state).map_err(RunError::Record)?;
    // Prepare 5 and 6 while privileged, so their errors stop us before the fork.
    let landlock = landlock_layer::prepare(&policy).map_err(RunError::Landlock)?;
    let seccomp = seccomp_layer::compile(&policy).map_err(RunError::Seccomp)?;
    // 3 (launchers: where a trusted process's child asks to be recorded)
    let registry =
        launch_step(&policy, &state, &landlock, who.uid).map_err(RunError::LaunchRegistry)?;
    // 3 (proxy: the real credentials leave the harness's reach)
    let mut proxy =
        proxy::proxy_step(&policy, &who, root, &mut sanitized.env).map_err(RunError::Proxy)?;
    // 7 (the preload, while the environment is ours to change)
    let preload_note = preload::inject(&mut sanitized.env);
    let layers = layers_words(&landlock, seccomp.is_some(), &preload_note, proxy.is_some());
    let command = sanitized.path.clone();
    let uid = who.uid;

    let set = pid1::block_signals().map_err(RunError::Serve)?;
    // The last look before the fork; from here on a stop goes to the harness.
    stop::check().map_err(RunError::Stopped)?;
    let plan = ChildPlan {
        who,
        switch: root,
        landlock,
        seccomp,
        sanitized,
        preload_note,
    };
    let child = fork_harness(plan).map_err(RunError::Start)?;
    let pid = child.pid;
    // 3 (pid)
    let harness = record_pid_step(&state, pid).map_err(RunError::Record)?;
    if let Some(code) = child.release() {
        return Ok(code);
    }
    notice!(
        "harness {} started as pid {pid} (uid {uid}) under {layers}",
        command.display()
    );
    // 8
    let served = serve_step(
        &args,
        root,
        &set,
        harness,
        Sinks {
            audit,
            launches: registry,
        },
        proxy.as_mut(),
    );
    // The harness has exited: the record must not outlive it.
    if let Err(e) = state.remove_pid() {
        warning!(
            "{e}; a later process with pid {pid} is still no harness (its start time differs)"
        );
    }
    served.map_err(RunError::Serve)
}

/// Before the steps, as root: refuse a start that cannot work (started by
/// a container init, no capability to drop privileges); warn about missing
/// capabilities seeding may need (CAP_KILL has its own warning).
fn preflight_step() -> Result<MissingCaps, PreflightError> {
    let missing = preflight::check()?;
    let seeding = MissingCaps(
        missing
            .0
            .iter()
            .filter(|n| n.name != "KILL")
            .copied()
            .collect(),
    );
    if !seeding.0.is_empty() {
        warning!("{seeding}");
    }
    Ok(missing)
}

/// The layers a start's one line names.
fn layers_words(landlock: &Outcome, seccomp: bool, preload_note: &str, proxy: bool) -> String {
    let mut on = Vec::new();
    if matches!(landlock, Outcome::Ready(_)) {
        on.push("landlock");
    }
    if seccomp {
        on.push("seccomp");
    }
    if !preload_note.starts_with("WITHOUT") {
        on.push("the vault preload");
    }
    if proxy {
        on.push("the credential proxy");
    }
    if on.is_empty() {
        "no layer".into()
    } else {
        on.join(", ")
    }
}

/// The policy and the harness's identity, checked for `run`: a root
/// agent-init never starts a root harness. Says which policy applies and
/// warns about what will not work.
fn load_step(args: &RunArgs, root: bool) -> Result<(policy::Policy, Identity), LoadError> {
    let loaded = config::load(args.policy.as_deref(), args.user.as_deref(), !root)?;
    if !root && args.user.is_some() {
        warning!("not root: --user is ignored; the harness keeps this process's user");
    }
    let who = loaded.identity.clone().map_err(LoadError::User)?;
    if root && who.uid == 0 {
        return Err(LoadError::User(config::UserError::RootHarness));
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
    Ok((policy, who))
}

/// The harness child, forked and waiting for "go".
struct Forked {
    pid: Pid,
    /// Closing (or writing to) it lets the child go on.
    go: std::os::fd::OwnedFd,
    /// Closes at exec (CLOEXEC); a byte on it means the child failed.
    status: std::os::fd::OwnedFd,
}

/// Fork the harness child ([`child_main`]), which waits on the "go" pipe
/// in its own process group.
fn fork_harness(plan: ChildPlan) -> Result<Forked, StartError> {
    let (go_r, go_w) = nix::unistd::pipe().call("pipe").map_err(StartError::Call)?;
    let (st_r, st_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .call("pipe2")
        .map_err(StartError::Call)?;
    let parent = Pid::this();
    let pid = match sys::fork() {
        Ok(ForkResult::Child) => {
            drop(go_w);
            drop(st_r);
            child_main(plan, parent, go_r, st_w)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(err) => return Err(StartError::Call(Call::of("fork", err))),
    };
    drop(plan);
    drop(go_r);
    drop(st_w);
    let _ = nix::unistd::setpgid(pid, pid);
    Ok(Forked {
        pid,
        go: go_w,
        status: st_r,
    })
}

/// Step 3's last file: the harness's pid. A child agent-init could not
/// record is killed before it starts.
fn record_pid_step(state: &StateDir, child: Pid) -> Result<HarnessRecord, RecordError> {
    let record = match state.write_pid(child.as_raw()) {
        Ok(r) => r,
        Err(e) => {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            return Err(e);
        }
    };
    info!(
        "[3/8] record: harness pid {child} in {}; effective policy {}",
        state.pid_file().display(),
        state.policy_file().display()
    );
    Ok(record)
}

impl Forked {
    /// Say "go", then wait until the child execs (the status pipe closes)
    /// or fails. `Some(code)`: it failed (and already said why); its exit
    /// code is agent-init's.
    fn release(self) -> Option<i32> {
        let mut go = std::fs::File::from(self.go);
        let _ = go.write_all(b"g");
        drop(go);
        let mut st = std::fs::File::from(self.status);
        let mut buf = [0u8; 1];
        let failed = matches!(st.read(&mut buf), Ok(1));
        drop(st);
        if !failed {
            return None;
        }
        let code = loop {
            match nix::sys::wait::waitpid(self.pid, None) {
                Ok(ws) => {
                    if let Some(c) = pid1::exit_code(ws) {
                        break c;
                    }
                }
                Err(nix::Error::EINTR) => continue,
                Err(_) => break EXIT_SETUP,
            }
        };
        Some(code)
    }
}

/// What agent-init receives on the state directory's sockets while it serves.
struct Sinks {
    audit: Option<AuditSocket>,
    launches: Option<Registry>,
}

/// Step 3 (launchers): when `[harness] launches` identified a file, make
/// `launched/` and bind the launch socket ([`launch_registry::bind`]).
/// Without Landlock enforced the tool-layer probe proves nothing, so
/// launchers are refused (a warning; the harness still starts, and every
/// program it launches runs as a tool).
fn launch_step(
    policy: &policy::Policy,
    state: &StateDir,
    landlock: &Outcome,
    harness_uid: u32,
) -> Result<Option<Registry>, LaunchError> {
    if policy.harness.launcher_files.is_empty() {
        return Ok(None);
    }
    if !matches!(landlock, Outcome::Ready(_)) {
        warning!(
            "[harness] launches: refused, every launched program runs as a tool: Landlock is {}, and without it no process can prove it is outside the tool layer. Fix: set [landlock] mode = \"required\" on a kernel with Landlock (5.13+)",
            if matches!(landlock, Outcome::Off) {
                "off (policy)"
            } else {
                "not available on this kernel"
            }
        );
        return Ok(None);
    }
    let r = launch_registry::bind(state, policy, harness_uid)?;
    if r.is_some() {
        info!(
            "[3/8] record: launch socket {}; records in {}",
            state.dir.join(policy::layout::LAUNCH_SOCKET.name).display(),
            state.dir.join(policy::layout::LAUNCHED_DIR.name).display()
        );
    }
    Ok(r)
}

/// Step 8: agent-init keeps only what it needs to signal and reap, then
/// serves as PID 1 until the harness exits.
fn serve_step(
    args: &RunArgs,
    root: bool,
    set: &SigSet,
    harness: HarnessRecord,
    sinks: Sinks,
    proxy: Option<&mut proxy::spawn::Supervisor>,
) -> Result<i32, ServeError> {
    let child = Pid::from_raw(harness.pid);
    privs::restrict_self(proxy.is_some());
    // After the drop: the receiving threads inherit the restricted state.
    if let Some(r) = sinks.launches
        && let Err(e) = r.serve(harness)
    {
        warning!("{e}; every launched program runs as a tool");
    }
    let sink = sinks.audit.and_then(|a| {
        a.serve()
            .map_err(|e| warning!("{e}; denial records are not written"))
            .ok()
    });
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
    let served = pid1::serve(
        set,
        Serve {
            harness: child,
            process_group: args.process_group,
            grace: args.grace,
        },
        proxy.map(|p| p as &mut dyn pid1::Supervised),
    );
    if let Some(s) = sink {
        s.flush();
    }
    served
}

/// The harness child: steps 4 to 7. Never returns.
fn child_main(
    plan: ChildPlan,
    parent: Pid,
    go: std::os::fd::OwnedFd,
    status: std::os::fd::OwnedFd,
) -> ! {
    take_terminal();
    let mut status = std::fs::File::from(status);
    let mut fail = |e: RunError| -> ! {
        error!("{e}");
        let _ = status.write_all(b"x");
        std::process::exit(e.exit_code());
    };
    let mut g = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut g), Ok(1)) {
        // agent-init could not record us: do not start.
        std::process::exit(EXIT_SETUP);
    }
    // 4
    if let Err(e) = drop_step(&plan.who, plan.switch) {
        fail(RunError::DropPrivileges(e));
    }
    die_with(parent);
    // 5
    if let Err(e) = landlock_step(plan.landlock) {
        fail(RunError::Landlock(e));
    }
    // 6
    if let Err(e) = seccomp_step(plan.seccomp) {
        fail(RunError::Seccomp(e));
    }
    // 7
    let e = start_step(&plan.sanitized, &plan.preload_note);
    fail(RunError::Start(e))
}

/// The child's signals and process group as a started harness's: nothing
/// blocked, SIGPIPE default, its own process group, and the terminal's
/// foreground (as tini does, when stdin is a tty).
fn take_terminal() {
    pid1::unblock_all();
    let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGPIPE, false);
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGTTOU, true);
        let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpid());
        let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGTTOU, false);
    }
}

/// Step 4.
fn drop_step(who: &Identity, switch: bool) -> Result<(), PrivError> {
    let line = privs::drop_privileges(who, switch)?;
    info!("[4/8] drop privileges: {line}");
    Ok(())
}

/// SIGKILL when agent-init dies; set after the uid change (commit_creds
/// clears it). Exits when agent-init is already gone.
fn die_with(parent: Pid) {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(EXIT_SETUP);
    }
}

/// Step 5.
fn landlock_step(landlock: Outcome) -> Result<(), LandlockError> {
    match landlock {
        Outcome::Off => info!("[5/8] landlock: off (policy)"),
        Outcome::Unavailable => {
            warning!("[5/8] landlock: NOT enforced: this kernel has no Landlock (best-effort)")
        }
        Outcome::Ready(p) => {
            let line = p.enforce()?;
            info!("[5/8] landlock: {line}");
        }
    }
    Ok(())
}

/// Step 6.
fn seccomp_step(filters: Option<seccomp_layer::Filters>) -> Result<(), SeccompError> {
    let line = seccomp_layer::apply_filters(filters)?;
    info!("[6/8] seccomp: {line}");
    Ok(())
}

/// Step 7: exec the harness with its environment. Returns only on failure
/// (a path with a NUL byte exits 127 here, as before).
fn start_step(s: &Sanitized, preload_note: &str) -> StartError {
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
        "[7/8] start: exec {} as pid {}; {preload_note}",
        s.path.display(),
        std::process::id(),
    );
    let Ok(path) = CString::new(s.path.as_os_str().as_bytes()) else {
        std::process::exit(EXIT_NOTFOUND)
    };
    let errno = match nix::unistd::execve(&path, &s.argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    StartError::Exec {
        path: s.path.clone(),
        errno,
    }
}
