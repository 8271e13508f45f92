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
//! Positive controls: `/tmp` (and `/workspace` when it exists) is writable
//! (skipped when it holds a vault entry: the tool layer lets tools only list
//! such a directory), and every existing vault entry is owned by the
//! harness's uid (what a tool can observe of "the harness can read its
//! credential"; the harness's own read is proven by the integration tests).

use crate::sys;
use policy::layout::{HARNESS_PID, POLICY_TOML, PROBE_FILE};
use policy::{AuditSink, VaultEntry, VaultKind};
use policy::{EnforceMode, Policy, STATE_DIR, host_state_dir};
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

struct Row {
    layer: &'static str,
    check: String,
    status: Status,
    detail: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(
        &mut self,
        layer: &'static str,
        check: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) {
        self.rows.push(Row {
            layer,
            check: check.into(),
            status,
            detail: detail.into(),
        });
    }

    /// An attack row: `r` is the attack's outcome; denied is a pass.
    fn attack<T>(&mut self, layer: &'static str, check: impl Into<String>, r: std::io::Result<T>) {
        match r {
            Ok(_) => self.add(layer, check, Status::Fail, "succeeded: NOT blocked"),
            Err(e) => self.add(
                layer,
                check,
                Status::Pass,
                format!("blocked: {}", errno_name(&e)),
            ),
        }
    }
}

fn errno_name(e: &std::io::Error) -> String {
    let n = match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EXDEV) => "EXDEV",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ESRCH) => "ESRCH",
        Some(libc::EROFS) => "EROFS",
        Some(libc::EEXIST) => "EEXIST",
        _ => return e.to_string(),
    };
    n.to_string()
}

/// What self-test found about agent-init's state.
struct Context {
    policy: Policy,
    policy_from: String,
    harness_pid: Option<i32>,
}

fn find_context() -> Context {
    let uid = nix::unistd::getuid().as_raw();
    for dir in [PathBuf::from(STATE_DIR), host_state_dir(uid)] {
        let pf = dir.join(POLICY_TOML.name);
        if let Ok(p) = policy::load_file(&pf, &policy::ExpandContext::default()) {
            let harness_pid = std::fs::read_to_string(dir.join(HARNESS_PID.name))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            return Context {
                policy: p,
                policy_from: pf.display().to_string(),
                harness_pid,
            };
        }
    }
    let root = nix::unistd::geteuid().is_root();
    match crate::config::load(None, None, !root) {
        Ok(l) => Context {
            policy: l.policy,
            policy_from: format!("{} (no agent-init state found)", l.source),
            harness_pid: None,
        },
        Err(e) => {
            eprintln!("agent-init: error: {e}");
            std::process::exit(2);
        }
    }
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

/// A name no other run uses: pid and the clock's nanoseconds.
fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        ".agent-vault-selftest-{prefix}-{}-{nanos:x}",
        std::process::id()
    )
}

/// The first regular file (by name) directly inside the vault directory of
/// `e`, outside its tool exceptions. Listing is allowed under the tool
/// layer; the listing uses a raw `openat` so no preload hook decides.
fn first_file(e: &VaultEntry) -> Result<PathBuf, String> {
    let dir = sys::raw_openat(
        libc::AT_FDCWD,
        &cpath(&e.path),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
    .map_err(|x| format!("cannot list the directory: {}", errno_name(&x)))?;
    let mut names: Vec<_> = sys::read_dir_fd(dir.as_fd())
        .map_err(|x| format!("cannot list the directory: {}", errno_name(&x)))?
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| e.path.join(n))
        .find(|f| {
            !e.tool_exceptions.iter().any(|x| f.starts_with(x))
                && std::fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_file())
        })
        .ok_or_else(|| "the directory holds no regular file".to_string())
}

