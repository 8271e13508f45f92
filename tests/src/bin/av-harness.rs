//! A stand-in harness for the preload tests: the test records this process's
//! pid as the harness, and it spawns "tools" through the spawn path named by
//! its first argument. `{HPID}` in the command is replaced by its own pid.
//!
//! Usage: `av-harness MODE [ARGS...]`
//! - `read FILE`: print FILE (the harness reading its credential)
//! - `fork|vfork|execl|execlp|execle|execvp|execvpe|fexecve|execveat CMD`:
//!   fork (or vfork) and run `/bin/sh -c CMD` with that exec call
//! - `spawn|spawnp|system|popen CMD`: the same through posix_spawn(p), system, popen
//! - `spawn-read CMD FILE`: `spawn CMD`, then print FILE
//! - `leakfd FILE FD CMD`: open FILE without O_CLOEXEC as fd FD, then `fork CMD`
//! - `nounshare-leakfd FILE FD CMD`: with unshare(2) refused by seccomp,
//!   leak FILE as fd FD and `spawn CMD`; prints whether the harness kept FD
//! - `execloop N CMD`: fork; the child tries N missing programs with
//!   execve, then runs `/bin/sh -c CMD`
//! - `leakfd-lowered FILE FD LIMIT CMD`: `leakfd`, with the soft fd limit
//!   lowered to LIMIT (below FD) before the fork
//! - `holdfd FILE CMD`: open FILE (kept open, close-on-exec), print its fd, then `fork CMD`
//! - `usr1 CMD`: with a SIGUSR1 handler installed, `fork CMD`; prints GOT_USR1 if it fired
//! - `bench-fork N`, `bench-spawn N`: N fork+execv / posix_spawn of /bin/true; prints µs each
//!
//! Exit status: the command's (128+signal when killed).

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};

use sys::{Argv, Envp};

static GOT_USR1: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {
    GOT_USR1.store(true, Ordering::SeqCst);
}

fn cs(s: &str) -> CString {
    CString::new(s).expect("no NUL in arguments")
}

fn status_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

fn wait(pid: libc::pid_t) -> i32 {
    loop {
        match sys::waitpid(pid) {
            Ok(st) => return status_code(st),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => return 255,
        }
    }
}

/// Fork (or vfork) and exec `/bin/sh -c cmd` with the exec call `how`.
fn fork_exec(how: &str, cmd: &str) -> i32 {
    let sh = c"/bin/sh";
    let shname = c"sh";
    let dash_c = c"-c";
    let c = cs(cmd);
    let argv = Argv::new(&[shname, dash_c, &c]);
    let envp = Envp::current();
    let shfd = if how == "fexecve" {
        match sys::open(sh, libc::O_RDONLY | libc::O_CLOEXEC) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("harness open failed: {e}");
                return 255;
            }
        }
    } else {
        -1
    };
    #[allow(deprecated)] // vfork: the point of this mode (Claude Code's native binary uses it)
    let pid = if how == "vfork" {
        // SAFETY: vfork is called here, not in a `sys` wrapper, because the
        // child borrows this stack frame until it execs or _exits and must
        // not return from the function that called vfork. The harness is
        // single-threaded; the child below only calls exec functions and
        // _exit on strings and vectors prepared above (no allocation).
        unsafe { libc::vfork() }
    } else {
        sys::fork()
    };
    if pid == 0 {
        let args = [shname, dash_c, c.as_c_str()];
        match how {
            "execl" => sys::execl(sh, args),
            "execlp" => sys::execlp(shname, args),
            "execle" => sys::execle(sh, args, envp),
            "execvp" => sys::execvp(shname, &argv),
            "execvpe" => sys::execvpe(shname, &argv, envp),
            "execv" => sys::execv(sh, &argv),
            "fexecve" => sys::fexecve(shfd, &argv, envp),
            "execveat" => sys::execveat(sh, &argv, envp),
            _ => sys::execve(sh, &argv, envp),
        }
        sys::exit_now(127);
    }
    if pid < 0 {
        return 255;
    }
    wait(pid)
}

fn spawn(p: bool, cmd: &str) -> i32 {
    let shname = c"sh";
    let c = cs(cmd);
    let argv = Argv::new(&[shname, c"-c", &c]);
    let spawned = if p {
        sys::posix_spawnp(shname, &argv, Envp::current())
    } else {
        sys::posix_spawn(c"/bin/sh", &argv, Envp::current())
    };
    match spawned {
        Ok(pid) => wait(pid),
        Err(e) => {
            eprintln!("posix_spawn failed: {e}");
            254
        }
    }
}

