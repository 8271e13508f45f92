//! The controlling terminal: tools start without the harness's.
//!
//! Why: a tool that opens `/dev/tty` reads (and races the harness for)
//! what the user types into an interactive harness while the tool runs,
//! and can write prompts that look like the harness's. Unless the policy
//! keeps the terminal for tools (`[tools] keep_terminal`), every program
//! the harness starts begins without a controlling terminal: `/dev/tty`
//! gives `ENXIO`. The harness itself keeps its terminal.
//!
//! Two ways, by spawn path:
//! - **a forked child of the harness** (fork or vfork, then exec or
//!   `posix_spawn`): `ioctl(TIOCNOTTY)` on `/dev/tty` gives up the
//!   terminal for this process only (it is not a session leader). It stays
//!   in the harness's process group: Ctrl-C and job control reach it as
//!   before. A child that made its own session (`setsid`, as a pty library
//!   does before it takes a new pty as its terminal) is left alone: its
//!   terminal, if any, is not the harness's.
//! - **`posix_spawn`, `system`, `popen` in the harness**: the spawn runs
//!   no code of ours in the child, so the attributes get
//!   `POSIX_SPAWN_SETSID`: the child starts a session of its own, without
//!   a terminal, and so in a process group of its own (a requested
//!   `POSIX_SPAWN_SETPGROUP` is dropped: a session leader cannot join
//!   another group). Ctrl-C at the terminal then no longer reaches it; the
//!   harness can still signal it by pid.
//!
//! Not covered: a tool whose stdin/stdout/stderr are the terminal (the
//! harness passed them) still reads and writes through those fds; and the
//! terminal's device (`/dev/pts/N`) can be opened by path by any process
//! of the harness user.

use crate::state::State;
use crate::sys;
use core::ffi::c_int;
use core::mem::MaybeUninit;
use libc::posix_spawnattr_t;

/// In a forked child of the harness: give up the controlling terminal
/// (see the module documentation). `Err(errno)`: it could not be done and
/// the child must not run the tool.
pub fn drop_in_child(st: &State) -> Result<(), c_int> {
    if st.policy.tools.keep_terminal || sys::getsid_self() == sys::getpid() {
        return Ok(());
    }
    let fd = sys::openat(
        libc::AT_FDCWD,
        b"/dev/tty\0",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        0,
    );
    match -fd {
        // No controlling terminal, or no /dev/tty to reach one by: the tool
        // cannot open it either.
        libc::ENXIO | libc::ENOENT => return Ok(()),
        e if fd < 0 => return Err(e),
        _ => {}
    }
    let r = sys::ioctl_notty(fd);
    sys::close(fd);
    if r < 0 { Err(-r) } else { Ok(()) }
}

/// For a spawn from the harness: `attr` (or default attributes when null)
/// with `POSIX_SPAWN_SETSID` added and `POSIX_SPAWN_SETPGROUP` removed,
/// written to `out`; returns the attributes to spawn with (`attr` itself
/// when the policy keeps the terminal). `Err(errno)`: nothing to spawn with.
///
/// # Safety
/// `attr` is null or points to initialised spawn attributes, valid for the
/// call. The result points into `out` or is `attr`.
pub unsafe fn detached_attr(
    st: &State,
    attr: *const posix_spawnattr_t,
    out: &mut MaybeUninit<posix_spawnattr_t>,
) -> Result<*const posix_spawnattr_t, c_int> {
    if st.policy.tools.keep_terminal {
        return Ok(attr);
    }
    if attr.is_null() {
        // SAFETY: `out` is ours, exclusively borrowed; posix_spawnattr_init
        // fills it (glibc: zeroes it; it allocates nothing, so it needs no
        // destroy).
        let r = unsafe { libc::posix_spawnattr_init(out.as_mut_ptr()) };
        if r != 0 {
            return Err(r);
        }
    } else {
        // SAFETY: `attr` points to initialised attributes (this function's
        // contract); glibc's are plain data (flags, a pgid, signal sets,
        // scheduling fields), so a bitwise copy is a valid copy.
        out.write(unsafe { core::ptr::read(attr) });
    }
    let mut flags: libc::c_short = 0;
    // SAFETY: `out` is initialised above; `flags` is local; both borrowed
    // for the call.
    let r = unsafe { libc::posix_spawnattr_getflags(out.as_ptr(), &mut flags) };
    if r != 0 {
        return Err(r);
    }
    let flags = (flags | libc::POSIX_SPAWN_SETSID as libc::c_short)
        & !(libc::POSIX_SPAWN_SETPGROUP as libc::c_short);
    // SAFETY: `out` is initialised above, exclusively borrowed for the call.
    let r = unsafe { libc::posix_spawnattr_setflags(out.as_mut_ptr(), flags) };
    if r != 0 {
        return Err(r);
    }
    Ok(out.as_ptr())
}