/// Every attack on one vault entry. A `dir` entry is attacked through the
/// first regular file inside it (the directory itself stays listable under
/// the tool layer) plus a create inside it; a `file` entry directly.
fn attack_entry(r: &mut Report, e: &VaultEntry, seccomp_on: bool) {
    let path = &e.path;
    let Ok(md) = std::fs::symlink_metadata(path) else {
        r.add(
            "vault",
            format!("{} {}", e.name, path.display()),
            Status::Skip,
            "does not exist",
        );
        return;
    };
    // Outside the vault, on the same file system: where a link or a rename
    // would move the secret to.
    let outside = path.parent().unwrap_or(Path::new("/"));
    let target = match e.kind {
        VaultKind::File => Ok(path.clone()),
        VaultKind::Dir => first_file(e),
    };
    match target {
        Ok(f) => attack_file(r, e, &f, outside, seccomp_on),
        Err(why) => r.add(
            "vault",
            format!("file in {} ({})", path.display(), e.name),
            Status::Skip,
            format!("skipped: no file to attack ({why})"),
        ),
    }
    if e.kind == VaultKind::Dir {
        if md.is_dir() {
            attack_create(r, e);
        }
        let moved = outside.join(unique_name("moved"));
        let res = std::fs::rename(path, &moved);
        let detail = restore_after_rename(&res, &moved, path);
        r.attack(
            "vault",
            format!("rename {} ({})", path.display(), e.name),
            res,
        );
        if let Some(d) = detail {
            r.add(
                "vault",
                format!("restore {}", path.display()),
                Status::Fail,
                d,
            );
        }
    }
}

/// After a rename attack that succeeded, put the entry back; `Some` is a
/// message when that failed.
fn restore_after_rename(res: &std::io::Result<()>, moved: &Path, path: &Path) -> Option<String> {
    if res.is_ok()
        && let Err(e) = std::fs::rename(moved, path)
    {
        return Some(format!(
            "could not move {} back from {}: {}",
            path.display(),
            moved.display(),
            errno_name(&e)
        ));
    }
    None
}

/// Read, link and move the vault file `f` (a `file` entry, or a file inside
/// a `dir` entry). Only whether each call succeeded is reported.
fn attack_file(r: &mut Report, e: &VaultEntry, f: &Path, outside: &Path, seccomp_on: bool) {
    let label = |what: &str| format!("{what} {} ({})", f.display(), e.name);
    let c = cpath(f);
    r.attack("vault", label("libc open"), std::fs::File::open(f));
    r.attack(
        "vault",
        label("raw openat"),
        sys::raw_openat(libc::AT_FDCWD, &c, libc::O_RDONLY),
    );
    r.attack(
        "vault",
        label("openat2"),
        sys::raw_openat2(&c, libc::O_RDONLY),
    );
    // An io_uring OPENAT bypasses every libc hook; seccomp denies the ring.
    match sys::raw_io_uring_setup() {
        Err(x) => r.add(
            "vault",
            label("io_uring"),
            Status::Pass,
            format!("blocked: io_uring_setup {}", errno_name(&x)),
        ),
        Ok(_) => r.add(
            "vault",
            label("io_uring"),
            if seccomp_on {
                Status::Fail
            } else {
                Status::Skip
            },
            "io_uring_setup succeeded: opens through a ring bypass the preload",
        ),
    }
    let dst = outside.join(unique_name("link"));
    let res = std::fs::hard_link(f, &dst);
    if res.is_ok() {
        let _ = std::fs::remove_file(&dst);
    }
    r.attack(
        "vault",
        format!("{} -> {}", label("hard link"), outside.display()),
        res,
    );
    let moved = outside.join(unique_name("moved"));
    let res = std::fs::rename(f, &moved);
    let detail = restore_after_rename(&res, &moved, f);
    r.attack(
        "vault",
        format!("{} -> {}", label("rename"), outside.display()),
        res,
    );
    if let Some(d) = detail {
        r.add("vault", label("restore"), Status::Fail, d);
    }
}

/// Create a new file inside the vault directory of `e` (raw `openat`,
/// `O_CREAT|O_EXCL`): the tool layer denies it with `EACCES` (a read-only
/// file system answers `EROFS` first, which blocks it as well).
fn attack_create(r: &mut Report, e: &VaultEntry) {
    let f = e.path.join(unique_name("create"));
    let res = sys::raw_openat(
        libc::AT_FDCWD,
        &cpath(&f),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
    );
    let (status, detail) = match res {
        Ok(fd) => {
            drop(fd);
            let cleanup = match std::fs::remove_file(&f) {
                Ok(()) => "removed again".to_string(),
                Err(x) => format!("could not remove {}: {}", f.display(), errno_name(&x)),
            };
            (Status::Fail, format!("succeeded: NOT blocked ({cleanup})"))
        }
        Err(x) if matches!(x.raw_os_error(), Some(libc::EACCES | libc::EROFS)) => {
            (Status::Pass, format!("blocked: {}", errno_name(&x)))
        }
        Err(x) => (Status::Fail, format!("{}: expected EACCES", errno_name(&x))),
    };
    r.add(
        "vault",
        format!("create file in {} ({})", e.path.display(), e.name),
        status,
        detail,
    );
}

