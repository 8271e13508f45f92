//! The spawn family. Only the harness and its not-yet-exec'd children act
//! here; in every other process these hooks call the real function.
//!
//! - **A forked (or vforked) child of the harness** calling an `exec*`: put
//!   the calling process under the tool layer (or, if Landlock is required
//!   and that fails, exit 126 with one line on stderr: never run the program
//!   unrestricted), give up the controlling terminal ([`terminal`]), close
//!   inherited fds that refer to vault files, drop the secret variables
//!   from the new program's environment, then exec.
//! - **The harness** calling `posix_spawn`, `posix_spawnp`, `system` or
//!   `popen`: the child cannot run our code before its exec, so a
//!   short-lived helper thread takes a private fd table
//!   (`unshare(CLONE_FILES)`), closes the vault fds in it, restricts itself
//!   with the tool layer (Landlock is per thread up to ABI 7), and spawns
//!   with the filtered environment and `POSIX_SPAWN_SETSID` (no terminal,
//!   [`terminal`]); the child inherits the thread's domain.
//!   `system` and `popen` are reimplemented on top of that (`/bin/sh -c`),
//!   since glibc's versions spawn with the unfiltered `environ`.
//!
//! `execl`, `execlp` and `execle` are C-variadic; stable Rust cannot define
//! those, so they take 64 pointer arguments: on x86_64 and aarch64 Linux a
//! variadic caller passes pointer arguments exactly where a fixed-argument
//! callee reads them (registers, then the caller's stack), and we use only
//! the ones up to the terminating NULL. A call with more than 62 arguments
//! fails with `E2BIG`.

use crate::env::EnvCopy;
use crate::launch::{self, ExecTarget};
use crate::real::{real, real_opt};
use crate::state::State;
use crate::{guard, state, sys, terminal, tool_layer};
use core::ffi::{c_char, c_int, c_uint, c_void};
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use libc::{FILE, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t};
use policy_core::Mode as EnforceMode;

type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type FexecveFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;
type ExecveatFn = unsafe extern "C" fn(
    c_int,
    *const c_char,
    *const *const c_char,
    *const *const c_char,
    c_int,
) -> c_int;
type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const posix_spawn_file_actions_t,
    *const posix_spawnattr_t,
    *const *const c_char,
    *const *const c_char,
) -> c_int;
type SystemFn = unsafe extern "C" fn(*const c_char) -> c_int;
type PopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;
type PcloseFn = unsafe extern "C" fn(*mut FILE) -> c_int;
type FcloseFn = unsafe extern "C" fn(*mut FILE) -> c_int;

/// In a child of the harness, before it execs or spawns: the controlling
/// terminal, the tool layer and the vault fds. Err: the terminal could not
/// be given up, or the layer is required and could not be applied.
fn prepare_child(st: &State) -> Result<(), tool_layer::LandlockError> {
    terminal::drop_in_child(st).map_err(|errno| tool_layer::LandlockError {
        what: "giving up the controlling terminal (ioctl TIOCNOTTY on /dev/tty)",
        errno,
    })?;
    if st.policy.landlock != EnforceMode::Off
        && let Err(e) = tool_layer::ensure_in_harness_child(st)
    {
        if st.policy.landlock == EnforceMode::Required {
            return Err(e);
        }
        tool_layer::report(e, b"; running with the preload's checks only");
    }
    guard::close_vault_fds(st, guard::FdAction::Close).map_err(|errno| tool_layer::LandlockError {
        what: "listing the open fds (to close those on vault files)",
        errno,
    })
}

/// `prepare_child` for an exec: on failure, exit 126 (never run unrestricted).
fn prepare_child_exec(st: &State) {
    if let Err(e) = prepare_child(st) {
        tool_layer::report(e, b"; not running the command");
        sys::exit_now(126);
    }
}

/// The state, or None when called during our own initialisation (fail closed).
fn state_or_eacces() -> Option<&'static State> {
    let st = state::get();
    if st.is_none() {
        sys::set_errno(libc::EACCES);
    }
    st
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `execve`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // glibc's execve is the bare system call; making it here spares every
    // forked child a `dlsym` (and its page faults) before it execs.
    let exec = |env| {
        // SAFETY: the caller's `path` and `argv` (execve's contract), and
        // `env`: `envp` or a filtered copy alive for the call.
        unsafe { sys::execve(path, argv, env) }
    };
    // SAFETY: the caller's `path`, `argv` and `envp` (execve's contract), alive for the call.
    unsafe { exec_as_tool(ExecTarget::Path(path), argv, envp, exec) }
}

/// Interposed: `execve` with the current environment.
///
/// # Safety
/// C contract of `execv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: forwarded with libc's own environment.
    unsafe { execve(path, argv, sys::environ()) }
}

