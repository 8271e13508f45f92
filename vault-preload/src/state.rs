//! One-time initialisation: where the state is, who the harness is, the policy.
//!
//! [`get`] is called by every hook and by the constructor; the first caller
//! builds the [`State`]. **This one-time step allocates** (it reads and
//! parses the policy, builds the matcher and the tool-layer input); nothing
//! after it does. Files are read with raw system calls, so initialisation
//! never re-enters our own `open` hooks.
//!
//! Nothing in the environment redirects the state directory or the policy:
//! - state: `/run/agent-vault/` when it is a root-owned directory holding
//!   `harness.pid`; else `/tmp/agent-vault-<uid>/` when owned by this uid or
//!   root and not group- or world-writable; else none;
//! - policy: `<state>/policy.bin` (compact, written by agent-init), else
//!   `<state>/policy.toml`, else `/etc/agent-vault/policy.toml`
//!   (expanded with this process's environment and home), else the built-in
//!   default. A policy that does not load falls back to the built-in one
//!   (one line on stderr).

use crate::sys;
use core::sync::atomic::{AtomicI64, AtomicPtr, Ordering};
use policy::landlock_plan::ToolLayerInput;
use policy::load::VaultKind;
use policy::matcher::{FileId, VaultMatcher};
use policy::{AuditSink, EnforceMode, ExpandContext, Policy};

/// Everything the hooks need, built once per process image.
pub struct State {
    /// The harness's pid (0: none recorded).
    pub harness_pid: i32,
    /// Our pid when this state was built.
    pub init_pid: i32,
    /// The process held CAP_SYS_ADMIN when it started (a privileged
    /// `docker exec`: it can rewrite `/etc/ld.so.preload`), or is PID 1 (the
    /// container's init, agent-init): the preload neither checks nor
    /// restricts it.
    pub privileged: bool,
    pub matcher: VaultMatcher,
    /// Devices on which a vault entry (or, for a missing one, its nearest
    /// existing ancestor) lives: an fd on one of these is checked by path.
    pub watched_devs: Vec<u64>,
    pub tool: ToolLayerInput,
    /// agent-init's probe directory, NUL-terminated.
    pub probe: Option<Vec<u8>>,
    /// Vault `dir` entries, NUL-terminated (fallback probes).
    pub vault_dirs: Vec<Vec<u8>>,
    pub secret_env: Vec<Vec<u8>>,
    pub audit: Audit,
    pub landlock: EnforceMode,
    /// A vault `file` entry has more than one link (a hard link elsewhere
    /// that Landlock would not catch): always use the full check.
    pub file_aliases: bool,
    /// The last component of each vault entry: a path that contains none of
    /// them cannot normalize into a vault entry (cheap pre-filter).
    pub basenames: Vec<Vec<u8>>,
}

/// Set when this process is known to be under the tool layer (the
/// constructor's probe said so, or this process applied it). Inherited by
/// fork, as the Landlock domain is; reset by exec (a new image).
pub static UNDER_TOOL_LAYER: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Where denial records go.
pub enum Audit {
    Off,
    Stderr,
    /// NUL-terminated path.
    File(Vec<u8>),
}

impl State {
    /// This process is the harness (checked every time: never cached across fork).
    #[inline]
    pub fn is_harness(&self) -> bool {
        self.harness_pid > 0 && sys::getpid() == self.harness_pid
    }

    /// A process that started as the harness and now has another pid: a
    /// forked (or vforked) child of the harness that has not exec'd yet.
    #[inline]
    pub fn is_harness_child(&self) -> bool {
        self.harness_pid > 0 && self.init_pid == self.harness_pid && !self.is_harness()
    }

    /// The open hooks check this process. A process that did not start as
    /// the harness never becomes it (neither it nor its forks have the
    /// harness's pid), so tools pay no `getpid` here.
    #[inline]
    pub fn guarded(&self) -> bool {
        if self.privileged {
            return false;
        }
        if self.harness_pid <= 0 || self.init_pid != self.harness_pid {
            return true;
        }
        !self.is_harness()
    }

    /// The light check applies: this process is under the tool layer, so the
    /// kernel already refuses every vault entry (reads, writes, truncation,
    /// whatever the name), and no vault `file` entry has another link. The
    /// hooks then only match the path as given (no system call) and record
    /// the kernel's refusals; otherwise they also `fstat` and, on a watched
    /// device, read the fd's real path.
    #[inline]
    pub fn light(&self) -> bool {
        !self.file_aliases && UNDER_TOOL_LAYER.load(Ordering::Relaxed)
    }

    /// False when `path` cannot name a vault entry lexically: it contains no
    /// entry's last component (normalization only removes components).
    #[inline]
    pub fn may_match(&self, path: &[u8]) -> bool {
        self.basenames
            .iter()
            .any(|b| !b.is_empty() && path.windows(b.len()).any(|w| w == b.as_slice()))
    }

    pub fn watched(&self, dev: u64) -> bool {
        self.watched_devs.contains(&dev)
    }
}