fn fork_exec_true() -> i32 {
    let t = c"/bin/true";
    let argv = Argv::new(&[t]);
    let pid = sys::fork();
    if pid == 0 {
        // The child only calls execv and _exit.
        sys::execv(t, &argv);
        sys::exit_now(127);
    }
    if pid < 0 {
        return 255;
    }
    wait(pid)
}

fn spawn_true() -> i32 {
    let t = c"/bin/true";
    match sys::posix_spawn(t, &Argv::new(&[t]), Envp::current()) {
        Ok(pid) => wait(pid),
        Err(_) => 254,
    }
}

/// Open `path` without O_CLOEXEC and make it fd number `fd` (a leak to
/// every child); returns that number.
fn leak_fd(path: &str, fd: &str) -> libc::c_int {
    let path = cs(path);
    let target: libc::c_int = fd.parse().expect("fd number");
    let fd = match sys::open(&path, libc::O_RDONLY) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("harness open failed: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = sys::dup2(fd, target) {
        eprintln!("harness dup2 failed: {e}");
        std::process::exit(1);
    }
    target
}

/// Install a seccomp filter that makes unshare(2) fail with EPERM.
fn deny_unshare() {
    // Classic BPF: load the syscall number, EPERM for unshare, allow the rest.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        insn(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JEQ_K, 0, 1, libc::SYS_unshare as u32),
        insn(RET_K, 0, 0, 0x0005_0000 | libc::EPERM as u32), // SECCOMP_RET_ERRNO
        insn(RET_K, 0, 0, 0x7fff_0000),                      // SECCOMP_RET_ALLOW
    ];
    if let Err(e) = sys::set_no_new_privs().and_then(|()| sys::set_seccomp_filter(&filter)) {
        eprintln!("seccomp: {e}");
        std::process::exit(1);
    }
}

/// Run `cmd` with popen(3), copy its output to stdout, return its status.
fn popen(cmd: &str) -> i32 {
    use std::io::Write;
    let c = cs(cmd);
    let Some(mut stream) = sys::Stream::popen(&c) else {
        eprintln!("popen failed: {}", std::io::Error::last_os_error());
        return 255;
    };
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Err(e) = std::io::stdout().write_all(&buf[..n]) {
                    eprintln!("harness write failed: {e}");
                }
            }
            Err(e) => {
                eprintln!("popen read failed: {e}");
                break;
            }
        }
    }
    match stream.close() {
        Ok(st) => status_code(st),
        Err(e) => {
            eprintln!("pclose failed: {e}");
            255
        }
    }
}

/// The harness's libc calls, one unsafe operation each. Strings come in as
/// `&CStr` and argument vectors as [`Argv`], so every pointer handed to libc
/// is NUL-terminated (vectors NULL-terminated) and outlives the call.
/// Failures come back as `io::Error` (errno) for the caller to report; an
/// exec wrapper returns only when its exec failed.
mod sys {
    use std::ffi::{CStr, c_char, c_int};
    use std::io;
    use std::marker::PhantomData;
    use std::ptr::{NonNull, null};

