//! `check` and `explain`: the policy in plain words.

use crate::config::{self, LoadError};
use crate::json_out;
use crate::log::error;
use policy::access::Access;
use policy::seccomp_plan::{ArgTest, plan};
use policy::syscalls::Arch;
use policy::{AuditSink, GroupSpec, SeedMode, UserSpec, VaultKind};
use policy::{EnforceMode, Policy};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Load the policy; on failure say why (on stderr, or as `check --json`'s
/// object on stdout) and return exit code 1.
fn load(p: Option<&Path>, json: bool) -> Result<config::Loaded, i32> {
    let root = nix::unistd::geteuid().is_root();
    config::load(p, None, !root).map_err(|e| {
        if json {
            println!("{}", json_out::invalid(&e.to_string()));
        } else {
            match e {
                LoadError::Policy(e) => eprintln!("{e}"),
                LoadError::User(e) => error!("{e}"),
            }
        }
        1
    })
}

fn mode_words(m: EnforceMode, what: &str) -> String {
    match m {
        EnforceMode::Required => format!(
            "required: agent-init refuses to start unless the kernel enforces all of {what}"
        ),
        EnforceMode::BestEffort => format!(
            "best-effort: {what} is enforced as far as the kernel can, and agent-init logs what is not"
        ),
        EnforceMode::Off => format!("off: no {what}"),
    }
}

/// The policy in words: one section each for the harness, the vault, the
/// filesystem, seccomp, the seeds and the audit.
pub fn describe(l: &config::Loaded) -> String {
    let p: &Policy = &l.policy;
    let mut o = String::new();
    let _ = writeln!(o, "Policy: {} (valid)", l.source);
    harness_section(&mut o, l);
    vault_section(&mut o, p);
    filesystem_section(&mut o, p);
    seccomp_section(&mut o, p);
    seeds_section(&mut o, p);
    audit_section(&mut o, p);
    proxy_section(&mut o, p);
    tools_section(&mut o, p);
    o
}

/// How tools start: with or without the controlling terminal.
fn tools_section(o: &mut String, p: &Policy) {
    let _ = writeln!(o, "\nTools");
    let _ = if p.tools.keep_terminal {
        writeln!(
            o,
            "  tools keep the harness's controlling terminal (they can read what the user types)"
        )
    } else {
        writeln!(
            o,
            "  tools start without the controlling terminal (/dev/tty: ENXIO)"
        )
    };
}

/// Who the harness runs as, its groups and the environment it gets.
fn harness_section(o: &mut String, l: &config::Loaded) {
    let p: &Policy = &l.policy;
    let user = match &l.spec {
        UserSpec::Name(n) => format!("user {n:?}"),
        UserSpec::Ids { uid, gid } => format!("uid {uid}, gid {gid}"),
    };
    let _ = writeln!(o, "\nHarness");
    match &l.identity {
        Ok(id) => {
            let _ = writeln!(
                o,
                "  runs as {user} (uid {}, gid {}{}) when agent-init starts as root; otherwise as the user that starts it",
                id.uid,
                id.gid,
                id.home
                    .as_ref()
                    .map(|h| format!(", home {}", h.display()))
                    .unwrap_or_default()
            );
        }
        Err(e) => {
            let _ = writeln!(o, "  runs as {user} -- note: {e}");
        }
    }
    if !p.harness.groups.is_empty() {
        let g: Vec<String> = p
            .harness
            .groups
            .iter()
            .map(|g| match g {
                GroupSpec::Name(n) => n.clone(),
                GroupSpec::Gid(g) => g.to_string(),
            })
            .collect();
        let _ = writeln!(o, "  supplementary groups: {}", g.join(", "));
    } else {
        let _ = writeln!(o, "  no supplementary groups");
    }
    for (k, v) in &p.harness.env {
        let _ = writeln!(o, "  gets environment {k}={v}");
    }
    if !p.harness.random_env.is_empty() {
        let _ = writeln!(
            o,
            "  gets a fresh random value (tools never see it) in: {}",
            p.harness.random_env.join(", ")
        );
    }
    launchers_lines(o, p);
    let _ = writeln!(
        o,
        "{}",
        match p.harness.unhooked {
            policy::Unhooked::Refuse =>
                "  must be one the preload's spawn hooks follow (dynamic, glibc's loader, not Go): others are refused (unhooked = \"refuse\")",
            policy::Unhooked::Allow =>
                "  may be one the preload's spawn hooks cannot follow (static, Go, musl): its tools would then run outside the tool layer with the secret variables (unhooked = \"allow\")",
        }
    );
}

/// `[harness] launches`: each path and what is there now (agent-init
/// identifies the file again at start, [`crate::launchers`]).
fn launchers_lines(o: &mut String, p: &Policy) {
    if p.harness.launches.is_empty() {
        let _ = writeln!(
            o,
            "  launches no harness of its own: whatever it starts is a tool"
        );
        return;
    }
    let _ = writeln!(
        o,
        "  may launch these harness programs, matched by the file agent-init finds there at start (device and inode, never a name):"
    );
    for path in &p.harness.launches {
        let now = match crate::launchers::inspect(path) {
            Ok(crate::launchers::Found::File(f)) => {
                format!("now device {} inode {}", f.id.dev, f.id.ino)
            }
            Ok(crate::launchers::Found::Missing) => {
                "nothing there now: if still so at start, launches nothing trusted".to_string()
            }
            Err(e) => format!("agent-init would refuse to start: {e}"),
        };
        let _ = writeln!(o, "    {} ({now})", path.display());
    }
    let _ = writeln!(
        o,
        "  a launcher the harness (or a launched harness) starts itself (fork and exec, vfork, posix_spawn without file actions) runs as a launched harness: no tool layer, its own vault access, and what it starts is a tool; started through a shell (sh -c, system, popen) it is a tool's child and a tool; refused when Landlock is not enforced"
    );
    if p.landlock == EnforceMode::Off {
        let _ = writeln!(
            o,
            "  WARNING: [landlock] mode is \"off\": agent-init refuses the launchers at start (nothing proves a process is outside the tool layer), so every launched program runs as a tool. Fix: [landlock] mode = \"required\""
        );
    }
}

/// The vault entries, their tool exceptions and the secret variables.
fn vault_section(o: &mut String, p: &Policy) {
    let _ = writeln!(
        o,
        "\nVault: only the harness may read or write these; tools get EACCES"
    );
    for e in &p.vault {
        let what = match e.kind {
            VaultKind::Dir => "directory and everything in it",
            VaultKind::File => "file",
        };
        let _ = writeln!(o, "  {:<14} {} ({what})", e.name, e.path.display());
        for x in &e.tool_exceptions {
            let _ = writeln!(
                o,
                "  {:<14}   except {} (tools may use it)",
                "",
                x.display()
            );
        }
    }
    if !p.secret_env.is_empty() {
        let _ = writeln!(
            o,
            "  environment variables removed from every tool: {}",
            p.secret_env.join(", ")
        );
    }
    if !p.secret_env_patterns.is_empty() {
        let _ = writeln!(
            o,
            "  and every variable whose name matches: {}",
            p.secret_env_patterns.join(", ")
        );
    }
    if !p.keep_env.is_empty() {
        let _ = writeln!(
            o,
            "  tools keep these all the same: {}",
            p.keep_env.join(", ")
        );
    }
}

/// The Landlock base layer's allow-list.
fn filesystem_section(o: &mut String, p: &Policy) {
    let fs = &p.filesystem;
    let list = |v: &[PathBuf]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        o,
        "\nFilesystem (Landlock base layer, for the harness and every tool)"
    );
    let _ = writeln!(o, "  read-only:  {}", list(&fs.read_only));
    let _ = writeln!(o, "  read-write: {}", list(&fs.read_write));
    let _ = writeln!(o, "  executable: {}", list(&fs.executable));
    let hidden: Vec<PathBuf> = policy::landlock_plan::hidden_paths(p)
        .into_iter()
        .map(|h| h.path)
        .collect();
    let _ = writeln!(
        o,
        "  hidden (seed sources and filesystem.hidden; agent-init reads them as root): {}",
        list(&hidden)
    );
    if !fs.tool_read_only.is_empty() {
        let _ = writeln!(
            o,
            "  read and execute only for tools (the harness keeps its rights; their parents are list-only for tools): {}",
            list(&fs.tool_read_only)
        );
    }
    let terminals = policy::landlock_plan::base_layer(p).terminals;
    let t: Vec<String> = terminals
        .iter()
        .map(|r| r.path.display().to_string())
        .collect();
    let _ = writeln!(
        o,
        "  terminals (read, write, ioctl; also the tty behind fds 0-2): {}",
        t.join(", ")
    );
    let _ = writeln!(o, "  everything else: no access");
    let _ = writeln!(o, "  Landlock {}", mode_words(p.landlock, "this layer"));
}

