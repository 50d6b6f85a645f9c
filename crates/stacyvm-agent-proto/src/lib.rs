//! The StacyVM host↔agent wire protocol.
//!
//! Every sandbox runs `stacyvm-agent`. The host keeps **one** stream connection per sandbox (a
//! unix socket for container providers; vsock or virtio-serial for VMs) and multiplexes all of its
//! requests over it. This crate is the whole protocol: framing, the control messages, the version
//! handshake, an incremental [`Decoder`] and small async helpers. It does no other I/O and stays
//! small because the agent (a static binary) links it.
//!
//! # Normative specification (protocol version 2)
//!
//! ## Frames
//!
//! The connection is a sequence of frames. All integers are big-endian.
//!
//! ```text
//! +----------------+-----------------+-----------+------------------------+
//! | length: u32 BE | channel: u32 BE | kind: u8  | payload (length-5 B)   |
//! +----------------+-----------------+-----------+------------------------+
//! ```
//!
//! * `length` counts every byte **after** the length field (channel + kind + payload), so it is
//!   at least 5 ([`FRAME_OVERHEAD`]) and at most [`MAX_FRAME`] (1 MiB + 16). A length outside
//!   `5..=MAX_FRAME` is a fatal decode error; a receiver never allocates for it.
//! * `channel` is a request id chosen by the host. Channel `0` ([`CONTROL_CHANNEL`]) is reserved
//!   for the handshake and connection-level messages. The host must not reuse a channel id while
//!   a request on it is still open.
//! * `kind` ([`FrameKind`]):
//!
//!   | kind | name       | payload                                        | direction          |
//!   |------|------------|------------------------------------------------|--------------------|
//!   | 1    | `Control`  | one JSON object, a [`Message`]                 | both               |
//!   | 2    | `Stdout`   | raw bytes of a process's stdout (or PTY)       | agent → host       |
//!   | 3    | `Stderr`   | raw bytes of a process's stderr                | agent → host       |
//!   | 4    | `Stdin`    | raw bytes for a process's stdin (or PTY)       | host → agent       |
//!   | 5    | `FileData` | a chunk of a file being written or read        | both               |
//!
//!   Any other kind is a decode error.
//! * Data frames (kinds 2–5) carry at most [`MAX_CHUNK`] (1 MiB) of payload when produced by
//!   [`chunk_frames`]; decoders accept up to [`MAX_PAYLOAD`]. Large data (files, process output)
//!   is always sent as many data frames, never as one message, so nothing has to sit in memory.
//!   An empty data frame is legal and meaningless.
//!
//! ## Control messages
//!
//! A control payload is a single UTF-8 JSON object tagged by a `"type"` field whose value is the
//! snake_case variant name, e.g. `{"type":"stat","path":"/etc/hosts"}` or
//! `{"type":"exited","code":0,"signal":null,"reason":"exited","duration_ms":3}`. Receivers ignore
//! unknown fields; an unknown `"type"` or a missing required field is a decode error
//! ([`ProtoError::BadMessage`]); bytes that are not JSON are [`ProtoError::InvalidJson`].
//!
//! ## Handshake and versioning
//!
//! The current version is [`PROTOCOL_VERSION`]; this crate speaks every version in
//! [`MIN_PROTOCOL_VERSION`]`..=`[`PROTOCOL_VERSION`]. The first frame on a connection is the
//! host's [`Message::Hello`] on channel 0 carrying the range of versions it speaks. The agent
//! answers on channel 0 with [`Message::HelloAck`] naming the **highest common version** (see
//! [`negotiate`]), its own build version and its optional features; or, when the ranges do not
//! intersect, with `Error { kind: "unsupported", .. }` and closes the connection. Nothing else is
//! sent before the handshake completes.
//!
//! ## Requests
//!
//! The host opens a request by sending a control message on an unused non-zero channel. The agent
//! answers on that same channel. Every request ends with exactly one *terminal* message from the
//! agent ([`Message::ends_request`]): the reply listed below, or `Error { kind, message }`. After
//! it, the channel id is free again. Requests on different channels run concurrently and their
//! frames may interleave arbitrarily; frames on one channel are delivered in order.
//!
//! | host sends (control)                       | then the host may send            | agent answers                                      |
//! |--------------------------------------------|-----------------------------------|----------------------------------------------------|
//! | `exec` ([`ExecStart`])                     | `Stdin` frames, `stdin_close`, `signal`, `resize`, `cancel` | `Stdout`/`Stderr` frames, then `exited` ([`ExitStatus`]) last |
//! | `file_write {path, mode, uid, gid, size}`  | `FileData` frames, then `file_end {size}`, or `cancel` | `done`                                 |
//! | `file_read {path, window}`                 | `file_ack {chunks}`, `cancel`     | `FileData` frames, then `file_end {size}`          |
//! | `stat {path}`                              |                                   | `file_info` ([`FileEntry`])                        |
//! | `list_dir {path}`                          |                                   | `dir_entries {entries}`                            |
//! | `glob {pattern}`                           |                                   | `paths {paths}`                                    |
//! | `rename {from, to}`                        |                                   | `done`                                             |
//! | `chmod {path, mode}`                       |                                   | `done`                                             |
//! | `remove {path, recursive}`                 |                                   | `done`                                             |
//! | `ping` (any channel, including 0)          |                                   | `pong`                                             |
//!
//! Exec details:
//!
//! * `argv` must not be empty; `argv[0]` without a `/` is looked up in the `PATH` of `env` (a
//!   default `PATH` when `env` has none). `env` is the complete environment. `cwd` is an
//!   absolute path inside the sandbox. The process runs as `uid`/`gid` with no capabilities and
//!   `no_new_privs`.
//! * `stdin: false` connects stdin to `/dev/null`; with `stdin: true` the host streams `Stdin`
//!   frames and ends with `stdin_close`.
//! * With `pty: Some(size)` (version 2, feature `"pty"`) the process gets a pseudo-terminal of
//!   that size as stdin, stdout, stderr and controlling terminal, in a new session: all output
//!   arrives as `Stdout`, input is `Stdin` (always accepted, whatever `stdin` says), `resize`
//!   changes the window size (the kernel sends `SIGWINCH`), `stdin_close` sends the terminal's
//!   EOF character (`^D`), and `signal` goes to the terminal's foreground process group. `rows`
//!   and `cols` must be `1..=`[`PtySize::MAX`]; anything else is `invalid_input`. Without a PTY,
//!   `resize` is ignored. A version 1 agent answers `unsupported`: check [`HelloAck::features`].
//! * `signal {signal}` delivers a Linux signal number to the process (group); `cancel` kills
//!   everything running on the channel. Neither has a reply of its own: the request still ends
//!   with `exited`.
//! * `timeout_ms` makes the agent kill the process (group) after that long; the result then has
//!   `reason: "timed_out"`.
//! * `exited` is always the last message on an exec channel, after every `Stdout`/`Stderr` frame.
//!   A spawn failure (e.g. `argv[0]` not found) is answered with `error` instead.
//!
//! File details: paths are absolute paths inside the sandbox and must not leave it (through `..`
//! or symlinks) — the agent answers `error {kind: "path_escape"}`. `file_write` creates or
//! truncates the file with `mode`/`uid`/`gid`; `size`, when given, is the announced total and the
//! agent rejects a stream of another length with `invalid_input`. The host ends the stream with
//! `file_end {size}` (the number of bytes it sent). `cancel` on a file channel aborts the
//! operation (a partial write is removed) and the agent answers `error {kind: "failed"}`.
//! Flow control of reads (feature `"file_window"`): with `window: n` in `file_read`, the agent
//! sends at most `n` `FileData` frames more than the host acknowledged with `file_ack {chunks}`
//! (the host acknowledges frames as it consumes them), so a slow consumer never makes either side
//! buffer the file. Without `window` the agent streams as fast as it reads. Writes need no such
//! message: the agent stops reading the connection while its disk is behind.
//! `mtime` is seconds since the Unix epoch; `mode` is the full `st_mode` (type and permission
//! bits) in replies and permission bits only in requests. Names that are not valid UTF-8 are
//! replaced lossily. A reply that would not fit in one frame ([`MAX_PAYLOAD`]) is answered with
//! `error {kind: "failed"}` instead.
//!
//! Errors ([`ErrorKind`]): `not_found`, `path_escape`, `invalid_input`, `unsupported`, `busy`
//! (e.g. a channel id that is still in use), `failed` (anything else; `message` explains).
//!
//! A peer that receives a malformed frame ([`ProtoError`]) closes the connection: the stream can
//! no longer be trusted.
//!
//! # Using the crate
//!
//! * Build frames with [`Frame::control`], [`Frame::data`] and [`chunk_frames`]; serialize with
//!   [`encode`] or [`Frame::to_bytes`].
//! * Decode with a [`Decoder`] ([`Decoder::feed`] / [`Decoder::next_frame`]; cancel-safe
//!   [`Decoder::read_from`] for `select!` loops), or one frame at a time with [`read_frame`].
//! * Write with [`write_frame`]. Run the handshake with [`client_handshake`] (host) and
//!   [`agent_handshake`] (agent), or build it from [`negotiate`] yourself.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use stacyvm_agent_proto::*;
//!
//! let mut wire = BytesMut::new();
//! encode(&Frame::control(7, Message::Stat { path: "/etc/hosts".into() }), &mut wire)?;
//! for frame in chunk_frames(7, DataKind::Stdout, Bytes::from(vec![b'x'; 3 * MAX_CHUNK])) {
//!     encode(&frame, &mut wire)?;
//! }
//!
//! let mut decoder = Decoder::new();
//! let mut frames = Vec::new();
//! for piece in wire.chunks(1000) {
//!     decoder.feed(piece);
//!     while let Some(frame) = decoder.next_frame()? {
//!         frames.push(frame);
//!     }
//! }
//! decoder.finish()?; // the stream ended between frames
//! assert_eq!(frames.len(), 4);
//! assert_eq!(frames[0].message(), Some(&Message::Stat { path: "/etc/hosts".into() }));
//! # Ok::<(), ProtoError>(())
//! ```

mod error;
mod frame;
mod io;
mod message;
mod version;

pub use error::ProtoError;
pub use frame::{
    chunk_frames, encode, Body, DataKind, Decoder, Frame, FrameKind, CONTROL_CHANNEL, FRAME_OVERHEAD, MAX_CHUNK,
    MAX_FRAME, MAX_PAYLOAD,
};
pub use io::{agent_handshake, client_handshake, read_frame, write_frame, write_frames};
pub use message::{ErrorKind, ExecStart, ExitReason, ExitStatus, FileEntry, Hello, HelloAck, Message, PtySize};
pub use version::{
    negotiate, negotiate_between, NegotiateError, FEATURE_FILE_WINDOW, FEATURE_PTY, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION, PTY_MIN_VERSION,
};
