//! Protocol versions and their negotiation.

use crate::message::{ErrorKind, Message};

/// The protocol version this crate implements (the highest it speaks).
///
/// History (every version keeps the frame format and message set of the previous one):
/// * **1**: exec, files, ping. `exec` with `pty` was reserved: agents answered `unsupported`.
/// * **2**: agents implement `exec` with `pty` (a terminal of that size; `resize` changes it,
///   `stdin_close` sends the terminal's EOF character) and announce the [`FEATURE_PTY`] feature.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest protocol version this crate still speaks.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// The first version in which agents implement exec with a PTY.
pub const PTY_MIN_VERSION: u32 = 2;

/// `HelloAck::features` entry of agents that implement exec with a PTY.
pub const FEATURE_PTY: &str = "pty";

/// `HelloAck::features` entry of agents that honour `file_read {window}` and `file_ack` (flow
/// control of file reads; a host must not send `file_ack` to an agent without it).
pub const FEATURE_FILE_WINDOW: &str = "file_window";

/// Why [`negotiate`] found no version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NegotiateError {
    /// The peer's range is empty (`min > max`).
    #[error("invalid version range {min}..={max}")]
    InvalidRange { min: u32, max: u32 },
    /// The ranges do not intersect.
    #[error("no common protocol version: peer speaks {peer_min}..={peer_max}, we speak {ours_min}..={ours_max}")]
    NoCommonVersion { peer_min: u32, peer_max: u32, ours_min: u32, ours_max: u32 },
}

impl NegotiateError {
    /// The `error` message the agent sends before closing the connection.
    pub fn to_message(&self) -> Message {
        Message::error(ErrorKind::Unsupported, self.to_string())
    }
}

/// The highest version in both the peer's range `min..=max` and
/// [`MIN_PROTOCOL_VERSION`]`..=`[`PROTOCOL_VERSION`].
pub fn negotiate(min: u32, max: u32) -> Result<u32, NegotiateError> {
    negotiate_between(min, max, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
}

/// The highest version in both `peer_min..=peer_max` and `ours_min..=ours_max`.
pub fn negotiate_between(peer_min: u32, peer_max: u32, ours_min: u32, ours_max: u32) -> Result<u32, NegotiateError> {
    if peer_min > peer_max {
        return Err(NegotiateError::InvalidRange { min: peer_min, max: peer_max });
    }
    let hi = peer_max.min(ours_max);
    let lo = peer_min.max(ours_min);
    if lo <= hi {
        Ok(hi)
    } else {
        Err(NegotiateError::NoCommonVersion { peer_min, peer_max, ours_min, ours_max })
    }
}