/// Interposed: glibc's `execvp` calls the internal `__execvpe`, so it is
/// routed through our `execvpe`.
///
/// # Safety
/// C contract of `execvp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: forwarded with libc's own environment.
    unsafe { execvpe(file, argv, sys::environ()) }
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `execvpe`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = real!(static crate::real::EXECVPE, ExecveFn);
    let exec = |env| {
        // SAFETY: the caller's `file` and `argv` (execvpe's contract), and
        // `env`: `envp` or a filtered copy alive for the call.
        unsafe { f(file, argv, env) }
    };
    // SAFETY: the caller's `file`, `argv` and `envp` (execvpe's contract), alive for the call.
    unsafe { exec_as_tool(ExecTarget::Search(file), argv, envp, exec) }
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `fexecve`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = real!("fexecve", FexecveFn);
    let exec = |env| {
        // SAFETY: the caller's `fd` and `argv` (fexecve's contract), and
        // `env`: `envp` or a filtered copy alive for the call.
        unsafe { f(fd, argv, env) }
    };
    // SAFETY: the caller's `argv` and `envp` (fexecve's contract), alive for the call.
    unsafe { exec_as_tool(ExecTarget::Other, argv, envp, exec) }
}

/// Interposed; falls back to the raw system call when libc has no wrapper.
///
/// # Safety
/// C contract of `execveat`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> c_int {
    let real = real_opt!("execveat", ExecveatFn);
    let call = |env: *const *const c_char| -> c_int {
        match real {
            // SAFETY: arguments forwarded (environment possibly filtered).
            Some(f) => unsafe { f(dirfd, path, argv, env, flags) },
            None => {
                // SAFETY: the caller's pointers, forwarded to the kernel.
                let r = unsafe { libc::syscall(libc::SYS_execveat, dirfd, path, argv, env, flags) };
                r as c_int
            }
        }
    };
    // SAFETY: the caller's `argv` and `envp` (execveat's contract).
    unsafe { exec_as_tool(ExecTarget::Other, argv, envp, call) }
}

/// The gate of every exec hook. In a forked child of the harness: a
/// launcher `target` is registered and run as a launched harness
/// ([`launch`]); anything else gets the tool layer on this process,
/// inherited vault fds closed, the secret variables dropped from `envp`;
/// then `exec` with that environment. Anywhere else: `exec(envp)`
/// unchanged.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of C strings, alive for the
/// call; `argv` as execve(2) takes it; `target`'s pointer a C string.
unsafe fn exec_as_tool(
    target: ExecTarget,
    argv: *const *const c_char,
    envp: *const *const c_char,
    exec: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    let Some(st) = state_or_eacces() else {
        return -1;
    };
    if st.privileged || !st.is_harness_child() {
        return exec(envp);
    }
    // SAFETY: this function's contract.
    unsafe { exec_in_harness_child(st, target, argv, envp, exec) }
}

/// The harness child's half of [`exec_as_tool`], out of line, so that a
/// tool's own `exec` (the common case) does not pay for this frame's
/// environment copy in stack pages.
///
/// # Safety
/// As [`exec_as_tool`].
#[inline(never)]
unsafe fn exec_in_harness_child(
    st: &State,
    target: ExecTarget,
    argv: *const *const c_char,
    envp: *const *const c_char,
    exec: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    // SAFETY: `target`'s C string (this function's contract).
    match unsafe { launch::find(st, target) } {
        launch::Found::Launcher(l) => {
            // Returns only when agent-init did not accept: then a tool.
            // SAFETY: `argv` and `envp` are the caller's (this function's contract).
            unsafe { launch::register_and_exec(st, l, argv, envp) };
        }
        launch::Found::Nothing(errno) => {
            sys::set_errno(errno);
            return -1;
        }
        launch::Found::Other => {}
    }
    prepare_child_exec(st);
    let mut e = EnvCopy::new();
    // SAFETY: `envp` is the caller's NULL-terminated array (this function's contract).
    let env = unsafe { e.filter(st, envp) };
    let r = if env.is_null() && !envp.is_null() {
        sys::set_errno(libc::ENOMEM);
        -1
    } else {
        // `env` points into `e`, which outlives the call.
        exec(env)
    };
    // No exec (no room for the environment, or the exec failed): the
    // caller may try again (a `PATH` search) in this process, which is
    // under the layer already.
    tool_layer::note_applied();
    r
}

macro_rules! list_exec {
    ($name:ident, $doc:literal, |$path:ident, $args:ident, $n:ident| $body:expr) => {
        list_exec!(@def $name, $doc, $path, $args, $n, $body,
            a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 a13 a14 a15 a16 a17 a18 a19 a20 a21
            a22 a23 a24 a25 a26 a27 a28 a29 a30 a31 a32 a33 a34 a35 a36 a37 a38 a39 a40
            a41 a42 a43 a44 a45 a46 a47 a48 a49 a50 a51 a52 a53 a54 a55 a56 a57 a58 a59
            a60 a61 a62 a63);
    };
    (@def $name:ident, $doc:literal, $path:ident, $args:ident, $n:ident, $body:expr, $($a:ident)*) => {
        #[doc = $doc]
        ///
        /// # Safety
        /// C contract of the libc function of the same name (at most 62 arguments).
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn $name($path: *const c_char, $($a: *const c_char),*) -> c_int {
            let $args: [*const c_char; 64] = [$($a),*];
            let Some($n) = $args.iter().position(|p| p.is_null()) else {
                sys::set_errno(libc::E2BIG);
                return -1;
            };
            $body
        }
    };
}