static STATE: AtomicPtr<State> = AtomicPtr::new(core::ptr::null_mut());
/// 0: not started; > 0: the tid of the thread building the state.
static BUILDER: AtomicI64 = AtomicI64::new(0);

/// The process state, built on first use. `None` only when called again by
/// the thread that is building it (re-entry): callers fail closed.
#[inline]
pub fn get() -> Option<&'static State> {
    let p = STATE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null STATE points to a leaked Box that is never freed
        // or mutated after publication.
        return Some(unsafe { &*p });
    }
    slow_get()
}

#[cold]
fn slow_get() -> Option<&'static State> {
    let me = i64::from(sys::gettid());
    loop {
        let p = STATE.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: as in `get`.
            return Some(unsafe { &*p });
        }
        match BUILDER.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let s: &'static State = Box::leak(Box::new(build()));
                STATE.store(s as *const State as *mut State, Ordering::Release);
                return Some(s);
            }
            Err(owner) if owner == me => return None,
            Err(owner) => {
                // Is the builder still a thread of this process? After a
                // fork during initialisation it is not: take over.
                // SAFETY: tgkill with signal 0 only checks existence.
                let alive =
                    unsafe { libc::syscall(libc::SYS_tgkill, sys::getpid(), owner as i32, 0) } == 0;
                if !alive {
                    let _ = BUILDER.compare_exchange(owner, 0, Ordering::AcqRel, Ordering::Acquire);
                } else {
                    // SAFETY: sched_yield has no arguments.
                    unsafe { libc::sched_yield() };
                }
            }
        }
    }
}

/// Read a whole (small) file with raw system calls.
pub fn read_file(path: &[u8]) -> Option<Vec<u8>> {
    let fd = sys::openat(
        libc::AT_FDCWD,
        path,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        0,
    );
    if fd < 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = sys::read(fd, &mut buf);
        if n == -(libc::EINTR as isize) {
            continue;
        }
        if n < 0 {
            sys::close(fd);
            return None;
        }
        if n == 0 || out.len() > (1 << 20) {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    sys::close(fd);
    Some(out)
}

fn lstat(path: &[u8]) -> Option<libc::stat> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    (sys::fstatat(libc::AT_FDCWD, path, &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0).then_some(st)
}

fn stat(path: &[u8]) -> Option<libc::stat> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    (sys::fstatat(libc::AT_FDCWD, path, &mut st, 0) == 0).then_some(st)
}

fn nul(mut v: Vec<u8>) -> Vec<u8> {
    v.push(0);
    v
}

/// The state directory (without NUL), found without trusting the environment.
pub fn state_dir(uid: u32) -> Option<Vec<u8>> {
    let run = policy::STATE_DIR.as_bytes().to_vec();
    if let Some(st) = lstat(&nul(run.clone()))
        && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && st.st_uid == 0
    {
        let mut pidf = run.clone();
        pidf.extend_from_slice(b"/harness.pid\0");
        if lstat(&pidf).is_some() {
            return Some(run);
        }
    }
    let host = policy::host_state_dir(uid);
    let host = host.as_os_str().as_encoded_bytes().to_vec();
    let st = lstat(&nul(host.clone()))?;
    let ok = st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && (st.st_uid == uid || st.st_uid == 0)
        && st.st_mode & 0o022 == 0;
    ok.then_some(host)
}

fn parse_pid(bytes: &[u8]) -> i32 {
    let s = core::str::from_utf8(bytes).unwrap_or("").trim();
    s.parse::<i32>().ok().filter(|p| *p > 0).unwrap_or(0)
}

/// The home of `uid` from `/etc/passwd` (read raw: `getpwuid` would open
/// files through our own hooks during initialisation).
fn passwd_home(uid: u32) -> Option<std::path::PathBuf> {
    let text = read_file(b"/etc/passwd\0")?;
    for line in text.split(|&b| b == b'\n') {
        let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if f.len() >= 6 && core::str::from_utf8(f[2]).ok()?.parse::<u32>().ok() == Some(uid) {
            return Some(std::path::PathBuf::from(
                core::str::from_utf8(f[5]).ok()?.to_string(),
            ));
        }
    }
    None
}

fn process_ctx(uid: u32) -> ExpandContext {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .filter(|h| h.is_absolute())
        .or_else(|| passwd_home(uid));
    ExpandContext::from_process_env(home)
}

