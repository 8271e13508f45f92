//! The proxy process: start sequence and the modules it is built from
//! (re-exported at the crate root).

pub mod body;
pub mod confine;
pub mod listener;
pub(crate) mod log;
pub mod oauth;
pub mod routes;
pub mod state;
pub mod sys;
pub mod upstream;

use crate::config::{self, Validated};
use state::{StateError, StateStore};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use upstream::TrustError;

pub use log::set_verbose;

/// Starting failed.
#[derive(Debug)]
pub enum StartError {
    Trust(TrustError),
    State(StateError),
    Bind {
        addr: SocketAddr,
        err: std::io::Error,
    },
    /// The inherited listening socket (`--listen-fd`) is not a loopback
    /// listener on `listen`.
    ListenFd(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Trust(e) => e.fmt(f),
            StartError::State(e) => e.fmt(f),
            StartError::Bind { addr, err } => write!(
                f,
                "bind {addr}: {err}. Fix: choose a free port in `listen` (or port 0)"
            ),
            StartError::ListenFd(why) => write!(f, "--listen-fd: {why}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Trust(e) => Some(e),
            StartError::State(e) => Some(e),
            StartError::Bind { err, .. } => Some(err),
            StartError::ListenFd(_) => None,
        }
    }
}

/// Everything read and bound before confinement.
pub struct Prepared {
    pub config: Validated,
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    store: StateStore,
}

/// Load trust anchors (only when a route needs TLS), open the state
/// directory, bind the listener. No runtime needed; nothing served yet.
pub fn prepare(config: Validated) -> Result<Prepared, StartError> {
    let listener = std::net::TcpListener::bind(config.listen).map_err(|err| StartError::Bind {
        addr: config.listen,
        err,
    })?;
    prepare_on(config, listener)
}

/// [`prepare`] on a listening socket bound by the caller (agent-init's,
/// inherited: it keeps the port across restarts of the proxy). It must be a
/// loopback listener on `listen` (any port when `listen` asks for 0).
pub fn prepare_on(
    config: Validated,
    listener: std::net::TcpListener,
) -> Result<Prepared, StartError> {
    let at = listener
        .local_addr()
        .map_err(|e| StartError::ListenFd(format!("not a bound TCP socket: {e}")))?;
    let want = config.listen;
    if !at.ip().is_loopback()
        || at.ip() != want.ip()
        || (want.port() != 0 && at.port() != want.port())
    {
        return Err(StartError::ListenFd(format!(
            "the socket is bound to {at}, not to `listen` ({want})"
        )));
    }
    let system = config.needs_tls().then(|| config.system_trust_file.clone());
    let mut tls = Vec::new();
    for r in &config.routes {
        let needs = r.upstream.https
            || matches!(&r.credential, config::ValidCredential::Oauth(o) if o.token_url.https);
        if needs {
            let roots = upstream::root_store(system.as_deref(), r.upstream_ca_file.as_deref())
                .map_err(StartError::Trust)?;
            tls.push(Some(
                upstream::tls_config(roots).map_err(StartError::Trust)?,
            ));
        } else {
            tls.push(None);
        }
    }
    let store = StateStore::open(&config.state_dir).map_err(StartError::State)?;
    let local_addr = listener.local_addr().map_err(|err| StartError::Bind {
        addr: config.listen,
        err,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|err| StartError::Bind {
            addr: config.listen,
            err,
        })?;
    Ok(Prepared {
        config,
        listener,
        local_addr,
        tls,
        store,
    })
}

impl Prepared {
    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve forever on the current tokio runtime; `note` ends the start line
    /// (the confinement summary).
    pub async fn serve(self, note: &str) -> Result<std::convert::Infallible, StartError> {
        let clients = self.tls.into_iter().map(upstream::client).collect();
        let (routes, summary) =
            routes::build(&self.config, clients, &self.store).map_err(StartError::State)?;
        let listener =
            tokio::net::TcpListener::from_std(self.listener).map_err(|err| StartError::Bind {
                addr: self.local_addr,
                err,
            })?;
        log::info!(
            "serving http://{}; routes {}; uid {}; {note}",
            self.local_addr,
            summary.join(" "),
            sys::uid()
        );
        listener::accept_loop(listener, Arc::new(routes)).await
    }
}