    /// A NULL-terminated argument vector borrowing its strings.
    pub struct Argv<'a> {
        ptrs: Vec<*const c_char>,
        strs: PhantomData<&'a CStr>,
    }

    impl<'a> Argv<'a> {
        pub fn new(args: &[&'a CStr]) -> Self {
            let mut ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(null());
            Argv {
                ptrs,
                strs: PhantomData,
            }
        }

        fn as_ptr(&self) -> *const *const c_char {
            self.ptrs.as_ptr()
        }
    }

    unsafe extern "C" {
        static environ: *const *const c_char;
    }

    /// This process's environment as libc holds it (`environ`).
    #[derive(Clone, Copy)]
    pub struct Envp(*const *const c_char);

    impl Envp {
        pub fn current() -> Self {
            // SAFETY: reads libc's `environ` pointer; the harness is
            // single-threaded and never changes its environment, so the
            // array it points at stays valid for the process's life.
            Envp(unsafe { environ })
        }
    }

    fn check(rc: c_int) -> io::Result<c_int> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }

    pub fn open(path: &CStr, flags: c_int) -> io::Result<c_int> {
        // SAFETY: `path` is NUL-terminated and borrowed for the call.
        check(unsafe { libc::open(path.as_ptr(), flags) })
    }

    pub fn dup2(fd: c_int, target: c_int) -> io::Result<()> {
        // SAFETY: no pointer arguments; a bad fd fails with EBADF.
        check(unsafe { libc::dup2(fd, target) }).map(drop)
    }

    /// Whether `fd` is an open descriptor (F_GETFD only reads its flags).
    pub fn fd_is_open(fd: c_int) -> bool {
        // SAFETY: no pointer arguments; a closed fd fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    /// fork(2): the child's pid in the parent, 0 in the child, -1 on failure.
    pub fn fork() -> libc::pid_t {
        // SAFETY: the harness is single-threaded, so the child's copy of
        // memory holds no lock another thread held; callers have the child
        // only exec or _exit.
        unsafe { libc::fork() }
    }

    /// Wait for `pid`; its wait status.
    pub fn waitpid(pid: libc::pid_t) -> io::Result<c_int> {
        let mut status = 0;
        // SAFETY: `status` is a live local the call writes once.
        check(unsafe { libc::waitpid(pid, &mut status, 0) })?;
        Ok(status)
    }

    /// _exit(2): leave at once (no atexit handlers, no flush; vfork-safe).
    pub fn exit_now(code: c_int) -> ! {
        // SAFETY: no pointer arguments; never returns.
        unsafe { libc::_exit(code) }
    }

    pub fn execl(path: &CStr, [a0, a1, a2]: [&CStr; 3]) {
        // SAFETY: every string is NUL-terminated and borrowed for the call;
        // the list ends with a NULL pointer.
        unsafe {
            libc::execl(
                path.as_ptr(),
                a0.as_ptr(),
                a1.as_ptr(),
                a2.as_ptr(),
                null::<c_char>(),
            )
        };
    }

    pub fn execlp(file: &CStr, [a0, a1, a2]: [&CStr; 3]) {
        // SAFETY: as `execl`.
        unsafe {
            libc::execlp(
                file.as_ptr(),
                a0.as_ptr(),
                a1.as_ptr(),
                a2.as_ptr(),
                null::<c_char>(),
            )
        };
    }

    pub fn execle(path: &CStr, [a0, a1, a2]: [&CStr; 3], envp: Envp) {
        // SAFETY: as `execl`; `envp` is libc's environment array.
        unsafe {
            libc::execle(
                path.as_ptr(),
                a0.as_ptr(),
                a1.as_ptr(),
                a2.as_ptr(),
                null::<c_char>(),
                envp.0,
            )
        };
    }

    pub fn execv(path: &CStr, argv: &Argv) {
        // SAFETY: `path` and `argv` are borrowed for the call; `argv` is
        // NULL-terminated.
        unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    }

    pub fn execvp(file: &CStr, argv: &Argv) {
        // SAFETY: as `execv`.
        unsafe { libc::execvp(file.as_ptr(), argv.as_ptr()) };
    }

    pub fn execve(path: &CStr, argv: &Argv, envp: Envp) {
        // SAFETY: as `execv`; `envp` is libc's environment array.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.0) };
    }

    pub fn execvpe(file: &CStr, argv: &Argv, envp: Envp) {
        // SAFETY: as `execve`.
        unsafe { libc::execvpe(file.as_ptr(), argv.as_ptr(), envp.0) };
    }

    pub fn fexecve(fd: c_int, argv: &Argv, envp: Envp) {
        // SAFETY: as `execve`; a bad `fd` fails with EBADF.
        unsafe { libc::fexecve(fd, argv.as_ptr(), envp.0) };
    }

    /// execveat(2) relative to the working directory.
    pub fn execveat(path: &CStr, argv: &Argv, envp: Envp) {
        // SAFETY: as `execve` (libc declares the vectors `*const *mut`;
        // exec does not write through them).
        unsafe {
            libc::execveat(
                libc::AT_FDCWD,
                path.as_ptr(),
                argv.as_ptr() as _,
                envp.0 as _,
                0,
            )
        };
    }

    fn spawned(rc: c_int, pid: libc::pid_t) -> io::Result<libc::pid_t> {
        if rc == 0 {
            Ok(pid)
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// posix_spawn(3) with default attributes and file actions; the pid.
    pub fn posix_spawn(path: &CStr, argv: &Argv, envp: Envp) -> io::Result<libc::pid_t> {
        let mut pid = 0;
        // SAFETY: `pid` is a live local; `path` and `argv` are borrowed for
        // the call, `argv` NULL-terminated; `envp` is libc's environment
        // array; NULL attributes and file actions mean the defaults.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                null(),
                null(),
                argv.as_ptr() as _,
                envp.0 as _,
            )
        };
        spawned(rc, pid)
    }

    /// posix_spawnp(3): as [`posix_spawn`], searching PATH for `file`.
    pub fn posix_spawnp(file: &CStr, argv: &Argv, envp: Envp) -> io::Result<libc::pid_t> {
        let mut pid = 0;
        // SAFETY: as `posix_spawn`.
        let rc = unsafe {
            libc::posix_spawnp(
                &mut pid,
                file.as_ptr(),
                null(),
                null(),
                argv.as_ptr() as _,
                envp.0 as _,
            )
        };
        spawned(rc, pid)
    }

    /// system(3): the command's wait status, or -1.
    pub fn system(cmd: &CStr) -> c_int {
        // SAFETY: `cmd` is NUL-terminated and borrowed for the call.
        unsafe { libc::system(cmd.as_ptr()) }
    }

    pub fn set_no_new_privs() -> io::Result<()> {
        // SAFETY: no pointer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
    }

    /// Install the classic BPF program `filter` as this thread's seccomp filter.
    pub fn set_seccomp_filter(filter: &[libc::sock_filter]) -> io::Result<()> {
        let prog = libc::sock_fprog {
            len: u16::try_from(filter.len())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `filter`, both alive for the call; the
        // kernel copies the program and never writes through the pointer.
        check(unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            )
        })
        .map(drop)
    }

    pub fn getrlimit_nofile() -> io::Result<libc::rlimit> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a live local the call fills in.
        check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
        Ok(lim)
    }

    pub fn setrlimit_nofile(lim: &libc::rlimit) -> io::Result<()> {
        // SAFETY: `lim` is borrowed for the call.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) }).map(drop)
    }

    /// Install `handler` for `sig` with signal(3).
    pub fn set_handler(sig: c_int, handler: extern "C" fn(c_int)) -> io::Result<()> {
        // SAFETY: `handler` is a plain `extern "C"` function that lives as
        // long as the program.
        let old = unsafe { libc::signal(sig, handler as *const () as libc::sighandler_t) };
        if old == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// A popen(3) stream, read until EOF and closed with [`Stream::close`].
    pub struct Stream(NonNull<libc::FILE>);

    impl Stream {
        /// popen(3) `cmd` for reading; `None` (errno set) on failure.
        pub fn popen(cmd: &CStr) -> Option<Self> {
            // SAFETY: `cmd` and the mode are NUL-terminated and borrowed for
            // the call.
            NonNull::new(unsafe { libc::popen(cmd.as_ptr(), c"r".as_ptr()) }).map(Stream)
        }

        /// Up to `buf.len()` bytes; 0 at end of stream.
        pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let file = self.0.as_ptr();
            // SAFETY: `file` is the open stream this value owns; `buf` is a
            // live, writable slice of `buf.len()` bytes.
            let n = unsafe { libc::fread(buf.as_mut_ptr().cast(), 1, buf.len(), file) };
            // SAFETY: `file` is still open; ferror only reads its flag.
            if n == 0 && unsafe { libc::ferror(file) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n)
        }

        /// pclose(3): the command's wait status.
        pub fn close(self) -> io::Result<c_int> {
            // SAFETY: the stream this value owns, closed once (`self` is consumed).
            let status = unsafe { libc::pclose(self.0.as_ptr()) };
            if status == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(status)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hpid = std::process::id().to_string();
    let arg = |i: usize| {
        args.get(i)
            .map(|s| s.replace("{HPID}", &hpid))
            .unwrap_or_default()
    };
    let mode = arg(1);
    let code = match mode.as_str() {
        "read" => match std::fs::read_to_string(arg(2)) {
            Ok(s) => {
                print!("{s}");
                0
            }
            Err(e) => {
                eprintln!("harness read failed: {e}");
                1
            }
        },
        "fork" | "vfork" | "execl" | "execlp" | "execle" | "execv" | "execvp" | "execvpe"
        | "fexecve" | "execveat" => fork_exec(&mode, &arg(2)),
        "spawn" => spawn(false, &arg(2)),
        "spawn-read" => {
            // posix_spawn (helper thread under the tool layer), then read:
            // the harness's own thread keeps its access.
            let code = spawn(false, &arg(2));
            match std::fs::read_to_string(arg(3)) {
                Ok(s) => println!("HARNESS_AFTER {s}"),
                Err(e) => println!("HARNESS_AFTER_FAILED {e}"),
            }
            code
        }
        "spawnp" => spawn(true, &arg(2)),
        "system" => {
            let st = sys::system(&cs(&arg(2)));
            if st == -1 { 255 } else { status_code(st) }
        }
        "popen" => popen(&arg(2)),
        "leakfd" => {
            leak_fd(&arg(2), &arg(3));
            fork_exec("fork", &arg(4))
        }
        "nounshare-leakfd" => {
            // Refuse unshare(2) with EPERM (as Docker's default seccomp
            // profile does for a process without CAP_SYS_ADMIN), leak FILE
            // as fd FD (no O_CLOEXEC), posix_spawn `/bin/sh -c CMD`, then
            // say whether the harness still holds FD.
            deny_unshare();
            let target = leak_fd(&arg(2), &arg(3));
            let code = spawn(false, &arg(4));
            let kept = sys::fd_is_open(target);
            println!("HARNESS_FD_{}", if kept { "KEPT" } else { "LOST" });
            code
        }
        "execloop" => {
            // Fork; the child calls execve on N paths that do not exist (as
            // an execvp-style loop over PATH does), then runs /bin/sh -c CMD.
            let n: usize = arg(2).parse().expect("count");
            let cmd = cs(&arg(3));
            let missing: Vec<CString> = (0..n)
                .map(|i| cs(&format!("/nonexistent-{i}/prog")))
                .collect();
            let sh = c"/bin/sh";
            let argv = Argv::new(&[sh, c"-c", &cmd]);
            let envp = Envp::current();
            let pid = sys::fork();
            if pid == 0 {
                // The child only calls execve and _exit on strings prepared
                // before the fork.
                for m in &missing {
                    sys::execve(m, &argv, envp);
                }
                sys::execve(sh, &argv, envp);
                sys::exit_now(127);
            }
            if pid < 0 { 255 } else { wait(pid) }
        }
        "leakfd-lowered" => {
            // As leakfd, then lower the soft fd limit below the leaked fd
            // (an fd opened earlier stays open above a lowered limit).
            leak_fd(&arg(2), &arg(3));
            let limit: libc::rlim_t = arg(4).parse().expect("limit");
            let mut lim = match sys::getrlimit_nofile() {
                Ok(lim) => lim,
                Err(e) => {
                    eprintln!("getrlimit: {e}");
                    std::process::exit(1);
                }
            };
            lim.rlim_cur = limit;
            if let Err(e) = sys::setrlimit_nofile(&lim) {
                eprintln!("setrlimit: {e}");
                std::process::exit(1);
            }
            fork_exec("fork", &arg(5))
        }
        "holdfd" => {
            // The fd stays open for the child's lifetime.
            let fd = match sys::open(&cs(&arg(2)), libc::O_RDONLY | libc::O_CLOEXEC) {
                Ok(fd) => fd,
                Err(e) => {
                    eprintln!("harness open failed: {e}");
                    std::process::exit(1);
                }
            };
            let cmd = arg(3).replace("{HFD}", &fd.to_string());
            fork_exec("fork", &cmd)
        }
        "usr1" => {
            // The handler only stores an atomic.
            if let Err(e) = sys::set_handler(libc::SIGUSR1, on_usr1) {
                eprintln!("signal: {e}");
                std::process::exit(1);
            }
            let code = fork_exec("fork", &arg(2));
            std::thread::sleep(std::time::Duration::from_millis(100));
            if GOT_USR1.load(Ordering::SeqCst) {
                println!("GOT_USR1");
            }
            code
        }
        "bench-fork" | "bench-spawn" => {
            // N spawns of /bin/true; prints microseconds per spawn.
            let n: u32 = arg(2).parse().unwrap_or(1000);
            let t = std::time::Instant::now();
            for _ in 0..n {
                let code = if mode == "bench-fork" {
                    fork_exec_true()
                } else {
                    spawn_true()
                };
                if code != 0 {
                    eprintln!("/bin/true failed: {code}");
                    std::process::exit(1);
                }
            }
            println!("{:.1}", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
            0
        }
        _ => {
            eprintln!("usage: av-harness MODE ARGS (see the source)");
            2
        }
    };
    std::process::exit(code);
}
