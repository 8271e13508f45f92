//! Every raw system call agent-init makes that neither `nix`, `caps`,
//! `landlock` nor `seccompiler` wraps safely lives here, one small safe
//! function each. Nothing outside this module uses `unsafe`.

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `close_range(first, ~0, 0)`: close every fd from `first` up.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range takes plain integers; closing fds we do not use is
    // what the caller wants (no Rust object owns an fd >= first at this point:
    // it runs before agent-init opens anything).
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) }).map(drop)
}

/// Set when agent-init starts its one thread (the audit sink, after the
/// harness is forked): from then on [`fork`] refuses.
pub static THREADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `fork()` for a child that may allocate and use std freely (the harness
/// child: Landlock, seccomp compiled there, logging). The caller is
/// single-threaded: agent-init starts its one thread, the audit sink, only
/// after the harness is forked, and a fork after that fails with
/// `EDEADLK` rather than give the child a lock (malloc's, stderr's, the
/// audit file's) that thread may hold forever. A child that must be forked
/// later uses [`fork_for_exec`].
pub fn fork() -> nix::Result<nix::unistd::ForkResult> {
    if THREADED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(nix::Error::EDEADLK);
    }
    // SAFETY: agent-init is single-threaded when it forks (checked above:
    // no thread has been spawned), so no lock can be held by a thread that
    // does not exist in the child.
    unsafe { nix::unistd::fork() }
}

/// `fork()` whether or not the audit thread runs: for a child that makes
/// only async-signal-safe calls (raw system calls on memory prepared
/// before the fork: no allocation, no lock, no formatting, no logging) and
/// then execs or `_exit`s. The proxy child ([`crate::proxy::spawn`]) is
/// the one user: the serve loop restarts a dead proxy while the audit
/// thread runs.
///
/// # Safety
/// The child must keep to async-signal-safe calls until it execs or exits.
pub unsafe fn fork_for_exec() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller's promise: the child touches no lock or allocator
    // state another thread may have held at the fork.
    unsafe { nix::unistd::fork() }
}

/// `capset`: effective, permitted and inheritable all emptied (ambient
/// follows: it is a subset of permitted). Async-signal-safe.
pub fn capset_clear_all() -> io::Result<()> {
    let mut hdr = libc_cap_header();
    let data = [CapData::default(); 2];
    // SAFETY: `hdr` and `data` (two v3 data structs, as version 3 takes)
    // are live for the call; the kernel only reads them.
    check(unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) }).map(drop)
}

/// `capget`: true when effective, permitted and inheritable are all empty.
/// Async-signal-safe.
pub fn caps_all_empty() -> io::Result<bool> {
    let mut hdr = libc_cap_header();
    let mut data = [CapData::default(); 2];
    // SAFETY: `hdr` and `data` (two v3 data structs) are live and writable
    // for the call.
    check(unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) })?;
    Ok(data.iter().all(|d| *d == CapData::default()))
}

/// `struct __user_cap_header_struct`, version 3, this process.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn libc_cap_header() -> CapHeader {
    CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    }
}

/// `write(2, msg)`, once, result ignored (an error message on the way
/// out). Async-signal-safe.
pub fn write_stderr(msg: &[u8]) {
    // SAFETY: `msg` is a live slice of `msg.len()` bytes for the call.
    let _ = unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// `_exit(code)`: no atexit handlers, no stdio flush. Async-signal-safe.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no process state we own.
    unsafe { libc::_exit(code) }
}

/// `execve(path, argv, envp)`; returns only on failure. `argv` and `envp`
/// are NULL-terminated arrays of pointers to NUL-terminated strings that
/// outlive the call. Async-signal-safe.
pub fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> io::Error {
    if argv.last().is_none_or(|p| !p.is_null()) || envp.last().is_none_or(|p| !p.is_null()) {
        return io::Error::from_raw_os_error(libc::EINVAL);
    }
    // SAFETY: `path` is NUL-terminated; `argv` and `envp` end with NULL
    // (checked above) and the caller keeps what they point to alive.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `prctl(PR_CAPBSET_DROP, cap)`.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } as _)
        .map(drop)
}

