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
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

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
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return status_code(st);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 255;
        }
    }
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

fn env_ptr() -> *const *const c_char {
    // SAFETY: reads libc's environ pointer (single-threaded program).
    unsafe { environ }
}

/// Fork (or vfork) and exec `/bin/sh -c cmd` with the exec call `how`.
fn fork_exec(how: &str, cmd: &str) -> i32 {
    let sh = cs("/bin/sh");
    let shname = cs("sh");
    let dash_c = cs("-c");
    let c = cs(cmd);
    let argv: [*const c_char; 4] = [
        shname.as_ptr(),
        dash_c.as_ptr(),
        c.as_ptr(),
        std::ptr::null(),
    ];
    let envp = env_ptr();
    let shfd = if how == "fexecve" {
        // SAFETY: opening a constant path.
        unsafe { libc::open(sh.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
    } else {
        -1
    };
    // SAFETY: fork/vfork in a single-threaded program; the child only calls
    // exec functions and _exit (async-signal-safe, and vfork-safe: no
    // allocation in the child, all strings prepared above).
    unsafe {
        #[allow(deprecated)] // vfork: the point of this mode (Claude Code's native binary uses it)
        let pid = if how == "vfork" {
            libc::vfork()
        } else {
            libc::fork()
        };
        if pid == 0 {
            match how {
                "execl" => {
                    libc::execl(
                        sh.as_ptr(),
                        shname.as_ptr(),
                        dash_c.as_ptr(),
                        c.as_ptr(),
                        std::ptr::null::<c_char>(),
                    );
                }
                "execlp" => {
                    libc::execlp(
                        shname.as_ptr(),
                        shname.as_ptr(),
                        dash_c.as_ptr(),
                        c.as_ptr(),
                        std::ptr::null::<c_char>(),
                    );
                }
                "execle" => {
                    libc::execle(
                        sh.as_ptr(),
                        shname.as_ptr(),
                        dash_c.as_ptr(),
                        c.as_ptr(),
                        std::ptr::null::<c_char>(),
                        envp,
                    );
                }
                "execvp" => {
                    libc::execvp(shname.as_ptr(), argv.as_ptr());
                }
                "execvpe" => {
                    libc::execvpe(shname.as_ptr(), argv.as_ptr(), envp);
                }
                "execv" => {
                    libc::execv(sh.as_ptr(), argv.as_ptr());
                }
                "fexecve" => {
                    libc::fexecve(shfd, argv.as_ptr(), envp);
                }
                "execveat" => {
                    libc::execveat(
                        libc::AT_FDCWD,
                        sh.as_ptr(),
                        argv.as_ptr() as _,
                        envp as _,
                        0,
                    );
                }
                _ => {
                    libc::execve(sh.as_ptr(), argv.as_ptr(), envp);
                }
            }
            libc::_exit(127);
        }
        if pid < 0 {
            return 255;
        }
        wait(pid)
    }
}

fn spawn(p: bool, cmd: &str) -> i32 {
    let sh = cs(if p { "sh" } else { "/bin/sh" });
    let shname = cs("sh");
    let dash_c = cs("-c");
    let c = cs(cmd);
    let argv: [*const c_char; 4] = [
        shname.as_ptr(),
        dash_c.as_ptr(),
        c.as_ptr(),
        std::ptr::null(),
    ];
    let mut pid: libc::pid_t = 0;
    // SAFETY: all pointers are valid C strings/arrays alive for the call.
    let r = unsafe {
        if p {
            libc::posix_spawnp(
                &mut pid,
                sh.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr() as _,
                env_ptr() as _,
            )
        } else {
            libc::posix_spawn(
                &mut pid,
                sh.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr() as _,
                env_ptr() as _,
            )
        }
    };
    if r != 0 {
        eprintln!(
            "posix_spawn failed: {}",
            std::io::Error::from_raw_os_error(r)
        );
        return 254;
    }
    wait(pid)
}

fn fork_exec_true() -> i32 {
    let t = c"/bin/true";
    let argv: [*const c_char; 2] = [t.as_ptr(), std::ptr::null()];
    // SAFETY: the child only calls execv and _exit.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::execv(t.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
        wait(pid)
    }
}

fn spawn_true() -> i32 {
    let t = c"/bin/true";
    let argv: [*const c_char; 2] = [t.as_ptr(), std::ptr::null()];
    let mut pid: libc::pid_t = 0;
    // SAFETY: valid pointers alive for the call.
    let r = unsafe {
        libc::posix_spawn(
            &mut pid,
            t.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv.as_ptr() as _,
            env_ptr() as _,
        )
    };
    if r != 0 {
        return 254;
    }
    wait(pid)
}

/// Open `path` without O_CLOEXEC and make it fd number `fd` (a leak to
/// every child); returns that number.
fn leak_fd(path: &str, fd: &str) -> libc::c_int {
    let path = cs(path);
    let target: libc::c_int = fd.parse().expect("fd number");
    // SAFETY: open/dup2 on our own fds.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
        if fd < 0 {
            eprintln!("harness open failed: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
        libc::dup2(fd, target);
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
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, both alive for the call; the
    // kernel copies the program.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) == 0
    };
    if !ok {
        eprintln!("seccomp: {}", std::io::Error::last_os_error());
        std::process::exit(1);
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
            let c = cs(&arg(2));
            // SAFETY: a valid C string.
            let st = unsafe { libc::system(c.as_ptr()) };
            if st == -1 { 255 } else { status_code(st) }
        }
        "popen" => {
            let c = cs(&arg(2));
            // SAFETY: valid C strings; the stream is read and closed here.
            unsafe {
                let f = libc::popen(c.as_ptr(), c"r".as_ptr());
                if f.is_null() {
                    eprintln!("popen failed: {}", std::io::Error::last_os_error());
                    255
                } else {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = libc::fread(buf.as_mut_ptr().cast(), 1, buf.len(), f);
                        if n == 0 {
                            break;
                        }
                        use std::io::Write;
                        let _ = std::io::stdout().write_all(&buf[..n]);
                    }
                    status_code(libc::pclose(f))
                }
            }
        }
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
            // SAFETY: F_GETFD on a number only reads its flags.
            let kept = unsafe { libc::fcntl(target, libc::F_GETFD) } >= 0;
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
            let argv: [*const c_char; 4] =
                [sh.as_ptr(), c"-c".as_ptr(), cmd.as_ptr(), std::ptr::null()];
            let envp = env_ptr();
            // SAFETY: the child only calls execve and _exit on strings
            // prepared before the fork.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    for m in &missing {
                        libc::execve(m.as_ptr(), argv.as_ptr(), envp);
                    }
                    libc::execve(sh.as_ptr(), argv.as_ptr(), envp);
                    libc::_exit(127);
                }
                wait(pid)
            }
        }
        "leakfd-lowered" => {
            // As leakfd, then lower the soft fd limit below the leaked fd
            // (an fd opened earlier stays open above a lowered limit).
            leak_fd(&arg(2), &arg(3));
            let limit: libc::rlim_t = arg(4).parse().expect("limit");
            // SAFETY: getrlimit/setrlimit on a local struct.
            unsafe {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                lim.rlim_cur = limit;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    eprintln!("setrlimit: {}", std::io::Error::last_os_error());
                    std::process::exit(1);
                }
            }
            fork_exec("fork", &arg(5))
        }
        "holdfd" => {
            let path = cs(&arg(2));
            // SAFETY: opening a path; the fd stays open for the child's lifetime.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            let cmd = arg(3).replace("{HFD}", &fd.to_string());
            fork_exec("fork", &cmd)
        }
        "usr1" => {
            // SAFETY: installing a handler that only stores an atomic.
            unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t) };
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
