//! Privileges, Landlock and seccomp as the harness sees them; real programs
//! (Python, Node, git) under the filter.

mod common;
use common::*;

fn full(d: &Dir) -> std::path::PathBuf {
    d.policy("65534:65534", "required", "required", "")
}

#[test]
fn harness_status_shows_everything_dropped() {
    if skip_unless_root("harness_status_shows_everything_dropped") {
        return;
    }
    let d = Dir::new();
    let o = run_expecting(
        &full(&d),
        &[],
        &[
            "/bin/sh",
            "-c",
            "cat /proc/$$/status; cat /proc/$$/loginuid >/dev/null; ulimit -c",
        ],
        0,
    );
    let s = stdout(&o);
    let field = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    for k in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(k), "0000000000000000", "{k}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    assert_eq!(
        field("Uid:").split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(field("Groups:"), "");
    assert_eq!(s.lines().last(), Some("0"), "RLIMIT_CORE");
}

const SYSCALLS: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *a):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    if r == 0 and nr == 56:
        os._exit(0)  # a clone that got through: the child leaves at once
    return ctypes.get_errno() if r == -1 else 0
null = os.open("/dev/null", os.O_RDWR)
c = ctypes.c_char(b" ")
probes = [
  ("ptrace", 101, [16, os.getppid(), 0, 0], 1),
  ("process_vm_readv", 310, [os.getppid(), 0, 0, 0, 0, 0], 1),
  ("process_vm_writev", 311, [os.getppid(), 0, 0, 0, 0, 0], 1),
  ("io_uring_setup", 425, [1, 0], 1),
  ("io_uring_enter", 426, [-1, 0, 0, 0, 0, 0], 1),
  ("io_uring_register", 427, [-1, 0, 0, 0], 1),
  ("name_to_handle_at", 303, [-1, 0, 0, 0, 0], 1),
  ("open_by_handle_at", 304, [-1, 0, 0], 1),
  ("pidfd_getfd", 438, [-1, 0, 0], 1),
  ("kcmp", 312, [0, 0, 0, 0, 0], 1),
  ("bpf", 321, [0, 0, 0], 1),
  ("perf_event_open", 298, [0, 0, -1, -1, 0], 1),
  ("userfaultfd", 323, [0], 1),
  ("add_key", 248, [0, 0, 0, 0, 0], 1),
  ("keyctl", 250, [0, 0, 0, 0, 0], 1),
  ("request_key", 249, [0, 0, 0, 0], 1),
  ("mount", 165, [0, 0, 0, 0, 0], 1),
  ("umount2", 166, [0, 0], 1),
  ("pivot_root", 155, [0, 0], 1),
  ("fsopen", 430, [0, 0], 1),
  ("fsconfig", 431, [-1, 0, 0, 0, 0], 1),
  ("fsmount", 432, [-1, 0, 0], 1),
  ("fspick", 433, [-1, 0, 0], 1),
  ("move_mount", 429, [-1, 0, -1, 0, 0], 1),
  ("open_tree", 428, [-1, 0, 0], 1),
  ("mount_setattr", 442, [-1, 0, 0, 0, 0], 1),
  ("setns", 308, [-1, 0], 1),
  ("unshare(CLONE_NEWUSER)", 272, [0x10000000], 1),
  ("unshare(CLONE_NEWNS)", 272, [0x20000], 1),
  ("unshare(CLONE_NEWNET)", 272, [0x40000000], 1),
  ("clone(CLONE_NEWUSER)", 56, [0x10000000 | 17, 0, 0, 0, 0], 1),
  ("clone3", 435, [0, 0], 38),
  ("ioctl(TIOCSTI)", 16, [null, 0x5412, ctypes.addressof(c)], 1),
  ("ioctl(TIOCLINUX)", 16, [null, 0x541C, ctypes.addressof(c)], 1),
  ("kexec_load", 246, [0, 0, 0, 0], 1),
  ("kexec_file_load", 320, [-1, -1, 0, 0, 0], 1),
  ("init_module", 175, [0, 0, 0], 1),
  ("finit_module", 313, [-1, 0, 0], 1),
  ("delete_module", 176, [0, 0], 1),
  ("x32 getpid", 0x40000000 | 39, [], 1),
]
for name, nr, args, want in probes:
    print(name, call(nr, *args), want)
# Allowed calls keep working.
print("getppid", 0 if libc.getppid() > 0 else 1, 0)
print("unshare(0)", call(272, 0), 0)
"#;