/// `prctl(PR_CAPBSET_READ, cap)`: true when `cap` is in the bounding set.
pub fn capbset_read(cap: u32) -> io::Result<bool> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } as _)
        .map(|v| v == 1)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
pub fn ambient_clear_all() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } as _)
    .map(drop)
}

/// `prctl(PR_SET_SECUREBITS, bits)`.
pub fn set_securebits(bits: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong, 0, 0, 0) } as _)
        .map(drop)
}

/// `prctl(PR_GET_SECUREBITS)`.
pub fn get_securebits() -> io::Result<u32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) } as _).map(|v| v as u32)
}

/// The Landlock ABI version of the running kernel: 0 when Landlock is
/// missing or disabled.
pub fn landlock_abi() -> u32 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a NULL attr and size 0 is
    // the documented way to query the ABI; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if rc < 0 { 0 } else { rc as u32 }
}

/// Ignore (`true`) or restore the default action (`false`) of `sig`.
pub fn ignore_signal(sig: nix::sys::signal::Signal, ignore: bool) -> nix::Result<()> {
    use nix::sys::signal::{SigHandler, signal};
    let h = if ignore {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: SIG_IGN and SIG_DFL are not Rust handlers; nothing can run
    // concurrently with them.
    unsafe { signal(sig, h) }.map(drop)
}

/// `sigtimedwait`: the next pending signal of `set` (which the caller has
/// blocked), or `None` when `timeout` passes first. `None` timeout: wait
/// forever.
pub fn sigtimedwait(
    set: &nix::sys::signal::SigSet,
    timeout: Option<Duration>,
) -> io::Result<Option<i32>> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    loop {
        // SAFETY: `set` is a valid sigset_t (SigSet is repr(transparent) over
        // it via AsRef); info may be NULL; ts_ptr is NULL or points to `ts`,
        // which lives until the end of this function.
        let rc = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), ts_ptr) };
        if rc >= 0 {
            return Ok(Some(rc));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(None),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// One directory entry: its name.
pub struct RawDirEntry {
    pub name: OsString,
}

/// List the directory open at `dir` (a duplicate is read; `dir` stays open
/// and its offset is untouched for the caller's purposes), without `.`/`..`.
pub fn read_dir_fd(dir: BorrowedFd<'_>) -> io::Result<Vec<RawDirEntry>> {
    let dup = dir.try_clone_to_owned()?;
    let raw = into_raw(dup);
    // SAFETY: `raw` is an fd we own (just duplicated); on success fdopendir
    // takes it over and closedir below closes it.
    let dp = unsafe { libc::fdopendir(raw) };
    if dp.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    // SAFETY: dp is a valid DIR* from fdopendir; rewind so a duplicated fd
    // that shares the offset starts at the beginning.
    unsafe { libc::rewinddir(dp) };
    let mut out = Vec::new();
    let result = loop {
        // SAFETY: no arguments; returns this thread's errno slot.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: `errno` points at this thread's errno, live as long as the
        // thread; resetting it distinguishes end of directory (NULL, errno 0)
        // from an error.
        unsafe { *errno = 0 };
        // SAFETY: dp is a valid, open DIR*.
        let ent = unsafe { libc::readdir64(dp) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: readdir64 returned a valid dirent64, live until the next
        // readdir call on `dp`.
        let d_name = unsafe { &(*ent).d_name };
        // SAFETY: d_name is a NUL-terminated string inside that entry; we copy
        // it before the next readdir call.
        let name = unsafe { CStr::from_ptr(d_name.as_ptr()) }
            .to_bytes()
            .to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        out.push(RawDirEntry {
            name: OsString::from_vec(name),
        });
    };
    // SAFETY: dp is valid and closed exactly once here.
    unsafe { libc::closedir(dp) };
    result.map(|()| out)
}

fn into_raw(fd: OwnedFd) -> RawFd {
    use std::os::fd::IntoRawFd;
    fd.into_raw_fd()
}

/// Raw `openat(2)` through `syscall(2)`, bypassing every libc symbol (and so
/// any preload hook): for self-test attacks.
pub fn raw_openat(dir: RawFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: path is a valid NUL-terminated string that outlives the call.
    let rc = check(unsafe {
        libc::syscall(
            libc::SYS_openat,
            dir,
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// `struct open_how` for openat2.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Raw `openat2(2)`.
pub fn raw_openat2(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: 0,
    };
    // SAFETY: path is NUL-terminated and `how` is a valid open_how whose size
    // we pass; both outlive the call.
    let rc = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// Raw `io_uring_setup(1, params)`: the fd on success.
pub fn raw_io_uring_setup() -> io::Result<OwnedFd> {
    let mut params = [0u8; 120]; // struct io_uring_params is 120 bytes
    // SAFETY: params is a zeroed, writable buffer of the size the kernel
    // reads and writes for struct io_uring_params.
    let rc = check(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) })?;
    // SAFETY: a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// `ptrace(PTRACE_ATTACH, pid)`; on success detaches again.
pub fn ptrace_attach(pid: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) })?;
    // SAFETY: integer arguments only; undoes the attach above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, 0usize) };
    Ok(())
}

/// `unshare(flags)`.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: integer argument only; the caller is a throw-away child or
    // expects the call to fail.
    check(unsafe { libc::unshare(flags) } as _).map(drop)
}

/// A raw syscall with up to two integer arguments, for probing the filter
/// (`getppid`, an x32 number, `clone3` with a NULL pointer...).
pub fn raw_syscall2(
    nr: libc::c_long,
    a: libc::c_long,
    b: libc::c_long,
) -> io::Result<libc::c_long> {
    // SAFETY: callers pass only syscalls whose arguments are integers or
    // NULL (the kernel rejects a NULL pointer with EFAULT without touching
    // memory).
    check(unsafe { libc::syscall(nr, a, b) })
}

/// `ioctl(fd, request, arg)` with an integer-pointer argument (TIOCSTI probe).
pub fn ioctl_byte(fd: RawFd, request: libc::c_ulong, byte: u8) -> io::Result<()> {
    let b = byte;
    // SAFETY: `b` is a valid byte that outlives the call; TIOCSTI reads one byte.
    check(unsafe { libc::ioctl(fd, request, &b as *const u8) } as _).map(drop)
}

/// `syncfs(fd)`: flush the file system that holds `fd`.
pub fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: integer argument only; the fd is borrowed and open.
    check(unsafe { libc::syncfs(fd.as_raw_fd()) } as _).map(drop)
}

