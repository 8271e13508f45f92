//! The built-in policy, for a process with no agent-init session (no state
//! directory, or one without its policy image).
//!
//! A module of its own because it is a second source of the policy, built
//! in every such process: the vault of `policy/default.toml` (generated into
//! `$OUT_DIR/builtin.rs` by `build.rs`: the preload parses no TOML),
//! expanded with this process's home (`$HOME` when absolute, else
//! [`crate::passwd`]) and environment, and one base rule granting
//! everything (with no agent-init session there is no base layer to mirror:
//! the tool layer only hides the vault). Encoded with the same encoder as
//! `policy.bin`, then read back like it, so the hooks see one format.

use crate::{passwd, sys};
use policy_core::image::{Encoder, MAX_IMAGE, SliceOut, ToolOptions};
use policy_core::pathbuf::{FixedPath, is_within};
use policy_core::{Access, View};

/// The built-in policy's vault, as generated from `policy/default.toml`.
mod table {
    use policy_core::VaultKind;
    use policy_core::image::{Audit, Mode};
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// What expansion reads: this process's environment and home.
struct ProcessEnv {
    home: Option<&'static [u8]>,
}

impl policy_core::expand::Lookup for ProcessEnv {
    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        // SAFETY: used only while the state is built (`policy`'s contract),
        // before the program can change its environment.
        unsafe { sys::getenv(name) }
    }
    fn home(&self) -> Option<&[u8]> {
        self.home
    }
}

/// The built-in policy, encoded into `image` (`passwd`: room to read
/// `/etc/passwd` in). An entry that does not expand (say `~` with no home)
/// is left out.
///
/// # Safety
/// Called only while the state is built (the environment is read in place,
/// [`sys::getenv`]). Neither buffer is written again afterwards, so the
/// view's 'static slices stay valid.
#[cold]
#[inline(never)]
pub unsafe fn policy(
    uid: u32,
    image: &'static mut [u8; MAX_IMAGE],
    passwd: &'static mut [u8; passwd::BUF_SIZE],
) -> View<'static> {
    // SAFETY: this function's contract; the home is copied into the image.
    let home = match unsafe { sys::getenv(b"HOME") } {
        Some(h) if h.starts_with(b"/") => Some(h),
        _ => passwd::home(uid, passwd),
    };
    let env = ProcessEnv { home };
    let expand = |template: &[u8], out: &mut FixedPath| {
        policy_core::expand::absolute_path(&template[..template.len() - 1], &env, out)
    };
    let mut e = Encoder(SliceOut {
        buf: &mut image[..],
        len: 0,
        overflow: false,
    });
    let tools = ToolOptions {
        keep_terminal: table::KEEP_TERMINAL,
    };
    // The built-in policy (no agent-init, no session) launches no harness.
    e.header(table::LANDLOCK, table::audit(), None, tools, &[]);
    let mut path = FixedPath::new();
    // An entry is kept when it expands and no earlier entry expanded to the
    // same path (as agent-init merges them; `CLAUDE_CONFIG_DIR=~/.claude`).
    let kept = |i: usize, path: &mut FixedPath| {
        if !expand(table::VAULT[i].1, path) {
            return false;
        }
        let mut earlier = FixedPath::new();
        !(0..i).any(|j| {
            expand(table::VAULT[j].1, &mut earlier) && earlier.as_bytes() == path.as_bytes()
        })
    };
    let n = (0..table::VAULT.len())
        .filter(|&i| kept(i, &mut path))
        .count();
    e.count(n);
    for (i, (name, _, kind, rel_exceptions)) in table::VAULT.iter().enumerate() {
        if !kept(i, &mut path) {
            continue;
        }
        e.entry(&name[..name.len() - 1], path.as_bytes(), *kind);
        // An exception whose full path does not fit is left out: the entry
        // then covers that part too (stricter, never looser).
        let here = path.len();
        let fits = |x: &&[u8], path: &mut FixedPath| {
            let ok = path.push(&x[..x.len() - 1]);
            path.truncate(here);
            ok
        };
        e.count(rel_exceptions.iter().filter(|x| fits(x, &mut path)).count());
        for x in *rel_exceptions {
            if path.push(&x[..x.len() - 1]) {
                e.str(path.as_bytes());
            }
            path.truncate(here);
        }
    }
    e.count(table::SECRET_ENV.len());
    for s in table::SECRET_ENV {
        e.str(&s[..s.len() - 1]);
    }
    e.count(table::SECRET_ENV_PATTERNS.len());
    for s in table::SECRET_ENV_PATTERNS {
        e.str(&s[..s.len() - 1]);
    }
    e.count(table::KEEP_ENV.len());
    for s in table::KEEP_ENV {
        e.str(&s[..s.len() - 1]);
    }
    // A tool read-only path is kept when it expands and overlaps no vault
    // entry (the image refuses overlaps; the vault wins). Decided once per
    // path (a bit each: the table has far fewer than 32).
    let mut entry = FixedPath::new();
    let mut read_only: u32 = 0;
    for (i, template) in table::TOOL_READ_ONLY.iter().enumerate().take(32) {
        let overlaps = |path: &FixedPath, entry: &mut FixedPath| {
            table::VAULT.iter().any(|v| {
                expand(v.1, entry)
                    && (is_within(path.as_bytes(), entry.as_bytes())
                        || is_within(entry.as_bytes(), path.as_bytes()))
            })
        };
        if expand(template, &mut path) && !overlaps(&path, &mut entry) {
            read_only |= 1 << i;
        }
    }
    e.count(read_only.count_ones() as usize);
    for (i, template) in table::TOOL_READ_ONLY.iter().enumerate().take(32) {
        if read_only & (1 << i) != 0 && expand(template, &mut path) {
            e.str(path.as_bytes());
        }
    }
    e.count(1);
    e.rule(b"/", Access::ALL);
    // No hidden paths: without an agent-init session nothing was seeded.
    e.count(0);
    let SliceOut { buf, len, overflow } = e.0;
    let image: &'static [u8] = &buf[..len];
    match View::decode(image) {
        Ok(v) if !overflow => v,
        // Not reachable with the generated table (a test decodes it); if it
        // ever were, an empty vault would be a silent fallback: refuse instead.
        _ => {
            sys::write_all(
                2,
                b"agent-vault: the built-in policy does not encode; refusing to run\n",
            );
            sys::exit_now(126)
        }
    }
}
