//! vault-preload: the guard that `/etc/ld.so.preload` (or `LD_PRELOAD` in
//! host mode) maps into every dynamically linked process.
//!
//! - In **the harness** (the pid agent-init recorded, or a launched harness
//!   it recorded in `launched/`, [`launch`]): no file checks; the
//!   process makes itself non-dumpable; every spawn path puts the child under
//!   the tool layer ([`hooks_spawn`]).
//! - In **every other process** (a tool): the open family denies vault
//!   entries with `EACCES` and writes an audit record ([`hooks_open`]). A
//!   process that starts under the tool layer (every program a tool runs)
//!   gets only the probe that says so from the constructor, and its state
//!   at its first hook call; one that is not under it yet (started outside
//!   the harness tree) has its secret variables wiped from its own
//!   environment and the tool layer applied by the constructor
//!   ([`tool_layer`]).
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
    if under_tool_layer_at_start() {
        register_before_fork();
        return;
    }
    let Some(st) = state::get() else { return };
    if st.privileged {
        return;
    }
    register_before_fork();
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

/// Before every fork: what the child calls before exec looked up in the
/// parent, and in the harness the tool-layer ruleset kept current
/// ([`hooks_spawn::before_fork`]).
fn register_before_fork() {
    // SAFETY: registering a handler that is a plain `extern "C" fn()`.
    unsafe { libc::pthread_atfork(Some(hooks_spawn::before_fork), None, None) };
}

/// A process that starts under the tool layer (every program a tool runs)
/// needs nothing from the constructor: it is not the harness, the kernel
/// already refuses it the vault, and its environment is what its parent
/// gave it (a harness's child filters the secret variables at `exec`; a
/// tool can only pass on what it holds). So the constructor only finds the
/// state directory and probes its `probe/probe` (two system calls: the tool
/// layer refuses it, its mode does not); the rest of the process state (the
/// policy image and its check, the vault entries) is built by the first
/// hook call ([`state::get`]), if one comes. A damaged policy image then
/// stops such a process at its first hook call rather than at start: until
/// then it runs under the kernel's rules, which do not depend on the image.
///
/// The harness record is not read first: the probe is a vault entry, which
/// the harness's base layer lets it read, and a launched harness runs
/// without the tool layer, so a process the probe finds under the tool
/// layer is neither (and its state never needs the record, [`state_dir::Record`]).
/// Anything else (the harness, a process started outside the harness tree,
/// a privileged one, no session) takes the full path.
///
/// Whether the process is privileged is not asked first: a process under
/// the tool layer never is (no tool holds a capability, and
/// `no_new_privs` keeps it so; PID 1 is agent-init), and a privileged one
/// is not under the layer, so its probe reads and it takes the full path,
/// which asks. Two system calls (`getpid`, `capget`) fewer in every
/// program a tool runs.
fn under_tool_layer_at_start() -> bool {
    let Some((dir, _)) = state::find_early(sys::getuid()) else {
        return false;
    };
    let Some(probe_dir) = state_dir::join(&dir, policy_core::layout::PROBE_DIR.name.as_bytes())
    else {
        return false;
    };
    if tool_layer::probe_file(probe_dir.bytes()) != tool_layer::Probe::Under {
        return false;
    }
    state::mark_under_tool_layer();
    true
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
