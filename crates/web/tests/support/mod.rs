//! What the dashboard's tests share: the server started in-process on port
//! 0 (and stopped cleanly), a small HTTP client that can read a response as
//! it streams (SSE), and WebSocket connections with chosen headers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use drover_fleet::Fleet;
use drover_web::{Dashboard, LogSink, Options};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The operator's token.
pub const TOKEN: &str = "test-token-0123456789abcdef-operator";
/// The viewer's token.
pub const VIEW_TOKEN: &str = "test-token-0123456789abcdef-viewer";

/// A dashboard serving an environment directory, on 127.0.0.1:PORT.
pub struct Web {
    pub addr: SocketAddr,
    pub dashboard: Dashboard,
    log: Arc<Mutex<Vec<String>>>,
    audit: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A sink that keeps the lines (and shows them on stderr).
fn keeping(prefix: &'static str) -> (LogSink, Arc<Mutex<Vec<String>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&kept);
    let sink: LogSink = Arc::new(move |line: &str| {
        eprintln!("{prefix}{line}");
        if let Ok(mut l) = into.lock() {
            l.push(line.to_string());
        }
    });
    (sink, kept)
}

impl Web {
    pub async fn start(dir: &Path) -> Web {
        Web::start_with(dir, None).await
    }

    pub async fn start_with(dir: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> Web {
        let fleet = Fleet::load(Some(dir), None, &[]).expect("the test environment loads");
        let (log_sink, log) = keeping("drover web: ");
        let (audit_sink, audit) = keeping("audit: ");
        let dashboard = Dashboard::new(
            fleet,
            Options {
                token: TOKEN.to_string(),
                view_token: Some(VIEW_TOKEN.to_string()),
                tls,
                log: Some(log_sink),
                audit: Some(audit_sink),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = dashboard.clone();
        let task = tokio::spawn(async move {
            drover_web::run(
                listener,
                async move {
                    let _ = stopped.await;
                },
                served,
            )
            .await
            .expect("the server runs");
        });
        Web {
            addr,
            dashboard,
            log,
            audit,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server; it must finish within a few seconds.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops within 10 s")
                .expect("the server task ends without panicking");
        }
    }

    /// What the dashboard told the operator who started it.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The audit record, one JSON object per line.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        self.audit
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("an audit line is JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The audit records of `event`.
    pub fn audited(&self, event: &str) -> Vec<serde_json::Value> {
        self.audit()
            .into_iter()
            .filter(|r| r["event"] == event)
            .collect()
    }

    /// A fresh single-use login address, as `drover web` prints it.
    pub fn login_address(&self) -> String {
        self.dashboard
            .login_address(&format!("http://{}/", self.addr))
            .expect("a login address")
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, "GET", path, headers, Vec::new()).await
    }

    pub async fn bearer(&self, path: &str) -> Resp {
        self.get(path, &[("authorization", &format!("Bearer {TOKEN}"))])
            .await
    }

    /// Opens an operator's session the way a script does (`/?token=`) and returns its cookie.
    pub async fn login(&self) -> String {
        self.login_as(TOKEN).await
    }

    /// Opens a viewer's session and returns its cookie.
    pub async fn login_viewer(&self) -> String {
        self.login_as(VIEW_TOKEN).await
    }

    async fn login_as(&self, token: &str) -> String {
        let r = self.get(&format!("/?token={token}"), &[]).await;
        assert_eq!(r.status, 303, "login redirects");
        let cookie = r.header("set-cookie").expect("a session cookie");
        cookie.split(';').next().expect("name=value").to_string()
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request and reads the whole answer (within 30 s).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let (status, headers, body) = open(addr, method, path, headers, body).await;
    let bytes = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("the answer ends within 30 s")
        .expect("the answer's body")
        .to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Sends one request and returns the answer's head, and its body to read as it comes.
pub async fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Vec<(String, String)>, Incoming) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    send(stream, addr, method, path, headers, body).await
}

/// Sends one request from another loopback address (`127.0.0.N`), as
/// another client would, and reads the whole answer.
pub async fn request_from(
    from: std::net::Ipv4Addr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback address");
    let stream = socket.connect(addr).await.expect("connect");
    let (status, headers, body) = send(stream, addr, method, path, headers, Vec::new()).await;
    let bytes = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("the answer ends within 30 s")
        .expect("the answer's body")
        .to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn send(
    stream: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Vec<(String, String)>, Incoming) {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .expect("a request");
    let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
        .await
        .expect("an answer within 30 s")
        .expect("an answer");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (status, headers, response.into_body())
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.data))
    }
}

/// Reads events off a streaming body.
pub struct Sse {
    body: Incoming,
    buf: String,
}

impl Sse {
    pub fn new(body: Incoming) -> Sse {
        Sse {
            body,
            buf: String::new(),
        }
    }

    /// The next event with data (comments and retry lines skipped), or
    /// `None` when the stream ends or nothing comes for `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim_start().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = Some(v.trim_start().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            let frame = tokio::time::timeout(wait, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `path` with `headers`; the HTTP status when refused.
pub async fn websocket(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("a websocket request");
    for (k, v) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                .expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket to {path}: {e}"),
    }
}

/// A test environment on the suite's hosts, with `jobs` (name, toml).
pub fn cluster(env: &str, extra: &str, jobs: &[(&str, &str)]) -> drover_testkit::hosts::Cluster {
    let mut c = drover_testkit::hosts::Cluster::new(&drover_testkit::binary::drover(), env, extra);
    for (name, toml) in jobs {
        c = c.job(name, toml);
    }
    c
}

/// Waits (up to `wait`) for `check` to hold.
pub async fn eventually(wait: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where screenshots and other artefacts of the tests go: `target/web-screenshots`.
pub fn artefacts() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let target = exe
        .parent()
        .and_then(|d| d.parent())
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/web-screenshots");
    dir
}

/// Subscribes a `/api/live` socket to the overview.
pub async fn subscribe_overview(ws: &mut Ws) {
    subscribe(
        ws,
        serde_json::json!({"op": "sub", "id": 1, "topic": "overview"}),
    )
    .await;
}

/// Sends a subscription request on a `/api/live` socket.
pub async fn subscribe(ws: &mut Ws, request: serde_json::Value) {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        request.to_string().into(),
    ))
    .await
    .expect("subscribe");
}

/// A `/api/live` socket with `headers`, subscribed to the overview.
pub async fn live(addr: SocketAddr, headers: &[(&str, &str)]) -> Ws {
    let mut ws = websocket(addr, "/api/live", headers)
        .await
        .unwrap_or_else(|status| panic!("the live socket: {status}"));
    subscribe_overview(&mut ws).await;
    ws
}

/// The next message of kind `t` on a `/api/live` socket (within `wait`).
pub async fn next_of(ws: &mut Ws, t: &str, wait: Duration) -> Option<serde_json::Value> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(text)) => {
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                if v["t"] == t {
                    return Some(v);
                }
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The next overview on a `/api/live` socket subscribed to it.
pub async fn next_overview(ws: &mut Ws, wait: Duration) -> Option<serde_json::Value> {
    next_of(ws, "overview", wait)
        .await
        .map(|m| m["data"].clone())
}
