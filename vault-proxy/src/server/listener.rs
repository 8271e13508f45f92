//! The loopback HTTP/1.1 listener: accept, serve each connection with hyper,
//! hand every request to [`Routes::handle`].
//!
//! Plain HTTP on loopback because harnesses take an `http://127.0.0.1:PORT`
//! base URL without a CA; TLS happens upstream. A client that goes away
//! drops its connection task, which drops the upstream response body and so
//! closes the upstream connection (cancellation).

use crate::log::info;
use crate::routes::Routes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Accept connections forever.
pub async fn accept_loop(listener: TcpListener, routes: Arc<Routes>) -> ! {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: wait a little rather than spin.
                info!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| routes.clone().handle(req));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