fn load_policy(state: Option<&[u8]>, uid: u32) -> Policy {
    // agent-init's effective policy in compact form: the common case, and
    // the cheap one (no TOML parse in every process of the container).
    if let Some(dir) = state {
        let mut p = dir.to_vec();
        p.extend_from_slice(b"/policy.bin");
        if let Some(bytes) = read_file(&nul(p.clone())) {
            match Policy::from_compact(&bytes) {
                Ok(policy) => return policy,
                Err(e) => {
                    let msg = format!(
                        "agent-vault: {}: {e}; trying policy.toml\n",
                        String::from_utf8_lossy(&p)
                    );
                    sys::write_all(2, msg.as_bytes());
                }
            }
        }
    }
    let mut tried: Option<(String, Vec<u8>)> = None;
    if let Some(dir) = state {
        let mut p = dir.to_vec();
        p.extend_from_slice(b"/policy.toml");
        if let Some(text) = read_file(&nul(p.clone())) {
            tried = Some((String::from_utf8_lossy(&p).into_owned(), text));
        }
    }
    if tried.is_none()
        && let Some(text) = read_file(&nul(policy::DEFAULT_POLICY_PATH.as_bytes().to_vec()))
    {
        tried = Some((policy::DEFAULT_POLICY_PATH.to_string(), text));
    }
    // agent-init's effective policy is fully expanded: when a text has no
    // `$` or `~`, expansion reads nothing, so skip collecting the environment.
    let needs_ctx = tried
        .as_ref()
        .is_none_or(|(_, t)| t.iter().any(|&b| b == b'$' || b == b'~'));
    let ctx = if needs_ctx {
        process_ctx(uid)
    } else {
        ExpandContext::default()
    };
    if let Some((name, text)) = tried {
        let loaded = core::str::from_utf8(&text)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|t| policy::load_str(t, &name, &ctx).map_err(|e| e.to_string()));
        match loaded {
            Ok(p) => return p,
            Err(e) => {
                let msg = format!("agent-vault: {e}; using the built-in policy\n");
                sys::write_all(2, msg.as_bytes());
            }
        }
    }
    let ctx = if needs_ctx { ctx } else { process_ctx(uid) };
    match Policy::builtin(&ctx) {
        Ok(p) => p,
        // The built-in policy is tested to load; if expansion ever fails,
        // load it with an empty context rather than run without a vault.
        Err(_) => Policy::builtin(&ExpandContext::default()).unwrap_or_else(|_| sys::exit_now(126)),
    }
}

fn build() -> State {
    let uid = sys::getuid();
    let init_pid = sys::getpid();
    // CAP_SYS_ADMIN: can rewrite /etc/ld.so.preload, so checking it is theatre.
    // PID 1: the container's init, agent-init itself, which must seed the
    // vault as root before any harness exists (default Docker grants no
    // CAP_SYS_ADMIN). No tool can become PID 1: seccomp denies new PID
    // namespaces, and `docker exec` never starts one.
    let privileged = sys::cap_effective_low() & (1 << 21) != 0 || init_pid == 1;
    let dir = state_dir(uid);
    let harness_pid = dir
        .as_ref()
        .and_then(|d| {
            let mut p = d.clone();
            p.extend_from_slice(b"/harness.pid\0");
            let st = lstat(&p)?;
            // The pid file must not be writable by anyone but its owner (root or us).
            if st.st_mode & 0o022 != 0 || (st.st_uid != 0 && st.st_uid != uid) {
                return None;
            }
            read_file(&p)
        })
        .map(|b| parse_pid(&b))
        .unwrap_or(0);
    let policy = load_policy(dir.as_deref(), uid);

    let mut matcher = VaultMatcher::new(&policy);
    let mut ids = Vec::new();
    let mut watched_devs: Vec<u64> = Vec::new();
    let mut vault_dirs = Vec::new();
    let mut file_aliases = false;
    for (i, e) in policy.vault.iter().enumerate() {
        let path = e.path.as_os_str().as_encoded_bytes().to_vec();
        if e.kind == VaultKind::Dir && e.name != policy::PROBE_ENTRY {
            vault_dirs.push(nul(path.clone()));
        }
        let st = stat(&nul(path.clone()));
        if e.kind == VaultKind::File && st.is_some_and(|s| s.st_nlink > 1) {
            file_aliases = true;
        }
        let id = st.map(|st| FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        });
        matcher.set_id(i, id);
        let dev = match id {
            Some(id) => {
                ids.push(id);
                Some(id.dev)
            }
            None => {
                // The nearest existing ancestor's device: the entry may appear there.
                let mut p = e.path.clone();
                let mut dev = None;
                while p.pop() {
                    if let Some(st) = stat(&nul(p.as_os_str().as_encoded_bytes().to_vec())) {
                        dev = Some(st.st_dev);
                        break;
                    }
                }
                dev
            }
        };
        if let Some(d) = dev
            && !watched_devs.contains(&d)
        {
            watched_devs.push(d);
        }
    }
    let mut tool = ToolLayerInput::new(&policy);
    tool.set_vault_ids(ids);
    let probe = policy
        .probe_dir()
        .map(|p| nul(p.as_os_str().as_encoded_bytes().to_vec()));
    let audit = match &policy.audit {
        AuditSink::Off => Audit::Off,
        AuditSink::Stderr => Audit::Stderr,
        AuditSink::File(p) => Audit::File(nul(p.as_os_str().as_encoded_bytes().to_vec())),
    };
    State {
        harness_pid,
        init_pid,
        privileged,
        matcher,
        watched_devs,
        tool,
        probe,
        vault_dirs,
        secret_env: policy
            .secret_env
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        audit,
        landlock: policy.landlock,
        file_aliases,
        basenames: policy
            .vault
            .iter()
            .filter_map(|e| e.path.file_name())
            .map(|n| n.as_encoded_bytes().to_vec())
            .collect(),
    }
}
