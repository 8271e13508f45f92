//! Raw syscalls: `prctl`, the uid, and taking over an inherited fd.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};

/// `prctl(PR_SET_DUMPABLE, 0)`: no core dumps, and `/proc/<pid>/mem`,
/// `environ` and ptrace stay closed to processes of the same uid.
pub fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument only; no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: exec can never gain privileges.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only; no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The real uid.
pub fn uid() -> u32 {
    // SAFETY: getuid has no arguments and cannot fail.
    unsafe { libc::getuid() }
}

/// Take ownership of inherited fd `fd` (3 or above, open), marking it close-on-exec.
pub fn take_fd(fd: RawFd) -> io::Result<File> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fd must be 3 or above (0 to 2 are stdio)",
        ));
    }
    // SAFETY: F_GETFD reads the flags of an integer fd; no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFD sets flags on the fd just checked; no pointers.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (F_GETFD succeeded) and was handed to this
    // process by its parent for this purpose; nothing else in the process
    // owns it, so the File becomes its only owner and closes it on drop.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The kernel's Landlock ABI version (0: no Landlock).
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
