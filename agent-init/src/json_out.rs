//! The machine-readable output of `check --json`, `explain --json` and
//! `self-test --json`, in one place: each is one JSON object on stdout, and
//! its shape is the one written here (README, "Machine-readable output",
//! repeats it). Fields are only ever added.
//!
//! `check --json`, valid policy (exit 0):
//! ```text
//! {"valid": true, "source": "/etc/agent-vault/policy.toml",
//!  "harness": {"user": "pi" | "1000:1000", "uid": 1000 | null, "gid": 1000 | null,
//!              "home": "/home/pi" | null, "user_error": null | "unknown user ...",
//!              "groups": ["audio", "44"], "env": {"K": "V"}, "unhooked": "refuse" | "allow",
//!              "launches": ["/usr/local/bin/pi"]},
//!  "vault": [{"name": "pi", "path": "/pi-agent", "kind": "dir" | "file",
//!             "tool_exceptions": ["/pi-agent/bin"]}],
//!  "secret_env": ["ANTHROPIC_API_KEY"],
//!  "filesystem": {"read_only": [...], "read_write": [...], "executable": [...],
//!                 "hidden": [...]},  (hidden: the seed sources and filesystem.hidden
//!                 that the base layer hides, `landlock_plan::hidden_paths`)
//!  "landlock": "required" | "best-effort" | "off",
//!  "seccomp": {"mode": "required" | "best-effort" | "off", "extra_deny": ["..."]},
//!  "seeds": [{"source": "...", "target": "...", "mode": "copy-missing" | "newest-backup",
//!             "prefix": null | "..."}],
//!  "audit": {"sink": "off" | "stderr" | "file", "path": null | "..."},
//!  "proxy": {"mode": "on" | "off", "uid": 999, "gid": 999, "state_dir": "...",
//!            "routes": [{"name": "anthropic", "path": "/anthropic", "upstream": "https://...",
//!                        "header": null | "x-api-key" | ..., "from": "env ANTHROPIC_API_KEY",
//!                        "point": "..."}]}}
//! ```
//! `path`: where the proxy serves the route; routes sharing `point` share it
//! (the placeholder a request carries picks the route).
//! Secret values never appear, only where they come from.
//! invalid policy or user (exit 1): `{"valid": false, "error": "file:line:column: message"}`.
//!
//! `explain --json PATH...` (exit 0):
//! ```text
//! {"source": "...", "paths": [{"path": "/pi-agent/auth.json", "vault_rule": null | "...",
//!   "harness": {"access": ["read_file", ...], "reasons": ["..."]},
//!   "tool":    {"access": [], "reasons": ["..."]},
//!   "proxy_routes": ["anthropic"]}]}
//! ```
//! `proxy_routes`: the `[proxy]` routes whose credential is read from this path.
//! `access` lists the Landlock access names (`execute`, `write_file`,
//! `read_file`, `read_dir`, ...); empty means nothing.
//!
//! `self-test --json`: `{"ok": true, "checks": [{"layer": "seccomp",
//! "check": "...", "status": "pass" | "FAIL" | "skip", "detail": "..."}]}`.

use crate::config::Loaded;
use policy::access::Access;
use policy::explain::Explanation;
use policy::{AuditSink, GroupSpec, UserSpec, VaultKind};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn paths(v: &[PathBuf]) -> Vec<String> {
    v.iter().map(|p| p.display().to_string()).collect()
}

