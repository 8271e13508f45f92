//! tini's matrix: exit codes, forwarded signals, orphan reaping, the grace
//! period and the process-group option; as a subreaper and as PID 1 of a
//! PID namespace (`unshare --pid --fork --mount-proc`).

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Subreaper,
    PidNamespace,
}

fn wrap(mode: Mode, c: Command) -> Command {
    match mode {
        Mode::Subreaper => c,
        Mode::PidNamespace => {
            let mut u = Command::new("unshare");
            u.args(["--pid", "--fork", "--mount-proc"]);
            u.arg(c.get_program()).args(c.get_args());
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    u.env(k, v);
                }
            }
            u.stdin(Stdio::null());
            u
        }
    }
}

fn policy(d: &Dir) -> std::path::PathBuf {
    d.policy("65534:65534", "required", "required", "")
}

/// The pid to signal: agent-init itself, or (in a PID namespace) the child of `unshare`.
fn agent_pid(mode: Mode, spawned: u32) -> i32 {
    match mode {
        Mode::Subreaper => spawned as i32,
        Mode::PidNamespace => {
            for _ in 0..200 {
                if let Ok(s) =
                    std::fs::read_to_string(format!("/proc/{spawned}/task/{spawned}/children"))
                    && let Some(p) = s.split_whitespace().next()
                {
                    return p.parse().unwrap();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("unshare has no child");
        }
    }
}

fn exit_codes(mode: Mode) {
    if skip_unless_root("exit_codes") {
        return;
    }
    let d = Dir::new();
    let p = policy(&d);
    for code in 0..=255 {
        let mut c = run_cmd(&p, &[], &["/bin/sh", "-c", &format!("exit {code}")]);
        c.env("AGENT_VAULT_LOG", "quiet");
        let o = output(wrap(mode, c));
        assert_eq!(
            o.status.code(),
            Some(code),
            "{mode:?} exit {code}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn exit_codes_0_to_255_subreaper() {
    exit_codes(Mode::Subreaper);
}

#[test]
fn exit_codes_0_to_255_pid_namespace() {
    exit_codes(Mode::PidNamespace);
}

/// Start `script` as the harness, wait for it to print "ready", send `sig`
/// to agent-init, and return agent-init's exit code.
fn signal_run(mode: Mode, args: &[&str], script: &str, sig: i32) -> (Option<i32>, Duration) {
    signal_run_with(mode, args, &["/bin/sh", "-c", script], sig)
}

fn signal_run_with(mode: Mode, args: &[&str], cmd: &[&str], sig: i32) -> (Option<i32>, Duration) {
    let d = Dir::new();
    let p = policy(&d);
    let mut c = wrap(mode, run_cmd(&p, args, cmd));
    c.stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = agent_pid(mode, child.id());
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::try_from(sig).unwrap(),
    )
    .unwrap();
    let st = child.wait().unwrap();
    (st.code(), t.elapsed())
}

fn forwarded_signals(mode: Mode) {
    if skip_unless_root("forwarded_signals") {
        return;
    }
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // `exec`: the harness is `sleep` itself, killed by the signal.
        let (code, _) = signal_run(mode, &[], "echo ready; exec /bin/sleep 30", sig);
        assert_eq!(code, Some(128 + sig), "{mode:?} signal {sig}");
    }
    // WINCH does not kill by default: the harness traps it and exits 128+28.
    let (code, _) = signal_run(
        mode,
        &[],
        "trap 'exit 156' WINCH; echo ready; while :; do /bin/sleep 0.05; done",
        libc::SIGWINCH,
    );
    assert_eq!(code, Some(128 + libc::SIGWINCH), "{mode:?} WINCH");
}

#[test]
fn forwarded_signals_subreaper() {
    forwarded_signals(Mode::Subreaper);
}

#[test]
fn forwarded_signals_pid_namespace() {
    forwarded_signals(Mode::PidNamespace);
}

const ORPHANS: &str = r#"
import os, time
me = os.getpid()
for i in range(1000):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
time.sleep(1.5)
init = os.getppid()
zombies = 0
for p in os.listdir('/proc'):
    if not p.isdigit():
        continue
    try:
        stat = open('/proc/%s/stat' % p).read()
    except OSError:
        continue
    rest = stat[stat.rfind(')') + 2:].split()
    if rest[0] == 'Z' and int(rest[1]) == init:
        zombies += 1
print(zombies)
"#;

fn orphans(mode: Mode) {
    if skip_unless_root("orphans") {
        return;
    }
    let d = Dir::new();
    let p = policy(&d);
    let o = output(wrap(
        mode,
        run_cmd(&p, &[], &["/usr/bin/python3", "-c", ORPHANS]),
    ));
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        "0",
        "{mode:?}: zombies left after 1,000 orphans"
    );
}

#[test]
fn orphans_reaped_subreaper() {
    orphans(Mode::Subreaper);
}

#[test]
fn orphans_reaped_pid_namespace() {
    orphans(Mode::PidNamespace);
}

fn grace(mode: Mode) {
    if skip_unless_root("grace") {
        return;
    }
    let d = Dir::new();
    let p = policy(&d);
    // An orphan that ignores SIGTERM: SIGKILLed after the 1 s grace period.
    let stubborn = "/bin/sh -c 'trap \"\" TERM; /bin/sleep 30' & /bin/sleep 0.2; exit 3";
    let t = Instant::now();
    let o = output(wrap(
        mode,
        run_cmd(&p, &["--grace", "1"], &["/bin/sh", "-c", stubborn]),
    ));
    let took = t.elapsed();
    assert_exit(&o, 3);
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(10),
        "{mode:?} took {took:?}"
    );
    assert_stderr_contains(&o, "grace period over");
    // An orphan that obeys SIGTERM: no waiting for the grace period.
    let polite = "/bin/sleep 30 & /bin/sleep 0.2; exit 4";
    let t = Instant::now();
    let o = output(wrap(
        mode,
        run_cmd(&p, &["--grace", "20"], &["/bin/sh", "-c", polite]),
    ));
    assert_exit(&o, 4);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{mode:?} waited {:?}",
        t.elapsed()
    );
}

