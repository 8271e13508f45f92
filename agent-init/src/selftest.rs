//! `agent-init self-test [--json]`: prove, from where a tool stands, that
//! every enabled layer holds.
//!
//! Run it inside the container (`docker exec CONTAINER agent-init
//! self-test`) or as a command *under* the harness (`agent-init run -- sh -c
//! 'agent-init self-test'`): one row per check. The effective policy is read
//! from agent-init's state directory (`/run/agent-vault`, else
//! `/tmp/agent-vault-<uid>`), so the rows cover exactly what the running
//! agent-init enforces. Secrets are never printed: rows only say whether an
//! operation succeeded.
//!
//! The tool layer keeps vault *directories* listable (Landlock's `read_dir`
//! on an ancestor reaches everything beneath it) and denies reading, creating,
//! linking or renaming *files* in them. So the tool-layer row read-opens
//! agent-init's probe file (`<state>/probe/probe`) with a raw `openat`
//! (`EACCES`: under the tool layer), and a `dir` entry is attacked through
//! the first regular file listed inside it, plus a create inside it; with no
//! file to attack those rows are skipped, not failed.
//!
//! The seed sources and `[filesystem] hidden` are attacked the same way
//! (libc read as `cat` does, raw `openat`): the base layer hides them from
//! the harness and every tool. Without Landlock those rows say that only the
//! file modes guard them.
//!
//! Positive controls: `/tmp` (and `/workspace` when it exists) is writable
//! (skipped when it holds a vault entry: the tool layer lets tools only list
//! such a directory), and every existing vault entry is owned by the
//! harness's uid (what a tool can observe of "the harness can read its
//! credential"; the harness's own read is proven by the integration tests).

mod hidden;
mod proxy;
mod report;
mod session;
mod vault;

use crate::sys;
use policy::AuditSink;
use policy::layout::{AUDIT_SOCKET, HARNESS_PID, POLICY_TOML, PROBE_FILE};
use policy::{EnforceMode, Policy, STATE_DIR, host_state_dir};
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use report::{Report, Status, errno_name, print_report};
use vault::attack_entry;

/// What self-test found about agent-init's state.
struct Context {
    policy: Policy,
    policy_from: String,
    harness_pid: Option<i32>,
}

fn find_context(explicit: Option<&Path>) -> Context {
    let uid = nix::unistd::getuid().as_raw();
    for dir in [PathBuf::from(STATE_DIR), host_state_dir(uid)] {
        let pf = dir.join(POLICY_TOML.name);
        if let Ok(mut p) = policy::load_file(&pf, &policy::ExpandContext::default()) {
            p.set_launcher_files(launchers_at_start(&dir));
            let harness_pid = std::fs::read(dir.join(HARNESS_PID.name))
                .ok()
                .and_then(|s| policy::layout::HarnessRecord::parse(&s))
                .map(|r| r.pid);
            return Context {
                policy: p,
                policy_from: pf.display().to_string(),
                harness_pid,
            };
        }
    }
    let root = nix::unistd::geteuid().is_root();
    match crate::config::load(explicit, None, !root) {
        Ok(l) => Context {
            policy: l.policy,
            policy_from: format!("{} (no agent-init state found)", l.source),
            harness_pid: None,
        },
        Err(e) => {
            crate::log::error!("{e}");
            std::process::exit(2);
        }
    }
}

/// The launchers agent-init identified at start, from the session's policy
/// image (the effective TOML holds only their paths); none when it cannot
/// be read.
fn launchers_at_start(dir: &Path) -> Vec<policy::LauncherFile> {
    let Ok(bytes) = std::fs::read(dir.join(policy::layout::POLICY_IMAGE.name)) else {
        return Vec::new();
    };
    let Ok(v) = policy::View::decode(&bytes) else {
        return Vec::new();
    };
    v.launchers()
        .map(|(p, id)| policy::LauncherFile {
            path: PathBuf::from(std::ffi::OsStr::from_bytes(p.bytes())),
            id,
        })
        .collect()
}