list_exec!(
    execl,
    "Interposed: `execl(path, arg0, ..., NULL)`.",
    |path, args, n| {
        let _ = n;
        // SAFETY: `args[..=n]` is the caller's NULL-terminated argument list.
        unsafe { execve(path, args.as_ptr(), sys::environ()) }
    }
);

list_exec!(
    execlp,
    "Interposed: `execlp(file, arg0, ..., NULL)`.",
    |file, args, n| {
        let _ = n;
        // SAFETY: `args[..=n]` is the caller's NULL-terminated argument list.
        unsafe { execvpe(file, args.as_ptr(), sys::environ()) }
    }
);

list_exec!(
    execle,
    "Interposed: `execle(path, arg0, ..., NULL, envp)`.",
    |path, args, n| {
        if n + 1 >= args.len() {
            sys::set_errno(libc::E2BIG);
            return -1;
        }
        let envp = args[n + 1] as *const *const c_char;
        // SAFETY: `args[..=n]` is NULL-terminated and `envp` follows it (C contract).
        unsafe { execve(path, args.as_ptr(), envp) }
    }
);

// vfork.

/// `pthread_atfork` prepare handler, registered by the constructor in every
/// process it guards: what the child will call before its exec resolved
/// here, once ([`crate::real::resolve_before_fork`]), and in the harness the
/// tool-layer ruleset cache brought up to date, so that a forked child only
/// re-validates it (a few `stat`s) instead of walking, and the secret
/// variables unpacked ([`State::secret_env`](crate::state::State::secret_env)),
/// so that no child writes them out again.
pub extern "C" fn before_fork() {
    crate::real::resolve_before_fork();
    if let Some(st) = state::get()
        && !st.privileged
        // Tools skip the `getpid`: a process that did not start as the
        // harness never becomes it.
        && st.init_pid == st.harness_pid
        && st.is_harness()
    {
        tool_layer::refresh_cache(st);
        st.secret_env();
    }
}

/// Before a vfork: `vfork` runs no `pthread_atfork` handler, so this does
/// what [`before_fork`] does (without it a harness that spawns only with
/// `vfork`, Python's `subprocess`, would never have a cached ruleset, and
/// every child would walk the vault's ancestors itself). Returns the real
/// `vfork`, which the interposed `vfork` jumps to.
extern "C" fn before_vfork() -> VforkFn {
    before_fork();
    real!("vfork", VforkFn)
}

type VforkFn = unsafe extern "C" fn() -> pid_t;

/// Interposed: `before_vfork` (the cache brought up to date in the
/// harness), then a jump (not a call) to the real `vfork`, so that it
/// returns straight to our caller in both processes: a vfork child must not
/// return through a frame of ours, which the parent would then find
/// overwritten.
///
/// # Safety
/// C contract of `vfork`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vfork() -> pid_t {
    // On entry the stack is 8 bytes off the call ABI's 16-byte alignment
    // (the return address); `before_vfork` returns the real vfork in rax.
    core::arch::naked_asm!(
        "sub rsp, 8",
        "call {before}",
        "add rsp, 8",
        "jmp rax",
        before = sym before_vfork,
    )
}

/// Interposed: see the x86_64 version.
///
/// # Safety
/// C contract of `vfork`.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vfork() -> pid_t {
    // The link register holds our caller's return address: saved around
    // the call, restored before the jump; the real vfork arrives in x0.
    core::arch::naked_asm!(
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "bl {before}",
        "ldp x29, x30, [sp], #16",
        "br x0",
        before = sym before_vfork,
    )
}

// close_range.

/// `close_range(2)`: glibc's `close_range` is the bare system call (not a
/// cancellation point), so it is made here, as `execve` is: a child that
/// closes its fds before exec (Python's `subprocess`) makes no `dlsym`.
fn close_range_real(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // SAFETY: integer arguments only; the kernel touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    r as c_int
}

/// Interposed. A child of the harness that closes every fd but a few
/// before it execs (Python's `subprocess` with `close_fds`, the default)
/// would close the harness's cached ruleset too, and then have to walk the
/// vault's ancestors and build its own at `exec`. In such a child the
/// range is closed around that one fd: it is close-on-exec, so the program
/// it execs never gets it (and a ruleset fd grants nothing: it can only
/// restrict). Anywhere else, and for `CLOSE_RANGE_CLOEXEC`: unchanged.
///
/// # Safety
/// C contract of `close_range` (integer arguments only).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let keep = match state::get() {
        Some(st) if !st.privileged && st.is_harness_child() => tool_layer::cache_fd(),
        _ => -1,
    };
    let cloexec_only = flags & libc::CLOSE_RANGE_CLOEXEC as c_int != 0;
    if keep < 0 || cloexec_only || (keep as c_uint) < first || (keep as c_uint) > last {
        return close_range_real(first, last, flags);
    }
    let k = keep as c_uint;
    // The first call made carries the flags (CLOSE_RANGE_UNSHARE: the
    // private fd table comes first); the second runs in that table.
    let mut rest = flags;
    if k > first {
        let r = close_range_real(first, k - 1, rest);
        if r != 0 {
            return r;
        }
        rest &= !(libc::CLOSE_RANGE_UNSHARE as c_int);
    }
    if k < last {
        return close_range_real(k + 1, last, rest);
    }
    if rest & libc::CLOSE_RANGE_UNSHARE as c_int != 0 {
        // Only the kept fd was in the range: still unshare, as asked.
        return close_range_real(c_uint::MAX, c_uint::MAX, rest);
    }
    0
}

