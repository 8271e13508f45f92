//! `proxy-bench`: the latency vault-proxy adds, measured in one run that
//! alternates direct-to-upstream and through-proxy requests against a
//! scripted loopback upstream.
//!
//! - Small JSON: one keep-alive connection each way; time from sending a
//!   ~100-byte POST to reading the ~200-byte answer.
//! - SSE: one event at a time (the upstream writes event i only after the
//!   client read event i-1); time from the upstream's write to the client's
//!   read of that event.
//!
//! Prints the medians direct and through the proxy, and the difference.
//! Run: `cargo run --release -p agent-vault-proxy --bin proxy-bench [ROUNDS]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vault_proxy::config::ProxyConfig;

const PH: &str = "sk-ant-api03-av-bench-placeholder-0123456789";
const JSON_REQ: &[u8] = br#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"ping"}]}"#;
const JSON_RESP: &[u8] = br#"{"id":"msg_01","type":"message","role":"assistant","content":[{"type":"text","text":"pong"}],"model":"claude-sonnet-4-5","stop_reason":"end_turn","usage":{"input_tokens":8,"output_tokens":1}}"#;
const SSE_EVENTS_PER_STREAM: usize = 100;

fn read_head(r: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    let mut first = true;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(headers);
        }
        if first {
            first = false;
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

fn content_length(h: &[(String, String)]) -> Option<usize> {
    h.iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
}

fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    r.read_line(&mut size).ok()?;
    let n = usize::from_str_radix(size.trim(), 16).ok()?;
    let mut buf = vec![0; n + 2];
    r.read_exact(&mut buf).ok()?;
    buf.truncate(n);
    (n > 0).then_some(buf)
}

/// The scripted upstream: POST /json answers JSON; POST /sse streams events
/// paced by the bench (`go` channel), reporting each write's instant.
fn upstream(go: mpsc::Receiver<()>, wrote: mpsc::Sender<Instant>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let go = std::sync::Arc::new(std::sync::Mutex::new(go));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let s = s.unwrap();
            s.set_nodelay(true).unwrap();
            let (go, wrote) = (go.clone(), wrote.clone());
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    let mut len = 0;
                    loop {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    if first.contains("/sse") {
                        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n").unwrap();
                        for i in 0..SSE_EVENTS_PER_STREAM {
                            go.lock().unwrap().recv().unwrap();
                            let ev = format!(
                                "event: content_block_delta\ndata: {{\"index\":{i},\"delta\":{{\"text\":\"tok\"}}}}\n\n"
                            );
                            let t = Instant::now();
                            w.write_all(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes())
                                .unwrap();
                            wrote.send(t).unwrap();
                        }
                        w.write_all(b"0\r\n\r\n").unwrap();
                    } else {
                        w.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", JSON_RESP.len()).as_bytes()).unwrap();
                        w.write_all(JSON_RESP).unwrap();
                    }
                }
            });
        }
    });
    addr
}

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    prefix: &'static str,
}

impl Client {
    fn connect(addr: SocketAddr, prefix: &'static str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
            prefix,
        }
    }

    fn send(&mut self, path: &str) {
        let req = format!(
            "POST {}{path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {PH}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.prefix,
            JSON_REQ.len()
        );
        let mut b = req.into_bytes();
        b.extend_from_slice(JSON_REQ);
        self.w.write_all(&b).unwrap();
    }

    fn json_round_trip(&mut self) -> Duration {
        let t = Instant::now();
        self.send("/v1/json");
        let h = read_head(&mut self.r).unwrap();
        let mut body = vec![0; content_length(&h).expect("content-length")];
        self.r.read_exact(&mut body).unwrap();
        let d = t.elapsed();
        assert_eq!(body, JSON_RESP);
        d
    }

    fn sse_stream(
        &mut self,
        go: &mpsc::Sender<()>,
        wrote: &mpsc::Receiver<Instant>,
        out: &mut Vec<Duration>,
    ) {
        self.send("/v1/sse");
        read_head(&mut self.r).unwrap();
        for _ in 0..SSE_EVENTS_PER_STREAM {
            go.send(()).unwrap();
            let c = read_chunk(&mut self.r).expect("event");
            let t_read = Instant::now();
            let t_write = wrote.recv().unwrap();
            assert!(c.starts_with(b"event: content_block_delta"));
            out.push(t_read.duration_since(t_write));
        }
        assert!(read_chunk(&mut self.r).is_none());
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS is a number"))
        .unwrap_or(2000);
    let (go_tx, go_rx) = mpsc::channel();
    let (wrote_tx, wrote_rx) = mpsc::channel();
    let up = upstream(go_rx, wrote_tx);
    let state = std::env::temp_dir().join(format!("proxy-bench-{}", std::process::id()));
    let cfg = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[[route]]\nname = \"anthropic\"\nprefix = \"/anthropic\"\nupstream = \"http://{up}\"\nplaceholder = \"{PH}\"\n[route.credential]\nkind = \"api-key\"\nheader = \"x-api-key\"\nkey = \"sk-ant-api03-bench-real\"\n",
        state.display()
    );
    let cfg = ProxyConfig::from_toml(&cfg).unwrap().validate().unwrap();
    let prepared = vault_proxy::prepare(cfg).unwrap();
    let proxy = prepared.local_addr();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(prepared.serve("bench"));
    });

    let mut direct = Client::connect(up, "");
    let mut via = Client::connect(proxy, "/anthropic");
    for _ in 0..200 {
        direct.json_round_trip();
        via.json_round_trip();
    }
    let (mut jd, mut jp) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        jd.push(direct.json_round_trip());
        jp.push(via.json_round_trip());
    }
    let (mut sd, mut sp) = (Vec::new(), Vec::new());
    let streams = (rounds / SSE_EVENTS_PER_STREAM).max(10);
    for _ in 0..streams {
        direct.sse_stream(&go_tx, &wrote_rx, &mut sd);
        via.sse_stream(&go_tx, &wrote_rx, &mut sp);
    }
    let _ = std::fs::remove_dir_all(&state);
    let (mjd, mjp) = (median(&mut jd), median(&mut jp));
    let (msd, msp) = (median(&mut sd), median(&mut sp));
    println!(
        "proxy-bench: {rounds} JSON round trips and {} SSE events per path, alternating direct / via vault-proxy (loopback, plain http upstream)",
        sd.len()
    );
    println!(
        "small JSON request/response: median direct {:.1} us, via proxy {:.1} us, added {:.1} us",
        us(mjd),
        us(mjp),
        us(mjp) - us(mjd)
    );
    println!(
        "SSE event, upstream write -> client read: median direct {:.1} us, via proxy {:.1} us, added {:.1} us",
        us(msd),
        us(msp),
        us(msp) - us(msd)
    );
}
