//! Python scaffolds for attacks that need a process tree the shell cannot
//! build: a harness that forks workers and execs readers, a tool that
//! reads twice around something the test does in between.
//!
//! A script is [`PRELUDE`] (and [`RAW`] for `raw`) followed by the test's
//! own lines. The helpers, in Python:
//!
//! - `raw(label, path)`: `openat` and `read` as raw system calls (x86_64
//!   numbers 257 and 0), so no libc hook decides; prints `LABEL DENIED
//!   errno` or `LABEL READ b'...'`;
//! - `spawn(argv)`: fork, and exec `argv` in the child; returns its pid;
//!   `run(argv)`: `spawn` and wait;
//! - `wait_for(path)`: until `path` exists, at most 5 seconds (the
//!   handshake between a script and the test, or two processes).

use crate::{HARNESS_UID, Run, World, chown_r};
use std::path::{Path, PathBuf};

/// The Python every scaffold runs.
pub const PYTHON: &str = "/usr/bin/python3";

/// The helpers every scaffold script starts with: `spawn`, `run`,
/// `wait_for` (see the module doc). Only `os`, `sys` and `time`: a tool's
/// script opens no more files than it did inline.
pub const PRELUDE: &str = r#"
import os, sys, time
def spawn(argv):
    pid = os.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    return pid
def run(argv):
    os.waitpid(spawn(argv), 0)
def wait_for(path):
    for _ in range(500):
        if os.path.exists(path):
            break
        time.sleep(0.01)
"#;

/// `raw(label, path)` (see the module doc), for the scripts that read.
pub const RAW: &str = r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def raw(label, path):
    fd = libc.syscall(257, -100, path.encode(), 0, 0)
    if fd < 0:
        print(label, "DENIED", ctypes.get_errno())
    else:
        b = ctypes.create_string_buffer(200); n = libc.syscall(0, fd, b, 200)
        print(label, "READ", b.raw[:n])
"#;

/// [`PRELUDE`] and then `body`.
pub fn script(body: &str) -> String {
    format!("{PRELUDE}{body}")
}

/// [`PRELUDE`], [`RAW`] and then `body`.
pub fn raw_script(body: &str) -> String {
    format!("{PRELUDE}{RAW}{body}")
}

/// A reader script: `raw(label, path)` once.
pub fn raw_reader(label: &str, path: &Path) -> String {
    raw_script(&format!(
        "raw({label:?}, {:?})\n",
        path.display().to_string()
    ))
}

/// Scripts a harness runs: `harness.py` and the `reader.py` it execs, in
/// the world's `py/` directory (owned by the harness user).
pub struct PythonHarness {
    pub dir: PathBuf,
}

impl PythonHarness {
    pub fn new(w: &World) -> PythonHarness {
        PythonHarness {
            dir: w.dir.path().join("py"),
        }
    }

    /// Where `reader.py` will be, for the harness script's argv.
    pub fn reader(&self) -> PathBuf {
        self.dir.join("reader.py")
    }

    /// Write both scripts and run `harness.py` as the harness.
    pub fn run(&self, w: &World, harness: &str, reader: &str) -> Run {
        std::fs::create_dir_all(&self.dir).unwrap();
        std::fs::write(self.dir.join("harness.py"), harness).unwrap();
        std::fs::write(self.reader(), reader).unwrap();
        chown_r(&self.dir, HARNESS_UID);
        let o = w
            .harness_cmd(
                Path::new(PYTHON),
                &[self.dir.join("harness.py").to_str().unwrap()],
            )
            .output()
            .unwrap();
        Run::from(o)
    }
}

/// Write `script` as `name` in the workspace and run it as a tool (from the
/// workspace).
pub fn python_tool(w: &World, name: &str, script: &str) -> Run {
    std::fs::write(w.ws.join(name), script).unwrap();
    w.tool(&format!("{PYTHON} {name}"))
}