/// `linkat(AT_FDCWD, "/proc/self/fd/N", dir, name, AT_SYMLINK_FOLLOW)`:
/// gives an `O_TMPFILE` file its name without CAP_DAC_READ_SEARCH.
pub fn link_tmpfile(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let proc = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: both strings are NUL-terminated and outlive the call; the fds
    // are borrowed and open.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    } as _)
    .map(drop)
}

/// `getrandom(buf, 0)` until `buf` is full (blocks only before the kernel's
/// pool is initialised, once per boot).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a live, writable slice of `rest.len()` bytes for
        // the duration of the call.
        match check(unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) } as _) {
            Ok(n) => filled += n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec copy of `fd` at `min` or above.
pub fn dup_above(fd: RawFd, min: RawFd) -> io::Result<RawFd> {
    // SAFETY: integer arguments only; the new fd is the caller's to own.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as _).map(|v| v as RawFd)
}

/// `dup2(old, new)`: `new` becomes a copy of `old` (without close-on-exec).
pub fn dup_to(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: integer arguments only; the caller gives up whatever `new` was.
    check(unsafe { libc::dup2(old, new) } as _).map(drop)
}

/// A close-on-exec `AF_UNIX` `SOCK_DGRAM` socket bound at `path`, with
/// `SO_PASSCRED` (every datagram carries its sender's credentials).
pub fn bind_unix_dgram(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) } as _,
    )?;
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let bytes = path.to_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: `addr` is a live, initialised sockaddr_un of at least `len`
    // bytes; the fd is open.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            len as libc::socklen_t,
        )
    } as _)?;
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } as _)?;
    Ok(fd)
}

