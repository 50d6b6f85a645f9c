//! The host side of the agent protocol: one connection per sandbox, many concurrent requests.
//!
//! A reader task routes incoming frames to the request waiting on their channel; requests send
//! through a writer task. Dropping a request's future sends `cancel` for its channel, which
//! kills the process (exec) or discards the partial file (write) inside the sandbox.
//!
//! File transfers are streamed with bounded memory: a streamed write reads its source one chunk
//! at a time and waits for room in the connection's send queue (the agent stops reading the
//! socket while its disk is behind); a read opens a flow-control window
//! ([`FEATURE_FILE_WINDOW`]) and acknowledges chunks as the consumer takes them, so at most
//! [`READ_WINDOW`] chunks are in flight.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use stacyvm_agent_proto::{
    client_handshake, read_frame, write_frames, Body, DataKind, ErrorKind, ExecStart, ExitReason as WireReason, Frame,
    HelloAck, Message, PtySize as WirePtySize, FEATURE_FILE_WINDOW, FEATURE_PTY, PTY_MIN_VERSION,
};
use stacyvm_types::exec::StreamName;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::error::{ProviderError, ProviderResult};
use crate::types::{ByteSource, ExecInput, ExecOutcome, ExecSpec, ExitReason, FileReader, OutputChunk};
use stacyvm_fs::FileEntry;

type Routes = Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Body>>>>;

/// Chunks a file read may have in flight (each at most 256 KiB, the agent's read size).
pub const READ_WINDOW: u32 = 16;

/// Size of the chunks of a streamed write.
pub const WRITE_CHUNK: usize = 128 * 1024;

/// A connection to one sandbox's agent.
#[derive(Clone)]
pub struct AgentClient {
    out: mpsc::Sender<Frame>,
    routes: Routes,
    next_channel: Arc<AtomicU32>,
    /// What the agent announced.
    pub hello: HelloAck,
}

/// A channel in use; dropping it before the request finished cancels the request.
struct Request {
    channel: u32,
    incoming: mpsc::UnboundedReceiver<Body>,
    out: mpsc::Sender<Frame>,
    routes: Routes,
    finished: bool,
}

impl Request {
    async fn send(&self, body: Body) -> ProviderResult<()> {
        self.out.send(Frame { channel: self.channel, body }).await.map_err(|_| closed())
    }

    async fn recv(&mut self) -> ProviderResult<Body> {
        let body = self.incoming.recv().await.ok_or_else(closed)?;
        if let Body::Control(m) = &body {
            if m.ends_request() {
                self.finished = true;
            }
        }
        Ok(body)
    }

    /// Waits for the single control reply of a simple request.
    async fn reply(&mut self) -> ProviderResult<Message> {
        loop {
            if let Body::Control(message) = self.recv().await? {
                return into_result(message);
            }
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.channel);
        if !self.finished {
            send_soon(&self.out, Frame::control(self.channel, Message::Cancel));
        }
    }
}

/// Queues a frame from synchronous code: at once when the send queue has room, otherwise from a
/// task (a full queue is normal in the middle of a streamed write, and a lost `cancel` would
/// leave the agent waiting for the rest of the file).
fn send_soon(out: &mpsc::Sender<Frame>, frame: Frame) {
    match out.try_send(frame) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(frame)) => {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let out = out.clone();
                runtime.spawn(async move { out.send(frame).await });
            }
        }
    }
}

fn closed() -> ProviderError {
    ProviderError::Failed("connection to the sandbox agent closed".into())
}

/// Turns an `error` reply into the matching provider error.
fn into_result(message: Message) -> ProviderResult<Message> {
    match message {
        Message::Error { kind, message } => Err(match kind {
            ErrorKind::NotFound => ProviderError::FileNotFound(message.trim_start_matches("file not found: ").into()),
            ErrorKind::PathEscape => ProviderError::PathEscape(message),
            ErrorKind::InvalidInput => {
                ProviderError::InvalidInput(message.trim_start_matches("invalid input: ").to_string())
            }
            ErrorKind::Unsupported => ProviderError::Unsupported("requested by the agent"),
            ErrorKind::Busy | ErrorKind::Failed => ProviderError::Failed(message),
        }),
        other => Ok(other),
    }
}

