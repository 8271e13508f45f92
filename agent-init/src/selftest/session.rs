//! self-test started where no tool stands, made to test from where one
//! does. The documented commands start it in two such places:
//!
//! - as PID 1 with no session (`podman run --entrypoint agent-init IMAGE
//!   self-test`): root, no harness, no layer. It replaces itself with
//!   `agent-init run [--policy P] -- agent-init self-test`, a real session
//!   whose harness is self-test, which is the next case;
//! - as the harness (`podman run IMAGE agent-init self-test`, the image's
//!   ENTRYPOINT being `agent-init run --`): trusted, outside the tool layer.
//!   It runs `agent-init self-test --as-tool` as its child, a tool the
//!   harness spawned (the preload's spawn hooks put it under the tool
//!   layer), and exits with that child's code.
//!
//! `--as-tool` runs the rows in this process whatever it is, so neither
//! case can loop.

use crate::log::notice;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where self-test stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    /// PID 1 with no harness running: no session at all.
    Pid1,
    /// The harness agent-init started.
    Harness,
    /// Anywhere else (a tool, a `docker exec`): the rows run here.
    Elsewhere,
}

pub(super) fn position(harness_pid: Option<i32>, harness_alive: bool) -> Position {
    let me = std::process::id() as i32;
    if harness_pid == Some(me) {
        Position::Harness
    } else if me == 1 && !harness_alive {
        Position::Pid1
    } else {
        Position::Elsewhere
    }
}

fn this_program() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

fn self_test_args(json: bool) -> Vec<&'static str> {
    let mut a = vec!["self-test"];
    if json {
        a.push("--json");
    }
    a
}

/// As PID 1: become `agent-init run -- agent-init self-test`. Returns only
/// when the exec failed (exit code 1, said why).
pub(super) fn start_session(json: bool, policy: Option<&Path>) -> i32 {
    let exe = this_program();
    let mut c = Command::new(&exe);
    c.arg("run");
    if let Some(p) = policy {
        c.arg("--policy").arg(p);
    }
    c.arg("--").arg(&exe).args(self_test_args(json));
    notice!(
        "self-test: PID 1 with no session: starting one with self-test as its harness (agent-init run -- agent-init self-test), so the rows are a tool's"
    );
    let e = c.exec();
    crate::log::error!(
        "self-test: cannot start a session: exec {}: {e}",
        exe.display()
    );
    1
}

/// As the harness: run self-test as this harness's tool and return its
/// exit code.
pub(super) fn run_as_tool(json: bool) -> i32 {
    let exe = this_program();
    let mut args = self_test_args(json);
    args.push("--as-tool");
    match Command::new(&exe).args(&args).status() {
        Ok(st) => st.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
        }),
        Err(e) => {
            crate::log::error!(
                "self-test: cannot start itself as a tool: {}: {e}",
                exe.display()
            );
            1
        }
    }
}
