//! Raw system calls and raw libc state: the only place where the preload
//! talks to the kernel without going through (possibly interposed) libc
//! wrappers, and where it reads libc's globals (`errno`, `environ`)
//! directly. A leaf: it uses no other module of the crate, so every
//! module can use it.
//!
//! Every system call here returns the raw result: `>= 0` on success,
//! `-errno` on failure (no `errno` side effect, no allocation,
//! async-signal-safe).

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::mem::MaybeUninit;

/// This thread's `errno` slot.
#[inline]
fn errno_slot() -> *mut c_int {
    // SAFETY: `__errno_location` takes no arguments and always returns this
    // thread's errno slot.
    unsafe { libc::__errno_location() }
}

#[inline]
fn ret(r: c_long) -> c_long {
    if r < 0 { -(errno() as c_long) } else { r }
}

/// Set this thread's `errno`.
#[inline]
pub fn set_errno(e: c_int) {
    // SAFETY: `errno_slot()` is this thread's errno, valid for the thread's
    // lifetime and written only by this thread.
    unsafe { *errno_slot() = e };
}

/// Read this thread's `errno`.
#[inline]
pub fn errno() -> c_int {
    // SAFETY: as in `set_errno`; we only read it.
    unsafe { *errno_slot() }
}

pub fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}

/// CLOCK_MONOTONIC in nanoseconds, through the vDSO (no system call); 0
/// if the clock cannot be read.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a local timespec, exclusively borrowed for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Thread `tid` of this process exists (`tgkill` with signal 0 only checks).
pub fn thread_exists(tid: i32) -> bool {
    // SAFETY: integer arguments only; signal 0 sends nothing.
    unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, 0) == 0 }
}

pub fn getuid() -> u32 {
    // SAFETY: getuid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getuid) as u32 }
}

/// `openat(dirfd, path, flags, mode)`; `path` must be NUL-terminated.
pub fn openat(dirfd: c_int, path: &[u8], flags: c_int, mode: u32) -> c_int {
    debug_assert!(path.last() == Some(&0));
    if path.last() != Some(&0) {
        return -libc::EINVAL;
    }
    // SAFETY: `path` is a NUL-terminated slice borrowed for the call; the
    // kernel reads it and keeps no reference.
    ret(unsafe { libc::syscall(libc::SYS_openat, dirfd, path.as_ptr(), flags, mode) }) as c_int
}

/// `faccessat2(dirfd, path, mode, flags)`: 0, or the negated errno;
/// `path` must be NUL-terminated.
pub fn faccessat2(dirfd: c_int, path: &[u8], mode: c_int, flags: c_int) -> c_int {
    if path.last() != Some(&0) {
        return -libc::EINVAL;
    }
    // SAFETY: `path` is a NUL-terminated slice borrowed for the call; the
    // kernel reads it and keeps no reference.
    ret(unsafe { libc::syscall(libc::SYS_faccessat2, dirfd, path.as_ptr(), mode, flags) }) as c_int
}

/// A non-blocking, close-on-exec `AF_UNIX` `SOCK_DGRAM` socket; the fd or
/// the negated errno.
pub fn unix_dgram_socket() -> c_int {
    // SAFETY: integer arguments only.
    ret(unsafe {
        libc::syscall(
            libc::SYS_socket,
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    }) as c_int
}

/// `sendto(fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL)` to the pathname socket
/// `path` (no NUL; at most 107 bytes): the bytes sent or the negated errno.
pub fn sendto_unix(fd: c_int, buf: &[u8], path: &[u8]) -> isize {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    if path.len() >= addr.sun_path.len() {
        return -(libc::ENAMETOOLONG as isize);
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(path) {
        *d = b as libc::c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    // SAFETY: `buf` is a live slice of `buf.len()` bytes and `addr` a live,
    // initialised sockaddr_un of at least `len` bytes; the kernel copies both.
    ret(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            &raw const addr,
            len,
        )
    }) as isize
}

/// Sleep `micros` microseconds (`nanosleep`; an interruption ends it early).
pub fn sleep_us(micros: u32) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: i64::from(micros.min(999_999)) * 1000,
    };
    // SAFETY: `ts` is a live timespec for the call; no remainder is asked for.
    unsafe {
        libc::syscall(
            libc::SYS_nanosleep,
            &raw const ts,
            core::ptr::null_mut::<libc::timespec>(),
        )
    };
}

