//! Shared harness for the router tests.
//!
//! Every test builds its own [`Harness`]: an in-memory SQLite store, the mock provider rooted in
//! a fresh temp directory, a reconciled [`Manager`], and the full router. Requests are driven
//! through `tower::ServiceExt::oneshot` (no socket), with a `ConnectInfo<SocketAddr>` extension
//! inserted so the loopback auth rule sees a peer. WebSocket tests use [`MemServer`]: the real
//! axum/hyper server running over in-memory duplex pipes (still no socket).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use stacyvm_core::{Manager, Settings};
use stacyvm_provider::mock::MockProvider;
use stacyvm_provider::{
    Capabilities, ExecOutcome, ExecSpec, FileEntry, FileReader, OutputChunk, Provider, ProviderError, ProviderRegistry,
    ProviderResult, RuntimeHandle, RuntimeState, SandboxPath, SandboxSpec,
};
use stacyvm_server::{router, AuthSettings, HttpSettings};
use stacyvm_store::sqlite::SqliteStore;
use stacyvm_store::{SandboxRecord, SandboxStore};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tower::ServiceExt;

/// Peer address used by ordinary tests (loopback: served without credentials).
pub const LOOPBACK: &str = "127.0.0.1:40000";
/// A non-loopback peer (TEST-NET-3), for the closed-by-default rule.
pub const REMOTE: &str = "203.0.113.7:40000";

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Extra providers
// ---------------------------------------------------------------------------------------------

/// How a [`NamedMock`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Exactly like the mock provider.
    Normal,
    /// Health checks fail.
    Unhealthy,
    /// Health passes but every `create` fails.
    FailCreate,
    /// `create` takes this long (a slow image pull).
    SlowCreate(Duration),
}

/// A mock provider registered under another name, optionally misbehaving. Lets tests have
/// several providers (sorting, `/ready` with an unhealthy one, 503 and failed spawns).
pub struct NamedMock {
    name: String,
    inner: MockProvider,
    behaviour: Behaviour,
}

impl NamedMock {
    pub fn new(name: &str, root: PathBuf, behaviour: Behaviour) -> Self {
        NamedMock { name: name.to_string(), inner: MockProvider::new(root).expect("mock root"), behaviour }
    }
}

