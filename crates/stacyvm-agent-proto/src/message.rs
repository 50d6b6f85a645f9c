//! Control messages: the JSON payload of `Control` frames.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A control message. Serialized as one JSON object tagged by `"type"` (snake_case variant name).
///
/// Host → agent: `hello`, `exec`, `stdin_close`, `signal`, `resize`, `cancel`, `file_write`,
/// `file_end` (end of a write stream), `file_read`, `file_ack`, `stat`, `list_dir`, `glob`, `rename`, `chmod`,
/// `remove`, `ping`. Agent → host: `hello_ack`, `exited`, `file_info`, `dir_entries`, `paths`,
/// `file_end` (end of a read stream), `done`, `pong`, `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    // ---- handshake (channel 0) ----
    /// Host → agent, first frame of a connection.
    Hello(Hello),
    /// Agent → host, answer to [`Message::Hello`].
    HelloAck(HelloAck),

    // ---- exec ----
    /// Start a process on this channel.
    Exec(ExecStart),
    /// Close the process's stdin (after the last `Stdin` frame).
    StdinClose,
    /// Deliver a (Linux) signal number to the process running on this channel.
    Signal { signal: i32 },
    /// Change the PTY window size.
    Resize(PtySize),
    /// Kill whatever runs on this channel (process or file transfer).
    Cancel,

    // ---- files ----
    /// Create or truncate `path`; `FileData` frames and a [`Message::FileEnd`] follow.
    FileWrite {
        path: String,
        /// Permission bits (e.g. `0o644`).
        mode: u32,
        uid: u32,
        gid: u32,
        /// Total size announced ahead, if known.
        #[serde(default)]
        size: Option<u64>,
    },
    /// Stream `path` back as `FileData` frames followed by [`Message::FileEnd`].
    FileRead {
        path: String,
        /// Flow control (agents with [`crate::FEATURE_FILE_WINDOW`]): the agent sends at most
        /// this many `FileData` frames ahead of the host's [`Message::FileAck`]s. `None`: no limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<u32>,
    },
    /// Host → agent, on a `file_read` channel opened with a `window`: the host consumed `chunks`
    /// more `FileData` frames, so the agent may send that many more. No reply.
    FileAck { chunks: u32 },
    /// Answer with [`Message::FileInfo`].
    Stat { path: String },
    /// Answer with [`Message::DirEntries`].
    ListDir { path: String },
    /// Answer with [`Message::Paths`]: the paths matching an absolute glob pattern.
    Glob { pattern: String },
    /// Rename `from` to `to`; answer [`Message::Done`].
    Rename { from: String, to: String },
    /// Set permission bits; answer [`Message::Done`].
    Chmod { path: String, mode: u32 },
    /// Remove a file or (with `recursive`) a directory tree; answer [`Message::Done`].
    Remove {
        path: String,
        #[serde(default)]
        recursive: bool,
    },
    /// Liveness check; answer [`Message::Pong`].
    Ping,

    // ---- replies ----
    /// Agent → host: the process ended. Always the last message on an exec channel.
    Exited(ExitStatus),
    /// Agent → host: metadata of one path.
    FileInfo(FileEntry),
    /// Agent → host: the entries of a directory.
    DirEntries { entries: Vec<FileEntry> },
    /// Agent → host: the matches of a glob.
    Paths { paths: Vec<String> },
    /// End of a `FileData` stream, in both directions; `size` is the number of bytes streamed.
    FileEnd { size: u64 },
    /// Agent → host: success without a payload.
    Done,
    /// Agent → host: answer to [`Message::Ping`].
    Pong,
    /// Agent → host: the request failed (or, on channel 0, the handshake did).
    Error { kind: ErrorKind, message: String },
}