/// `openat` with a C string pointer from the caller.
///
/// # Safety
/// `path` must be a valid NUL-terminated string for the duration of the call.
pub unsafe fn openat_ptr(dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> c_int {
    // SAFETY: the caller guarantees `path` is a valid C string.
    ret(unsafe { libc::syscall(libc::SYS_openat, dirfd, path, flags, mode) }) as c_int
}

/// Raw `openat2`.
///
/// # Safety
/// `path` must be a valid C string and `how` point to `size` readable bytes.
pub unsafe fn openat2(
    dirfd: c_int,
    path: *const c_char,
    how: *const c_void,
    size: usize,
) -> c_long {
    // SAFETY: the caller guarantees both pointers; the kernel copies them.
    ret(unsafe { libc::syscall(libc::SYS_openat2, dirfd, path, how, size) })
}

pub fn close(fd: c_int) -> c_int {
    // SAFETY: closing an fd number has no memory effects; callers only close
    // fds they own (opened here) or that the policy says to close.
    ret(unsafe { libc::syscall(libc::SYS_close, fd) }) as c_int
}

/// `fstat(fd)` into `buf`: the struct, or `Err(errno)`.
///
/// The caller's buffer, not a return by value: this runs on every open in
/// a process without the tool layer, where returning the 144-byte struct
/// cost ~20 more instructions per open (callgrind); no zeroing either, the
/// kernel fills it.
pub fn fstat(fd: c_int, buf: &mut MaybeUninit<libc::stat>) -> Result<&libc::stat, c_int> {
    // SAFETY: `buf` is the caller's `struct stat`, exclusively borrowed for
    // the call; the kernel writes it and keeps no reference.
    let r = ret(unsafe { libc::syscall(libc::SYS_fstat, fd, buf.as_mut_ptr()) });
    if r < 0 {
        return Err(-r as c_int);
    }
    // SAFETY: on success the kernel wrote the whole struct (`cp_new_stat`
    // copies all of it, padding included).
    Ok(unsafe { buf.assume_init_ref() })
}

/// `fstatat(dirfd, path, flags)` into `buf` (`path` NUL-terminated): the
/// struct, or `None` when it fails. A buffer, as for [`fstat`]: the
/// tool-layer walk stats every entry of every directory it lists.
pub fn fstatat<'a>(
    dirfd: c_int,
    path: &[u8],
    flags: c_int,
    buf: &'a mut MaybeUninit<libc::stat>,
) -> Option<&'a libc::stat> {
    if path.last() != Some(&0) {
        return None;
    }
    // SAFETY: `path` is NUL-terminated and borrowed for the call; `buf` is
    // the caller's `struct stat`, exclusively borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_newfstatat,
            dirfd,
            path.as_ptr(),
            buf.as_mut_ptr(),
            flags,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: on success the kernel wrote the whole struct (`cp_new_stat`
    // copies all of it, padding included).
    Some(unsafe { buf.assume_init_ref() })
}

/// `stat(path)` (`path` NUL-terminated), by value: for the state's build,
/// which stats a handful of paths once per process.
pub fn stat(path: &[u8]) -> Option<libc::stat> {
    let mut buf = MaybeUninit::uninit();
    fstatat(libc::AT_FDCWD, path, 0, &mut buf).copied()
}

/// `lstat(path)` (`path` NUL-terminated), by value, as [`stat`].
pub fn lstat(path: &[u8]) -> Option<libc::stat> {
    let mut buf = MaybeUninit::uninit();
    fstatat(libc::AT_FDCWD, path, libc::AT_SYMLINK_NOFOLLOW, &mut buf).copied()
}