/// `[harness] launches`: each launcher, the file agent-init identified at
/// start, and whether that file is still the one at its path (a replaced
/// file is another file and launches nothing trusted), and whether the
/// session's launch socket is there (`state_dir`: without it, agent-init
/// refused launchers: Landlock is not enforced).
fn launchers_row(r: &mut Report, p: &Policy, state_dir: Option<&Path>) {
    if p.harness.launches.is_empty() {
        return;
    }
    let mut detail = String::new();
    for path in &p.harness.launches {
        let at_start = p.harness.launcher_files.iter().find(|f| &f.path == path);
        let now = std::fs::metadata(path).ok().map(|m| policy::FileId {
            dev: m.dev(),
            ino: m.ino(),
        });
        let what = match (at_start, now) {
            (None, _) => "not identified at start (nothing there, or no session)".to_string(),
            (Some(f), Some(n)) if f.id == n => {
                format!("device {} inode {}, unchanged", n.dev, n.ino)
            }
            (Some(f), _) => format!(
                "identified at start as device {} inode {}; the file there now is another, which launches nothing trusted",
                f.id.dev, f.id.ino
            ),
        };
        let _ = write!(detail, "{}: {what}; ", path.display());
    }
    let socket = state_dir.map(|d| d.join(policy::layout::LAUNCH_SOCKET.name));
    if socket.as_deref().is_some_and(Path::exists) {
        detail.push_str(
            "in force: a launcher the harness (or a launched harness) starts itself is a launched harness",
        );
    } else {
        detail.push_str(
            "not in force in this session (no launch socket: agent-init refuses launchers without Landlock); launched programs run as tools",
        );
    }
    r.add("info", "launchers", Status::Pass, detail);
}

fn status_field(pid: &str, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// The tool-layer row. Landlock's `read_dir` on an ancestor reaches
/// everything beneath it, so vault *directories* stay listable under the
/// tool layer and opening the probe directory proves nothing; what the tool
/// layer denies is reading a *file* inside a vault entry. So read-open
/// agent-init's probe file with a raw `openat` (no preload hook involved):
/// `EACCES` means this process is under the tool layer.
fn tool_layer_row(r: &mut Report, probe_dir: &Path, ll_on: bool) {
    let file = probe_dir.join(PROBE_FILE.name);
    let res = sys::raw_openat(libc::AT_FDCWD, &cpath(&file), libc::O_RDONLY);
    let (status, what) = match &res {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            (Status::Pass, "EACCES: under the tool layer".to_string())
        }
        Ok(_) => (Status::Fail, "readable: NOT under the tool layer".into()),
        Err(e) => (Status::Fail, format!("{}: cannot tell", errno_name(e))),
    };
    r.add(
        "landlock",
        "tool layer (probe file denied)",
        if ll_on { status } else { Status::Skip },
        format!("{} (raw openat): {what}", file.display()),
    );
}

/// `agent-init self-test`: the rows in order (what this process is, the
/// layers, the harness, the attacks, the positive controls), then the
/// report. Exit 0 only when no row failed.
///
/// Started as PID 1 or as the harness, and not `as_tool`, it first makes
/// itself a tool ([`session`]); `policy` is the session's then.
pub fn main(json: bool, as_tool: bool, policy: Option<&Path>) -> i32 {
    let ctx = find_context(policy);
    if !as_tool {
        let alive = ctx
            .harness_pid
            .is_some_and(|h| Path::new(&format!("/proc/{h}")).exists());
        match session::position(ctx.harness_pid, alive) {
            session::Position::Pid1 => return session::start_session(json, policy),
            session::Position::Harness => return session::run_as_tool(json),
            session::Position::Elsewhere => {}
        }
    }
    let p = &ctx.policy;
    let mut r = Report::default();
    let me = std::process::id() as i32;
    position_rows(&mut r, &ctx, me);

    // Layers.
    preload_row(&mut r);
    let ll_on = landlock_rows(&mut r, p);
    let sc_on = seccomp_mode_row(&mut r, p);
    privilege_rows(&mut r);

    // The harness.
    let harness = find_harness(&ctx, me);
    harness_dumpable_row(&mut r, harness);
    unhooked_row(&mut r, p, harness);
    launchers_row(&mut r, p, Path::new(&ctx.policy_from).parent());

    // Attacks on the vault.
    for e in &p.vault {
        if e.name != policy::PROBE_ENTRY {
            attack_entry(&mut r, e, sc_on);
        }
    }
    // Attacks on the seed sources and the other hidden paths.
    hidden::hidden_rows(&mut r, p);
    harness_attack_rows(&mut r, harness.map(|h| h.pid));
    secret_env_rows(&mut r, p);
    secret_env_pattern_row(&mut r, p);
    tool_read_only_rows(&mut r, p);
    seccomp_probe_rows(&mut r, sc_on, harness.is_some());

    // Positive controls.
    writable_rows(&mut r, p, ll_on, me);
    if let Some(h) = harness {
        ownership_rows(&mut r, p, h.uid);
    }
    audit_row(&mut r, p);
    proxy::proxy_rows(&mut r, p);

    let ok = r.ok();
    print_report(&r, ok, json);
    if ok { 0 } else { 1 }
}

