//! vault-preload: the guard that `/etc/ld.so.preload` (or `LD_PRELOAD` in
//! host mode) maps into every dynamically linked process.
//!
//! - In **the harness** (the pid agent-init recorded, or a launched harness
//!   it recorded in `launched/`, [`launch`]): no file checks; the
//!   process makes itself non-dumpable; every spawn path puts the child under
//!   the tool layer ([`hooks_spawn`]).
//! - In **every other process** (a tool): the open family denies vault
//!   entries with `EACCES` and writes an audit record ([`hooks_open`]); the
//!   constructor wipes secret variables from its own environment and, when
//!   the process is not under the tool layer yet (started outside the
//!   harness tree), applies it ([`tool_layer`]).
//!
//! Modules, each using only those listed before it:
//! - [`sys`]: raw system calls and libc's globals (`errno`, `environ`);
//!   [`real`]: the interposed functions' next definitions (`dlsym(RTLD_NEXT)`);
//!   [`lazy`]: a value built on first use, in place in a static;
//! - [`state_dir`]: where agent-init's state is, who the harness is;
//!   [`image_load`]: its policy image; [`passwd`] and [`builtin`]: the
//!   built-in policy, without one; [`state`]: the process state, built once
//!   from those;
//! - [`outside`] (files already found outside the vault), [`guard`] (the
//!   open checks), [`audit`] (denial records), [`env`](mod@env) (secret variables),
//!   [`tool_layer`] (the Landlock layer of the harness's children);
//! - [`launch`]: a trusted process's child that execs a launcher
//!   registers with agent-init and becomes a launched harness;
//! - the hooks: [`hooks_open`], [`hooks_spawn`].
//!
//! Invariants: `no_std` and no allocator: nothing allocates, ever. Hooks take
//! no lock, never unwind across the FFI boundary (`panic = "abort"`), and
//! deny when a check cannot be made.

#![cfg_attr(not(test), no_std)]
#![deny(clippy::multiple_unsafe_ops_per_block)]

pub mod audit;
pub mod builtin;
pub mod env;
pub mod guard;
pub mod hooks_attr;
pub mod hooks_open;
pub mod hooks_spawn;
pub mod image_load;
pub mod launch;
pub mod lazy;
pub mod outside;
pub mod passwd;
pub mod real;
pub mod state;
pub mod state_dir;
pub mod sys;
pub mod terminal;
pub mod tool_layer;

use policy_core::Mode as EnforceMode;

/// The constructor, run by the dynamic loader (after the constructors of
/// the program's own libraries: every hook also initialises lazily).
extern "C" fn vault_preload_init() {
    let Some(st) = state::get() else { return };
    if st.privileged {
        return;
    }
    // Before every fork: what the child calls before exec looked up in the
    // parent, and in the harness the tool-layer ruleset kept current.
    // SAFETY: registering a handler that is a plain `extern "C" fn()`.
    unsafe { libc::pthread_atfork(Some(hooks_spawn::before_fork), None, None) };
    if st.is_harness() {
        // No core dump; /proc/<pid>/{mem,environ,fd} closed to same-uid processes.
        sys::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        return;
    }
    env::scrub_own(st);
    if st.policy.landlock == EnforceMode::Off {
        return;
    }
    if let Err(e) = tool_layer::ensure(st) {
        if st.policy.landlock == EnforceMode::Required {
            tool_layer::report(e, b"; refusing to run (landlock mode \"required\")");
            sys::exit_now(126);
        }
        tool_layer::report(e, b"; running with the preload's checks only");
    }
}

/// A bug: there is no unwinding across the FFI boundary, and no formatting
/// either (no allocator). One line on stderr, then abort.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    sys::write_all(2, b"agent-vault: internal error in the preload; aborting\n");
    // SAFETY: abort has no preconditions and does not return.
    unsafe { libc::abort() }
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = vault_preload_init;
