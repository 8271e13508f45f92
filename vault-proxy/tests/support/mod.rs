//! Test support: the proxy in a thread, scripted providers on 127.0.0.1
//! (plain std sockets, so each byte on the wire is the test's), a raw
//! HTTP/1.1 client that reads chunked bodies piece by piece, and the
//! API-key route most tests configure.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vault_proxy::config::ProxyConfig;

/// How long any single read in a test may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Start the proxy (no confinement: it would confine the test process) on
/// its own thread and runtime; returns its address.
pub fn start_proxy(toml: &str) -> SocketAddr {
    let cfg = ProxyConfig::from_toml(toml)
        .and_then(|c| c.validate())
        .unwrap_or_else(|e| panic!("test config: {e}"));
    let prepared = vault_proxy::prepare(cfg).unwrap_or_else(|e| panic!("prepare: {e}"));
    let addr = prepared.local_addr();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(prepared.serve("test"));
    });
    addr
}

/// One request as the scripted provider received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// Header lines in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw head bytes (to search for a leaked placeholder).
    pub raw_head: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read a request head; `None` at EOF before a request.
pub fn read_head(r: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).ok()?;
        if n == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut lines = head.split("\r\n");
    let first = lines.next()?.to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Some((first, headers))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Read one chunk of a chunked body; `None` at the last chunk.
pub fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    r.read_line(&mut size).expect("chunk size line");
    let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16)
        .unwrap_or_else(|_| panic!("chunk size {size:?}"));
    if n == 0 {
        let mut end = String::new();
        r.read_line(&mut end).unwrap();
        return None;
    }
    let mut buf = vec![0; n + 2];
    r.read_exact(&mut buf).expect("chunk data");
    buf.truncate(n);
    Some(buf)
}

/// Read a whole body (content-length or chunked).
pub fn read_body(r: &mut impl BufRead, headers: &[(String, String)]) -> Vec<u8> {
    if let Some(n) = header(headers, "content-length") {
        let mut b = vec![0; n.parse().unwrap()];
        r.read_exact(&mut b).unwrap();
        return b;
    }
    if header(headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let mut out = Vec::new();
        while let Some(c) = read_chunk(r) {
            out.extend(c);
        }
        return out;
    }
    Vec::new()
}

/// A scripted provider: each connection runs `script` on its own thread.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub connections: Arc<AtomicUsize>,
}

/// What a script gets for each request.
pub struct Exchange<'a> {
    pub req: Received,
    pub stream: &'a mut TcpStream,
}

impl Upstream {
    /// `script` answers one request; returning `false` closes the connection.
    pub fn start<F>(script: F) -> Upstream
    where
        F: Fn(Exchange<'_>) -> bool + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let (rec, conns) = (received.clone(), connections.clone());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let (rec, script) = (rec.clone(), script.clone());
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    while let Some((first, headers)) = read_head(&mut r) {
                        let body = read_body(&mut r, &headers);
                        let mut parts = first.splitn(3, ' ');
                        let raw_head = format!(
                            "{first}\r\n{}",
                            headers
                                .iter()
                                .map(|(k, v)| format!("{k}: {v}\r\n"))
                                .collect::<String>()
                        );
                        let req = Received {
                            method: parts.next().unwrap().to_string(),
                            target: parts.next().unwrap().to_string(),
                            headers,
                            body,
                            raw_head,
                        };
                        rec.lock().unwrap().push(req.clone());
                        if !script(Exchange {
                            req,
                            stream: &mut s,
                        }) {
                            let _ = s.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            received,
            connections,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Write a complete response with a content-length.
pub fn respond(s: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s.flush().unwrap();
}

/// Write an SSE response head (chunked).
pub fn sse_head(s: &mut TcpStream) {
    s.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .unwrap();
    s.flush().unwrap();
}

/// Write one chunk (one SSE event); errors are returned (the peer may be gone).
pub fn sse_event(s: &mut TcpStream, event: &str) -> std::io::Result<()> {
    s.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())?;
    s.flush()
}

pub fn sse_end(s: &mut TcpStream) {
    s.write_all(b"0\r\n\r\n").unwrap();
    s.flush().unwrap();
}

/// A client response.
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub reader: BufReader<TcpStream>,
}

impl ClientResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    pub fn body(mut self) -> Vec<u8> {
        read_body(&mut self.reader, &self.headers)
    }
    pub fn text(self) -> String {
        String::from_utf8(self.body()).unwrap()
    }
}

/// Send raw request bytes to the proxy and read the response head.
pub fn raw_request(addr: SocketAddr, raw: &[u8]) -> ClientResponse {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    (&s).write_all(raw).unwrap();
    let mut reader = BufReader::new(s);
    let (first, headers) = read_head(&mut reader).expect("response head");
    let status = first.split(' ').nth(1).unwrap().parse().unwrap();
    ClientResponse {
        status,
        headers,
        reader,
    }
}

/// A request with the given headers and body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> ClientResponse {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    raw_request(addr, &bytes)
}

