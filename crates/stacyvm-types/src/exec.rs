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
    /// Run the command on a pseudo-terminal of this size (extension): stderr is merged into
    /// stdout, and on the WebSocket route the client can send input, resize and signal messages
    /// ([`ExecWsInput`]). Only providers with the `pty` capability support it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<PtySize>,
}

/// Terminal window size of an exec with a pseudo-terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PtySize {
    /// Rows, `1..=1000`.
    pub rows: u16,
    /// Columns, `1..=1000`.
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

/// A client message on the exec WebSocket after the first (ExecRequest) message (extension).
/// Binary WebSocket messages are raw stdin bytes. Only execs with `pty` take input; for other
/// execs these messages are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecWsInput {
    /// Text typed into the terminal.
    Stdin {
        /// UTF-8 input.
        data: String,
    },
    /// End of input: the terminal's EOF character (`^D`).
    StdinClose,
    /// New window size (the program gets `SIGWINCH`).
    Resize {
        /// Rows, `1..=1000`.
        rows: u16,
        /// Columns, `1..=1000`.
        cols: u16,
    },
    /// A signal for the terminal's foreground process group.
    Signal {
        /// Signal number (`2`) or name (`"SIGINT"` or `"INT"`).
        #[schema(value_type = Object)]
        signal: SignalName,
    },
}

/// A signal given by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalName {
    /// Linux signal number.
    Number(i32),
    /// `SIGINT`, `INT`, ... (case-insensitive).
    Name(String),
}

impl SignalName {
    /// Signals a client may send by name, with their Linux numbers.
    const NAMES: &'static [(&'static str, i32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("KILL", 9),
        ("USR1", 10),
        ("USR2", 12),
        ("TERM", 15),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("WINCH", 28),
    ];

    /// The Linux signal number (`1..=64`), or an error naming the bad value.
    pub fn number(&self) -> Result<i32, String> {
        match self {
            SignalName::Number(n) if (1..=64).contains(n) => Ok(*n),
            SignalName::Number(n) => Err(format!("invalid signal number {n}")),
            SignalName::Name(name) => {
                let upper = name.trim().to_ascii_uppercase();
                let short = upper.strip_prefix("SIG").unwrap_or(&upper);
                Self::NAMES
                    .iter()
                    .find(|(n, _)| *n == short)
                    .map(|(_, number)| *number)
                    .ok_or_else(|| format!("unknown signal {name:?}"))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_is_optional_and_omitted_when_absent() {
        let req: ExecRequest = serde_json::from_str(r#"{"command":"ls"}"#).unwrap();
        assert_eq!(req.pty, None);
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"command":"ls"}"#);
        let req: ExecRequest = serde_json::from_str(r#"{"command":"sh","pty":{"rows":24,"cols":80}}"#).unwrap();
        assert_eq!(req.pty, Some(PtySize { rows: 24, cols: 80 }));
    }

    #[test]
    fn pty_sizes_and_signals_are_validated() {
        assert!(PtySize { rows: 24, cols: 80 }.validate().is_ok());
        assert_eq!(PtySize { rows: 0, cols: 80 }.validate().unwrap_err(), "pty rows must be between 1 and 1000, got 0");
        assert!(PtySize { rows: 5, cols: 1001 }.validate().unwrap_err().contains("cols"));
        assert_eq!(SignalName::Name("sigint".into()).number(), Ok(2));
        assert_eq!(SignalName::Name("TERM".into()).number(), Ok(15));
        assert_eq!(SignalName::Number(9).number(), Ok(9));
        assert!(SignalName::Number(0).number().is_err());
        assert!(SignalName::Name("SIGNOPE".into()).number().unwrap_err().contains("SIGNOPE"));
    }

    #[test]
    fn ws_input_messages_parse() {
        let m: ExecWsInput = serde_json::from_str(r#"{"type":"resize","rows":30,"cols":100}"#).unwrap();
        assert_eq!(m, ExecWsInput::Resize { rows: 30, cols: 100 });
        let m: ExecWsInput = serde_json::from_str(r#"{"type":"signal","signal":"SIGINT"}"#).unwrap();
        assert_eq!(m, ExecWsInput::Signal { signal: SignalName::Name("SIGINT".into()) });
        let m: ExecWsInput = serde_json::from_str(r#"{"type":"stdin","data":"ls\n"}"#).unwrap();
        assert_eq!(m, ExecWsInput::Stdin { data: "ls\n".into() });
        assert!(serde_json::from_str::<ExecWsInput>(r#"{"type":"bogus"}"#).is_err());
    }
}