// posix_spawn, system, popen.

struct Helper<'a> {
    st: &'a State,
    body: &'a mut dyn FnMut() -> c_int,
    result: c_int,
}

extern "C" fn helper_main(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Helper` that `in_helper_thread` keeps alive until
    // it has joined this thread; no one else touches it meanwhile.
    let h = unsafe { &mut *(arg as *mut Helper<'_>) };
    // A private fd table: closing vault fds here leaves the harness's alone.
    // Without one (unshare refused, as by Docker's default seccomp profile)
    // the harness's vault fds are marked close-on-exec instead: the spawned
    // program does not get them, the harness keeps them.
    let action = if sys::unshare(libc::CLONE_FILES) == 0 {
        guard::FdAction::Close
    } else {
        guard::FdAction::CloseOnExec
    };
    if let Err(errno) = guard::close_vault_fds(h.st, action) {
        tool_layer::report(
            tool_layer::LandlockError {
                what: "listing the open fds (to close those on vault files)",
                errno,
            },
            b"; not spawning the command",
        );
        h.result = libc::EPERM;
        return core::ptr::null_mut();
    }
    if h.st.policy.landlock != EnforceMode::Off
        && let Err(e) = tool_layer::apply(h.st)
    {
        if h.st.policy.landlock == EnforceMode::Required {
            tool_layer::report(e, b"; not spawning the command");
            h.result = libc::EPERM;
            return core::ptr::null_mut();
        }
        tool_layer::report(e, b"; spawning with the preload's checks only");
    }
    h.result = (h.body)();
    core::ptr::null_mut()
}

/// Run `body` in a short-lived thread under the tool layer; its result, or
/// an errno when the thread could not run or the layer is missing.
fn in_helper_thread(st: &State, body: &mut dyn FnMut() -> c_int) -> c_int {
    tool_layer::refresh_cache(st);
    let mut h = Helper {
        st,
        body,
        result: libc::EAGAIN,
    };
    // SAFETY: all-zero is a valid bit pattern for `pthread_attr_t` (plain
    // data); `pthread_attr_init` initialises it before any other use.
    let mut attr: libc::pthread_attr_t = unsafe { core::mem::zeroed() };
    // SAFETY: `attr` is local, exclusively borrowed for the call.
    if unsafe { libc::pthread_attr_init(&mut attr) } != 0 {
        return libc::EAGAIN;
    }
    // SAFETY: `attr` is local and initialised, borrowed for the call.
    let mut r = unsafe { libc::pthread_attr_setstacksize(&mut attr, 1 << 20) };
    let mut tid: libc::pthread_t = 0;
    if r == 0 {
        // SAFETY: `tid` and `attr` are local, borrowed for the call;
        // `helper_main` gets `h`, which outlives the thread: it is joined
        // below before this frame returns.
        r = unsafe {
            libc::pthread_create(
                &mut tid,
                &attr,
                helper_main,
                &mut h as *mut Helper<'_> as *mut c_void,
            )
        };
    }
    // SAFETY: `attr` is local and initialised; not used after this (the
    // thread keeps no reference to it). It always returns 0 on glibc.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if r != 0 {
        return r; // no thread: nothing spawned
    }
    // SAFETY: `tid` is the joinable thread just created, joined once.
    if unsafe { libc::pthread_join(tid, core::ptr::null_mut()) } != 0 {
        // Not reachable (a thread of ours, joinable, not this one); but the
        // thread may still be using `h` on this stack: never return.
        sys::write_all(
            2,
            b"agent-vault: pthread_join of the spawn helper failed; aborting\n",
        );
        // SAFETY: abort takes no arguments and never returns.
        unsafe { libc::abort() }
    }
    h.result
}

/// Spawn as a tool: from a helper thread in the harness, after
/// `prepare_child` in a child of the harness, directly in anything else.
/// Returns a `posix_spawn` result (0 or an errno).
///
/// # Safety
/// `posix_spawn`'s C contract for all pointers.
#[allow(clippy::too_many_arguments)]
unsafe fn spawn_tool(
    f: SpawnFn,
    search: bool,
    pid: *mut pid_t,
    path: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(st) = state::get() else {
        return libc::EACCES;
    };
    if st.privileged {
        // SAFETY: forwarded unchanged.
        return unsafe { f(pid, path, fa, attr, argv, envp) };
    }
    if st.launch_socket.is_some() && (st.is_harness() || st.is_harness_child()) {
        let target = if search {
            ExecTarget::Search(path)
        } else {
            ExecTarget::Path(path)
        };
        // SAFETY: `path` is the caller's C string; `fa` and `attr` null or
        // initialised (posix_spawn's contract).
        if unsafe { no_file_actions(fa) }
            // SAFETY: as above.
            && let Some(a) = unsafe { ChildAttr::read(attr) }
            // SAFETY: as above.
            && let launch::Found::Launcher(l) = unsafe { launch::find(st, target) }
        {
            l.close();
            // SAFETY: the caller's pointers (posix_spawn's contract).
            return unsafe { spawn_launcher(pid, target, a, argv, envp) };
        }
    }
    let mut own_attr = core::mem::MaybeUninit::<posix_spawnattr_t>::uninit();
    let attr = if st.is_harness() {
        // SAFETY: `attr` is the caller's (null or initialised, posix_spawn's
        // contract); the result points into `own_attr`, alive until return.
        match unsafe { terminal::detached_attr(st, attr, &mut own_attr) } {
            Ok(a) => a,
            Err(errno) => return errno,
        }
    } else {
        attr
    };
    let mut body = || {
        let mut e = EnvCopy::new();
        // SAFETY: `envp` is the caller's NULL-terminated array (or null).
        let env = unsafe { e.filter(st, envp) };
        if env.is_null() && !envp.is_null() {
            return libc::ENOMEM;
        }
        // SAFETY: the caller's pointers, and `env` alive for the call.
        unsafe { f(pid, path, fa, attr, argv, env) }
    };
    if st.is_harness() {
        return in_helper_thread(st, &mut body);
    }
    if st.is_harness_child() {
        if let Err(e) = prepare_child(st) {
            tool_layer::report(e, b"; not spawning the command");
            return libc::EPERM;
        }
        tool_layer::note_applied();
        return body();
    }
    // SAFETY: forwarded unchanged (a tool: already under the tool layer).
    unsafe { f(pid, path, fa, attr, argv, envp) }
}

/// No file actions: `fa` is null or holds none. Ours cannot apply glibc's
/// (their list is private), so a launcher spawned with some runs as a
/// tool.
///
/// # Safety
/// `fa` is null or an initialised `posix_spawn_file_actions_t`.
unsafe fn no_file_actions(fa: *const posix_spawn_file_actions_t) -> bool {
    // glibc's layout (its public <spawn.h>): `int __allocated; int __used;
    // ...`; `__used` counts the actions.
    if fa.is_null() {
        return true;
    }
    // SAFETY: a non-null `fa` is initialised (this function's contract) and
    // starts with two ints: the second is in bounds.
    let used = unsafe { fa.cast::<c_int>().add(1) };
    // SAFETY: `used` points to an initialised, aligned int of `*fa`.
    unsafe { *used == 0 }
}

