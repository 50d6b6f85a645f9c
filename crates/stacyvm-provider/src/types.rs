//! Plain data passed across the provider boundary.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stacyvm_types::exec::{PtySize, StreamName};
use tokio::io::AsyncRead;

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Sandbox ID (`sb-…`), also the runtime's name.
    pub id: String,
    /// Image reference.
    pub image: String,
    /// Memory limit in MiB.
    pub memory_mb: u32,
    /// vCPUs.
    pub vcpus: u32,
}

/// A provider's reference to a runtime; persisted as JSON so it survives restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeHandle {
    /// Sandbox ID.
    pub sandbox_id: String,
    /// Provider-specific runtime ID (container name, directory, VM id).
    pub runtime_id: String,
    /// Provider-specific details.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// Observed runtime state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeState {
    /// Up and able to run commands.
    Running,
    /// Exists but is not running.
    Stopped,
    /// Does not exist.
    Missing,
}

/// A process to run inside a sandbox. Shell handling happens above this layer: the provider
/// always receives an argv.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// Program and arguments; never empty.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Absolute working directory inside the sandbox.
    pub workdir: String,
    /// Kill the process after this long.
    pub timeout: Option<Duration>,
    /// Run it on a pseudo-terminal of this size (needs [`Capabilities::pty`](crate::Capabilities)):
    /// all output arrives as stdout, and input comes through [`Provider::exec_interactive`](crate::Provider::exec_interactive).
    pub pty: Option<PtySize>,
}

/// Input for a running interactive exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecInput {
    /// Bytes for the process's terminal.
    Stdin(Bytes),
    /// End of input (the terminal's EOF character).
    StdinClose,
    /// New terminal size.
    Resize(PtySize),
    /// A Linux signal number for the terminal's foreground process group.
    Signal(i32),
}

/// One piece of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Which stream.
    pub stream: StreamName,
    /// Raw bytes as read.
    pub data: Bytes,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Exited with a status code.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// Killed because its timeout expired.
    TimedOut,
    /// Killed by the out-of-memory killer.
    OomKilled,
}

impl ExitReason {
    /// Shell-style exit code: the status, or 128 + signal.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitReason::Exited(code) => code,
            ExitReason::Signaled(sig) => 128 + sig,
            ExitReason::TimedOut => 124,
            ExitReason::OomKilled => 137,
        }
    }
}

/// Result of an exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOutcome {
    /// How it ended.
    pub reason: ExitReason,
    /// Wall time.
    pub duration: Duration,
}

/// The content of a streamed write ([`crate::Provider::write_file_stream`]), read once, in order.
pub type ByteSource = Pin<Box<dyn AsyncRead + Send>>;

/// A file opened for streaming reads.
pub struct FileReader {
    /// Size at open time, when the provider knows it (sent as Content-Length).
    pub size: Option<u64>,
    /// The content.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader").field("size", &self.size).finish_non_exhaustive()
    }
}