/// Which policy, which harness, and whether this process is the harness
/// itself (then the rows would prove nothing).
fn position_rows(r: &mut Report, ctx: &Context, me: i32) {
    r.add(
        "info",
        "policy",
        Status::Pass,
        format!(
            "{}; harness pid {}",
            ctx.policy_from,
            ctx.harness_pid.map_or("unknown".into(), |p| p.to_string())
        ),
    );
    if ctx.harness_pid == Some(me) {
        r.add(
            "info",
            "position",
            Status::Fail,
            "this process IS the harness (trusted) and --as-tool was given; run self-test without --as-tool, or as a tool: agent-init run -- sh -c 'agent-init self-test'",
        );
    }
}

/// The vault preload is mapped into this process, and how it got there.
fn preload_row(r: &mut Report) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let loaded = maps.contains("vault_preload");
    let listed = std::fs::read_to_string("/etc/ld.so.preload")
        .map(|s| s.contains("vault_preload"))
        .unwrap_or(false);
    let how = if listed {
        "listed in /etc/ld.so.preload"
    } else if std::env::var_os("LD_PRELOAD")
        .is_some_and(|v| v.as_bytes().windows(13).any(|w| w == b"vault_preload"))
    {
        "LD_PRELOAD (host mode)"
    } else {
        "not configured"
    };
    r.add(
        "preload",
        "vault preload loaded in this process",
        if loaded { Status::Pass } else { Status::Fail },
        how,
    );
}

/// The base layer restricts this process, and (with a probe) the tool layer
/// does too. Returns whether the policy enables Landlock.
fn landlock_rows(r: &mut Report, p: &Policy) -> bool {
    let abi = sys::landlock_abi();
    let ll_on = p.landlock != EnforceMode::Off;
    // A restricted process cannot open /proc/self/comm for writing unless the
    // policy grants write access to /proc (the default does not).
    let grants_proc = policy::explain::explain(p, Path::new("/proc/self/comm"))
        .tool
        .access
        .contains(policy::access::Access::WRITE_FILE);
    let comm = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/comm");
    let restricted = matches!(&comm, Err(e) if e.raw_os_error() == Some(libc::EACCES));
    r.add(
        "landlock",
        "base layer restricts this process",
        match (ll_on, grants_proc, restricted) {
            (false, _, _) => Status::Skip,
            (true, true, _) => Status::Skip,
            (true, false, true) => Status::Pass,
            (true, false, false) => Status::Fail,
        },
        format!(
            "kernel ABI {abi}; mode {}; {}",
            p.landlock.as_str(),
            if restricted {
                "restricted (write to /proc/self/comm denied)"
            } else {
                "not restricted"
            }
        ),
    );
    if let Some(probe) = p.probe_dir() {
        tool_layer_row(r, probe, ll_on);
    }
    ll_on
}

/// This process runs under a seccomp filter. Returns whether the policy
/// enables seccomp.
fn seccomp_mode_row(r: &mut Report, p: &Policy) -> bool {
    let sc_on = p.seccomp.mode != EnforceMode::Off;
    let mode = status_field("self", "Seccomp:").unwrap_or_default();
    let filters = status_field("self", "Seccomp_filters:").unwrap_or_default();
    r.add(
        "seccomp",
        "filter mode",
        match (sc_on, mode.as_str()) {
            (false, _) => Status::Skip,
            (true, "2") => Status::Pass,
            _ => Status::Fail,
        },
        format!(
            "Seccomp: {mode}, filters: {filters}; policy mode {}",
            p.seccomp.mode.as_str()
        ),
    );
    sc_on
}