/// The `posix_spawnattr_t` settings a forked child can apply itself.
struct ChildAttr {
    flags: c_int,
    sigmask: libc::sigset_t,
    sigdefault: libc::sigset_t,
    pgroup: pid_t,
}

impl ChildAttr {
    /// The settings in `attr` (null: none); `None` when it asks for one we
    /// do not apply (a scheduler): the launcher then runs as a tool.
    ///
    /// # Safety
    /// `attr` is null or an initialised `posix_spawnattr_t`.
    unsafe fn read(attr: *const posix_spawnattr_t) -> Option<ChildAttr> {
        // SAFETY: all-zero is a valid `sigset_t` (a bit array).
        let empty: libc::sigset_t = unsafe { core::mem::zeroed() };
        let mut a = ChildAttr {
            flags: 0,
            sigmask: empty,
            sigdefault: empty,
            pgroup: 0,
        };
        if attr.is_null() {
            return Some(a);
        }
        let mut flags: libc::c_short = 0;
        // SAFETY: `attr` is initialised (this function's contract); the
        // out-pointers are ours, live for each call.
        let ok = unsafe { libc::posix_spawnattr_getflags(attr, &mut flags) } == 0
            // SAFETY: as above.
            && unsafe { libc::posix_spawnattr_getsigmask(attr, &mut a.sigmask) } == 0
            // SAFETY: as above.
            && unsafe { libc::posix_spawnattr_getsigdefault(attr, &mut a.sigdefault) } == 0
            // SAFETY: as above.
            && unsafe { libc::posix_spawnattr_getpgroup(attr, &mut a.pgroup) } == 0;
        a.flags = c_int::from(flags);
        let known = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETPGROUP
            | c_int::from(libc::POSIX_SPAWN_SETSID)
            | libc::POSIX_SPAWN_RESETIDS;
        (ok && a.flags & !known == 0).then_some(a)
    }