/// `readlinkat`; returns the length written (not NUL-terminated).
pub fn readlinkat(dirfd: c_int, path: &[u8], buf: &mut [u8]) -> isize {
    if path.last() != Some(&0) {
        return -(libc::EINVAL as isize);
    }
    // SAFETY: `path` is NUL-terminated; `buf` is writable for `buf.len()` bytes.
    ret(unsafe {
        libc::syscall(
            libc::SYS_readlinkat,
            dirfd,
            path.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    }) as isize
}

pub fn getdents64(fd: c_int, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is writable for `buf.len()` bytes; the fd is the caller's.
    ret(unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) }) as isize
}

/// The entries of one `getdents64` batch (the bytes it returned), each name
/// with its terminating NUL, as the kernel writes it. A malformed record
/// ends the batch (never a panic: this runs inside hooks).
pub fn dirents(batch: &[u8]) -> Dirents<'_> {
    Dirents { batch, off: 0 }
}

/// See [`dirents`].
pub struct Dirents<'a> {
    batch: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Dirents<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
            let rec = self.batch.get(self.off..)?;
            if rec.len() < 19 {
                return None;
            }
            let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
            if reclen < 19 || reclen > rec.len() {
                return None;
            }
            self.off += reclen;
            let raw = &rec[19..reclen];
            if let Some(z) = raw.iter().position(|&b| b == 0) {
                return Some(&raw[..=z]);
            }
        }
    }
}

pub fn read(fd: c_int, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    ret(unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) }) as isize
}

pub fn write(fd: c_int, buf: &[u8]) -> isize {
    // SAFETY: `buf` is readable for `buf.len()` bytes.
    ret(unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), buf.len()) }) as isize
}

/// Write all of `buf` (best effort: stops on error).
pub fn write_all(fd: c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        let n = write(fd, buf);
        if n == -(libc::EINTR as isize) {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Read a whole file (NUL-terminated path, not followed when a symlink)
/// into `buf`; `Err` is the `errno`, or `EFBIG` when the file does not fit.
///
/// A read that returns less than it was asked for is taken as the end of
/// the file (what Linux does for regular files), which spares every process
/// a second `read` per state file. Should a file system ever return a short
/// read mid-file, the policy image fails to decode (every truncation is an
/// error) and the process refuses to run: never a wrong policy.
pub fn read_file<'a>(path: &[u8], buf: &'a mut [u8]) -> Result<&'a [u8], i32> {
    let fd = openat(
        libc::AT_FDCWD,
        path,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        0,
    );
    if fd < 0 {
        return Err(-fd);
    }
    let mut n = 0;
    let res = loop {
        if n == buf.len() {
            // Full: one more byte would make it too large.
            let mut probe = [0u8; 1];
            break match read(fd, &mut probe) {
                0 => Ok(()),
                r if r < 0 => Err((-r) as i32),
                _ => Err(libc::EFBIG),
            };
        }
        let want = buf.len() - n;
        let r = read(fd, &mut buf[n..]);
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r < 0 {
            break Err((-r) as i32);
        }
        n += r as usize;
        if r == 0 || (r as usize) < want {
            break Ok(());
        }
    };
    close(fd);
    res.map(|()| &buf[..n])
}

pub fn prctl(op: c_int, a: u64, b: u64, c: u64, d: u64) -> c_long {
    // SAFETY: the prctl operations used here take integer arguments only.
    ret(unsafe { libc::syscall(libc::SYS_prctl, op, a, b, c, d) })
}

/// `getsid(0)`: this process's session id.
pub fn getsid_self() -> i32 {
    // SAFETY: an integer argument only.
    ret(unsafe { libc::syscall(libc::SYS_getsid, 0) }) as i32
}

/// `ioctl(fd, TIOCNOTTY)`: give up the controlling terminal `fd` refers to.
pub fn ioctl_notty(fd: c_int) -> c_int {
    // SAFETY: integer arguments only; TIOCNOTTY takes no argument.
    ret(unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCNOTTY, 0) }) as c_int
}

