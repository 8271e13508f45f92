//! agent-init: agent-vault's container entry point and PID 1.
//!
//! `run` seeds the harness's directories, records the harness's identity,
//! drops privileges, applies the Landlock base layer and the seccomp filter,
//! starts the harness and serves as PID 1. `check`, `explain` and
//! `self-test` tell what a policy does and prove it holds.

mod config;
mod describe;
mod error;
mod landlock_layer;
mod log;
mod path_search;
mod pid1;
mod preload;
mod privs;
mod run;
mod safe_path;
mod seccomp_layer;
mod seed;
mod selftest;
mod state;
mod stop;
mod sys;
mod unhooked;
mod vault_links;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str = "agent-vault's entry point: runs an AI coding agent (the harness) so that \
its credentials are readable by the harness and by nothing it spawns.";

const LONG_ABOUT: &str = "\
agent-vault's entry point: runs an AI coding agent (the harness) so that its
credentials are readable by the harness and by nothing it spawns.

Use it as the container ENTRYPOINT:

    ENTRYPOINT [\"agent-init\", \"run\", \"--\"]
    CMD [\"pi\"]

The policy is --policy FILE, else /etc/agent-vault/policy.toml, else the
built-in policy (`agent-init check` prints whichever applies, in words).";

const AFTER_HELP: &str = "\
Examples:
  agent-init run -- pi                       start Pi under the policy
  agent-init run --user 1000:1000 -g -- claude
  agent-init check --policy ./policy.toml    validate a policy, print it in words
  agent-init explain /pi-agent/auth.json ~/.ssh
  agent-init self-test --json                prove the layers hold (run it as a tool)

Logging: -v (debug) or -q (warnings and errors only), or AGENT_VAULT_LOG=quiet|info|debug.";

#[derive(Parser)]
#[command(name = "agent-init", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("AGENT_VAULT_REVISION"), ")"), about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// More detail on stderr (AGENT_VAULT_LOG=debug).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Only warnings and errors on stderr (AGENT_VAULT_LOG=quiet).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start CMD as the harness: seed, drop privileges, Landlock, seccomp, serve as PID 1.
    #[command(long_about = RUN_LONG)]
    Run {
        /// Policy file [default: /etc/agent-vault/policy.toml, else the built-in policy].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Run the harness as USER (a name from /etc/passwd, or uid:gid) instead of the policy's harness.user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Forward signals to the harness's whole process group, not just the harness.
        #[arg(short = 'g', long)]
        process_group: bool,
        /// Seconds to wait for the remaining processes after the harness exits (SIGTERM, then SIGKILL).
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        grace: f64,
        /// The harness command and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Validate a policy and print it in plain words; exit 0 when valid, 1 when not.
    Check {
        /// Policy file [default: /etc/agent-vault/policy.toml, else the built-in policy].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// For each PATH: what the harness and what a tool may do with it, and which rule says so.
    Explain {
        /// Policy file [default: /etc/agent-vault/policy.toml, else the built-in policy].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Paths to explain (absolute; relative ones are taken from the current directory).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Prove the layers hold, from where a tool stands: one row per check; exit 0 only if all enabled layers hold.
    #[command(long_about = SELFTEST_LONG)]
    SelfTest {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

const RUN_LONG: &str = "\
Start CMD as the harness. The steps, each logged as one line on stderr:

  1 sanitize  close inherited fds above 2; harness env = env + [harness.env];
              refuse a harness the preload cannot follow (static, Go, musl)
              unless [harness] unhooked = \"allow\"
  2 seed      create the vault dirs (owned by the harness user), copy seeds
              without ever overwriting, refuse vault files with hard links
  3 record    /run/agent-vault (root) or /tmp/agent-vault-UID: policy.toml,
              policy.bin (what the preload reads), probe/, the audit file,
              harness.pid
  4 drop      switch user and groups, clear every capability set, lock
              securebits, no_new_privs, no core dumps
  5 landlock  the policy's filesystem allow-list (terminals stay usable)
  6 seccomp   deny-list with errnos (io_uring, ptrace, mount, namespaces...)
  7 start     exec CMD (LD_PRELOAD the vault preload in host mode)
  8 serve     forward TERM INT HUP QUIT USR1 USR2 WINCH, reap zombies, exit
              with the harness's code or 128+signal

Exit codes: the harness's; 1 a step failed before the harness started;
2 invalid policy, user or arguments, or an unhooked harness; 126 CMD not executable; 127 CMD not found;
143 (TERM) or 130 (INT): stopped before the harness started (taken between
files while seeding; every seeded file is whole, the next start copies the rest).";

const SELFTEST_LONG: &str = "\
Run it inside the container (docker exec ... agent-init self-test) or as a
command under `agent-init run`, where a tool would run. One row per check:
the layers (preload, Landlock, seccomp, capabilities, no_new_privs, harness
non-dumpable), attacks on every vault entry of the effective policy (open,
raw openat, openat2, io_uring, link, rename, /proc/<harness>/environ|mem|fd,
ptrace, user namespaces, secret environment variables), and positive
controls (the workspace and /tmp are writable). Secrets are never printed.
Exit 0 only if every enabled layer holds.";

fn main() {
    // Before anything else: a TERM or INT from now on waits for `run` to
    // take it (as PID 1 an unblocked one would be dropped).
    stop::hold();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        stop::release();
    }
    log::init(cli.verbose, cli.quiet);
    let code = match cli.command {
        Command::Run {
            policy,
            user,
            process_group,
            grace,
            command,
        } => {
            if !(grace.is_finite() && grace >= 0.0) {
                eprintln!("agent-init: error: --grace {grace}: expected seconds >= 0");
                std::process::exit(run::EXIT_CONFIG);
            }
            run::run(run::RunArgs {
                policy,
                user,
                process_group,
                grace: Duration::from_secs_f64(grace),
                command,
            })
        }
        Command::Check { policy } => describe::check(policy.as_deref()),
        Command::Explain { policy, paths } => describe::explain(policy.as_deref(), &paths),
        Command::SelfTest { json } => selftest::main(json),
    };
    std::process::exit(code);
}