    /// Apply them in the forked child; false when one failed. `mask`: the
    /// signal mask the child gets unless `attr` sets one (the caller's).
    fn apply(&self, mask: &libc::sigset_t) -> bool {
        let on = |f: c_int| self.flags & f != 0;
        // SAFETY: no arguments; in a fresh child.
        if on(c_int::from(libc::POSIX_SPAWN_SETSID)) && unsafe { libc::setsid() } < 0 {
            return false;
        }
        // SAFETY: integer arguments only.
        if on(libc::POSIX_SPAWN_SETPGROUP) && unsafe { libc::setpgid(0, self.pgroup) } != 0 {
            return false;
        }
        if on(libc::POSIX_SPAWN_RESETIDS) {
            // SAFETY: no arguments.
            let gid = unsafe { libc::getgid() };
            // SAFETY: integer arguments only.
            let g = unsafe { libc::setgid(gid) };
            // SAFETY: no arguments.
            let uid = unsafe { libc::getuid() };
            // SAFETY: integer arguments only.
            let u = unsafe { libc::setuid(uid) };
            if g != 0 || u != 0 {
                return false;
            }
        }
        if on(libc::POSIX_SPAWN_SETSIGDEF) {
            for sig in 1..libc::SIGRTMAX() {
                // SAFETY: `sigdefault` is an initialised set, borrowed.
                if unsafe { libc::sigismember(&self.sigdefault, sig) } == 1 {
                    // SAFETY: integer arguments; a default disposition.
                    unsafe { libc::signal(sig, libc::SIG_DFL) };
                }
            }
        }
        let mask = if on(libc::POSIX_SPAWN_SETSIGMASK) {
            &self.sigmask
        } else {
            mask
        };
        // SAFETY: `mask` is an initialised set, borrowed; no old mask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, core::ptr::null_mut()) == 0 }
    }
}

/// In a forked spawn child: every signal the caller handles gets its
/// default action (the handlers are the caller's, about its own state), as
/// glibc's `posix_spawn` child does; ignored ones stay ignored.
fn reset_handlers() {
    for sig in 1..libc::SIGRTMAX() {
        // SAFETY: all-zero is a valid `sigaction` (plain data).
        let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: a query: no new action, `old` is ours for the call.
        let r = unsafe { libc::sigaction(sig, core::ptr::null(), &mut old) };
        if r == 0 && old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            // SAFETY: integer arguments; a default disposition.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}

/// `posix_spawn` of a launcher by a trusted process: its child must run our
/// exec hook (register with agent-init before the exec, [`launch`]), which
/// glibc's spawn child never does. So: fork, apply `attr`'s settings, and
/// exec through our own `execve`/`execvpe` (a launched harness when
/// agent-init accepts, a tool otherwise). An exec failure is the child's
/// exit 127, not the spawn's result.
///
/// # Safety
/// `posix_spawn`'s C contract for `pid`, `argv`, `envp` and `target`'s string.
unsafe fn spawn_launcher(
    pid: *mut pid_t,
    target: ExecTarget,
    attr: ChildAttr,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // As glibc's posix_spawn: every signal blocked across the fork, so the
    // child runs none of the caller's handlers before it has reset them
    // (it waits up to LAUNCH_REPLY_TIMEOUT_MS for agent-init before exec).
    // SAFETY: all-zero is a valid `sigset_t`; sigfillset initialises it.
    let mut all: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut caller: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `all` is ours, borrowed for the call.
    unsafe { libc::sigfillset(&mut all) };
    // SAFETY: both sets are ours, borrowed for the call.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut caller) } != 0 {
        return libc::EAGAIN;
    }
    // SAFETY: fork has no arguments; the child below only makes system
    // calls and runs our exec hooks (which do not allocate) before exec.
    let child = unsafe { libc::fork() };
    if child != 0 {
        let errno = sys::errno();
        // SAFETY: `caller` is the mask saved above, borrowed.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &caller, core::ptr::null_mut()) };
        if child < 0 {
            return errno;
        }
    }
    if child == 0 {
        reset_handlers();
        if attr.apply(&caller) {
            match target {
                // SAFETY: the caller's strings and arrays (this function's contract).
                ExecTarget::Path(p) => unsafe { execve(p, argv, envp) },
                // SAFETY: as above.
                ExecTarget::Search(p) => unsafe { execvpe(p, argv, envp) },
                ExecTarget::Other => -1,
            };
        }
        sys::exit_now(127);
    }
    if !pid.is_null() {
        // SAFETY: a non-null `pid` is the caller's out-pointer.
        unsafe { *pid = child };
    }
    0
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `posix_spawn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = real!("posix_spawn", SpawnFn);
    // SAFETY: forwarded from our caller.
    unsafe { spawn_tool(f, false, pid, path, fa, attr, argv, envp) }
}

/// Interposed; see the module documentation.
///
/// # Safety
/// C contract of `posix_spawnp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = real!("posix_spawnp", SpawnFn);
    // SAFETY: forwarded from our caller.
    unsafe { spawn_tool(f, true, pid, file, fa, attr, argv, envp) }
}

/// Whether `system`/`popen` must go through our implementation here.
fn own_spawn(st: &State) -> bool {
    !st.privileged && (st.is_harness() || st.is_harness_child())
}

fn wait_status(pid: pid_t) -> c_int {
    let mut status: c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return status;
        }
        if r < 0 && sys::errno() != libc::EINTR {
            return -1;
        }
    }
}