pub fn unshare(flags: c_int) -> c_int {
    // SAFETY: integer argument only.
    ret(unsafe { libc::syscall(libc::SYS_unshare, flags) }) as c_int
}

/// `execve` as libc's wrapper is: the system call; on failure -1 and `errno`.
///
/// # Safety
/// `path`, `argv` and `envp` follow execve(2): a C string and
/// NULL-terminated arrays of C strings, valid for the call.
pub unsafe fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's pointers go to the kernel unchanged; on success
    // the call does not return.
    unsafe { libc::syscall(libc::SYS_execve, path, argv, envp) as c_int }
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`: 0 and both ends in
/// `fds`, or the negated errno.
pub fn seqpacket_pair(fds: &mut [c_int; 2]) -> c_int {
    // SAFETY: `fds` is an exclusive array of two ints for the call; the
    // kernel writes both.
    ret(unsafe {
        libc::syscall(
            libc::SYS_socketpair,
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    }) as c_int
}

/// `sendmsg(fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL)` to the pathname socket
/// `path` (no NUL; at most 107 bytes), passing the two descriptors `fds`
/// (`SCM_RIGHTS`): the bytes sent or the negated errno.
pub fn sendmsg_fds_unix(fd: c_int, buf: &[u8], path: &[u8], fds: [c_int; 2]) -> isize {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    if path.len() >= addr.sun_path.len() {
        return -(libc::ENAMETOOLONG as isize);
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(path) {
        *d = b as libc::c_char;
    }
    let addr_len = core::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    // One SCM_RIGHTS message of two ints: CMSG_SPACE(8) is 24 on 64-bit.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is arithmetic on a constant.
    let space = unsafe { libc::CMSG_SPACE(8) };
    // SAFETY: CMSG_LEN is arithmetic on a constant.
    let len = unsafe { libc::CMSG_LEN(8) };
    if space as usize > core::mem::size_of_val(&control) {
        return -(libc::EINVAL as isize);
    }
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_name = (&raw mut addr).cast();
    msg.msg_namelen = addr_len as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as usize;
    // SAFETY: `msg` points at `control`, which holds CMSG_SPACE(8) bytes:
    // the first header is in it.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    if cmsg.is_null() {
        return -(libc::EINVAL as isize);
    }
    // SAFETY: `cmsg` points to the first header inside `control` (live,
    // exclusive, 8-byte aligned): no other reference to it exists.
    let hdr = unsafe { &mut *cmsg };
    hdr.cmsg_level = libc::SOL_SOCKET;
    hdr.cmsg_type = libc::SCM_RIGHTS;
    hdr.cmsg_len = len as _;
    // SAFETY: `cmsg` is the live header in `control` (above).
    let data = unsafe { libc::CMSG_DATA(cmsg) };
    // SAFETY: the header's data has room for two ints (CMSG_SPACE(8) was
    // checked against `control`); written unaligned.
    unsafe { data.cast::<[c_int; 2]>().write_unaligned(fds) };
    // SAFETY: `msg` and everything it points to (`addr`, `iov` into `buf`,
    // `control`) is live for the call; the kernel copies them.
    ret(unsafe {
        libc::syscall(
            libc::SYS_sendmsg,
            fd,
            &raw const msg,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    }) as isize
}

/// Wait up to `timeout_ms` for `fd` to be readable (or closed): true when
/// it is.
pub fn wait_readable(fd: c_int, timeout_ms: i32) -> bool {
    let mut p = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let ts = libc::timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    };
    loop {
        // SAFETY: `p` is an exclusive pollfd array for the call; `ts` lives
        // across it; no signal mask (null).
        let r = ret(unsafe {
            libc::syscall(
                libc::SYS_ppoll,
                p.as_mut_ptr(),
                1 as libc::nfds_t,
                &ts as *const libc::timespec,
                core::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        });
        if r == -(libc::EINTR as c_long) {
            continue;
        }
        return r > 0;
    }
}

/// `pread(fd, buf, 0)`: the bytes read or the negated errno.
pub fn pread_start(fd: c_int, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is writable for `buf.len()` bytes for the call.
    ret(unsafe { libc::syscall(libc::SYS_pread64, fd, buf.as_mut_ptr(), buf.len(), 0) }) as isize
}

/// Clear `FD_CLOEXEC` on `fd`: it stays open across `exec`.
pub fn clear_cloexec(fd: c_int) -> c_int {
    // SAFETY: integer arguments only.
    ret(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFD, 0) }) as c_int
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: run the file open at
/// `fd`. Returns only on failure (the negated errno).
///
/// # Safety
/// `argv` and `envp` follow execve(2): NULL-terminated arrays of C
/// strings, valid for the call.
pub unsafe fn execveat_fd(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's arrays go to the kernel unchanged; the path is
    // a static empty C string; on success the call does not return.
    ret(unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        )
    }) as c_int
}

/// `poll(fds, 0)`: which of `fds` are ready, without waiting (`POLLNVAL`
/// marks a number that is not an open fd).
pub fn poll_now(fds: &mut [libc::pollfd]) -> c_int {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `fds` is an exclusive slice of pollfd for the call; `ts` lives
    // across it; no signal mask (null).
    ret(unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts as *const libc::timespec,
            core::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    }) as c_int
}

/// Whether `fd` (a multiple of 64, at most 4096) lies within this
/// process's fd table, open or not: every open fd is below the table's
/// size, so the first such number that does not bounds them all.
///
/// `pselect6` lowers its first argument to the table's size and fails with
/// `EBADF` for a closed fd below it (POSIX requires that for any closed fd
/// in a set), so a set holding only `fd` gives `EBADF` when `fd` is within
/// the table and closed, and 0 when it is past the table or open (then
/// `F_GETFD` tells which). Any other answer counts as within: a caller then
/// looks at more numbers, never fewer. 520 bytes of stack.
pub fn fd_within_table(fd: c_uint) -> bool {
    if !fd.is_multiple_of(64) || fd > 4096 {
        return true;
    }
    let mut set = [0u64; 4096 / 64 + 1];
    set[fd as usize / 64] = 1;
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` is a local bitmap of fd + 1 bits or more, exclusively
    // borrowed for the call (the kernel writes the result back into it);
    // `ts` lives across it; no other set, no signal mask (null).
    let r = ret(unsafe {
        libc::syscall(
            libc::SYS_pselect6,
            fd as c_long + 1,
            set.as_mut_ptr(),
            core::ptr::null_mut::<u64>(),
            core::ptr::null_mut::<u64>(),
            &ts as *const libc::timespec,
            core::ptr::null::<c_void>(),
        )
    });
    match r {
        r if r == -libc::EBADF as c_long => true,
        r if r >= 0 => fd_is_open(fd as c_int),
        _ => true,
    }
}