/// No capability in any set but the bounding one, and `no_new_privs`.
fn privilege_rows(r: &mut Report) {
    let mut caps_detail = String::new();
    let mut caps_ok = true;
    for k in ["CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"] {
        let v = status_field("self", &format!("{k}:")).unwrap_or_default();
        let zero = v.trim_start_matches('0').is_empty();
        if !zero && k != "CapBnd" {
            caps_ok = false;
        }
        let _ = write!(caps_detail, "{k} {v} ");
    }
    r.add(
        "privileges",
        "capabilities empty",
        if caps_ok { Status::Pass } else { Status::Fail },
        caps_detail.trim_end(),
    );
    let nnp = status_field("self", "NoNewPrivs:").unwrap_or_default();
    r.add(
        "privileges",
        "no_new_privs",
        if nnp == "1" {
            Status::Pass
        } else {
            Status::Fail
        },
        format!("NoNewPrivs: {nnp}"),
    );
}

/// The running harness agent-init recorded (not this process).
#[derive(Debug, Clone, Copy)]
struct Harness {
    pid: i32,
    /// Its real uid, when `/proc/<pid>/status` says.
    uid: Option<u32>,
}

fn find_harness(ctx: &Context, me: i32) -> Option<Harness> {
    let pid = ctx
        .harness_pid
        .filter(|&h| h != me && Path::new(&format!("/proc/{h}")).exists())?;
    let uid = status_field(&pid.to_string(), "Uid:")
        .and_then(|s| s.split_whitespace().next().and_then(|u| u.parse().ok()));
    Some(Harness { pid, uid })
}

/// The harness is one the preload's spawn hooks follow
/// ([`crate::unhooked`]): with `unhooked = "refuse"` agent-init started
/// nothing else; with `"allow"`, look at the running harness's executable
/// when this process may (`/proc/<pid>/exe` of a non-dumpable harness is
/// root's with `CAP_SYS_PTRACE` only).
fn unhooked_row(r: &mut Report, p: &Policy, harness: Option<Harness>) {
    use crate::unhooked::{Verdict, inspect};
    let check = "harness followed by the spawn hooks";
    if p.harness.unhooked == policy::Unhooked::Refuse {
        r.add(
            "preload",
            check,
            Status::Pass,
            "unhooked = \"refuse\": agent-init starts only a dynamically linked glibc harness that is not Go",
        );
        return;
    }
    let exe = harness.map(|h| PathBuf::from(format!("/proc/{}/exe", h.pid)));
    let verdict = exe.as_deref().map(|e| inspect(e, None));
    let (status, detail) = match verdict {
        Some(Ok(Verdict::Hooked { loader })) => (
            Status::Pass,
            format!("unhooked = \"allow\", but this harness is followed (loader {})", loader.display()),
        ),
        Some(Ok(Verdict::Unhooked(u))) => (
            Status::Fail,
            format!("unhooked = \"allow\": {}; its tools run outside the tool layer with the secret variables", u.why_line()),
        ),
        _ => (
            Status::Skip,
            "unhooked = \"allow\": cannot read the harness's executable to tell; a static, Go or musl harness's tools are not kept from the vault".into(),
        ),
    };
    r.add("preload", check, status, detail);
}

/// The harness is not dumpable: its `/proc/<pid>` files are root's.
fn harness_dumpable_row(r: &mut Report, harness: Option<Harness>) {
    match harness {
        Some(Harness {
            pid: h,
            uid: Some(u),
        }) if u != 0 => {
            // A non-dumpable process's /proc/<pid> entries are owned by root.
            let owner = std::fs::metadata(format!("/proc/{h}/environ"))
                .map(|m| m.uid())
                .ok();
            r.add(
                "preload",
                "harness non-dumpable",
                if owner == Some(0) {
                    Status::Pass
                } else {
                    Status::Fail
                },
                format!(
                    "/proc/{h}/environ owned by uid {} (harness uid {u})",
                    owner.map_or("?".into(), |o| o.to_string())
                ),
            );
        }
        Some(_) => r.add(
            "preload",
            "harness non-dumpable",
            Status::Skip,
            "harness runs as root: cannot tell",
        ),
        None => r.add(
            "preload",
            "harness non-dumpable",
            Status::Skip,
            "no running harness recorded",
        ),
    }
}