/// Interposed. In the harness (or its child): `/bin/sh -c command` spawned
/// as a tool; SIGCHLD is blocked in the calling thread while waiting
/// (glibc also ignores SIGINT/SIGQUIT in the caller; this version does not
/// touch process-wide signal dispositions).
///
/// # Safety
/// C contract of `system`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn system(command: *const c_char) -> c_int {
    let f = real!("system", SystemFn);
    let Some(st) = state_or_eacces() else {
        return -1;
    };
    if !own_spawn(st) {
        // SAFETY: forwarded unchanged.
        return unsafe { f(command) };
    }
    if command.is_null() {
        return 1; // a shell is available
    }
    match system_as_tool(command) {
        Ok(status) => status,
        Err(errno) => {
            sys::set_errno(errno);
            -1
        }
    }
}

/// `0` is success; anything else is an error number (the pthread and
/// `posix_spawn*` convention).
fn check(r: c_int) -> Result<(), c_int> {
    if r == 0 { Ok(()) } else { Err(r) }
}

/// A signal set holding `signals`; `Err`: the errno.
fn sigset_of(signals: &[c_int]) -> Result<libc::sigset_t, c_int> {
    // SAFETY: all-zero is a valid `sigset_t` (a bit array); `sigemptyset`
    // initialises it below.
    let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is local, exclusively borrowed for the call.
    if unsafe { libc::sigemptyset(&mut set) } != 0 {
        return Err(sys::errno());
    }
    for &s in signals {
        // SAFETY: as above.
        if unsafe { libc::sigaddset(&mut set, s) } != 0 {
            return Err(sys::errno());
        }
    }
    Ok(set)
}

/// `system`'s own path: SIGCHLD blocked in this thread, `/bin/sh -c
/// command` spawned as a tool and waited for, the thread's mask restored.
/// `Err`: an errno, and nothing was spawned.
fn system_as_tool(command: *const c_char) -> Result<c_int, c_int> {
    let chld = sigset_of(&[libc::SIGCHLD])?;
    // SAFETY: all-zero is a valid `sigset_t`; `pthread_sigmask` fills it.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `chld` and `old` are local, borrowed for the call.
    check(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &chld, &mut old) })?;
    let status = spawn_shell_and_wait(command, &old);
    // SAFETY: `old` is local, borrowed for the call; no old mask wanted
    // (null). It cannot fail (only a bad `how` is refused); the command has
    // run by now, and its status is the answer.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    status
}

/// Spawn `/bin/sh -c command` as a tool (SIGINT and SIGQUIT at their
/// default, signal mask `mask`) and wait for it: its wait status (`127`
/// as exit code when it could not be spawned, as glibc's `system`), or
/// `Err(errno)` when the attributes could not be set up.
fn spawn_shell_and_wait(command: *const c_char, mask: &libc::sigset_t) -> Result<c_int, c_int> {
    let spawn = real!("posix_spawn", SpawnFn);
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), command, core::ptr::null()];
    // SAFETY: all-zero is a valid bit pattern for `posix_spawnattr_t` (plain
    // data); `posix_spawnattr_init` initialises it before any other use.
    let mut attr: posix_spawnattr_t = unsafe { core::mem::zeroed() };
    // SAFETY: `attr` is local, exclusively borrowed for the call.
    check(unsafe { libc::posix_spawnattr_init(&mut attr) })?;
    let spawned = system_attr(&mut attr, mask).map(|()| {
        let mut pid: pid_t = 0;
        // SAFETY: `pid`, `attr` and `argv` are local and alive for the call;
        // `argv` holds static C strings and the caller's `command`; the
        // environment is libc's own.
        let r = unsafe {
            spawn_tool(
                spawn,
                false,
                &mut pid,
                c"/bin/sh".as_ptr(),
                core::ptr::null(),
                &attr,
                argv.as_ptr(),
                sys::environ(),
            )
        };
        (r, pid)
    });
    // SAFETY: `attr` is local and initialised; not used after this. It
    // cannot fail on glibc, and the spawn (if any) has happened.
    unsafe { libc::posix_spawnattr_destroy(&mut attr) };
    let (r, pid) = spawned?;
    Ok(if r != 0 { 127 << 8 } else { wait_status(pid) })
}