/// `fd` is open (`fcntl(F_GETFD)` succeeds).
fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: integer arguments only.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) >= 0 }
}

/// Set `FD_CLOEXEC` on `fd` (its other fd flags kept).
pub fn set_cloexec(fd: c_int) -> c_int {
    // SAFETY: integer arguments only.
    let flags = ret(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) });
    if flags < 0 {
        return flags as c_int;
    }
    // SAFETY: integer arguments only.
    ret(unsafe {
        libc::syscall(
            libc::SYS_fcntl,
            fd,
            libc::F_SETFD,
            flags | libc::FD_CLOEXEC as c_long,
        )
    }) as c_int
}

/// `fcntl` commands the libc crate does not name (`<asm-generic/fcntl.h>`,
/// the same on x86_64 and aarch64).
const F_SETSIG: c_int = 10;
const F_GETSIG: c_int = 11;

/// `fcntl(fd, F_SETSIG, sig)`: a signal number stored in the open file
/// description (shared by its dups and across fork); 0 or -errno.
pub fn set_fd_sig(fd: c_int, sig: c_int) -> c_int {
    // SAFETY: integer arguments only.
    ret(unsafe { libc::syscall(libc::SYS_fcntl, fd, F_SETSIG, sig as c_long) }) as c_int
}

/// `fcntl(fd, F_GETSIG)`: the number [`set_fd_sig`] stored (0 when none),
/// or -errno (`EBADF`: not open).
pub fn fd_sig(fd: c_int) -> c_int {
    // SAFETY: integer arguments only.
    ret(unsafe { libc::syscall(libc::SYS_fcntl, fd, F_GETSIG) }) as c_int
}

