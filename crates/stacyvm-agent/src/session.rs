//! One connection from the host: handshake, then requests multiplexed by channel.
//!
//! The read loop dispatches each frame; requests run as tasks that send their frames through
//! one writer task. Input for a running request (stdin, file chunks, signals) is forwarded to
//! that request's task. A channel is busy while its task runs. Flow-control credit of file
//! reads (`file_ack`) goes to the read's semaphore instead.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use stacyvm_agent_proto::{
    agent_handshake, read_frame, write_frames, Body, ErrorKind, Frame, Message, PtySize, FEATURE_FILE_WINDOW,
    FEATURE_PTY,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};

use crate::reaper::Reaper;
use crate::{exec, files, Options};

/// Input forwarded to a running request.
#[derive(Debug)]
pub enum Input {
    /// Stdin bytes or file chunk.
    Data(Bytes),
    /// End of stdin or of the file stream.
    End,
    /// Deliver a signal.
    Signal(i32),
    /// Change the terminal size.
    Resize(PtySize),
    /// Stop now.
    Cancel,
}

/// What every request task can reach.
pub struct Context {
    /// Command-line options.
    pub opts: Options,
    /// Child registry.
    pub reaper: Reaper,
}

/// Sends frames to the host.
pub type Out = mpsc::Sender<Frame>;

/// Accepts connections forever.
pub async fn listen(opts: Options, reaper: Reaper) -> std::io::Result<()> {
    let _ = std::fs::remove_file(&opts.listen);
    let listener = UnixListener::bind(&opts.listen)?;
    // Best effort: gVisor refuses chmod on host-backed sockets; the socket's directory (0700 on
    // the host) is what keeps other users out.
    let _ = std::fs::set_permissions(&opts.listen, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    eprintln!("stacyvm-agent {} listening on {}", env!("CARGO_PKG_VERSION"), opts.listen.display());
    let ctx = Arc::new(Context { opts, reaper });
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream, Arc::clone(&ctx)));
    }
}

async fn serve(mut stream: UnixStream, ctx: Arc<Context>) {
    let features = ["exec", "files", "stdin", FEATURE_PTY, FEATURE_FILE_WINDOW].map(String::from);
    if agent_handshake(&mut stream, env!("CARGO_PKG_VERSION"), &features).await.is_err() {
        return;
    }
    let (mut reader, writer) = stream.into_split();
    let (out, out_rx) = mpsc::channel::<Frame>(256);
    tokio::spawn(write_frames(out_rx, writer));
    let mut inputs: HashMap<u32, mpsc::Sender<Input>> = HashMap::new();
    let mut credits: HashMap<u32, Arc<Semaphore>> = HashMap::new();
    while let Ok(Some(frame)) = read_frame(&mut reader).await {
        let channel = frame.channel;
        let forward = match frame.body {
            Body::Control(Message::FileAck { chunks }) => {
                if let Some(credit) = credits.get(&channel) {
                    credit.add_permits((chunks as usize).min(Semaphore::MAX_PERMITS - credit.available_permits()));
                }
                None
            }
            Body::Stdin(data) | Body::FileData(data) => Some(Input::Data(data)),
            Body::Control(Message::StdinClose) | Body::Control(Message::FileEnd { .. }) => Some(Input::End),
            Body::Control(Message::Signal { signal }) => Some(Input::Signal(signal)),
            Body::Control(Message::Resize(size)) => Some(Input::Resize(size)),
            Body::Control(Message::Cancel) => Some(Input::Cancel),
            Body::Control(message) => {
                if inputs.get(&channel).is_some_and(|tx| !tx.is_closed()) {
                    let busy = Message::error(ErrorKind::Busy, format!("channel {channel} is busy"));
                    let _ = out.send(Frame::control(channel, busy)).await;
                    continue;
                }
                let (tx, rx) = mpsc::channel(64);
                // Forget the credit of reads that ended (their task held the other reference).
                credits.retain(|_, credit| Arc::strong_count(credit) > 1);
                let credit = match &message {
                    Message::FileRead { window: Some(window), .. } => {
                        let credit = Arc::new(Semaphore::new((*window as usize).clamp(1, 1 << 16)));
                        credits.insert(channel, Arc::clone(&credit));
                        Some(credit)
                    }
                    _ => None,
                };
                if start(&ctx, channel, message, Start { input: rx, credit, out: out.clone() }) {
                    inputs.insert(channel, tx);
                }
                None
            }
            Body::Stdout(_) | Body::Stderr(_) => None,
        };
        if let Some(input) = forward {
            if let Some(tx) = inputs.get(&channel) {
                if tx.send(input).await.is_err() {
                    inputs.remove(&channel);
                }
            }
        }
    }
    // The host went away: dropping every input and the writer stops running requests.
}

/// What a new request task gets besides its message.
struct Start {
    input: mpsc::Receiver<Input>,
    /// Flow-control credit of a windowed `file_read`.
    credit: Option<Arc<Semaphore>>,
    out: Out,
}

/// Starts a request task; returns whether it takes input.
fn start(ctx: &Arc<Context>, channel: u32, message: Message, start: Start) -> bool {
    let Start { input, credit, out } = start;
    let ctx = Arc::clone(ctx);
    match message {
        Message::Exec(spec) => {
            tokio::spawn(async move { exec::run(&ctx, channel, spec, input, out).await });
            true
        }
        Message::FileWrite { path, mode, uid, gid, size } => {
            let req = files::WriteRequest { path, mode, owner: (uid, gid), announced: size };
            tokio::spawn(async move { files::write(&ctx, channel, req, input, out).await });
            true
        }
        Message::FileRead { path, .. } => {
            tokio::spawn(async move { files::read(&ctx, channel, path, credit, input, out).await });
            true
        }
        Message::Ping => {
            tokio::spawn(async move { out.send(Frame::control(channel, Message::Pong)).await });
            false
        }
        other => {
            tokio::spawn(async move {
                let reply = files::simple(&ctx, other).await;
                let _ = out.send(Frame::control(channel, reply)).await;
            });
            false
        }
    }
}
