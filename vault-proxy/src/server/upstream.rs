//! The upstream HTTP client: HTTPS with rustls on the `ring` provider (no
//! aws-lc C build), trust anchors from the system PEM bundle plus a route's
//! `upstream_ca_file`, and hyper-util's pooled client so requests reuse
//! connections instead of paying a TLS handshake each.
//!
//! One [`UpstreamClient`] per route: each route trusts exactly the system
//! store plus its own CA file, and the route's token endpoint goes through the
//! same client.

use crate::body::ProxyBody;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long a TCP connect plus TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Loading trust anchors failed.
#[derive(Debug)]
pub enum TrustError {
    /// The system bundle is missing or unreadable.
    SystemStore {
        path: PathBuf,
        err: String,
    },
    /// A route's CA file is missing, unreadable or holds no certificate.
    CaFile {
        path: PathBuf,
        err: String,
    },
    /// A certificate was not accepted as a trust anchor.
    Anchor {
        path: PathBuf,
        err: rustls::Error,
    },
    Tls(rustls::Error),
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::SystemStore { path, err } => write!(
                f,
                "system trust store {}: {err}. Fix: install the ca-certificates package, or set system_trust_file to a PEM bundle",
                path.display()
            ),
            TrustError::CaFile { path, err } => write!(
                f,
                "upstream_ca_file {}: {err}. Fix: point upstream_ca_file at a readable PEM file of CA certificates",
                path.display()
            ),
            TrustError::Anchor { path, err } => {
                write!(f, "trust anchor in {}: {err}", path.display())
            }
            TrustError::Tls(e) => write!(f, "TLS client config: {e}"),
        }
    }
}

impl std::error::Error for TrustError {}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM CERTIFICATE block".to_string());
    }
    Ok(certs)
}

/// The PEM trust anchors: the system store (when `system` is given) plus a CA file.
pub fn root_store(
    system: Option<&Path>,
    ca_file: Option<&Path>,
) -> Result<RootCertStore, TrustError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = system {
        let certs = read_pem_certs(path).map_err(|err| TrustError::SystemStore {
            path: path.to_path_buf(),
            err,
        })?;
        // The system bundle may hold a certificate rustls cannot use as an
        // anchor; skip those rather than refuse the whole store.
        roots.add_parsable_certificates(certs);
    }
    if let Some(path) = ca_file {
        let certs = read_pem_certs(path).map_err(|err| TrustError::CaFile {
            path: path.to_path_buf(),
            err,
        })?;
        for c in certs {
            roots.add(c).map_err(|err| TrustError::Anchor {
                path: path.to_path_buf(),
                err,
            })?;
        }
    }
    Ok(roots)
}

/// The TLS client config: ring provider, TLS 1.2 and 1.3, http/1.1 only.
pub fn tls_config(roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, TrustError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TrustError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A TCP or TLS connection to an upstream.
pub enum UpstreamStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connecting to an upstream failed.
#[derive(Debug)]
pub enum ConnectError {
    BadUri(String),
    Tcp { addr: String, err: io::Error },
    Tls { host: String, err: io::Error },
    Timeout { addr: String },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::BadUri(u) => write!(f, "bad upstream URL {u}"),
            ConnectError::Tcp { addr, err } => write!(f, "TCP connect to {addr}: {err}"),
            ConnectError::Tls { host, err } => write!(f, "TLS handshake with {host}: {err}"),
            ConnectError::Timeout { addr } => {
                write!(
                    f,
                    "connect to {addr}: no answer in {}s",
                    CONNECT_TIMEOUT.as_secs()
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Tcp { err, .. } | ConnectError::Tls { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// The connector the pooled client calls for each new connection.
#[derive(Clone)]
pub struct Connector {
    tls: Option<TlsConnector>,
}

async fn connect(tls: Option<TlsConnector>, uri: Uri) -> Result<UpstreamStream, ConnectError> {
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::BadUri(uri.to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = format!("{host}:{port}");
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|err| ConnectError::Tcp {
            addr: addr.clone(),
            err,
        })?;
    let _ = tcp.set_nodelay(true);
    if !https {
        return Ok(UpstreamStream::Plain(tcp));
    }
    let Some(tls) = tls else {
        return Err(ConnectError::BadUri(format!(
            "{uri} (https, but no TLS config)"
        )));
    };
    let name =
        ServerName::try_from(host.clone()).map_err(|_| ConnectError::BadUri(uri.to_string()))?;
    let s = tls
        .connect(name, tcp)
        .await
        .map_err(|err| ConnectError::Tls {
            host: host.clone(),
            err,
        })?;
    Ok(UpstreamStream::Tls(Box::new(s)))
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let addr = uri
                .authority()
                .map(|a| a.as_str())
                .unwrap_or("?")
                .to_string();
            match tokio::time::timeout(CONNECT_TIMEOUT, connect(tls, uri)).await {
                Ok(r) => r.map(TokioIo::new),
                Err(_) => Err(ConnectError::Timeout { addr }),
            }
        })
    }
}

/// A pooled client for one route.
pub type UpstreamClient = Client<Connector, ProxyBody>;

/// Build a route's client; `tls` is `None` when the route only speaks plain
/// http to loopback.
pub fn client(tls: Option<Arc<rustls::ClientConfig>>) -> UpstreamClient {
    let connector = Connector {
        tls: tls.map(TlsConnector::from),
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .set_host(false)
        .build(connector)
}

/// The error and its sources on one line (for 502 bodies and logs).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
