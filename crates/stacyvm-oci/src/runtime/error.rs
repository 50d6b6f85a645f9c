//! [`OciError`] and the extraction of the runtime's own error messages from its output and logs.

use std::time::Duration;

use super::RuntimeKind;

/// Longest runtime error message we keep (the tail is kept).
pub(super) const MAX_ERROR_LEN: usize = 4096;

/// Errors from the runtime driver.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// `providers.oci.runtime` names no known runtime.
    #[error("unknown OCI runtime {0:?} (expected crun, runc or runsc)")]
    UnknownKind(String),
    /// The binary is not on `PATH` (nor in /usr/sbin, /sbin, /usr/local/sbin).
    #[error("{kind} not found on PATH; install it with `apt-get install {pkg}` or set its path", pkg = kind.debian_package())]
    BinaryNotFound {
        /// The runtime looked for.
        kind: RuntimeKind,
    },
    /// Container ids are restricted to `[A-Za-z0-9_.-]{1,64}` not starting with `-` or `.`.
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    /// The runtime exited non-zero.
    #[error("{kind} {op} {id}: {message}")]
    Runtime {
        /// Runtime kind.
        kind: RuntimeKind,
        /// Subcommand.
        op: &'static str,
        /// Container id (empty for `list`/`--version`).
        id: String,
        /// Exit code, `None` if killed by a signal.
        code: Option<i32>,
        /// The runtime's error message, trimmed (at most 4 KiB, tail kept).
        message: String,
    },
    /// The runtime did not finish in time and was killed.
    #[error("{kind} {op} {id}: timed out after {timeout:?}")]
    Timeout {
        /// Runtime kind.
        kind: RuntimeKind,
        /// Subcommand.
        op: &'static str,
        /// Container id.
        id: String,
        /// The limit.
        timeout: Duration,
    },
    /// Spawning the runtime or preparing its files failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime's output was not what the contract says.
    #[error("{kind} {op}: unexpected output: {detail}")]
    Parse {
        /// Runtime kind.
        kind: RuntimeKind,
        /// Subcommand.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl OciError {
    /// Whether the error says the container does not exist (any runtime's wording).
    pub fn is_not_found(&self) -> bool {
        match self {
            OciError::Runtime { message, .. } => is_not_found_message(message),
            _ => false,
        }
    }
}

pub(super) fn is_not_found_message(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("no such file or directory") || m.contains("not found")
}

pub(super) fn io_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> OciError {
    let op = op.into();
    move |source| OciError::Io { op, source }
}

/// Keeps the last `MAX_ERROR_LEN` bytes of a trimmed message.
pub(super) fn trim_message(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_ERROR_LEN {
        return s.to_string();
    }
    let mut start = s.len() - MAX_ERROR_LEN;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

/// Extracts error messages from a runtime log: JSON objects (crun/runc/runsc with
/// `--log-format=json`, possibly concatenated without newlines) with `level` and `msg`; plain text
/// lines are kept as they are.
pub(super) fn log_errors(text: &str) -> String {
    let mut msgs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('{') {
            let mut it = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
            if let Some(Ok(v)) = it.next() {
                let level = v.get("level").and_then(|l| l.as_str()).unwrap_or("error");
                if matches!(level, "error" | "fatal" | "panic") {
                    if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                        msgs.push(m.trim().to_string());
                    }
                }
                rest = rest[it.byte_offset()..].trim_start();
                continue;
            }
        }
        let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
        if !line.trim().is_empty() {
            msgs.push(line.trim().to_string());
        }
        rest = tail.trim_start();
    }
    msgs.dedup();
    msgs.join("; ")
}