/// `check --json` for a valid policy.
pub fn policy(l: &Loaded) -> Value {
    let p = &l.policy;
    let user = match &l.spec {
        UserSpec::Name(n) => n.clone(),
        UserSpec::Ids { uid, gid } => format!("{uid}:{gid}"),
    };
    let id = l.identity.as_ref().ok();
    let groups: Vec<String> = p
        .harness
        .groups
        .iter()
        .map(|g| match g {
            GroupSpec::Name(n) => n.clone(),
            GroupSpec::Gid(g) => g.to_string(),
        })
        .collect();
    let vault: Vec<Value> = p
        .vault
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "path": e.path.display().to_string(),
                "kind": match e.kind { VaultKind::Dir => "dir", VaultKind::File => "file" },
                "tool_exceptions": paths(&e.tool_exceptions),
            })
        })
        .collect();
    let seeds: Vec<Value> = p
        .seeds
        .iter()
        .map(|s| {
            json!({
                "source": s.source.display().to_string(),
                "target": s.target.display().to_string(),
                "mode": s.mode.as_str(),
                "prefix": s.prefix,
            })
        })
        .collect();
    // `max_bytes` bounds the file sink, `limit_per_second` the log sink.
    let audit = match &p.audit {
        AuditSink::Off => json!({"sink": "off", "path": null}),
        AuditSink::Stderr => json!({"sink": "stderr", "path": null}),
        AuditSink::File(f) => json!({
            "sink": "file",
            "path": f.display().to_string(),
            "max_bytes": p.audit_max_bytes,
            "rotated_path": format!("{}.1", f.display()),
        }),
        AuditSink::Log => json!({
            "sink": "log",
            "path": null,
            "limit_per_second": crate::audit_sink::LOG_RECORDS_PER_SECOND,
        }),
    };
    let x = &p.proxy;
    let routes: Vec<Value> = x
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "path": r.path,
                "upstream": r.upstream,
                "header": r.header.map(|h| h.as_str()),
                "from": r.source_label(),
                "point": r.point.to_string(),
            })
        })
        .collect();
    json!({
        "valid": true,
        "source": l.source.to_string(),
        "harness": {
            "user": user,
            "uid": id.map(|i| i.uid),
            "gid": id.map(|i| i.gid),
            "home": id.and_then(|i| i.home.as_ref()).map(|h| h.display().to_string()),
            "user_error": l.identity.as_ref().err().map(|e| e.to_string()),
            "groups": groups,
            "env": p.harness.env,
            "unhooked": p.harness.unhooked.as_str(),
            "launches": paths(&p.harness.launches),
        },
        "vault": vault,
        "secret_env": p.secret_env,
        "filesystem": {
            "read_only": paths(&p.filesystem.read_only),
            "read_write": paths(&p.filesystem.read_write),
            "executable": paths(&p.filesystem.executable),
            "hidden": policy::landlock_plan::hidden_paths(p)
                .iter()
                .map(|h| h.path.display().to_string())
                .collect::<Vec<_>>(),
        },
        "landlock": p.landlock.as_str(),
        "seccomp": {"mode": p.seccomp.mode.as_str(), "extra_deny": p.seccomp.extra_deny},
        "seeds": seeds,
        "audit": audit,
        "proxy": {
            "mode": x.mode.as_str(),
            "uid": x.uid,
            "gid": x.gid,
            "state_dir": x.state_dir.display().to_string(),
            "routes": routes,
        },
    })
}

/// `check --json` for a policy that does not load.
pub fn invalid(error: &str) -> Value {
    json!({"valid": false, "error": error})
}

fn access(a: Access) -> Vec<&'static str> {
    a.names().collect()
}

/// One path of `explain --json`; `proxy_routes`: the routes reading their
/// credential from it.
pub fn explained(path: &Path, e: &Explanation, proxy_routes: Vec<&str>) -> Value {
    json!({
        "path": path.display().to_string(),
        "vault_rule": e.vault_rule,
        "harness": {"access": access(e.harness.access), "reasons": e.harness.reasons},
        "tool": {"access": access(e.tool.access), "reasons": e.tool.reasons},
        "proxy_routes": proxy_routes,
    })
}

/// `explain --json`.
pub fn explanation(l: &Loaded, paths: Vec<Value>) -> Value {
    json!({"source": l.source.to_string(), "paths": paths})
}

/// One row of `self-test --json`.
pub fn check_row(layer: &str, check: &str, status: &str, detail: &str) -> Value {
    json!({"layer": layer, "check": check, "status": status, "detail": detail})
}

/// `self-test --json`.
pub fn self_test(ok: bool, checks: Vec<Value>) -> Value {
    json!({"ok": ok, "checks": checks})
}