fn entry(e: stacyvm_agent_proto::FileEntry) -> FileEntry {
    FileEntry { path: e.path, size: e.size, mode: e.mode, is_dir: e.is_dir, mtime: e.mtime }
}

fn unexpected(m: &Message) -> ProviderError {
    ProviderError::Failed(format!("unexpected agent reply {}", m.type_name()))
}

impl AgentClient {
    /// Connects to the agent's socket, retrying until `wait` has passed (the agent may still be
    /// starting), and performs the version handshake.
    pub async fn connect(socket: &Path, wait: Duration) -> ProviderResult<Self> {
        let deadline = tokio::time::Instant::now() + wait;
        // A fresh agent listens within a millisecond or two; tokio's timer ticks in milliseconds.
        let mut pause = Duration::from_millis(1);
        let mut stream = loop {
            match UnixStream::connect(socket).await {
                Ok(s) => break s,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(ProviderError::Failed(format!("agent socket {}: {e}", socket.display())))
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
            }
        };
        let hello = client_handshake(&mut stream, "stacyvm")
            .await
            .map_err(|e| ProviderError::Failed(format!("agent handshake: {e}")))?;
        let (mut reader, writer) = stream.into_split();
        let routes: Routes = Arc::default();
        let (out, out_rx) = mpsc::channel::<Frame>(256);
        tokio::spawn(write_frames(out_rx, writer));
        let reader_routes = Arc::clone(&routes);
        tokio::spawn(async move {
            while let Ok(Some(frame)) = read_frame(&mut reader).await {
                let route = reader_routes.lock().unwrap_or_else(|e| e.into_inner()).get(&frame.channel).cloned();
                if let Some(tx) = route {
                    let _ = tx.send(frame.body);
                }
            }
            // Connection gone: dropping every route wakes all waiting requests with an error.
            reader_routes.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(AgentClient { out, routes, next_channel: Arc::new(AtomicU32::new(1)), hello })
    }

    fn open(&self) -> Request {
        let channel = loop {
            let c = self.next_channel.fetch_add(1, Ordering::Relaxed);
            if c != 0 {
                break c;
            }
        };
        let (tx, incoming) = mpsc::unbounded_channel();
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).insert(channel, tx);
        Request { channel, incoming, out: self.out.clone(), routes: Arc::clone(&self.routes), finished: false }
    }

    async fn simple(&self, message: Message) -> ProviderResult<Message> {
        let mut req = self.open();
        req.send(Body::Control(message)).await?;
        req.reply().await
    }

    /// Whether the agent implements exec with a PTY (protocol version 2 and the `pty` feature).
    pub fn supports_pty(&self) -> bool {
        self.hello.version >= PTY_MIN_VERSION && self.hello.features.iter().any(|f| f == FEATURE_PTY)
    }

    /// Runs a process as `uid:gid`; output goes to `output`, the outcome is returned last.
    pub async fn exec(
        &self,
        spec: ExecSpec,
        uid: u32,
        gid: u32,
        output: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        self.exec_interactive(spec, uid, gid, None, output).await
    }

    /// [`AgentClient::exec`] with input forwarded while the process runs (terminal input,
    /// resizes, signals). A closed `input` just stops forwarding.
    pub async fn exec_interactive(
        &self,
        spec: ExecSpec,
        uid: u32,
        gid: u32,
        mut input: Option<mpsc::Receiver<ExecInput>>,
        output: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        let pty = match spec.pty {
            Some(_) if !self.supports_pty() => {
                return Err(ProviderError::Unsupported("exec with a pty (the sandbox agent is too old)"));
            }
            Some(size) => {
                size.validate().map_err(ProviderError::InvalidInput)?;
                Some(WirePtySize { rows: size.rows, cols: size.cols })
            }
            None => None,
        };
        let mut req = self.open();
        let start = ExecStart {
            argv: spec.argv,
            env: spec.env,
            cwd: spec.workdir,
            uid,
            gid,
            timeout_ms: spec.timeout.map(|t| t.as_millis() as u64),
            stdin: pty.is_some(),
            pty,
        };
        req.send(Body::Control(Message::Exec(start))).await?;
        loop {
            let next = async {
                match input.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let body = tokio::select! {
                body = req.recv() => body?,
                message = next => {
                    match message {
                        Some(message) => forward_input(&req, message).await?,
                        None => input = None,
                    }
                    continue;
                }
            };
            let (stream, data) = match body {
                Body::Stdout(data) => (StreamName::Stdout, data),
                Body::Stderr(data) => (StreamName::Stderr, data),
                Body::Control(message) => match into_result(message)? {
                    Message::Exited(status) => {
                        // An exit without its code (or a kill without its signal) is a broken
                        // reply, never made up into a code.
                        let broken = || ProviderError::Failed(format!("agent reported {status:?} without its status"));
                        let reason = match status.reason {
                            WireReason::TimedOut => ExitReason::TimedOut,
                            WireReason::OomKilled => ExitReason::OomKilled,
                            WireReason::Signaled => ExitReason::Signaled(status.signal.ok_or_else(broken)?),
                            WireReason::Exited => ExitReason::Exited(status.code.ok_or_else(broken)?),
                        };
                        return Ok(ExecOutcome { reason, duration: Duration::from_millis(status.duration_ms) });
                    }
                    other => return Err(unexpected(&other)),
                },
                _ => continue,
            };
            // The receiver went away: returning drops `req`, which cancels (kills) the process.
            output
                .send(OutputChunk { stream, data })
                .await
                .map_err(|_| ProviderError::Failed("output receiver closed; process killed".into()))?;
        }
    }

    /// Writes a file in chunks; it replaces the target atomically at the end.
    pub async fn write_file(&self, path: &str, content: Bytes, mode: u32, uid: u32, gid: u32) -> ProviderResult<()> {
        let mut req = self.open();
        let size = content.len() as u64;
        req.send(Body::Control(Message::FileWrite { path: path.into(), mode, uid, gid, size: Some(size) })).await?;
        for frame in stacyvm_agent_proto::chunk_frames(req.channel, DataKind::FileData, content) {
            req.send(frame.body).await?;
        }
        req.send(Body::Control(Message::FileEnd { size })).await?;
        match req.reply().await? {
            Message::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Whether the agent implements flow control of file reads.
    pub fn supports_read_window(&self) -> bool {
        self.hello.features.iter().any(|f| f == FEATURE_FILE_WINDOW)
    }

    /// Writes a file streamed from `source` in [`WRITE_CHUNK`] pieces; it replaces the target
    /// atomically once the source ended. Returns the number of bytes written.
    ///
    /// Memory stays bounded (one chunk here, the connection's send queue, the agent's input
    /// queue). A failing source, a dropped future or an early error from the agent (e.g. a path
    /// escape) aborts the transfer and the agent discards the partial file.
    pub async fn write_file_stream(
        &self,
        path: &str,
        mut source: ByteSource,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> ProviderResult<u64> {
        let mut req = self.open();
        req.send(Body::Control(Message::FileWrite { path: path.into(), mode, uid, gid, size: None })).await?;
        let mut sent = 0u64;
        loop {
            // The agent answers early only with an error: stop sending at once.
            if let Ok(Body::Control(message)) = req.incoming.try_recv() {
                req.finished = message.ends_request();
                into_result(message.clone())?;
                return Err(unexpected(&message));
            }
            let mut chunk = Vec::with_capacity(WRITE_CHUNK);
            while chunk.len() < WRITE_CHUNK {
                let n = (&mut source)
                    .take((WRITE_CHUNK - chunk.len()) as u64)
                    .read_to_end(&mut chunk)
                    .await
                    .map_err(|e| ProviderError::Failed(format!("reading the upload: {e}")))?;
                if n == 0 {
                    break;
                }
            }
            if chunk.is_empty() {
                break;
            }
            sent += chunk.len() as u64;
            req.send(Body::FileData(Bytes::from(chunk))).await?;
        }
        req.send(Body::Control(Message::FileEnd { size: sent })).await?;
        match req.reply().await? {
            Message::Done => Ok(sent),
            other => Err(unexpected(&other)),
        }
    }

    /// Opens a file for streaming; errors (missing file, directory) are reported before any data.
    /// With an agent that supports it, the read is flow-controlled ([`READ_WINDOW`]).
    pub async fn read_file(&self, path: &str) -> ProviderResult<FileReader> {
        let mut req = self.open();
        let window = self.supports_read_window().then_some(READ_WINDOW);
        req.send(Body::Control(Message::FileRead { path: path.into(), window })).await?;
        let first = req.recv().await?;
        if let Body::Control(message) = &first {
            if let Message::Error { .. } = message {
                into_result(message.clone())?;
            }
        }
        Ok(FileReader {
            size: None,
            reader: Box::pin(AgentFileReader { req, pending: Some(first), chunk: Bytes::new(), ack: window.is_some() }),
        })
    }

    /// Metadata of a path.
    pub async fn stat(&self, path: &str) -> ProviderResult<FileEntry> {
        match self.simple(Message::Stat { path: path.into() }).await? {
            Message::FileInfo(e) => Ok(entry(e)),
            other => Err(unexpected(&other)),
        }
    }

    /// Children of a directory.
    pub async fn list_dir(&self, path: &str) -> ProviderResult<Vec<FileEntry>> {
        match self.simple(Message::ListDir { path: path.into() }).await? {
            Message::DirEntries { entries } => Ok(entries.into_iter().map(entry).collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// Glob matches.
    pub async fn glob(&self, pattern: &str) -> ProviderResult<Vec<String>> {
        match self.simple(Message::Glob { pattern: pattern.into() }).await? {
            Message::Paths { paths } => Ok(paths),
            other => Err(unexpected(&other)),
        }
    }

    /// Rename.
    pub async fn rename(&self, from: &str, to: &str) -> ProviderResult<()> {
        self.simple(Message::Rename { from: from.into(), to: to.into() }).await.map(|_| ())
    }

    /// Change mode.
    pub async fn chmod(&self, path: &str, mode: u32) -> ProviderResult<()> {
        self.simple(Message::Chmod { path: path.into(), mode }).await.map(|_| ())
    }

    /// Remove.
    pub async fn remove(&self, path: &str, recursive: bool) -> ProviderResult<()> {
        self.simple(Message::Remove { path: path.into(), recursive }).await.map(|_| ())
    }

    /// Round trip.
    pub async fn ping(&self) -> ProviderResult<()> {
        match self.simple(Message::Ping).await? {
            Message::Pong => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

/// Sends one piece of exec input on the request's channel.
async fn forward_input(req: &Request, input: ExecInput) -> ProviderResult<()> {
    match input {
        ExecInput::Stdin(data) => {
            for frame in stacyvm_agent_proto::chunk_frames(req.channel, DataKind::Stdin, data) {
                req.send(frame.body).await?;
            }
            Ok(())
        }
        ExecInput::StdinClose => req.send(Body::Control(Message::StdinClose)).await,
        ExecInput::Resize(size) => {
            req.send(Body::Control(Message::Resize(WirePtySize { rows: size.rows, cols: size.cols }))).await
        }
        ExecInput::Signal(signal) => req.send(Body::Control(Message::Signal { signal })).await,
    }
}

/// `AsyncRead` over the `FileData` frames of a read request.
struct AgentFileReader {
    req: Request,
    pending: Option<Body>,
    chunk: Bytes,
    /// Acknowledge each chunk taken (a windowed read).
    ack: bool,
}

impl AsyncRead for AgentFileReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk.split_to(n));
                return Poll::Ready(Ok(()));
            }
            let body = match this.pending.take() {
                Some(body) => body,
                None => {
                    if this.req.finished {
                        return Poll::Ready(Ok(()));
                    }
                    match this.req.incoming.poll_recv(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(None) => return Poll::Ready(Err(std::io::Error::other("agent connection closed"))),
                        Poll::Ready(Some(body)) => body,
                    }
                }
            };
            match body {
                Body::FileData(data) => {
                    if this.ack {
                        send_soon(&this.req.out, Frame::control(this.req.channel, Message::FileAck { chunks: 1 }));
                    }
                    this.chunk = data;
                }
                Body::Control(Message::FileEnd { .. }) => {
                    this.req.finished = true;
                    return Poll::Ready(Ok(()));
                }
                Body::Control(Message::Error { message, .. }) => {
                    this.req.finished = true;
                    return Poll::Ready(Err(std::io::Error::other(message)));
                }
                _ => {}
            }
        }
    }
}