/// The seccomp mode and, for this machine's architecture, what it denies.
fn seccomp_section(o: &mut String, p: &Policy) {
    let _ = writeln!(o, "\nSeccomp");
    let _ = writeln!(o, "  {}", mode_words(p.seccomp.mode, "the filter"));
    if let Some(arch) = Arch::host() {
        let sp = plan(p, arch);
        let mut names = Vec::new();
        for d in &sp.denials {
            let cond = if d.when.is_empty() {
                String::new()
            } else {
                let c: Vec<String> = d
                    .when
                    .iter()
                    .map(|t| match t {
                        ArgTest::MaskedEq { mask, .. } => format!("{mask:#x}"),
                        ArgTest::Eq32 { value, .. } => format!("{value:#x}"),
                    })
                    .collect();
                format!(" (when {})", c.join("|"))
            };
            names.push(format!(
                "{}{} -> {}",
                d.name,
                cond,
                if d.errno == policy::seccomp_plan::ENOSYS {
                    "ENOSYS"
                } else {
                    "EPERM"
                }
            ));
        }
        let _ = writeln!(o, "  denied on {}: {}", arch.name(), names.join(", "));
        let errno = |e: u32| {
            if e == policy::seccomp_plan::ENOSYS {
                "ENOSYS"
            } else {
                "EPERM"
            }
        };
        let mut guards = vec![format!(
            "other-architecture syscalls -> {}",
            errno(sp.guard.foreign_arch_errno)
        )];
        if let Some(e) = sp.guard.x32_errno {
            guards.push(format!("x32 numbers -> {}", errno(e)));
        }
        let _ = writeln!(o, "  {}", guards.join(", "));
    }
}