impl Message {
    /// The `"type"` tag of this message, for logs and error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::HelloAck(_) => "hello_ack",
            Message::Exec(_) => "exec",
            Message::StdinClose => "stdin_close",
            Message::Signal { .. } => "signal",
            Message::Resize(_) => "resize",
            Message::Cancel => "cancel",
            Message::FileWrite { .. } => "file_write",
            Message::FileRead { .. } => "file_read",
            Message::FileAck { .. } => "file_ack",
            Message::Stat { .. } => "stat",
            Message::ListDir { .. } => "list_dir",
            Message::Glob { .. } => "glob",
            Message::Rename { .. } => "rename",
            Message::Chmod { .. } => "chmod",
            Message::Remove { .. } => "remove",
            Message::Ping => "ping",
            Message::Exited(_) => "exited",
            Message::FileInfo(_) => "file_info",
            Message::DirEntries { .. } => "dir_entries",
            Message::Paths { .. } => "paths",
            Message::FileEnd { .. } => "file_end",
            Message::Done => "done",
            Message::Pong => "pong",
            Message::Error { .. } => "error",
        }
    }

    /// Whether this message, **sent by the agent**, ends the request on its channel (the channel
    /// id is free afterwards). True for `hello_ack`, `exited`, `file_info`, `dir_entries`, `paths`,
    /// `file_end`, `done`, `pong` and `error`.
    ///
    /// Meaningless for host → agent messages (the host's `file_end` ends only its write stream).
    pub fn ends_request(&self) -> bool {
        matches!(
            self,
            Message::HelloAck(_)
                | Message::Exited(_)
                | Message::FileInfo(_)
                | Message::DirEntries { .. }
                | Message::Paths { .. }
                | Message::FileEnd { .. }
                | Message::Done
                | Message::Pong
                | Message::Error { .. }
        )
    }

    /// Shorthand for `Message::Error { kind, message }`.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Message {
        Message::Error { kind, message: message.into() }
    }
}

/// Host → agent handshake: the range of protocol versions the host speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub min_version: u32,
    pub max_version: u32,
    /// Free-form identification of the host, e.g. `"stacyvm/0.1.0"`.
    pub client: String,
}

impl Hello {
    /// A `Hello` offering every version this crate speaks.
    pub fn new(client: impl Into<String>) -> Hello {
        Hello { min_version: crate::MIN_PROTOCOL_VERSION, max_version: crate::PROTOCOL_VERSION, client: client.into() }
    }
}

/// Agent → host handshake answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloAck {
    /// The negotiated version: the highest version both sides speak.
    pub version: u32,
    /// The agent's build version, e.g. `"0.1.0"`.
    pub agent_version: String,
    /// Optional capabilities of this agent (e.g. `"pty"`), for the host to check.
    #[serde(default)]
    pub features: Vec<String>,
}

/// Parameters of an exec request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStart {
    /// Program and arguments; must not be empty.
    pub argv: Vec<String>,
    /// The complete environment of the process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Absolute working directory inside the sandbox.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// Kill the process after this many milliseconds (reason `timed_out`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Whether the host will stream `Stdin` frames (otherwise stdin is `/dev/null`).
    #[serde(default)]
    pub stdin: bool,
    /// Run under a pseudo-terminal of this size.
    #[serde(default)]
    pub pty: Option<PtySize>,
}

/// Terminal window size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtySize {
    pub rows: u16,
    pub cols: u16,
}

impl PtySize {
    /// The largest accepted number of rows or columns.
    pub const MAX: u16 = 1000;

    /// Checks both dimensions are in `1..=MAX`; the error names the offending one.
    pub fn validate(self) -> Result<(), String> {
        for (name, value) in [("rows", self.rows), ("cols", self.cols)] {
            if value == 0 || value > Self::MAX {
                return Err(format!("pty {name} must be between 1 and {}, got {value}", Self::MAX));
            }
        }
        Ok(())
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code, when the process exited normally.
    pub code: Option<i32>,
    /// Signal number, when the process was killed by a signal (also on timeout and OOM kill).
    pub signal: Option<i32>,
    pub reason: ExitReason,
    /// Wall time from spawn to exit.
    pub duration_ms: u64,
}

/// Why a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// It exited by itself (`code` is set).
    Exited,
    /// It was killed by a signal (a `signal`/`cancel` request or anything else).
    Signaled,
    /// The agent killed it because `timeout_ms` elapsed.
    TimedOut,
    /// The kernel's OOM killer killed it.
    OomKilled,
}

/// Metadata of one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Absolute path inside the sandbox.
    pub path: String,
    pub size: u64,
    /// Full `st_mode` (file type and permission bits).
    pub mode: u32,
    pub is_dir: bool,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// Category of an [`Message::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The path (or program) does not exist.
    NotFound,
    /// The path would leave the sandbox (`..`, symlinks).
    PathEscape,
    /// The request is malformed (empty argv, relative path, size mismatch, ...).
    InvalidInput,
    /// Not supported by this agent (including: no common protocol version).
    Unsupported,
    /// The channel or resource is in use.
    Busy,
    /// Anything else; the message explains.
    Failed,
}

impl ErrorKind {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PathEscape => "path_escape",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Busy => "busy",
            ErrorKind::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
