//! The upstream client over TLS: a test CA and server certificate made with
//! the `openssl` CLI, a provider served with tokio-rustls on 127.0.0.1. The
//! proxy trusts the test CA only through `upstream_ca_file`.

#![cfg(feature = "server")]

mod support;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use support::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the openssl CLI ({e}); these tests need it to make a test CA. Fix: install openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 (`srv.pem`, `srv.key`).
fn make_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=vault-proxy test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &a);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// An HTTPS provider recording each request's `x-api-key`.
fn tls_upstream(dir: &Path) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("srv.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("srv.key")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (s, _) = l.accept().await.unwrap();
                let (acceptor, seen) = (acceptor.clone(), seen2.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(s).await else {
                        return;
                    };
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let key = req
                                .headers()
                                .get("x-api-key")
                                .map(|v| v.to_str().unwrap().to_string())
                                .unwrap_or_default();
                            seen.lock().unwrap().push(key);
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                                [b"tls-ok:".as_slice(), &body].concat(),
                            ))))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    (addr, seen)
}

/// The API-key route to `https://upstream`, trusting `ca` for it when given.
fn config(state: &Path, upstream: SocketAddr, ca: Option<&Path>) -> String {
    let cfg = api_key_config(state, &format!("https://{upstream}"), "x-api-key");
    match ca {
        Some(ca) => cfg.replacen(
            "[route.credential]",
            &format!(
                "upstream_ca_file = \"{}\"\n[route.credential]",
                ca.display()
            ),
            1,
        ),
        None => cfg,
    }
}

#[test]
fn tls_upstream_is_trusted_via_upstream_ca_file() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (addr, seen) = tls_upstream(pki.path());
    let state = state_dir();
    let proxy = start_proxy(&config(
        state.path(),
        addr,
        Some(&pki.path().join("ca.pem")),
    ));
    for _ in 0..2 {
        let r = post_messages(proxy, &[("x-api-key", PH)], b"{\"a\":1}");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "tls-ok:{\"a\":1}");
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![REAL.to_string(), REAL.to_string()]
    );
}

#[test]
fn tls_upstream_without_its_ca_is_502_naming_the_certificate_error() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (addr, seen) = tls_upstream(pki.path());
    let state = state_dir();
    let proxy = start_proxy(&config(state.path(), addr, None));
    let r = post_messages(proxy, &[("x-api-key", PH)], b"{}");
    assert_eq!(r.status, 502);
    let t = r.text();
    assert!(
        t.contains("TLS handshake with 127.0.0.1") && t.contains("UnknownIssuer"),
        "{t}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request reached the untrusted server"
    );
}

#[test]
fn missing_ca_file_is_refused_at_start_naming_the_file() {
    let state = state_dir();
    let cfg = config(
        state.path(),
        "127.0.0.1:9".parse().unwrap(),
        Some(Path::new("/nonexistent/ca.pem")),
    );
    let e = prepare_error(&cfg);
    assert!(
        e.contains("/nonexistent/ca.pem") && e.contains("Fix:"),
        "{e}"
    );
}

#[test]
fn missing_system_trust_store_is_refused_at_start_naming_the_file_and_fix() {
    let state = state_dir();
    let cfg = config(state.path(), "127.0.0.1:9".parse().unwrap(), None).replace(
        "[[route]]",
        "system_trust_file = \"/nonexistent/ca-certificates.crt\"\n[[route]]",
    );
    let e = prepare_error(&cfg);
    assert!(
        e.contains("system trust store /nonexistent/ca-certificates.crt")
            && e.contains("install the ca-certificates package"),
        "{e}"
    );
}
