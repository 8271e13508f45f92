//! The proxy's Landlock layer tried from the inside: the test thread applies
//! [`vault_proxy::confine::landlock_layer`] to itself (Landlock and
//! `no_new_privs` are per thread, so the rest of the test process is not
//! confined) and then attempts what a compromised proxy would.

#![cfg(feature = "server")]

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use vault_proxy::config::ProxyConfig;
use vault_proxy::{confine, sys};

/// Set to skip on a kernel without Landlock (the test fails otherwise).
const SKIP_ENV: &str = "VAULT_PROXY_TEST_NO_LANDLOCK";

#[test]
fn landlock_layer_denies_files_outside_state_dir_other_ports_and_bind() {
    let abi = sys::landlock_abi();
    if abi < 4 {
        assert!(
            std::env::var_os(SKIP_ENV).is_some(),
            "this kernel has Landlock ABI {abi}; the test needs 4+ (network rules). Set {SKIP_ENV}=1 to skip it"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&state).unwrap();
    std::fs::create_dir(&outside).unwrap();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "{}"
[[route]]
name = "a"
prefix = "/a"
upstream = "http://127.0.0.1:{}"
placeholder = "placeholder-0123456789"
credential = {{ kind = "none" }}
"#,
        state.display(),
        allowed.local_addr().unwrap().port()
    );
    let cfg = ProxyConfig::from_toml(&cfg).unwrap().validate().unwrap();
    // Once confined, this process cannot remove its temporary directory:
    // an unconfined watcher removes it when the process exits.
    let dir = tmp.keep();
    // The watcher outlives this process, so nothing here waits for it.
    #[allow(clippy::zombie_processes)]
    let _watcher = std::process::Command::new("/bin/sh")
        .args(["-c", "tail --pid=\"$0\" -f /dev/null; rm -rf \"$1\""])
        .arg(std::process::id().to_string())
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    confine::no_new_privs().unwrap();
    let summary = confine::landlock_layer(&cfg).unwrap();
    assert!(summary.contains(" enforced"), "{summary}");

    // Allowed: the state directory (create, rename, remove) and the upstream port.
    std::fs::write(state.join("t"), b"x").unwrap();
    std::fs::rename(state.join("t"), state.join("u")).unwrap();
    std::fs::remove_file(state.join("u")).unwrap();
    TcpStream::connect(allowed.local_addr().unwrap()).unwrap();

    // Denied: files outside, even ones the uid may write or read.
    let e = std::fs::write(outside.join("x"), b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let e = std::fs::read("/etc/hostname")
        .or_else(|_| std::fs::read("/etc/passwd"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    // Denied: another port, and any new listening socket.
    let e = TcpStream::connect(other.local_addr().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let e = TcpListener::bind("127.0.0.1:0").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}
