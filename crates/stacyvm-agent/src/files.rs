//! File requests, resolved inside the sandbox root (`openat2` with `RESOLVE_IN_ROOT`).

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use stacyvm_agent_proto::{DataKind, ErrorKind, FileEntry, Frame, Message, MAX_CHUNK};
use stacyvm_fs::{FsError, HostRoot, ResolveMode, SandboxPath};
use tokio::sync::{mpsc, Semaphore};

use crate::session::{Context, Input, Out};

/// Read chunk size (well under the frame limit).
const READ_CHUNK: usize = 256 * 1024;

fn error(e: FsError) -> Message {
    let kind = match e {
        FsError::NotFound(_) => ErrorKind::NotFound,
        FsError::PathEscape(_) => ErrorKind::PathEscape,
        FsError::InvalidInput(_) => ErrorKind::InvalidInput,
        FsError::Failed(_) => ErrorKind::Failed,
    };
    Message::error(kind, e.to_string())
}

fn entry(e: stacyvm_fs::FileEntry) -> FileEntry {
    FileEntry { path: e.path, size: e.size, mode: e.mode, is_dir: e.is_dir, mtime: e.mtime }
}

fn root(ctx: &Context, owner: (u32, u32)) -> Result<HostRoot, FsError> {
    Ok(HostRoot::open(&ctx.opts.root, ResolveMode::InRoot)?.with_owner(owner.0, owner.1))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, FsError> + Send + 'static) -> Result<T, FsError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| FsError::Failed(format!("file task: {e}")))?
}

/// Stat, list, glob, rename, chmod and remove: one request, one reply.
pub async fn simple(ctx: &Context, message: Message) -> Message {
    let root = match root(ctx, (ctx.opts.uid, ctx.opts.gid)) {
        Ok(root) => root,
        Err(e) => return error(e),
    };
    let result = blocking(move || {
        let parse = SandboxPath::parse;
        Ok(match message {
            Message::Stat { path } => Message::FileInfo(entry(root.stat(&parse(&path)?)?)),
            Message::ListDir { path } => {
                Message::DirEntries { entries: root.list(&parse(&path)?)?.into_iter().map(entry).collect() }
            }
            Message::Glob { pattern } => Message::Paths { paths: root.glob(&pattern)? },
            Message::Rename { from, to } => {
                root.rename(&parse(&from)?, &parse(&to)?)?;
                Message::Done
            }
            Message::Chmod { path, mode } => {
                root.chmod(&parse(&path)?, mode)?;
                Message::Done
            }
            Message::Remove { path, recursive } => {
                root.remove(&parse(&path)?, recursive)?;
                Message::Done
            }
            other => Message::error(ErrorKind::Unsupported, format!("unexpected request {}", other.type_name())),
        })
    })
    .await;
    result.unwrap_or_else(error)
}

/// A `file_write` request.
pub struct WriteRequest {
    /// Target path.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner of the file (and of parents it creates).
    pub owner: (u32, u32),
    /// Size announced by the host, checked at the end.
    pub announced: Option<u64>,
}

/// Receives `FileData` chunks until `FileEnd`, then atomically replaces the file and answers
/// `done` (`invalid_input` when an announced size does not match).
pub async fn write(ctx: &Context, channel: u32, req: WriteRequest, mut input: mpsc::Receiver<Input>, out: Out) {
    let WriteRequest { path, mode, owner, announced } = req;
    let reply = async {
        let root = root(ctx, owner)?;
        let mut pending = blocking(move || root.begin_write(&SandboxPath::parse(&path)?, mode)).await?;
        loop {
            match input.recv().await {
                Some(Input::Data(chunk)) => {
                    pending = blocking(move || pending.write_chunk(&chunk).map(|()| pending)).await?;
                }
                Some(Input::End) => {
                    if let Some(expected) = announced.filter(|n| *n != pending.written()) {
                        return Err(FsError::InvalidInput(format!(
                            "announced {expected} bytes but received {}",
                            pending.written()
                        )));
                    }
                    blocking(move || pending.commit()).await?;
                    return Ok(Message::Done);
                }
                Some(Input::Signal(_) | Input::Resize(_)) => {}
                // Cancelled or the host went away: dropping `pending` removes the partial file.
                Some(Input::Cancel) | None => return Err(FsError::Failed("file write cancelled".into())),
            }
        }
    }
    .await;
    let _ = out.send(Frame::control(channel, reply.unwrap_or_else(error))).await;
}

/// Waits for the host's credit to send one more chunk; `false` when the read was cancelled.
async fn take_credit(credit: Option<&Semaphore>, input: &mut mpsc::Receiver<Input>) -> bool {
    if matches!(input.try_recv(), Ok(Input::Cancel)) {
        return false;
    }
    let Some(credit) = credit else { return true };
    loop {
        tokio::select! {
            permit = credit.acquire() => {
                return match permit {
                    Ok(permit) => {
                        permit.forget();
                        true
                    }
                    Err(_) => false,
                };
            }
            next = input.recv() => match next {
                Some(Input::Cancel) | None => return false,
                Some(_) => {}
            },
        }
    }
}

/// Streams a file as `FileData` chunks, then `FileEnd`; with `credit`, never more chunks than
/// the host acknowledged (`file_read {window}` and `file_ack`).
pub async fn read(
    ctx: &Context,
    channel: u32,
    path: String,
    credit: Option<Arc<Semaphore>>,
    mut input: mpsc::Receiver<Input>,
    out: Out,
) {
    let opened = match root(ctx, (ctx.opts.uid, ctx.opts.gid)) {
        Ok(root) => blocking(move || root.open_read(&SandboxPath::parse(&path)?)).await,
        Err(e) => Err(e),
    };
    let (mut file, _) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let _ = out.send(Frame::control(channel, error(e))).await;
            return;
        }
    };
    let mut sent = 0u64;
    loop {
        if !take_credit(credit.as_deref(), &mut input).await {
            let _ = out.send(Frame::control(channel, Message::error(ErrorKind::Failed, "read cancelled"))).await;
            return;
        }
        let chunk = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; READ_CHUNK.min(MAX_CHUNK)];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        let (next, buf) = match chunk {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                let _ = out.send(Frame::control(channel, Message::error(ErrorKind::Failed, e.to_string()))).await;
                return;
            }
            Err(e) => {
                let _ = out.send(Frame::control(channel, Message::error(ErrorKind::Failed, e.to_string()))).await;
                return;
            }
        };
        file = next;
        if buf.is_empty() {
            let _ = out.send(Frame::control(channel, Message::FileEnd { size: sent })).await;
            return;
        }
        sent += buf.len() as u64;
        if out.send(Frame::data(channel, DataKind::FileData, Bytes::from(buf))).await.is_err() {
            return;
        }
    }
}
