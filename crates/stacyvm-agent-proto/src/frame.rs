//! Frames: layout, encoding and incremental decoding.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ProtoError;
use crate::message::Message;

/// Channel reserved for the handshake and connection-level messages.
pub const CONTROL_CHANNEL: u32 = 0;

/// Largest payload of a data frame produced by [`chunk_frames`] (1 MiB).
pub const MAX_CHUNK: usize = 1 << 20;

/// Largest allowed value of a frame's length field (channel + kind + payload): 1 MiB + 16.
pub const MAX_FRAME: usize = MAX_CHUNK + 16;

/// Bytes counted by the length field before the payload: channel (4) + kind (1).
pub const FRAME_OVERHEAD: usize = 5;

/// Largest payload of any frame, control or data: `MAX_FRAME - FRAME_OVERHEAD`.
pub const MAX_PAYLOAD: usize = MAX_FRAME - FRAME_OVERHEAD;

/// Size of the length field.
const LEN_FIELD: usize = 4;

/// The kind byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    Control = 1,
    Stdout = 2,
    Stderr = 3,
    Stdin = 4,
    FileData = 5,
}

impl FrameKind {
    /// The kind for a wire byte, if known.
    pub fn from_u8(b: u8) -> Option<FrameKind> {
        Some(match b {
            1 => FrameKind::Control,
            2 => FrameKind::Stdout,
            3 => FrameKind::Stderr,
            4 => FrameKind::Stdin,
            5 => FrameKind::FileData,
            _ => return None,
        })
    }
}

/// The kinds of frames that carry raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    Stdout,
    Stderr,
    Stdin,
    FileData,
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Control(Message),
    Stdout(Bytes),
    Stderr(Bytes),
    Stdin(Bytes),
    FileData(Bytes),
}

impl Body {
    /// A data body of the given kind.
    pub fn data(kind: DataKind, data: Bytes) -> Body {
        match kind {
            DataKind::Stdout => Body::Stdout(data),
            DataKind::Stderr => Body::Stderr(data),
            DataKind::Stdin => Body::Stdin(data),
            DataKind::FileData => Body::FileData(data),
        }
    }

    /// The wire kind of this body.
    pub fn kind(&self) -> FrameKind {
        match self {
            Body::Control(_) => FrameKind::Control,
            Body::Stdout(_) => FrameKind::Stdout,
            Body::Stderr(_) => FrameKind::Stderr,
            Body::Stdin(_) => FrameKind::Stdin,
            Body::FileData(_) => FrameKind::FileData,
        }
    }

    /// The raw bytes of a data body; `None` for a control body.
    pub fn as_data(&self) -> Option<&Bytes> {
        match self {
            Body::Control(_) => None,
            Body::Stdout(b) | Body::Stderr(b) | Body::Stdin(b) | Body::FileData(b) => Some(b),
        }
    }
}

/// One frame: a channel and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub channel: u32,
    pub body: Body,
}

impl Frame {
    /// A control frame.
    pub fn control(channel: u32, message: Message) -> Frame {
        Frame { channel, body: Body::Control(message) }
    }

    /// A data frame. Keep `data` at most [`MAX_CHUNK`] long (see [`chunk_frames`]).
    pub fn data(channel: u32, kind: DataKind, data: impl Into<Bytes>) -> Frame {
        Frame { channel, body: Body::data(kind, data.into()) }
    }

    /// The wire kind of this frame.
    pub fn kind(&self) -> FrameKind {
        self.body.kind()
    }

    /// The control message, if this is a control frame.
    pub fn message(&self) -> Option<&Message> {
        match &self.body {
            Body::Control(m) => Some(m),
            _ => None,
        }
    }

    /// The encoded frame.
    pub fn to_bytes(&self) -> Result<Bytes, ProtoError> {
        let mut buf = BytesMut::new();
        encode(self, &mut buf)?;
        Ok(buf.freeze())
    }
}

/// Appends the encoding of `frame` to `dst`.
///
/// Fails with [`ProtoError::FrameTooLarge`] (leaving `dst` as it was) when the frame would exceed
/// [`MAX_FRAME`]: split data with [`chunk_frames`].
pub fn encode(frame: &Frame, dst: &mut BytesMut) -> Result<(), ProtoError> {
    let data = match &frame.body {
        Body::Control(message) => return encode_control(frame.channel, message, dst),
        Body::Stdout(b) | Body::Stderr(b) | Body::Stdin(b) | Body::FileData(b) => b,
    };
    let len = FRAME_OVERHEAD + data.len();
    if len > MAX_FRAME {
        return Err(ProtoError::FrameTooLarge { len: len as u64, max: MAX_FRAME });
    }
    dst.reserve(LEN_FIELD + len);
    dst.put_u32(len as u32);
    dst.put_u32(frame.channel);
    dst.put_u8(frame.kind() as u8);
    dst.extend_from_slice(data);
    Ok(())
}