fn probe(seccomp: &str) -> Vec<(String, i64, i64)> {
    let d = Dir::new();
    let p = d.policy("65534:65534", "required", seccomp, "");
    let o = run_expecting(&p, &[], &["/usr/bin/python3", "-c", SYSCALLS], 0);
    stdout(&o)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.rsplitn(3, ' ').collect();
            (
                f[2].to_string(),
                f[1].parse().unwrap(),
                f[0].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn each_denied_syscall_returns_its_errno() {
    if skip_unless_root("each_denied_syscall_returns_its_errno") {
        return;
    }
    let on = probe("required");
    for (name, got, want) in &on {
        assert_eq!(got, want, "{name}: errno {got}, expected {want}");
    }
    // Without the filter most of them fail differently (EBADF, EFAULT,
    // EINVAL, ENOSYS...): the EPERMs above are the filter's.
    let off = probe("off");
    let differ = on
        .iter()
        .zip(&off)
        .filter(|((_, a, _), (_, b, _))| a != b)
        .map(|((n, _, _), _)| n.clone())
        .collect::<Vec<_>>();
    assert!(
        differ.len() >= 20,
        "only {differ:?} differ without the filter"
    );
    assert!(differ.contains(&"clone3".to_string()));
    assert!(differ.contains(&"io_uring_setup".to_string()));
}

#[test]
fn python_node_git_work_under_the_filter() {
    if skip_unless_root("python_node_git_work_under_the_filter") {
        return;
    }
    let d = Dir::new();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    nix::unistd::chown(&work, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let p = full(&d);
    let py = r#"
import threading, subprocess, multiprocessing, os
r = []
t = threading.Thread(target=lambda: r.append(1)); t.start(); t.join()
out = subprocess.run(["/bin/echo", "sub"], capture_output=True, text=True).stdout.strip()
with multiprocessing.Pool(2) as pool:
    sq = pool.map(abs, [-1, -2])
print("py", r, out, sq)
"#;
    let o = output(run_cmd(&p, &[], &["/usr/bin/python3", "-c", py]));
    assert_eq!(stdout(&o).trim(), "py [1] sub [1, 2]", "{}", stderr(&o));

    if !skip_without("/usr/bin/node", "node") {
        let js = r#"
const { Worker } = require('worker_threads');
const cp = require('child_process');
const fs = require('fs');
const w = new Worker("require('worker_threads').parentPort.postMessage(6*7)", { eval: true });
w.on('message', async (m) => {
  const sync = cp.execSync('echo sync').toString().trim();
  const spawned = await new Promise(res => cp.exec('echo async', (e, o) => res(o.trim())));
  const data = await fs.promises.readFile('/etc/hostname', 'utf8');
  console.log('node', m, sync, spawned, data.length > 0);
  w.terminate();
});
"#;
        let o = output(run_cmd(&p, &[], &["/usr/bin/node", "-e", js]));
        assert_eq!(
            stdout(&o).trim(),
            "node 42 sync async true",
            "{}",
            stderr(&o)
        );
    }

    let git = if has("/usr/local/bin/git") {
        "/usr/local/bin/git"
    } else {
        "/usr/bin/git"
    };
    if !skip_without(git, "git") {
        let script = format!(
            "cd {w} && G='{git} -c user.email=a@b -c user.name=n' && $G init -q r && cd r && echo x > f && $G add f && $G commit -qm m && echo y >> f && $G status --short && $G log --oneline | wc -l && grep -r x . --exclude-dir=.git",
            w = work.display()
        );
        let o = output(run_cmd(&p, &[], &["/bin/sh", "-c", &script]));
        assert_eq!(stdout(&o), " M f\n1\n./f:x\n", "{}", stderr(&o));
    }
}

#[test]
fn landlock_base_layer_and_terminals() {
    if skip_unless_root("landlock_base_layer_and_terminals") {
        return;
    }
    let d = Dir::new();
    let p = full(&d);
    // Writes outside read_write are denied even where the file mode allows
    // them (/var/tmp is 1777, not in read_write); a pty still opens
    // (IoctlDev on /dev/ptmx and /dev/pts).
    let py = r#"
import os, pty, errno
try:
    open("/var/tmp/agent-init-test-x-%d" % os.getpid(), "w"); print("etc writable")
except OSError as e:
    print("etc", errno.errorcode[e.errno])
m, s = pty.openpty(); os.write(m, b"hi\n"); print("pty", os.read(s, 3))
t = "/tmp/agent-init-test-ok-%d" % os.getpid(); open(t, "w").close(); os.unlink(t); print("tmp ok")
"#;
    let o = output(run_cmd(&p, &[], &["/usr/bin/python3", "-c", py]));
    assert_eq!(
        stdout(&o),
        "etc EACCES\npty b'hi\\n'\ntmp ok\n",
        "{}",
        stderr(&o)
    );
    assert_stderr_contains(&o, "[5/8] landlock: fully enforced, ABI");
}

#[test]
fn step_lines_in_order() {
    if skip_unless_root("step_lines_in_order") {
        return;
    }
    let d = Dir::new();
    let o = output(run_cmd(&full(&d), &[], &["/bin/true"]));
    let err = stderr(&o);
    let mut last = 0;
    for n in 1..=8 {
        let at = err
            .find(&format!("[{n}/8]"))
            .unwrap_or_else(|| panic!("step {n} missing: {err}"));
        assert!(at >= last, "step {n} out of order: {err}");
        last = at;
    }
    // -q silences the step lines (the preload warning stays).
    let o = output(run_cmd(&full(&d), &["-q"], &["/bin/true"]));
    assert!(!stderr(&o).contains("[1/8]"), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: vault preload not used"));
}