/// `/proc/<harness>/environ|mem|fd` and ptrace on the harness are denied.
fn harness_attack_rows(r: &mut Report, hpid: Option<i32>) {
    if let Some(h) = hpid {
        for f in ["environ", "mem", "fd"] {
            let p = format!("/proc/{h}/{f}");
            let res = if f == "fd" {
                std::fs::read_dir(&p).map(drop)
            } else {
                std::fs::File::open(&p).map(drop)
            };
            r.attack("harness", format!("open /proc/<harness>/{f}"), res);
        }
        let res = sys::ptrace_attach(h);
        r.attack("harness", "ptrace attach to the harness", res);
    } else {
        r.add(
            "harness",
            "/proc/<harness> and ptrace",
            Status::Skip,
            "no running harness recorded",
        );
    }
}

/// The policy's secret environment variables are not in this environment.
fn secret_env_rows(r: &mut Report, p: &Policy) {
    for name in &p.secret_env {
        let present = std::env::var_os(name).is_some();
        r.add(
            "preload",
            format!("secret env {name} absent"),
            if present { Status::Fail } else { Status::Pass },
            if present {
                "PRESENT in this tool's environment (value not shown)"
            } else {
                "absent"
            },
        );
    }
}

/// A tool cannot write into the harness's own program
/// (`filesystem.tool_read_only`): create a file in each directory, or open
/// each file for writing, with a raw `openat` (no preload hook decides).
fn tool_read_only_rows(r: &mut Report, p: &Policy) {
    for path in &p.filesystem.tool_read_only {
        let check = format!("write into {} (tool_read_only)", path.display());
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            r.add("landlock", check, Status::Skip, "does not exist");
            continue;
        };
        let (target, flags) = if meta.is_dir() {
            (
                path.join(vault::unique_name("program")),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            )
        } else {
            (path.clone(), libc::O_WRONLY)
        };
        let (status, detail) = match sys::raw_openat(libc::AT_FDCWD, &cpath(&target), flags) {
            Ok(fd) => {
                drop(fd);
                let cleanup = if meta.is_dir() {
                    match std::fs::remove_file(&target) {
                        Ok(()) => " (removed again)".to_string(),
                        Err(x) => format!(" (could not remove it: {})", errno_name(&x)),
                    }
                } else {
                    String::new()
                };
                (Status::Fail, format!("succeeded: NOT blocked{cleanup}"))
            }
            Err(x) if matches!(x.raw_os_error(), Some(libc::EACCES | libc::EROFS)) => {
                (Status::Pass, format!("blocked: {}", errno_name(&x)))
            }
            Err(x) => (Status::Fail, format!("{}: expected EACCES", errno_name(&x))),
        };
        r.add("landlock", check, status, detail);
    }
}

/// No variable of this environment matches a secret pattern (unless kept).
fn secret_env_pattern_row(r: &mut Report, p: &Policy) {
    if p.secret_env_patterns.is_empty() {
        return;
    }
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| !p.secret_env.contains(k) && p.is_secret_env(k))
        .collect();
    let detail = if present.is_empty() {
        "none present".to_string()
    } else {
        format!(
            "PRESENT in this tool's environment (values not shown): {}",
            present.join(", ")
        )
    };
    r.add(
        "preload",
        "secret env patterns absent",
        if present.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        detail,
    );
}

/// The seccomp deny-list, one probe each (harmless when they succeed).
fn seccomp_probe_rows(r: &mut Report, sc_on: bool, harness_running: bool) {
    let sc = |r: &mut Report, name: &str, res: std::io::Result<()>, want: i32| {
        let st = match (&res, sc_on) {
            (_, false) => Status::Skip,
            (Err(e), true) if e.raw_os_error() == Some(want) => Status::Pass,
            _ => Status::Fail,
        };
        let d = match &res {
            Ok(()) => "succeeded".to_string(),
            Err(e) => errno_name(e),
        };
        r.add("seccomp", name.to_string(), st, d);
    };
    let res = sys::raw_io_uring_setup().map(drop);
    sc(r, "io_uring_setup -> EPERM", res, libc::EPERM);
    let res = sys::raw_syscall2(libc::SYS_clone3, 0, 0).map(drop);
    sc(r, "clone3 -> ENOSYS", res, libc::ENOSYS);
    if cfg!(target_arch = "x86_64") {
        let res = sys::raw_syscall2(0x4000_0000 | libc::SYS_getpid, 0, 0).map(drop);
        sc(r, "x32 syscall number -> EPERM", res, libc::EPERM);
    }
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        let res = sys::ioctl_byte(null.as_raw_fd(), libc::TIOCSTI, b' ');
        sc(r, "ioctl TIOCSTI -> EPERM", res, libc::EPERM);
    }
    let res = in_child(|| sys::unshare(libc::CLONE_NEWUSER));
    r.attack("seccomp", "unshare user namespace", res);
    if !harness_running {
        let res = sys::ptrace_attach(nix::unistd::getppid().as_raw());
        r.attack("seccomp", "ptrace attach to parent", res);
    }
}

