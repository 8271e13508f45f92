//! A home directory from `/etc/passwd`, for the built-in policy's `~` when
//! `$HOME` is not an absolute path.
//!
//! A module of its own because it is a parser of a file format, and read
//! raw: `getpwuid` would open files through our own hooks during
//! initialisation (and may allocate).

use crate::sys;

/// How much of `/etc/passwd` is read (a larger file is not used).
pub const BUF_SIZE: usize = 64 * 1024;

/// The home of `uid` from `/etc/passwd`, read into `buf`; `None` when the
/// file cannot be read, does not fit, or has no absolute home for `uid`.
pub fn home(uid: u32, buf: &'static mut [u8]) -> Option<&'static [u8]> {
    let text = sys::read_file(b"/etc/passwd\0", buf).ok()?;
    let mut d = [0u8; 20];
    let want = sys::fmt_u64(u64::from(uid), &mut d);
    for line in text.split(|&b| b == b'\n') {
        let mut f = line.split(|&b| b == b':');
        let (_, _, u, _, _, h) = (f.next(), f.next(), f.next(), f.next(), f.next(), f.next());
        if u == Some(want)
            && let Some(h) = h
            && h.starts_with(b"/")
        {
            return Some(h);
        }
    }
    None
}