#[test]
fn grace_period_subreaper() {
    grace(Mode::Subreaper);
}

#[test]
fn grace_period_pid_namespace() {
    grace(Mode::PidNamespace);
}

// The harness ignores TERM (a handler) and waits for its child `sleep`
// (already exec'd when Popen returns). With --process-group the signal also
// reaches `sleep`, so the harness exits 100; without it, only the harness
// sees it and keeps waiting.
const GROUP: &str = r#"
import signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *a: None)
p = subprocess.Popen(["/bin/sleep", "30"])
print("ready", flush=True)
sys.exit(100 if p.wait() == -signal.SIGTERM else 101)
"#;

fn process_group(mode: Mode) {
    if skip_unless_root("process_group") {
        return;
    }
    let py = ["/usr/bin/python3", "-c", GROUP];
    let (code, took) = signal_run_with(mode, &["--process-group"], &py, libc::SIGTERM);
    assert_eq!(code, Some(100), "{mode:?}");
    assert!(took < Duration::from_secs(5));
    // Without the flag: still running after 1 s.
    let d = Dir::new();
    let p = policy(&d);
    let mut c = wrap(mode, run_cmd(&p, &["--grace", "0"], &py));
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid = agent_pid(mode, child.id());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{mode:?}: harness should still wait for sleep"
    );
    // Clean up: SIGKILL agent-init; PDEATHSIG takes the harness down.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn process_group_subreaper() {
    process_group(Mode::Subreaper);
}

#[test]
fn process_group_pid_namespace() {
    process_group(Mode::PidNamespace);
}

#[test]
fn harness_dies_with_agent_init() {
    if skip_unless_root("harness_dies_with_agent_init") {
        return;
    }
    let d = Dir::new();
    let p = policy(&d);
    let mut c = run_cmd(&p, &[], &["/bin/sh", "-c", "echo $$; exec /bin/sleep 30"]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let harness: i32 = line.trim().parse().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{harness}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{harness}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "harness survived agent-init"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
