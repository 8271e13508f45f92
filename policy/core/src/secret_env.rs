//! Which environment variables are secret, answered fast enough to ask for
//! every variable of every program the harness starts.
//!
//! [`View::is_secret_env`] compares a name with each secret name and
//! pattern in turn, reading them from the image: about 130 ns a name with
//! the built-in policy (32 names, 10 patterns), 5-6 µs for a 46-variable
//! environment, in every child of the harness before its `exec`.
//! [`SecretEnv`] unpacks the names and patterns once, each with a 64-bit
//! *bigram signature*: one bit per pair of adjacent bytes, hashed. A name
//! equals a secret name only if their signatures are equal, and matches a
//! pattern only if it holds every byte pair of the pattern's literal runs
//! (the text between `*`s, which must appear in it whole), so only if the
//! pattern's signature is a subset of the name's. One signature per name
//! and a test per entry rule out almost every entry; the few left get the
//! exact comparison [`View::is_secret_env`] makes. The answer is always
//! that of [`View::is_secret_env`] (`policy/tests/secret_env_agrees.rs`
//! checks it against random names and patterns).

use crate::image::{MAX_SECRET_ENV, MAX_SECRET_PATTERNS, Strs, View, glob_match};

/// The bigram signature of `s`: bit `h(a, b) % 64` for each pair of
/// adjacent bytes `a b`. For a pattern, its literal runs only (a `*` starts
/// a new run and pairs with nothing).
pub fn signature(s: &[u8]) -> u64 {
    let mut sig = 0u64;
    for w in s.windows(2) {
        if w[0] != b'*' && w[1] != b'*' {
            let h = (u32::from(w[0]) << 8 | u32::from(w[1])).wrapping_mul(0x9E37_79B1);
            sig |= 1u64 << (h >> 26);
        }
    }
    sig
}

/// One secret name or pattern, with its signature.
#[derive(Clone, Copy)]
struct Signed<'a> {
    sig: u64,
    text: &'a [u8],
}

const NONE: Signed<'static> = Signed { sig: 0, text: &[] };

/// Fill `slots` with `from`'s strings and their signatures; returns how
/// many. View::decode holds each section to its limit (the slots' number),
/// so nothing is dropped; `zip` stops at the slots' end regardless.
fn unpack<'a>(slots: &mut [Signed<'a>], from: Strs<'a>) -> usize {
    let mut n = 0;
    for (slot, s) in slots.iter_mut().zip(from) {
        *slot = Signed {
            sig: signature(s.bytes()),
            text: s.bytes(),
        };
        n += 1;
    }
    n
}

/// The policy's secret names and patterns, unpacked with their
/// signatures. Fixed size (the image's limits: 64 names, 32 patterns),
/// no allocation.
#[derive(Clone, Copy)]
pub struct SecretEnv<'a> {
    view: View<'a>,
    names: [Signed<'a>; MAX_SECRET_ENV],
    n_names: usize,
    patterns: [Signed<'a>; MAX_SECRET_PATTERNS],
    n_patterns: usize,
}

impl<'a> SecretEnv<'a> {
    /// Unpack `view`'s secret names and patterns.
    pub fn new(view: View<'a>) -> SecretEnv<'a> {
        let mut names = [NONE; MAX_SECRET_ENV];
        let mut patterns = [NONE; MAX_SECRET_PATTERNS];
        SecretEnv {
            view,
            n_names: unpack(&mut names, view.secret_env()),
            names,
            n_patterns: unpack(&mut patterns, view.secret_patterns()),
            patterns,
        }
    }

    /// [`View::is_secret_env`]'s answer for `name`.
    pub fn is_secret(&self, name: &[u8]) -> bool {
        let sig = signature(name);
        let secret = self.names[..self.n_names]
            .iter()
            .any(|e| e.sig == sig && e.text == name)
            || self.patterns[..self.n_patterns]
                .iter()
                .any(|p| p.sig & !sig == 0 && glob_match(p.text, name));
        secret && !self.view.keep_env().any(|k| k.bytes() == name)
    }
}
