//! `vault-proxy`: read the config, confine, serve. See the library docs and
//! vault-proxy/README.md.

use clap::Parser;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use vault_proxy::config::ProxyConfig;
use vault_proxy::{confine, sys};

/// agent-vault's credential proxy.
///
/// Serves plain HTTP/1.1 on a loopback port. Each [[route]] maps a path
/// prefix (e.g. /anthropic) to a provider's base URL. A request must carry
/// the route's placeholder (x-api-key, authorization: Bearer, or
/// x-goog-api-key); the proxy strips it, injects the real credential, and
/// streams the request to the provider over TLS. OAuth routes are refreshed
/// by the proxy itself; rotated tokens are kept in state_dir.
///
/// The config (TOML, see vault-proxy/README.md) holds the real secrets:
/// pass it over a pipe (--config-fd) or in a file only this uid can read
/// (--config). Example:
///
///   vault-proxy --config /run/secrets/vault-proxy.toml --ready-fd 4
#[derive(Parser, Debug)]
#[command(name = "vault-proxy", version, verbatim_doc_comment)]
struct Cli {
    /// Read the config from this inherited fd until EOF, then close it (agent-init passes a pipe).
    #[arg(
        long,
        value_name = "FD",
        conflicts_with = "config",
        required_unless_present = "config"
    )]
    config_fd: Option<i32>,
    /// Read the config from this file (sidecar form: a mounted secret).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// After binding, write `ready 127.0.0.1:PORT\n` to this inherited fd and close it.
    #[arg(long, value_name = "FD")]
    ready_fd: Option<i32>,
    /// Serve on this inherited listening socket (bound to `listen`) instead of
    /// binding one (agent-init holds the port across restarts of the proxy).
    #[arg(long, value_name = "FD")]
    listen_fd: Option<i32>,
    /// Allow running as uid 0 (the proxy should run under its own non-root uid).
    #[arg(long)]
    allow_root: bool,
    /// Check the config and exit without serving.
    #[arg(long)]
    check: bool,
    /// Log one line per request (method, path without query, status, time).
    #[arg(short, long)]
    verbose: bool,
}

fn read_config(cli: &Cli) -> Result<String, String> {
    let mut text = String::new();
    if let Some(fd) = cli.config_fd {
        let mut f = sys::take_fd(fd).map_err(|e| format!("--config-fd {fd}: {e}"))?;
        f.read_to_string(&mut text)
            .map_err(|e| format!("--config-fd {fd}: read: {e}"))?;
        // Dropping `f` closes the pipe.
    } else if let Some(path) = &cli.config {
        text = std::fs::read_to_string(path)
            .map_err(|e| format!("--config {}: read: {e}", path.display()))?;
    }
    Ok(text)
}

fn run(cli: Cli) -> Result<(), String> {
    vault_proxy::set_verbose(cli.verbose);
    let ready = cli
        .ready_fd
        .map(|fd| sys::take_fd(fd).map_err(|e| format!("--ready-fd {fd}: {e}")))
        .transpose()?;
    let text = read_config(&cli)?;
    let config = ProxyConfig::from_toml(&text)
        .and_then(|c| c.validate())
        .map_err(|e| e.to_string())?;
    drop(text);
    if cli.check {
        eprintln!("vault-proxy: config OK ({} routes)", config.routes.len());
        return Ok(());
    }
    confine::refuse_root(cli.allow_root).map_err(|e| e.to_string())?;
    let prepared = match cli.listen_fd {
        Some(fd) => {
            let f = sys::take_fd(fd).map_err(|e| format!("--listen-fd {fd}: {e}"))?;
            let listener = std::net::TcpListener::from(std::os::fd::OwnedFd::from(f));
            vault_proxy::prepare_on(config, listener)
        }
        None => vault_proxy::prepare(config),
    }
    .map_err(|e| e.to_string())?;
    confine::not_dumpable().map_err(|e| e.to_string())?;
    confine::no_new_privs().map_err(|e| e.to_string())?;
    let note = confine::landlock_layer(&prepared.config).map_err(|e| e.to_string())?;
    if let Some(mut f) = ready {
        writeln!(f, "ready {}", prepared.local_addr())
            .map_err(|e| format!("--ready-fd: write: {e}"))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    match rt.block_on(prepared.serve(&note)) {
        Ok(never) => match never {},
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vault-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
