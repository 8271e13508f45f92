//! self-test's proxy rows: whether vault-proxy runs, as which uid (never
//! this process's), and each route with where its secret comes from. No
//! value is read or printed.

use super::report::{Report, Status};
use policy::{Policy, ProxyMode};

/// A running vault-proxy: pid and real uid, from `/proc/<pid>/status`
/// (readable by every process unless `/proc` is mounted `hidepid`).
fn find_proxies() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let name = super::status_field(&pid.to_string(), "Name:");
        let uid = super::status_field(&pid.to_string(), "Uid:")
            .and_then(|u| u.split_whitespace().next().and_then(|v| v.parse().ok()));
        if name.as_deref() == Some("vault-proxy")
            && let Some(uid) = uid
        {
            out.push((pid, uid));
        }
    }
    out
}

/// The proxy rows.
pub(super) fn proxy_rows(r: &mut Report, p: &Policy) {
    let px = &p.proxy;
    if px.mode == ProxyMode::Off {
        r.add(
            "proxy",
            "credential proxy",
            Status::Skip,
            "off (policy): the harness holds its real credentials",
        );
        return;
    }
    let me = nix::unistd::getuid().as_raw();
    let found = find_proxies();
    let (status, detail) = match found.first() {
        // agent-init starts no proxy when no route has a credential (its
        // start log says so), and restarts one that died; from here the two
        // look alike, so this is not a failure of a layer.
        None => (
            Status::Skip,
            "no vault-proxy process: no route has a credential here (agent-init's log says \"vault-proxy not started\"), or it is being restarted; requests fail closed meanwhile"
                .to_string(),
        ),
        Some((_, uid)) if *uid == me => (
            Status::Fail,
            format!("vault-proxy runs as this process's uid {me}: it must have its own"),
        ),
        Some((pid, uid)) => (
            if *uid == px.uid {
                Status::Pass
            } else {
                Status::Fail
            },
            format!(
                "pid {pid}, uid {uid} (policy: {}; this process: {me})",
                px.uid
            ),
        ),
    };
    r.add(
        "proxy",
        "vault-proxy running as its own uid",
        status,
        detail,
    );
    for route in &px.routes {
        r.add(
            "proxy",
            format!("route /{}", route.name),
            Status::Pass,
            format!(
                "upstream {}; secret from {}; harness pointed by {} at {} (served only when the source exists)",
                route.upstream, route.from, route.point, route.path
            ),
        );
    }
}
