//! Loading agent-init's compiled policy, `<state dir>/policy.bin`.
//!
//! A module of its own because its outcome decides whether a process may
//! run at all: an image that is there but cannot be used (unreadable, too
//! large, damaged, of another version) makes every unprivileged process
//! refuse to run (exit 126), since a tool never guesses the vault (a
//! process that starts under the tool layer loads it at its first hook
//! call, and refuses there: until then the kernel's rules hold it); a
//! missing one means the built-in policy ([`crate::builtin`]). Either gets
//! one line on stderr. The image is read with raw system calls into a
//! buffer the caller gives (a static: the view keeps slices into it) and
//! checked once ([`View::decode`]).

use crate::state_dir::{self, POLICY_IMAGE, StatePath};
use crate::sys;
use policy_core::View;
use policy_core::image::MAX_IMAGE;

/// What `<dir>/policy.bin` gave.
pub enum Image {
    Loaded(View<'static>),
    /// Not there (`ENOENT`): the built-in policy, with one line.
    Missing,
    /// There but unreadable, too large, damaged or of another version:
    /// refuse, in an unprivileged process.
    Damaged,
}

/// Read and check `<dir>/policy.bin` into `buf`; a missing or damaged image
/// gets one line on stderr. `buf` is never written again after this (the
/// caller's contract), so the view's 'static slices stay valid.
pub fn load(dir: &StatePath, buf: &'static mut [u8; MAX_IMAGE]) -> Image {
    let Some(p) = state_dir::join(dir, POLICY_IMAGE) else {
        return Image::Missing;
    };
    let bytes = match sys::read_file(p.with_nul(), buf) {
        Ok(b) => b,
        Err(libc::ENOENT) => {
            report(
                p.bytes(),
                b"no policy image",
                None,
                b"; using the built-in policy\n",
            );
            return Image::Missing;
        }
        // There but unreadable (permissions, a Landlock layer hiding it, no
        // fd left, too large): as unusable as a damaged one.
        Err(e) => {
            let mut d = [0u8; 20];
            sys::write_all(2, b"agent-vault: ");
            sys::write_all(2, p.bytes());
            sys::write_all(2, b": cannot read the policy image (errno ");
            sys::write_all(2, sys::fmt_u64(e as u64, &mut d));
            sys::write_all(2, b"); refusing to run\n");
            return Image::Damaged;
        }
    };
    match View::decode(bytes) {
        Ok(v) => Image::Loaded(v),
        Err(e) => {
            report(
                p.bytes(),
                b"damaged policy image",
                Some(e),
                b"; refusing to run (restart agent-init to write it again)\n",
            );
            Image::Damaged
        }
    }
}

/// One line on stderr: the policy image could not be used, and what now.
fn report(
    path: &[u8],
    why: &[u8],
    detail: Option<policy_core::image::DecodeError>,
    consequence: &[u8],
) {
    sys::write_all(2, b"agent-vault: ");
    sys::write_all(2, path);
    sys::write_all(2, b": ");
    sys::write_all(2, why);
    if let Some(e) = detail {
        let mut d = [0u8; 20];
        sys::write_all(2, b" (byte ");
        sys::write_all(2, sys::fmt_u64(e.at as u64, &mut d));
        sys::write_all(2, b": ");
        sys::write_all(2, e.what.as_bytes());
        sys::write_all(2, b")");
    }
    sys::write_all(2, consequence);
}
