//! Async helpers over tokio streams.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ProtoError;
use crate::frame::{check_len, encode, parse_body, Body, Frame, CONTROL_CHANNEL};
use crate::message::{Hello, HelloAck, Message};
use crate::version::negotiate;

/// Reads exactly one frame. Returns `None` on a clean EOF between frames and
/// [`ProtoError::Truncated`] on EOF inside a frame.
///
/// Never reads past the frame, and allocates at most [`crate::MAX_FRAME`] bytes. Not cancel-safe
/// (a cancelled call may have consumed part of a frame): in `select!` loops use
/// [`crate::Decoder::read_from`]. Wrap raw sockets in a `BufReader` to save syscalls.
pub async fn read_frame<R>(reader: &mut R) -> Result<Option<Frame>, ProtoError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < len_buf.len() {
        let n = reader.read(&mut len_buf[got..]).await?;
        if n == 0 {
            return if got == 0 { Ok(None) } else { Err(ProtoError::Truncated) };
        }
        got += n;
    }
    let len = check_len(u32::from_be_bytes(len_buf))?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ProtoError::Truncated,
        _ => ProtoError::Io(e),
    })?;
    parse_body(Bytes::from(body)).map(Some)
}

/// Encodes `frame`, writes it whole and flushes.
pub async fn write_frame<W>(writer: &mut W, frame: &Frame) -> Result<(), ProtoError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = BytesMut::new();
    encode(frame, &mut buf)?;
    writer.write_all(&buf).await?;
    writer.flush().await?;
    Ok(())
}

/// Host side of the handshake: sends `hello` (every version this crate speaks) on channel 0 and
/// waits for the agent's answer.
///
/// Returns the agent's [`HelloAck`]; [`ProtoError::Remote`] when the agent refused (e.g.
/// `unsupported`); [`ProtoError::Handshake`] on any other answer, an unacceptable version, or EOF.
pub async fn client_handshake<S>(stream: &mut S, client: &str) -> Result<HelloAck, ProtoError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let hello = Hello::new(client);
    write_frame(stream, &Frame::control(CONTROL_CHANNEL, Message::Hello(hello.clone()))).await?;
    let frame =
        read_frame(stream).await?.ok_or_else(|| ProtoError::Handshake("connection closed before hello_ack".into()))?;
    if frame.channel != CONTROL_CHANNEL {
        return Err(ProtoError::Handshake(format!("answer on channel {} instead of 0", frame.channel)));
    }
    match frame.body {
        Body::Control(Message::HelloAck(ack)) => {
            if ack.version < hello.min_version || ack.version > hello.max_version {
                return Err(ProtoError::Handshake(format!(
                    "agent chose version {} outside the offered {}..={}",
                    ack.version, hello.min_version, hello.max_version
                )));
            }
            Ok(ack)
        }
        Body::Control(Message::Error { kind, message }) => Err(ProtoError::Remote { kind, message }),
        Body::Control(other) => Err(ProtoError::Handshake(format!("expected hello_ack, got {}", other.type_name()))),
        other => Err(ProtoError::Handshake(format!("expected hello_ack, got a {:?} frame", other.kind()))),
    }
}

/// Agent side of the handshake: reads the host's `hello` on channel 0 and answers `hello_ack`
/// with the negotiated version, or `error {kind: unsupported}` and then fails with
/// [`ProtoError::Version`] (the caller closes the connection).
///
/// Returns the host's [`Hello`] and the negotiated version.
pub async fn agent_handshake<S>(
    stream: &mut S,
    agent_version: &str,
    features: &[String],
) -> Result<(Hello, u32), ProtoError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let frame =
        read_frame(stream).await?.ok_or_else(|| ProtoError::Handshake("connection closed before hello".into()))?;
    let hello = match frame.body {
        Body::Control(Message::Hello(hello)) if frame.channel == CONTROL_CHANNEL => hello,
        Body::Control(m) => {
            let msg = format!("expected hello on channel 0, got {} on channel {}", m.type_name(), frame.channel);
            let reply = Message::error(crate::ErrorKind::InvalidInput, msg.clone());
            // Best effort: the connection is being abandoned anyway.
            let _ = write_frame(stream, &Frame::control(CONTROL_CHANNEL, reply)).await;
            return Err(ProtoError::Handshake(msg));
        }
        other => return Err(ProtoError::Handshake(format!("expected hello, got a {:?} frame", other.kind()))),
    };
    match negotiate(hello.min_version, hello.max_version) {
        Ok(version) => {
            let ack = HelloAck { version, agent_version: agent_version.to_owned(), features: features.to_vec() };
            write_frame(stream, &Frame::control(CONTROL_CHANNEL, Message::HelloAck(ack))).await?;
            Ok((hello, version))
        }
        Err(e) => {
            let _ = write_frame(stream, &Frame::control(CONTROL_CHANNEL, e.to_message())).await;
            Err(ProtoError::Version(e))
        }
    }
}

/// Writes every frame received on `frames` to `writer`, batching frames that are already queued
/// into one write (up to about [`MAX_CHUNK`](crate::MAX_CHUNK) bytes). Returns when the channel
/// closes or a write fails; frames that cannot be encoded are dropped.
pub async fn write_frames<W>(mut frames: tokio::sync::mpsc::Receiver<Frame>, mut writer: W)
where
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    while let Some(frame) = frames.recv().await {
        buf.clear();
        let _ = encode(&frame, &mut buf);
        while buf.len() < crate::MAX_CHUNK {
            let Ok(next) = frames.try_recv() else { break };
            let _ = encode(&next, &mut buf);
        }
        if writer.write_all(&buf).await.is_err() {
            return;
        }
    }
}