/// `agent-init self-test`.
pub fn main(json: bool) -> i32 {
    let ctx = find_context();
    let p = &ctx.policy;
    let mut r = Report::default();
    let me = std::process::id() as i32;
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
            "this process IS the harness (trusted); run self-test as a tool: agent-init run -- sh -c 'agent-init self-test'",
        );
    }

    // Layers.
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
        tool_layer_row(&mut r, probe, ll_on);
    }

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

    // The harness.
    let hpid = ctx
        .harness_pid
        .filter(|&h| h != me && Path::new(&format!("/proc/{h}")).exists());
    let huid: Option<u32> = hpid.and_then(|h| {
        status_field(&h.to_string(), "Uid:")
            .and_then(|s| s.split_whitespace().next().and_then(|u| u.parse().ok()))
    });
    match (hpid, huid) {
        (Some(h), Some(u)) if u != 0 => {
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
        (Some(_), _) => r.add(
            "preload",
            "harness non-dumpable",
            Status::Skip,
            "harness runs as root: cannot tell",
        ),
        (None, _) => r.add(
            "preload",
            "harness non-dumpable",
            Status::Skip,
            "no running harness recorded",
        ),
    }

    // Attacks on the vault.
    for e in &p.vault {
        if e.name != policy::PROBE_ENTRY {
            attack_entry(&mut r, e, sc_on);
        }
    }
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

    // The seccomp deny-list, one probe each (harmless when they succeed).
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
    sc(&mut r, "io_uring_setup -> EPERM", res, libc::EPERM);
    let res = sys::raw_syscall2(libc::SYS_clone3, 0, 0).map(drop);
    sc(&mut r, "clone3 -> ENOSYS", res, libc::ENOSYS);
    if cfg!(target_arch = "x86_64") {
        let res = sys::raw_syscall2(0x4000_0000 | libc::SYS_getpid, 0, 0).map(drop);
        sc(&mut r, "x32 syscall number -> EPERM", res, libc::EPERM);
    }
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        let res = sys::ioctl_byte(null.as_raw_fd(), libc::TIOCSTI, b' ');
        sc(&mut r, "ioctl TIOCSTI -> EPERM", res, libc::EPERM);
    }
    let res = in_child(|| sys::unshare(libc::CLONE_NEWUSER));
    r.attack("seccomp", "unshare user namespace", res);
    if hpid.is_none() {
        let res = sys::ptrace_attach(nix::unistd::getppid().as_raw());
        r.attack("seccomp", "ptrace attach to parent", res);
    }

    // Positive controls.
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
    if let Some(u) = huid {
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
    if let AuditSink::File(f) = &p.audit {
        let res = std::fs::OpenOptions::new().append(true).open(f).map(drop);
        r.add(
            "control",
            format!("audit file {} appendable", f.display()),
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

    let ok = r.rows.iter().all(|row| row.status != Status::Fail);
    if json {
        print!("{{\"ok\":{ok},\"checks\":[");
        for (i, row) in r.rows.iter().enumerate() {
            print!(
                "{}{{\"layer\":{},\"check\":{},\"status\":{},\"detail\":{}}}",
                if i > 0 { "," } else { "" },
                js(row.layer),
                js(&row.check),
                js(row.status.word()),
                js(&row.detail)
            );
        }
        println!("]}}");
    } else {
        for row in &r.rows {
            println!(
                "{:<4}  {:<10}  {:<58}  {}",
                row.status.word(),
                row.layer,
                row.check,
                row.detail
            );
        }
        println!(
            "\n{}",
            if ok {
                "self-test: every enabled layer holds"
            } else {
                "self-test: FAILED (rows marked FAIL)"
            }
        );
    }
    if ok { 0 } else { 1 }
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

fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
