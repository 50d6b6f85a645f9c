//! Exec shapes: requests, results and stream chunks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /sandboxes/{id}/exec` and the first WebSocket message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ExecRequest {
    /// Shell command (shell mode) or program (argv mode).
    pub command: String,
    /// Extra arguments: quoted onto the command in shell mode, argv[1..] in argv mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// `""`/`"shell"` (default) or `"argv"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Environment variables added for this command.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the sandbox (default `/workspace`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workdir: String,
    /// Timeout as a Go duration string; empty means the server default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    /// `true` selects NDJSON streaming.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Streaming only: end with a `{"type":"exit",...}` line (extension).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_exit: bool,
}

/// Result of a synchronous exec. A nonzero exit code is still a 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExecResult {
    /// Process exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// Standard output (invalid UTF-8 replaced by U+FFFD).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time as a Go duration string.
    pub duration: String,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One NDJSON line or WebSocket message of streamed output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamChunk {
    /// Source stream.
    pub stream: StreamName,
    /// Output text.
    pub data: String,
}

/// Optional last NDJSON line when `include_exit` was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExitLine {
    /// Always `exit`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Process exit code.
    pub exit_code: i32,
    /// Wall time as a Go duration string.
    pub duration: String,
}