/// Positive control: `/tmp` (and `/workspace`) stay writable for tools.
fn writable_rows(r: &mut Report, p: &Policy, ll_on: bool, me: i32) {
    let mut dirs = vec![std::env::temp_dir()];
    if Path::new("/workspace").is_dir() {
        dirs.push(PathBuf::from("/workspace"));
    }
    for d in dirs {
        let f = d.join(format!(".agent-vault-selftest-{me}"));
        let res = std::fs::write(&f, b"ok")
            .and_then(|()| std::fs::read(&f))
            .and_then(|_| std::fs::remove_file(&f));
        // The tool layer grants only listing on a directory that holds a
        // vault entry (Landlock rights reach everything beneath a rule), so
        // a tool creating a file there is denied by design.
        let tool = policy::explain::explain(p, &d).tool;
        let may_create = !ll_on || tool.access.contains(policy::access::Access::MAKE_REG);
        let (status, detail) = match res {
            Ok(()) => (Status::Pass, "write, read, delete ok".to_string()),
            Err(e) if !may_create && e.raw_os_error() == Some(libc::EACCES) => (
                Status::Skip,
                format!(
                    "EACCES as the policy says: {}",
                    tool.reasons.join("; ").trim_start_matches("because ")
                ),
            ),
            Err(e) => (Status::Fail, e.to_string()),
        };
        r.add(
            "control",
            format!("{} writable", d.display()),
            status,
            detail,
        );
    }
}

/// Positive control: every existing vault entry is the harness user's.
fn ownership_rows(r: &mut Report, p: &Policy, huid: Option<u32>) {
    let Some(u) = huid else {
        return;
    };
    for e in p.vault.iter().filter(|e| e.name != policy::PROBE_ENTRY) {
        if let Ok(md) = std::fs::symlink_metadata(&e.path) {
            let ok = md.uid() == u || u == 0;
            r.add(
                "control",
                format!("harness owns {}", e.path.display()),
                if ok { Status::Pass } else { Status::Fail },
                format!("owner uid {}, harness uid {u}", md.uid()),
            );
        }
    }
}

/// Positive control: a tool can reach agent-init's audit socket (it
/// sends its denial records there; agent-init alone writes the file or its log).
/// `connect` on a datagram socket sends nothing: no record is written.
fn audit_row(r: &mut Report, p: &Policy) {
    if let AuditSink::File(_) | AuditSink::Log = &p.audit {
        let uid = nix::unistd::getuid().as_raw();
        let sock = [PathBuf::from(STATE_DIR), host_state_dir(uid)]
            .into_iter()
            .map(|d| d.join(AUDIT_SOCKET.name))
            .find(|s| s.exists())
            .unwrap_or_else(|| PathBuf::from(STATE_DIR).join(AUDIT_SOCKET.name));
        let res = std::os::unix::net::UnixDatagram::unbound().and_then(|u| u.connect(&sock));
        r.add(
            "control",
            format!("audit socket {} reachable", sock.display()),
            if res.is_ok() {
                Status::Pass
            } else {
                Status::Fail
            },
            match res {
                Ok(()) => "ok".into(),
                Err(e) => errno_name(&e),
            },
        );
    }
}

/// Run `f` in a forked child (for calls that would change this process).
fn in_child(f: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    match sys::fork() {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = match f() {
                Ok(()) => 0,
                Err(e) => e.raw_os_error().unwrap_or(255).min(254),
            };
            std::process::exit(code)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None)
        {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => {
                Err(std::io::Error::from_raw_os_error(c))
            }
            _ => Err(std::io::Error::other("child failed")),
        },
        Err(e) => Err(e.into()),
    }
}
