//! The error type of the protocol.

use crate::message::ErrorKind;
use crate::version::NegotiateError;

/// Everything that can go wrong while encoding, decoding, reading or writing frames, or during the
/// handshake. Decode errors are fatal for the connection: close it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// A frame's length field (or a frame being encoded) exceeds [`crate::MAX_FRAME`].
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    FrameTooLarge { len: u64, max: usize },
    /// A frame's length field is below [`crate::FRAME_OVERHEAD`] (no room for channel and kind).
    #[error("frame length {0} is shorter than the 5-byte channel+kind header")]
    FrameTooShort(u32),
    /// The kind byte is not one of the known [`crate::FrameKind`]s.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A control payload is not valid JSON.
    #[error("control frame is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// A control payload is JSON but not a valid [`crate::Message`] (unknown type, missing or
    /// mistyped field).
    #[error("control frame is not a valid message: {0}")]
    BadMessage(#[source] serde_json::Error),
    /// A message could not be serialized.
    #[error("cannot serialize control message: {0}")]
    Encode(#[source] serde_json::Error),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading or writing the stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the handshake sequence (wrong message, wrong channel, closed early).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// No common protocol version (raised on the agent side of the handshake).
    #[error(transparent)]
    Version(#[from] NegotiateError),
    /// The peer answered with an `error` message (e.g. the agent refused our versions).
    #[error("peer error ({kind}): {message}")]
    Remote { kind: ErrorKind, message: String },
}
