//! The `vault-proxy` binary run the way agent-init will run it: a separate
//! process (under its own non-root uid when the test runs as root), the
//! config written into a pipe passed as `--config-fd 3`, the port read from
//! `--ready-fd 4`.

#![cfg(feature = "server")]

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use support::*;

/// The uid the proxy runs as when the test is root (like agent-init's dedicated uid).
const PROXY_UID: u32 = 65534;

fn is_root() -> bool {
    vault_proxy::sys::uid() == 0
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid 2-int array for the duration of the call.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so `fds[0]` is an open read end owned by
    // nobody else; the OwnedFd takes it over.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise `fds[1]`, the write end.
    let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    (read, write)
}

/// dup2(2) in the forked child: make `target` a copy of `fd`.
fn dup2(fd: RawFd, target: RawFd) -> std::io::Result<()> {
    // SAFETY: no pointer arguments; a bad `fd` fails with EBADF.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

struct Running {
    child: Child,
    ready: String,
    stderr_path: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn the binary with the config on fd 3 and the ready pipe on fd 4.
fn spawn(
    config: &str,
    extra: &[&str],
    as_uid: Option<u32>,
    stderr_path: &Path,
) -> Result<Running, (i32, String)> {
    let (cfg_r, cfg_w) = pipe();
    let (ready_r, ready_w) = pipe();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-proxy"));
    cmd.args(["--config-fd", "3", "--ready-fd", "4"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(stderr_path).unwrap());
    if let Some(uid) = as_uid {
        cmd.uid(uid).gid(uid);
    }
    let (cr, rw) = (cfg_r.as_raw_fd(), ready_w.as_raw_fd());
    // SAFETY: between fork and exec the closure calls only dup2, which is
    // async-signal-safe; `cr` and `rw` stay open in the parent until spawn
    // returns, so the child's copies are valid.
    unsafe {
        cmd.pre_exec(move || {
            dup2(cr, 3)?;
            dup2(rw, 4)
        });
    }
    let mut child = cmd.spawn().expect("spawn vault-proxy");
    drop(cfg_r);
    drop(ready_w);
    let mut w = File::from(cfg_w);
    w.write_all(config.as_bytes()).unwrap();
    drop(w);
    let mut ready = String::new();
    File::from(ready_r).read_to_string(&mut ready).unwrap();
    if ready.is_empty() {
        let status = child.wait().unwrap();
        return Err((
            status.code().unwrap_or(-1),
            std::fs::read_to_string(stderr_path).unwrap(),
        ));
    }
    Ok(Running {
        child,
        ready,
        stderr_path: stderr_path.to_path_buf(),
    })
}

/// A state directory the proxy's uid owns, under a directory it can traverse.
fn proxy_state_dir(base: &Path, uid: Option<u32>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = base.join("state");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    if let Some(uid) = uid {
        std::os::unix::fs::chown(&d, Some(uid), Some(uid)).unwrap();
    }
    d
}

fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn binary_reads_config_from_a_pipe_reports_its_port_and_serves_confined() {
    let up = Upstream::start(|ex| {
        respond(ex.stream, "200 OK", "application/json", br#"{"ok":true}"#);
        true
    });
    let tmp = tempfile::tempdir().unwrap();
    let uid = is_root().then_some(PROXY_UID);
    let state = proxy_state_dir(tmp.path(), uid);
    let run = spawn(
        &api_key_config(&state, &up.url(), "x-api-key"),
        &[],
        uid,
        &tmp.path().join("stderr"),
    )
    .unwrap_or_else(|(code, err)| panic!("vault-proxy exited {code}: {err}"));
    let addr: std::net::SocketAddr = run
        .ready
        .strip_prefix("ready ")
        .and_then(|s| s.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("ready line {:?}", run.ready))
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let r = post_messages(addr, &[("x-api-key", PH)], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"ok":true}"#);
    assert_eq!(up.received()[0].header("x-api-key"), Some(REAL));

    let pid = run.child.id();
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    if let Some(uid) = uid {
        assert!(status_field(pid, "Uid").starts_with(&format!("{uid}\t")));
    }
    // The config pipe was read to EOF and closed; only the listener and the
    // upstream connection remain as sockets, and no fd 3 or 4 is left open.
    for fd in [3, 4] {
        let l = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"));
        assert!(
            l.is_err() || !l.unwrap().to_string_lossy().starts_with("pipe:"),
            "fd {fd} still a pipe"
        );
    }
    let log = std::fs::read_to_string(&run.stderr_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one line per start, no per-request lines: {log}"
    );
    assert!(
        lines[0].contains(&format!("serving http://{addr}")),
        "{log}"
    );
    assert!(lines[0].contains("anthropic=api-key"), "{log}");
    if vault_proxy::sys::landlock_abi() >= 6 {
        assert!(
            lines[0].contains("enforced") && !lines[0].contains("NOT enforced"),
            "{log}"
        );
        assert!(!lines[0].contains("kernel lacks"), "{log}");
    }
    assert!(!log.contains(PH) && !log.contains(REAL));
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn binary_refuses_uid_0_without_allow_root() {
    let up = Upstream::start(|ex| {
        respond(ex.stream, "200 OK", "text/plain", b"x");
        true
    });
    let tmp = tempfile::tempdir().unwrap();
    let state = proxy_state_dir(tmp.path(), None);
    let res = spawn(
        &api_key_config(&state, &up.url(), "x-api-key"),
        &[],
        None,
        &tmp.path().join("stderr"),
    );
    if is_root() {
        let (code, err) = res.err().expect("started as root without --allow-root");
        assert_eq!(code, 1);
        assert!(
            err.contains("refusing to run as root") && err.contains("--allow-root"),
            "{err}"
        );
        // And --allow-root lets it start.
        let ok = spawn(
            &api_key_config(&state, &up.url(), "x-api-key"),
            &["--allow-root"],
            None,
            &tmp.path().join("stderr2"),
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    } else {
        // Not root: the same start succeeds (the refusal is about uid 0 only).
        assert!(res.is_ok(), "{:?}", res.err());
    }
}

#[test]
fn binary_config_error_is_one_line_naming_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("proxy.toml");
    std::fs::write(
        &path,
        api_key_config(tmp.path(), "http://api.anthropic.com", "x-api-key")
            .replace("127.0.0.1:0", "0.0.0.0:8080"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vault-proxy"))
        .args(["--config", path.to_str().unwrap(), "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("vault-proxy: config: listen") && err.contains("Fix:"),
        "{err}"
    );
}

#[test]
fn binary_under_landlock_resolves_localhost_and_stores_a_refresh_in_state_dir() {
    let up = Upstream::start(|ex| {
        if ex.req.header("authorization") == Some("Bearer access-1") {
            respond(ex.stream, "200 OK", "application/json", br#"{"ok":1}"#);
        } else {
            respond(ex.stream, "401 Unauthorized", "application/json", b"{}");
        }
        true
    });
    let token = Upstream::start(|ex| {
        respond(
            ex.stream,
            "200 OK",
            "application/json",
            br#"{"access_token":"access-1","refresh_token":"refresh-1","expires_in":3600}"#,
        );
        true
    });
    let tmp = tempfile::tempdir().unwrap();
    let uid = is_root().then_some(PROXY_UID);
    let state = proxy_state_dir(tmp.path(), uid);
    // localhost, not 127.0.0.1: the proxy resolves the name under Landlock.
    let cfg = oauth_config(
        &state,
        &format!("http://localhost:{}", up.addr.port()),
        &format!("http://localhost:{}", token.addr.port()),
        "access-0",
        "refresh-0",
        FAR_FUTURE_MS,
    );
    let run = spawn(&cfg, &["--allow-root"], uid, &tmp.path().join("stderr"))
        .unwrap_or_else(|(code, err)| panic!("vault-proxy exited {code}: {err}"));
    let addr: std::net::SocketAddr = run
        .ready
        .trim()
        .strip_prefix("ready ")
        .unwrap()
        .parse()
        .unwrap();
    let r = post_messages(addr, &[("x-api-key", PH)], b"{}");
    let status = r.status;
    let text = r.text();
    let log = std::fs::read_to_string(&run.stderr_path).unwrap();
    assert_eq!(status, 200, "{text}\n{log}");
    let stored = std::fs::read_to_string(state.join("claude.json")).unwrap();
    assert!(
        stored.contains("\"refresh_token\":\"refresh-1\""),
        "{stored}"
    );
    assert!(log.contains("OAuth session refreshed; stored in"), "{log}");
    assert!(
        log.contains("connect tcp {53,"),
        "name resolution was planned for: {log}"
    );
    assert!(!log.contains("refresh-1") && !log.contains("access-1") && !log.contains(PH));
}