/// `system`'s spawn attributes, on an initialised `attr`: SIGINT and
/// SIGQUIT at their default in the child, signal mask `mask`.
fn system_attr(attr: &mut posix_spawnattr_t, mask: &libc::sigset_t) -> Result<(), c_int> {
    let def = sigset_of(&[libc::SIGINT, libc::SIGQUIT])?;
    // SAFETY: `attr` is initialised (the caller's) and `def` local, both
    // borrowed for the call.
    check(unsafe { libc::posix_spawnattr_setsigdefault(attr, &def) })?;
    // SAFETY: `attr` as above; `mask` is the caller's, borrowed for the call.
    check(unsafe { libc::posix_spawnattr_setsigmask(attr, mask) })?;
    let flags = (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as _;
    // SAFETY: `attr` as above; integer flags.
    check(unsafe { libc::posix_spawnattr_setflags(attr, flags) })
}

const POPEN_SLOTS: usize = 64;
static POPEN_FILE: [AtomicUsize; POPEN_SLOTS] = [const { AtomicUsize::new(0) }; POPEN_SLOTS];
static POPEN_PID: [AtomicI32; POPEN_SLOTS] = [const { AtomicI32::new(0) }; POPEN_SLOTS];

/// Interposed. In the harness (or its child): a pipe to `/bin/sh -c
/// command` spawned as a tool; the stream is closed by our `pclose`.
///
/// # Safety
/// C contract of `popen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut FILE {
    let f = real!("popen", PopenFn);
    let Some(st) = state_or_eacces() else {
        return core::ptr::null_mut();
    };
    if !own_spawn(st) || command.is_null() || mode.is_null() {
        // SAFETY: forwarded unchanged.
        return unsafe { f(command, mode) };
    }
    // SAFETY: `mode` is the caller's C string.
    let m = unsafe { sys::cstr_bytes(mode) };
    let reading = match m.first() {
        Some(b'r') => true,
        Some(b'w') => false,
        _ => {
            sys::set_errno(libc::EINVAL);
            return core::ptr::null_mut();
        }
    };
    let cloexec = m.contains(&b'e');
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a local array of two fds, written by the call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return core::ptr::null_mut();
    }
    let (ours, theirs, target) = if reading {
        (fds[0], fds[1], 1)
    } else {
        (fds[1], fds[0], 0)
    };
    let spawned = spawn_shell_on(command, theirs, target);
    sys::close(theirs);
    let pid = match spawned {
        Ok(pid) => pid,
        Err(errno) => {
            sys::close(ours);
            sys::set_errno(errno);
            return core::ptr::null_mut();
        }
    };
    // SAFETY: `ours` is our end of the pipe; integer arguments only.
    if !cloexec && unsafe { libc::fcntl(ours, libc::F_SETFD, 0) } != 0 {
        let errno = sys::errno();
        sys::close(ours);
        wait_status(pid);
        sys::set_errno(errno);
        return core::ptr::null_mut();
    }
    // SAFETY: `ours` is our end of the pipe, handed to the stream; the mode
    // is a static C string.
    let file = unsafe { libc::fdopen(ours, if reading { c"r" } else { c"w" }.as_ptr()) };
    if file.is_null() {
        sys::close(ours);
        wait_status(pid);
        return core::ptr::null_mut();
    }
    for i in 0..POPEN_SLOTS {
        if POPEN_FILE[i]
            .compare_exchange(0, file as usize, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            POPEN_PID[i].store(pid, Ordering::Release);
            return file;
        }
    }
    // No slot: undo (fail closed rather than leak an unreapable child).
    // SAFETY: `file` is the stream fdopen just returned, never given out;
    // closed once. Its result does not matter: the call fails anyway.
    unsafe { libc::fclose(file) };
    wait_status(pid);
    sys::set_errno(libc::EMFILE);
    core::ptr::null_mut()
}

/// `popen`'s spawn: `/bin/sh -c command` as a tool, with the pipe end
/// `theirs` as its fd `target`. Its pid, or `Err(errno)`: nothing spawned.
fn spawn_shell_on(command: *const c_char, theirs: c_int, target: c_int) -> Result<pid_t, c_int> {
    let spawn = real!("posix_spawn", SpawnFn);
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), command, core::ptr::null()];
    // SAFETY: all-zero is a valid bit pattern for `posix_spawn_file_actions_t`
    // (plain data); `posix_spawn_file_actions_init` initialises it first.
    let mut fa: posix_spawn_file_actions_t = unsafe { core::mem::zeroed() };
    // SAFETY: `fa` is local, exclusively borrowed for the call.
    check(unsafe { libc::posix_spawn_file_actions_init(&mut fa) })?;
    // SAFETY: `fa` is local and initialised, borrowed for the call.
    let spawned = check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut fa, theirs, target) })
        .and_then(|()| {
            let mut pid: pid_t = 0;
            // SAFETY: `pid`, `fa` and `argv` are local and alive for the
            // call; `argv` holds static C strings and the caller's
            // `command`; the environment is libc's own.
            let r = unsafe {
                spawn_tool(
                    spawn,
                    false,
                    &mut pid,
                    c"/bin/sh".as_ptr(),
                    &fa,
                    core::ptr::null(),
                    argv.as_ptr(),
                    sys::environ(),
                )
            };
            check(r).map(|()| pid)
        });
    // SAFETY: `fa` is local and initialised; not used after this. It cannot
    // fail on glibc, and the spawn (if any) has happened.
    unsafe { libc::posix_spawn_file_actions_destroy(&mut fa) };
    spawned
}

/// Interposed: closes our `popen` streams and waits for their shell; other
/// streams go to the real `pclose`.
///
/// # Safety
/// C contract of `pclose`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pclose(stream: *mut FILE) -> c_int {
    if !stream.is_null() {
        for i in 0..POPEN_SLOTS {
            if POPEN_FILE[i].load(Ordering::Acquire) == stream as usize {
                let pid = POPEN_PID[i].load(Ordering::Acquire);
                let fclose = real!("fclose", FcloseFn);
                // SAFETY: the stream is one our popen returned.
                unsafe { fclose(stream) };
                POPEN_FILE[i].store(0, Ordering::Release);
                return wait_status(pid);
            }
        }
    }
    let f = real!("pclose", PcloseFn);
    // SAFETY: forwarded unchanged.
    unsafe { f(stream) }
}