/// What seeding copies before the harness starts.
fn seeds_section(o: &mut String, p: &Policy) {
    let _ = writeln!(o, "\nSeeds (copied as root before the harness starts)");
    if p.seeds.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for s in &p.seeds {
        match s.mode {
            SeedMode::CopyMissing => {
                let _ = writeln!(
                    o,
                    "  copy {} into {}, keeping every file that already exists",
                    s.source.display(),
                    s.target.display()
                );
            }
            SeedMode::NewestBackup => {
                let _ = writeln!(
                    o,
                    "  when {} is missing, restore it from the newest {}* in {}",
                    s.target.display(),
                    s.prefix.as_deref().unwrap_or_default(),
                    s.source.display()
                );
            }
        }
    }
}

/// Where denials are recorded.
fn audit_section(o: &mut String, p: &Policy) {
    let _ = writeln!(o, "\nAudit");
    let _ = match &p.audit {
        AuditSink::Off => writeln!(o, "  denials are not recorded"),
        AuditSink::Stderr => writeln!(o, "  denials go to the denied program's stderr"),
        AuditSink::File(f) => writeln!(
            o,
            "  denials are written to {} by agent-init (one JSON object a line, with the sender's pid and uid as the kernel gives them); past {} bytes it becomes {}.1",
            f.display(),
            p.audit_max_bytes,
            f.display()
        ),
        AuditSink::Log => writeln!(
            o,
            "  denials are written to agent-init's stderr, the container log, by agent-init (one JSON object a line, with the sender's pid and uid as the kernel gives them); at most {} a second, then one line saying how many were suppressed",
            crate::audit_sink::LOG_RECORDS_PER_SECOND
        ),
    };
}

/// The names of the routes served at `r`'s path (its group; itself alone
/// when no other route shares its `point`).
fn group_of<'p>(p: &'p Policy, r: &policy::Route) -> Vec<&'p str> {
    p.proxy
        .routes
        .iter()
        .filter(|g| g.path == r.path)
        .map(|g| g.name.as_str())
        .collect()
}