/// `_exit`: leave without running atexit handlers or flushing stdio.
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: exit_group never returns.
    unsafe {
        libc::syscall(libc::SYS_exit_group, code);
    }
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Effective capability set (low 32 bits of version 3 data, which holds CAP_SYS_ADMIN = 21).
pub fn cap_effective_low() -> u32 {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: `h` and `d` are valid, exclusive buffers of the sizes capget
    // expects for version 3 (header + two data structs).
    let r = ret(unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) });
    if r < 0 { 0 } else { d[0].effective }
}

pub fn clock_realtime() -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid exclusive timespec.
    unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            libc::CLOCK_REALTIME,
            &mut ts as *mut libc::timespec,
        )
    };
    (ts.tv_sec, ts.tv_nsec)
}

/// Anonymous private mapping of `len` bytes (no malloc: usable in a vfork child).
pub fn mmap_anon(len: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let p = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0usize,
        )
    };
    if p < 0 && p > -4096 {
        core::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// # Safety
/// `p`/`len` must be a mapping from [`mmap_anon`] no longer referenced.
pub unsafe fn munmap(p: *mut u8, len: usize) {
    // SAFETY: the caller guarantees the mapping is ours and unused.
    unsafe { libc::syscall(libc::SYS_munmap, p, len) };
}

// Landlock.

pub const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
pub const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;
pub const LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1;
pub const LANDLOCK_SCOPE_SIGNAL: u64 = 2;

#[repr(C)]
pub struct RulesetAttr {
    pub handled_access_fs: u64,
    pub handled_access_net: u64,
    pub scoped: u64,
}

#[repr(C, packed)]
pub struct PathBeneathAttr {
    pub allowed_access: u64,
    pub parent_fd: i32,
}

/// The Landlock ABI version (`<= 0`: `-errno`, Landlock unavailable).
pub fn landlock_abi() -> c_long {
    // SAFETY: a NULL attr with size 0 and the VERSION flag is the documented query.
    ret(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            core::ptr::null::<c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    })
}

/// Create a ruleset; `size` is how many bytes of `attr` the ABI knows.
pub fn landlock_create_ruleset(attr: &RulesetAttr, size: usize) -> c_int {
    // SAFETY: `attr` is a valid struct at least `size` bytes long (callers pass
    // 8, 16 or 24), borrowed for the call.
    ret(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            attr as *const RulesetAttr,
            size,
            0u32,
        )
    }) as c_int
}

pub fn landlock_add_path_rule(ruleset: c_int, parent_fd: c_int, access: u64) -> c_int {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd,
    };
    // SAFETY: `attr` is a valid packed landlock_path_beneath_attr on our stack.
    ret(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    }) as c_int
}

pub fn landlock_restrict_self(ruleset: c_int) -> c_int {
    // SAFETY: integer arguments only; the fd is the ruleset we created.
    ret(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) }) as c_int
}

/// Format `n` in decimal into `buf`; returns the digits.
pub fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The NUL-terminated `/proc/self/fd/N` path for `fd`, in `out`; returns its length with the NUL.
pub fn proc_fd_path(fd: c_int, out: &mut [u8; 40]) -> usize {
    const P: &[u8] = b"/proc/self/fd/";
    out[..P.len()].copy_from_slice(P);
    let mut d = [0u8; 20];
    let digits = fmt_u64(fd.max(0) as u64, &mut d);
    out[P.len()..P.len() + digits.len()].copy_from_slice(digits);
    out[P.len() + digits.len()] = 0;
    P.len() + digits.len() + 1
}