fn encode_control(channel: u32, message: &Message, dst: &mut BytesMut) -> Result<(), ProtoError> {
    let start = dst.len();
    dst.put_u32(0); // patched below
    dst.put_u32(channel);
    dst.put_u8(FrameKind::Control as u8);
    if let Err(e) = serde_json::to_writer((&mut *dst).writer(), message) {
        dst.truncate(start);
        return Err(ProtoError::Encode(e));
    }
    let len = dst.len() - start - LEN_FIELD;
    if len > MAX_FRAME {
        dst.truncate(start);
        return Err(ProtoError::FrameTooLarge { len: len as u64, max: MAX_FRAME });
    }
    dst[start..start + LEN_FIELD].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Splits `data` into data frames of at most [`MAX_CHUNK`] bytes each, without copying.
/// Empty `data` yields no frames.
pub fn chunk_frames(channel: u32, kind: DataKind, data: Bytes) -> impl Iterator<Item = Frame> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(MAX_CHUNK);
        Some(Frame { channel, body: Body::data(kind, rest.split_to(n)) })
    })
}

/// Checks a length field; returns it as `usize`.
pub(crate) fn check_len(len: u32) -> Result<usize, ProtoError> {
    let n = len as usize;
    if n > MAX_FRAME {
        Err(ProtoError::FrameTooLarge { len: u64::from(len), max: MAX_FRAME })
    } else if n < FRAME_OVERHEAD {
        Err(ProtoError::FrameTooShort(len))
    } else {
        Ok(n)
    }
}

/// The error for a length field that [`check_len`] rejected.
fn len_error(len: u32) -> ProtoError {
    match check_len(len) {
        Err(e) => e,
        // Not reachable: only rejected lengths are stored. Still no panic.
        Ok(_) => ProtoError::FrameTooShort(len),
    }
}

/// Parses everything after the length field (channel, kind, payload).
pub(crate) fn parse_body(mut body: Bytes) -> Result<Frame, ProtoError> {
    debug_assert!(body.len() >= FRAME_OVERHEAD);
    let channel = body.get_u32();
    let kind = body.get_u8();
    let body = match FrameKind::from_u8(kind).ok_or(ProtoError::UnknownKind(kind))? {
        FrameKind::Control => Body::Control(parse_message(&body)?),
        FrameKind::Stdout => Body::Stdout(body),
        FrameKind::Stderr => Body::Stderr(body),
        FrameKind::Stdin => Body::Stdin(body),
        FrameKind::FileData => Body::FileData(body),
    };
    Ok(Frame { channel, body })
}

fn parse_message(payload: &[u8]) -> Result<Message, ProtoError> {
    let message = serde_json::from_slice(payload).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ProtoError::BadMessage(e),
        _ => ProtoError::InvalidJson(e),
    })?;
    // serde also accepts internally tagged enums written as arrays (`["ping"]`); the protocol
    // allows only objects.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ProtoError::BadMessage(serde::de::Error::custom("a control message must be a JSON object")));
    }
    Ok(message)
}

/// Incremental decoder: feed it byte slices as they arrive, take out complete frames.
///
/// Partial input is kept across calls. Errors:
/// * a length field outside `FRAME_OVERHEAD..=MAX_FRAME` poisons the decoder: the stream cannot be
///   re-synchronized, and every later call returns the same error;
/// * an unknown kind or a bad control payload consumes that frame (its boundary is known), so a
///   caller could go on — but the protocol says to close the connection.
///
/// The buffer never holds more than what was fed; a frame's length field is trusted for
/// allocation only after it passed the [`MAX_FRAME`] check.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    poisoned: Option<u32>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Reads once from `reader` into the decoder's buffer; returns the number of bytes read
    /// (0 at EOF). Cancel-safe: use it in `select!` loops, then drain [`Decoder::next_frame`].
    pub async fn read_from<R>(&mut self, reader: &mut R) -> std::io::Result<usize>
    where
        R: tokio::io::AsyncRead + Unpin + ?Sized,
    {
        use tokio::io::AsyncReadExt;
        if self.buf.capacity() - self.buf.len() < 8 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        reader.read_buf(&mut self.buf).await
    }

    /// The next complete frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtoError> {
        if let Some(len) = self.poisoned {
            return Err(len_error(len));
        }
        if self.buf.len() < LEN_FIELD {
            return Ok(None);
        }
        let raw = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let len = match check_len(raw) {
            Ok(len) => len,
            Err(e) => {
                self.poisoned = Some(raw);
                return Err(e);
            }
        };
        if self.buf.len() < LEN_FIELD + len {
            self.buf.reserve(LEN_FIELD + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LEN_FIELD);
        let body = self.buf.split_to(len).freeze();
        parse_body(body).map(Some)
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Call at end of stream: `Ok` when the stream ended cleanly between frames,
    /// [`ProtoError::Truncated`] when a partial frame is buffered (or the poisoning error).
    pub fn finish(&self) -> Result<(), ProtoError> {
        if let Some(len) = self.poisoned {
            return Err(len_error(len));
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Truncated)
        }
    }
}