#[async_trait]
impl Provider for NamedMock {
    fn name(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn describe(&self) -> BTreeMap<String, String> {
        self.inner.describe()
    }
    fn extra_capabilities(&self) -> &'static [&'static str] {
        self.inner.extra_capabilities()
    }
    async fn health(&self) -> ProviderResult<()> {
        if self.behaviour == Behaviour::Unhealthy {
            return Err(ProviderError::Unavailable("simulated outage".into()));
        }
        self.inner.health().await
    }
    async fn create(&self, spec: &SandboxSpec) -> ProviderResult<RuntimeHandle> {
        match self.behaviour {
            Behaviour::FailCreate => return Err(ProviderError::Failed("simulated create failure".into())),
            Behaviour::SlowCreate(delay) => tokio::time::sleep(delay).await,
            _ => {}
        }
        self.inner.create(spec).await
    }
    async fn destroy(&self, handle: &RuntimeHandle) -> ProviderResult<()> {
        self.inner.destroy(handle).await
    }
    async fn inspect(&self, handle: &RuntimeHandle) -> ProviderResult<RuntimeState> {
        self.inner.inspect(handle).await
    }
    async fn list_owned(&self) -> ProviderResult<Vec<String>> {
        self.inner.list_owned().await
    }
    async fn exec(
        &self,
        handle: &RuntimeHandle,
        spec: ExecSpec,
        output: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        self.inner.exec(handle, spec, output).await
    }
    async fn logs(&self, handle: &RuntimeHandle, lines: usize) -> ProviderResult<Vec<String>> {
        self.inner.logs(handle, lines).await
    }
    async fn write_file(&self, h: &RuntimeHandle, path: &SandboxPath, content: Bytes, mode: u32) -> ProviderResult<()> {
        self.inner.write_file(h, path, content, mode).await
    }
    async fn write_file_stream(
        &self,
        h: &RuntimeHandle,
        path: &SandboxPath,
        source: stacyvm_provider::ByteSource,
        mode: u32,
    ) -> ProviderResult<u64> {
        self.inner.write_file_stream(h, path, source, mode).await
    }
    async fn read_file(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<FileReader> {
        self.inner.read_file(h, path).await
    }
    async fn list_dir(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<Vec<FileEntry>> {
        self.inner.list_dir(h, path).await
    }
    async fn stat(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<FileEntry> {
        self.inner.stat(h, path).await
    }
    async fn glob(&self, h: &RuntimeHandle, pattern: &str) -> ProviderResult<Vec<String>> {
        self.inner.glob(h, pattern).await
    }
    async fn rename(&self, h: &RuntimeHandle, from: &SandboxPath, to: &SandboxPath) -> ProviderResult<()> {
        self.inner.rename(h, from, to).await
    }
    async fn chmod(&self, h: &RuntimeHandle, path: &SandboxPath, mode: u32) -> ProviderResult<()> {
        self.inner.chmod(h, path, mode).await
    }
    async fn remove(&self, h: &RuntimeHandle, path: &SandboxPath, recursive: bool) -> ProviderResult<()> {
        self.inner.remove(h, path, recursive).await
    }
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Builds a [`Harness`] with non-default settings.
pub struct Builder {
    settings: Settings,
    http: HttpSettings,
    extra: Vec<(String, Behaviour)>,
    peer: SocketAddr,
}

impl Builder {
    /// Adjusts the Manager settings.
    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// Adjusts the HTTP settings.
    pub fn http(mut self, f: impl FnOnce(&mut HttpSettings)) -> Self {
        f(&mut self.http);
        self
    }

    /// Sets the auth settings.
    pub fn auth(mut self, auth: AuthSettings) -> Self {
        self.http.auth = auth;
        self
    }

    /// Registers one more mock-backed provider under `name`.
    pub fn provider(mut self, name: &str, behaviour: Behaviour) -> Self {
        self.extra.push((name.to_string(), behaviour));
        self
    }

    /// Default peer address of requests.
    pub fn peer(mut self, addr: &str) -> Self {
        self.peer = addr.parse().expect("socket address");
        self
    }

    pub async fn build(self) -> Harness {
        let root = tempfile::tempdir().expect("temp dir");
        let mock_root = root.path().join("mock");
        let mut registry = ProviderRegistry::new("mock");
        registry.register(Arc::new(MockProvider::new(&mock_root).expect("mock provider")));
        for (name, behaviour) in &self.extra {
            registry.register(Arc::new(NamedMock::new(name, root.path().join(name), *behaviour)));
        }
        let store = Arc::new(SqliteStore::in_memory().expect("in-memory store"));
        let manager = Manager::new(store.clone(), registry, self.settings);
        manager.reconcile().await.expect("reconcile");
        manager.refresh_health().await;
        let app = router(Arc::clone(&manager), &self.http);
        Harness { app, manager, store, root, mock_root, peer: self.peer }
    }
}

/// One router with its own store and mock provider.
pub struct Harness {
    pub app: Router,
    pub manager: Arc<Manager>,
    pub store: Arc<SqliteStore>,
    pub root: TempDir,
    pub mock_root: PathBuf,
    pub peer: SocketAddr,
}

/// A buffered response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}); status {}: {:?}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn ok_json(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text());
        assert!(self.content_type().starts_with("application/json"), "content-type {:?}", self.content_type());
        self.json()
    }

    /// Asserts an error response: the status, a JSON `{code, message}` body with exactly those
    /// two keys and the given code. Returns the message.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text());
        assert!(
            self.content_type().starts_with("application/json"),
            "error content-type {:?}; body {:?}",
            self.content_type(),
            self.text()
        );
        let body = self.json();
        let obj = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message"], "error body keys: {body}");
        assert_eq!(body["code"], code, "error code in {body}");
        let message = body["message"].as_str().expect("message is a string").to_string();
        assert!(!message.is_empty(), "empty error message");
        message
    }
}

/// Percent-encodes a query value (keeps `/` readable, like the SDK's `%2F` is also accepted).
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Harness {
    /// Default settings, loopback peer.
    pub async fn new() -> Harness {
        Harness::builder().build().await
    }

    pub fn builder() -> Builder {
        Builder {
            settings: Settings::default(),
            http: HttpSettings::default(),
            extra: Vec::new(),
            peer: LOOPBACK.parse().unwrap(),
        }
    }

    /// A request builder carrying the default peer address.
    pub fn request(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        Request::builder().method(method).uri(uri).extension(ConnectInfo(self.peer))
    }

    /// Sends a request and buffers the whole response.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.send_streaming(req).await;
        let (parts, body) = res.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect())
            .await
            .expect("response body did not finish in time")
            .expect("response body")
            .to_bytes();
        Resp { status: parts.status, headers: parts.headers, body }
    }

    /// Sends a request and returns the unbuffered response (SSE, NDJSON).
    pub async fn send_streaming(&self, req: Request<Body>) -> axum::response::Response {
        tokio::time::timeout(WAIT, self.app.clone().oneshot(req))
            .await
            .expect("router did not answer in time")
            .expect("router is infallible")
    }

    /// Method, URI, extra headers and an optional JSON body.
    pub async fn call(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: Option<Value>) -> Resp {
        let mut b = self.request(method, uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, &[], None).await
    }

    pub async fn delete(&self, uri: &str) -> Resp {
        self.call(Method::DELETE, uri, &[], None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Resp {
        self.call(Method::POST, uri, &[], Some(body)).await
    }

    pub async fn put(&self, uri: &str, body: Value) -> Resp {
        self.call(Method::PUT, uri, &[], Some(body)).await
    }

    /// POST with a raw body and an optional content type.
    pub async fn post_raw(&self, uri: &str, content_type: Option<&str>, body: impl Into<Body>) -> Resp {
        let mut b = self.request(Method::POST, uri);
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        self.send(b.body(body.into()).expect("request")).await
    }

    // --- sandboxes ---------------------------------------------------------------------------

    /// Spawns with `body` and asserts 201.
    pub async fn spawn_with(&self, body: Value) -> Value {
        let res = self.post("/api/v1/sandboxes", body).await;
        res.ok_json(201)
    }

    /// Spawns with defaults; returns the ID.
    pub async fn spawn(&self) -> String {
        self.spawn_with(json!({})).await["id"].as_str().expect("id").to_string()
    }

    /// IDs from `GET /sandboxes`.
    pub async fn list_ids(&self) -> Vec<String> {
        let body = self.get("/api/v1/sandboxes").await.ok_json(200);
        body.as_array().expect("list is an array").iter().map(|s| s["id"].as_str().expect("id").to_string()).collect()
    }

    /// Rows the store considers live.
    pub async fn live_rows(&self) -> Vec<SandboxRecord> {
        self.store.list_live_sandboxes().await.expect("store list")
    }

    /// A row straight from the store.
    pub async fn row(&self, id: &str) -> Option<SandboxRecord> {
        self.store.get_sandbox(id).await.expect("store get")
    }

    /// Runtime directories the mock provider currently holds.
    pub fn runtime_dirs(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.mock_root)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("sb-"))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Host directory that is `/` of a mock sandbox.
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.mock_root.join(id)
    }

    // --- exec --------------------------------------------------------------------------------

    pub async fn exec(&self, id: &str, body: Value) -> Resp {
        self.post(&format!("/api/v1/sandboxes/{id}/exec"), body).await
    }

    /// Runs a shell command and asserts 200.
    pub async fn run(&self, id: &str, command: &str) -> Value {
        self.exec(id, json!({ "command": command })).await.ok_json(200)
    }

    // --- files -------------------------------------------------------------------------------

    pub fn files_url(&self, id: &str, suffix: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("/api/v1/sandboxes/{id}/files{suffix}");
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&enc(v));
        }
        url
    }

    /// Writes a text file and asserts 200.
    pub async fn write_file(&self, id: &str, path: &str, content: &str) {
        let res = self.post(&self.files_url(id, "", &[]), json!({ "path": path, "content": content })).await;
        assert_eq!(res.ok_json(200), json!({ "status": "written" }));
    }

    pub async fn read_file(&self, id: &str, path: &str) -> Resp {
        self.get(&self.files_url(id, "", &[("path", path)])).await
    }

    pub async fn stat(&self, id: &str, path: &str) -> Resp {
        self.get(&self.files_url(id, "/stat", &[("path", path)])).await
    }

    // --- in-memory server (WebSocket) --------------------------------------------------------

    /// Runs the real axum server over in-memory pipes.
    pub fn serve_in_memory(&self) -> MemServer {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = MemListener { rx, addr: self.peer };
        let app = self.app.clone().layer(axum::Extension(ConnectInfo(self.peer)));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MemServer { tx, task }
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming bodies
// ---------------------------------------------------------------------------------------------

/// Reads body frames until the accumulated text contains `needle` (or the wait runs out).
/// Returns everything read so far.
pub async fn read_until(body: &mut Body, needle: &str, wait: Duration) -> String {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) => panic!("body error: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

// ---------------------------------------------------------------------------------------------
// In-memory server and a minimal WebSocket client
// ---------------------------------------------------------------------------------------------

struct MemListener {
    rx: mpsc::UnboundedReceiver<DuplexStream>,
    addr: SocketAddr,
}

impl axum::serve::Listener for MemListener {
    type Io = DuplexStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(io) => (io, self.addr),
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// The router served by axum over duplex pipes; dropped with the test.
pub struct MemServer {
    tx: mpsc::UnboundedSender<DuplexStream>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MemServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    Text(String),
    Binary(Vec<u8>),
    Close(Option<u16>, String),
    Ping,
    Pong,
}

/// A client WebSocket over a duplex pipe.
pub struct Ws {
    io: DuplexStream,
    buf: Vec<u8>,
}

/// A refused upgrade: the plain HTTP response.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl MemServer {
    /// Opens a connection and performs the WebSocket handshake on `path`.
    pub async fn ws(&self, path: &str) -> Result<Ws, Refused> {
        let (client, server) = tokio::io::duplex(1 << 16);
        self.tx.send(server).expect("server is running");
        let mut ws = Ws { io: client, buf: Vec::new() };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        ws.io.write_all(request.as_bytes()).await.expect("write handshake");
        let head_end = loop {
            if let Some(pos) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            ws.fill().await.expect("handshake response");
        };
        let head = String::from_utf8_lossy(&ws.buf[..head_end]).into_owned();
        ws.buf.drain(..head_end);
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
        if status == 101 {
            return Ok(ws);
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while ws.buf.len() < length {
            ws.fill().await.expect("refusal body");
        }
        Err(Refused { status, head, body: ws.buf[..length].to_vec() })
    }
}

impl Ws {
    /// Reads more bytes; `None` at EOF.
    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.io.read(&mut chunk)).await.expect("ws read timed out").ok()?;
        if n == 0 {
            return None;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Some(())
    }

    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len < 65536 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.io.write_all(&frame).await.expect("ws write");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes()).await;
    }

    /// Next frame from the server; `None` when the connection ended.
    pub async fn recv(&mut self) -> Option<WsFrame> {
        let head = self.take(2).await?;
        let opcode = head[0] & 0x0f;
        assert_eq!(head[1] & 0x80, 0, "server frames must not be masked");
        let len = match head[1] & 0x7f {
            126 => u16::from_be_bytes(self.take(2).await?.try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.take(8).await?.try_into().unwrap()) as usize,
            n => n as usize,
        };
        let payload = self.take(len).await?;
        Some(match opcode {
            0x1 => WsFrame::Text(String::from_utf8(payload).expect("text frame is UTF-8")),
            0x2 => WsFrame::Binary(payload),
            0x8 => {
                if payload.len() >= 2 {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    WsFrame::Close(Some(code), String::from_utf8_lossy(&payload[2..]).into_owned())
                } else {
                    WsFrame::Close(None, String::new())
                }
            }
            0x9 => WsFrame::Ping,
            0xa => WsFrame::Pong,
            other => panic!("unexpected opcode {other}"),
        })
    }

    /// Every frame up to and including the close frame.
    pub async fn recv_all(&mut self) -> Vec<WsFrame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.recv().await {
            let done = matches!(frame, WsFrame::Close(..));
            frames.push(frame);
            if done {
                break;
            }
        }
        frames
    }
}

/// Parses an RFC 3339 timestamp and checks it is UTC with a `Z` suffix.
#[track_caller]
pub fn utc(ts: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = ts.as_str().unwrap_or_else(|| panic!("timestamp is not a string: {ts}"));
    assert!(s.ends_with('Z'), "timestamp {s} is not UTC Z");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Sorted keys of a JSON object.
#[track_caller]
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}