/// The placeholder the harness holds for the API-key route ([`api_key_config`]).
pub const PH: &str = "sk-ant-api03-av-PLACEHOLDER-0123456789abcdef";
/// The real API key the proxy sends upstream in its place.
pub const REAL: &str = "sk-ant-api03-REAL-SECRET-KEY";

/// A proxy config with one route, `anthropic` at `/anthropic` to
/// `upstream`: a request carrying [`PH`] goes out with [`REAL`] in `header`.
pub fn api_key_config(state: &Path, upstream: &str, header: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "{}"

[[route]]
name = "anthropic"
prefix = "/anthropic"
upstream = "{upstream}"
placeholder = "{PH}"
[route.credential]
kind = "api-key"
header = "{header}"
key = "{REAL}"
"#,
        state.display()
    )
}

/// Far enough ahead that a login expiring then never needs a refresh in a test.
pub const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

/// A proxy config with one OAuth route, `claude` at `/anthropic` to
/// `upstream`, holding the login `access`/`refresh` (expiring at
/// `expires_at_ms`) and refreshing it at `token_origin`'s
/// `/v1/oauth/token`; a request carrying [`PH`] goes out with the access token.
pub fn oauth_config(
    state: &Path,
    upstream: &str,
    token_origin: &str,
    access: &str,
    refresh: &str,
    expires_at_ms: u64,
) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "{}"

[[route]]
name = "claude"
prefix = "/anthropic"
upstream = "{upstream}"
placeholder = "{PH}"
[route.credential]
kind = "oauth"
access = "{access}"
refresh = "{refresh}"
expires_at_ms = {expires_at_ms}
token_url = "{token_origin}/v1/oauth/token"
client_id = "client-x"
"#,
        state.display(),
    )
}

/// `POST /anthropic/v1/messages` to the proxy at `addr` with `headers` and `body`.
pub fn post_messages(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> ClientResponse {
    request(addr, "POST", "/anthropic/v1/messages", headers, body)
}

/// The error the proxy refuses to start with on `toml`, a config that
/// parses and validates (what it names is found only when preparing).
pub fn prepare_error(toml: &str) -> String {
    let v = ProxyConfig::from_toml(toml)
        .and_then(|c| c.validate())
        .unwrap_or_else(|e| panic!("test config: {e}"));
    match vault_proxy::prepare(v) {
        Ok(_) => panic!("started:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

/// Assert `r`'s status is `status` (its body in the message); its body.
#[track_caller]
pub fn assert_status(r: ClientResponse, status: u16) -> String {
    let got = r.status;
    let text = r.text();
    assert_eq!(got, status, "{text}");
    text
}

/// A fresh state directory (0700: the proxy refuses one others can enter).
pub fn state_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// Parse a JSON body.
pub fn json(b: &[u8]) -> HashMap<String, serde_json::Value> {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("json {e}: {}", String::from_utf8_lossy(b)))
}