/// `poll` for input on one fd: true when readable (or closed) within
/// `timeout_ms` (`-1`: no timeout, so only ever true).
pub fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd for the duration of the call.
    check(unsafe { libc::poll(&raw mut p, 1, timeout_ms) } as _).map(|n| n > 0)
}

/// One datagram received by [`recv_with_creds_and_fds`] (a launch
/// request, an audit record).
pub struct Received {
    /// Bytes written into the caller's buffer.
    pub len: usize,
    /// The sender as the kernel names it (`SCM_CREDENTIALS`).
    pub creds: Option<libc::ucred>,
    /// The descriptors passed (`SCM_RIGHTS`), now ours, close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The kernel cut the data or the control messages (`MSG_TRUNC`,
    /// `MSG_CTRUNC`): the request is not whole.
    pub truncated: bool,
}

/// One queued datagram into `buf`, its sender's credentials as the kernel
/// gave them (`SCM_CREDENTIALS`) and the descriptors it passed; never waits
/// (`EAGAIN` when the queue is empty). A receiver that takes no descriptors
/// drops [`Received::fds`], which closes them.
pub fn recv_with_creds_and_fds(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    // Room for SCM_CREDENTIALS and up to 8 descriptors (cmsg alignment included).
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `iov` (into `buf`) and `control`, all live and
    // writable for the call; the fd is open.
    let n = check(unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &raw mut msg,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    } as _)?;
    let mut got = Received {
        len: n as usize,
        creds: None,
        fds: Vec::new(),
        truncated: msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
    };
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR reads its control fields.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null cmsg from CMSG_FIRSTHDR/NXTHDR points into `control`.
        let hdr = unsafe { &*cmsg };
        // SAFETY: `cmsg` is a live control message in `control`.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        // SAFETY: CMSG_LEN(0) is arithmetic on a constant.
        let payload = hdr.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_CREDENTIALS {
            // SAFETY: an SCM_CREDENTIALS message's data is one ucred (in
            // `control`, live); it may be unaligned, so it is read unaligned.
            got.creds = Some(unsafe { data.cast::<libc::ucred>().read_unaligned() });
        } else if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            for i in 0..payload / std::mem::size_of::<RawFd>() {
                // SAFETY: an SCM_RIGHTS message's data is `payload` bytes of
                // fds in `control`: fd `i` is in bounds.
                let at = unsafe { data.cast::<RawFd>().add(i) };
                // SAFETY: `at` points into `control` (live); read unaligned.
                let raw = unsafe { at.read_unaligned() };
                // SAFETY: the kernel installed `raw` in our table for us
                // alone; nothing else owns it.
                got.fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        // SAFETY: `msg` and `cmsg` are the live header and current message.
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    Ok(got)
}

/// `pidfd_open(pid, 0)`: a descriptor that names this very process (it
/// polls readable once the process has exited).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `poll` for input on `fds` without a timeout; each entry's `revents`
/// filled in.
pub fn poll_readable(fds: &mut [libc::pollfd]) -> io::Result<usize> {
    // SAFETY: `fds` is a live, exclusive slice of pollfd for the call.
    check(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } as _)
        .map(|n| n as usize)
}

/// `send(fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL)`.
pub fn send_now(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live slice borrowed for the call; the kernel copies it.
    check(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    } as _)
    .map(|n| n as usize)
}

/// The file status flags of `fd` (`fcntl(F_GETFL)`: access mode, `O_PATH`...).
pub fn status_flags(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } as _).map(|v| v as i32)
}