/// The credential proxy: each route and where its secret comes from (never a value).
fn proxy_section(o: &mut String, p: &Policy) {
    let x = &p.proxy;
    let _ = writeln!(o, "\nCredential proxy");
    if x.mode == policy::ProxyMode::Off {
        let _ = writeln!(
            o,
            "  off: the harness holds its real credentials (the vault keeps them from tools)"
        );
    } else {
        let _ = writeln!(
            o,
            "  on: vault-proxy runs as uid {} gid {} with state in {}; the harness gets placeholders and base URLs http://127.0.0.1:PORT/<route>",
            x.uid,
            x.gid,
            x.state_dir.display()
        );
    }
    for r in &x.routes {
        let _ = writeln!(o, "  route /{} -> {}", r.name, r.upstream);
        let group = group_of(p, r);
        if group.len() > 1 {
            let _ = writeln!(
                o,
                "    served at {} with {} (one base URL for all: the placeholder a request carries picks the route)",
                r.path,
                group.join(", ")
            );
        }
        let _ = writeln!(o, "    secret from {}", r.source_label());
        if let (Some(h), Some(shape)) = (r.header, &r.placeholder) {
            let _ = writeln!(
                o,
                "    API key sent as {}; the harness sees {shape}av-<random>",
                h.as_str(),
            );
        }
        if let Some(a) = &r.oauth {
            let _ = writeln!(
                o,
                "    OAuth login refreshed by the proxy at {}; the harness sees {}, never expiring; used only for {}",
                a.token_url,
                a.placeholder,
                a.paths.join(", ")
            );
        }
        let _ = writeln!(o, "    harness pointed at the proxy by {}", r.point);
    }
}

/// `agent-init check [--json]`.
pub fn check(p: Option<&Path>, json: bool) -> i32 {
    match load(p, json) {
        Ok(l) if json => {
            println!("{}", json_out::policy(&l));
            0
        }
        Ok(l) => {
            print!("{}", describe(&l));
            0
        }
        Err(c) => c,
    }
}

/// `~` and `~/...` (a quoted tilde the shell left alone) are the harness
/// user's home, as in the policy; other paths are taken from the current
/// directory.
fn absolute(p: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    let tilde = p.strip_prefix("~").ok();
    let joined = if let Some(rest) = tilde {
        match home {
            Some(h) => h.join(rest),
            None => {
                return Err(format!(
                    "{}: the harness user's home is unknown (no /etc/passwd entry), so `~` cannot be expanded; give the path without `~`",
                    p.display()
                ));
            }
        }
    } else if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

fn rights(a: Access) -> String {
    if a.is_empty() {
        "nothing".into()
    } else {
        a.to_string()
    }
}

/// The `[proxy]` routes whose credential is read from `path`.
fn proxy_routes_from<'a>(
    p: &'a Policy,
    path: &'a Path,
) -> impl Iterator<Item = &'a policy::proxy::Route> + 'a {
    p.proxy
        .routes
        .iter()
        .filter(move |r| matches!(&r.from, policy::SecretSource::File { path: f, .. } if f == path))
}

/// `agent-init explain [--json]`.
pub fn explain(p: Option<&Path>, paths: &[PathBuf], json: bool) -> i32 {
    let l = match load(p, false) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let home = l.identity.as_ref().ok().and_then(|i| i.home.clone());
    let mut abs_paths = Vec::new();
    for path in paths {
        match absolute(path, home.as_deref()) {
            Ok(a) => abs_paths.push(a),
            Err(e) => {
                error!("{e}");
                return 1;
            }
        }
    }
    if json {
        let rows = abs_paths
            .iter()
            .map(|abs| {
                let routes = proxy_routes_from(&l.policy, abs)
                    .map(|r| r.name.as_str())
                    .collect();
                json_out::explained(abs, &policy::explain::explain(&l.policy, abs), routes)
            })
            .collect();
        println!("{}", json_out::explanation(&l, rows));
        return 0;
    }
    println!("Policy: {}", l.source);
    for abs in &abs_paths {
        let e = policy::explain::explain(&l.policy, abs);
        println!("\n{}", abs.display());
        if let Some(r) = &e.vault_rule {
            println!("  vault entry: {r}");
        }
        println!("  harness may: {}", rights(e.harness.access));
        for r in &e.harness.reasons {
            println!("    because {r}");
        }
        println!("  a tool may:  {}", rights(e.tool.access));
        for r in &e.tool.reasons {
            println!("    because {r}");
        }
        for r in proxy_routes_from(&l.policy, abs) {
            {
                let now = if l.policy.proxy.mode == policy::ProxyMode::On {
                    "the harness sees only a placeholder here (the proxy holds the real one)"
                } else {
                    "[proxy] mode is off, so the harness holds the real one"
                };
                println!(
                    "  proxy route /{}: its credential comes from here ({}); {now}",
                    r.name,
                    r.source_label()
                );
                let shared = group_of(&l.policy, r);
                if shared.len() > 1 {
                    println!(
                        "    served at {} with {} (one base URL: the placeholder a request carries picks the route)",
                        r.path,
                        shared.join(", ")
                    );
                }
            }
        }
    }
    0
}
