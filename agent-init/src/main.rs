//! agent-init: agent-vault's container entry point and PID 1.
//!
//! `run` seeds the harness's directories, records the harness's identity,
//! drops privileges, applies the Landlock base layer and the seccomp filter,
//! starts the harness and serves as PID 1. `check`, `explain` and
//! `self-test` tell what a policy does and prove it holds.

mod audit_sink;
mod config;
mod describe;
mod error;
mod health;
mod json_out;
mod landlock_layer;
mod launch_registry;
mod launchers;
mod log;
mod path_search;
mod pid1;
mod preflight;
mod preload;
mod privs;
mod proxy;
mod run;
mod safe_path;
mod seccomp_layer;
mod seed;
mod selftest;
mod socket_file;
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
  agent-init health                          exit 0 while the harness runs under its layers

Logging: quiet by default (one line per start); -v adds the steps, -q keeps
warnings and errors only; --log-format json for one JSON object a line. Or
AGENT_VAULT_LOG=quiet|info|debug|text|json, comma-separated (json,debug).";

#[derive(Parser)]
#[command(name = "agent-init", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("AGENT_VAULT_REVISION"), ")"), about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// One line per step and the details on stderr (AGENT_VAULT_LOG=debug).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Only warnings and errors on stderr (AGENT_VAULT_LOG=quiet).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log lines as text or as JSON objects with timestamps (AGENT_VAULT_LOG=json).
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
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
        /// One JSON object on stdout (README: "Machine-readable output"), also for an invalid policy.
        #[arg(long)]
        json: bool,
    },
    /// For each PATH: what the harness and what a tool may do with it, and which rule says so.
    Explain {
        /// Policy file [default: /etc/agent-vault/policy.toml, else the built-in policy].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Paths to explain (absolute; `~/...` is the harness user's home; relative ones are taken from the current directory).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// One JSON object on stdout (README: "Machine-readable output").
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 only while the harness runs under every layer the policy requires (a container HEALTHCHECK or Kubernetes exec probe); 1 with one line otherwise.
    #[command(long_about = HEALTH_LONG)]
    Health,
    /// Prove the layers hold, from where a tool stands: one row per check; exit 0 only if all enabled layers hold.
    #[command(long_about = SELFTEST_LONG)]
    SelfTest {
        /// One JSON object ({"ok": bool, "checks": [{layer, check, status, detail}]}) instead of a table.
        #[arg(long)]
        json: bool,
        /// Policy for the session self-test starts when it is PID 1 with none [default: as `run`].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Run the rows in this process, even as PID 1 or as the harness (which otherwise start a session or a tool to test from).
        #[arg(long)]
        as_tool: bool,
    },
}

const RUN_LONG: &str = "\
Start CMD as the harness. The steps (each one line on stderr with -v; by
default one line says the harness started, and under which layers):

  1 sanitize  close inherited fds above 2; harness env = env + [harness.env];
              refuse a harness the preload cannot follow (static, Go, musl)
              unless [harness] unhooked = \"allow\"
  2 seed      create the vault dirs (owned by the harness user), copy seeds
              without ever overwriting, refuse vault files with hard links
  3 record    /run/agent-vault (root) or /tmp/agent-vault-UID: policy.toml,
              policy.bin (what the preload reads), probe/, the audit file,
              harness.pid
    proxy     ([proxy] mode = \"on\", root only) start vault-proxy as its own
              uid with the real credentials; the harness gets placeholders
              and base URLs http://127.0.0.1:PORT/<route>
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

const HEALTH_LONG: &str = "\
Exit 0 only while the harness runs under every layer the policy requires;
exit 1 with one line saying what is wrong. For a container HEALTHCHECK,
`docker exec`, or a Kubernetes exec probe. Reads agent-init's state directory
(the effective policy and harness.pid) and /proc/<harness>: alive, started by
agent-init, NoNewPrivs 1, no effective capability, Seccomp 2 (unless the
policy turns seccomp off), not dumpable (the vault preload). Landlock is not
visible from outside a process: health relies on step 5, which refuses to
start a harness the kernel does not restrict when landlock = \"required\";
self-test proves it from inside.";

const SELFTEST_LONG: &str = "\
Run it inside the container (docker exec ... agent-init self-test), as a
command under `agent-init run`, where a tool would run, or as the container's
command either way (`--entrypoint agent-init IMAGE self-test`: as PID 1 it
starts a session with itself as the harness; `IMAGE agent-init self-test`: as
the harness it runs itself as a tool), so the rows are a tool's. One row per check:
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
    let format = cli.log_format.as_deref().map(|f| match f {
        "json" => log::Format::Json,
        _ => log::Format::Text,
    });
    if let Err(e) = log::init(cli.verbose, cli.quiet, format) {
        log::error!("{e}");
        std::process::exit(run::EXIT_CONFIG);
    }
    let code = match cli.command {
        Command::Run {
            policy,
            user,
            process_group,
            grace,
            command,
        } => {
            if !(grace.is_finite() && grace >= 0.0) {
                log::error!("--grace {grace}: expected seconds >= 0");
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
        Command::Check { policy, json } => describe::check(policy.as_deref(), json),
        Command::Explain {
            policy,
            paths,
            json,
        } => describe::explain(policy.as_deref(), &paths, json),
        Command::Health => health::main(),
        Command::SelfTest {
            json,
            policy,
            as_tool,
        } => selftest::main(json, as_tool, policy.as_deref()),
    };
    std::process::exit(code);
}