/// libc's globals, under their C names.
mod globals {
    use core::ffi::c_char;
    unsafe extern "C" {
        pub(super) static mut environ: *mut *mut c_char;
    }
}

/// The process's current `environ` pointer (libc's global, read directly).
pub fn environ() -> *const *const c_char {
    let slot = &raw const globals::environ;
    // SAFETY: `slot` is libc's `environ` global, valid for the process's
    // lifetime; we read the pointer value, which setenv may replace
    // concurrently (the libc contract for exec*).
    unsafe { *slot as *const *const c_char }
}

/// The value of `name` in this process's environment (`None`: unset).
///
/// # Safety
/// The slice points into the environment: valid until the program changes
/// that variable (`setenv`, `putenv`). Call it only while building the
/// state (the constructor, or the first hook), and do not keep the result.
pub unsafe fn getenv(name: &[u8]) -> Option<&'static [u8]> {
    let env = environ();
    if env.is_null() {
        return None;
    }
    let mut i = 0;
    loop {
        // SAFETY: `environ` is a NULL-terminated array of C strings (libc's
        // contract); we read entries up to the terminator, so `i` is in it.
        let e = unsafe { c_array_at(env, i) };
        if e.is_null() {
            return None;
        }
        // SAFETY: a non-null entry is a C string.
        let bytes: &'static [u8] = unsafe { cstr_bytes(e) };
        if bytes.len() > name.len() && bytes.starts_with(name) && bytes[name.len()] == b'=' {
            return Some(&bytes[name.len() + 1..]);
        }
        i += 1;
    }
}

/// Element `i` of a C array (say, a NULL-terminated `argv` or `envp`).
///
/// # Safety
/// `array` points to at least `i + 1` readable elements.
#[inline(always)]
pub unsafe fn c_array_at<T: Copy>(array: *const T, i: usize) -> T {
    // SAFETY: `i` is within the array (the caller's contract).
    let slot = unsafe { array.add(i) };
    // SAFETY: `slot` points to a readable element (the caller's contract).
    unsafe { *slot }
}

/// Length of a C string.
///
/// # Safety
/// `p` must be a valid NUL-terminated string.
pub unsafe fn cstr_bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: guaranteed by the caller; the slice does not outlive the caller's borrow.
    unsafe { core::ffi::CStr::from_ptr(p).to_bytes() }
}

#[cfg(test)]
mod tests {
    use super::dirents;

    fn record(name: &[u8], reclen: u16) -> Vec<u8> {
        let mut r = vec![0u8; 19];
        r[16..18].copy_from_slice(&reclen.to_ne_bytes());
        r.extend_from_slice(name);
        r.resize(usize::from(reclen), 0);
        r
    }

    #[test]
    fn dirents_yields_names_with_their_nul() {
        let mut batch = record(b".\0", 24);
        batch.extend(record(b"auth.json\0", 32));
        let names: Vec<&[u8]> = dirents(&batch).collect();
        assert_eq!(names, vec![&b".\0"[..], &b"auth.json\0"[..]]);
    }

    #[test]
    fn a_malformed_record_ends_the_batch_without_panic() {
        let mut batch = record(b"a\0", 24);
        batch.extend(record(b"b\0", 24));
        let last = batch.len() - 24;
        batch[last + 16..last + 18].copy_from_slice(&200u16.to_ne_bytes()); // past the end
        assert_eq!(dirents(&batch).count(), 1);
        batch[last + 16..last + 18].copy_from_slice(&0u16.to_ne_bytes()); // zero length
        assert_eq!(dirents(&batch).count(), 1);
        assert_eq!(dirents(&batch[..10]).count(), 0);
    }
}
