//! The provider contract: how StacyVM creates, drives and destroys sandboxes on a backend.
//!
//! A [`Provider`] owns runtime lifecycle (create, destroy, inspect, list) plus the operations
//! that reach inside a sandbox (exec with streamed output, file operations, console logs).
//! What a provider can do is declared up front in [`Capabilities`]. Every provider runs the
//! shared [`conformance`] suite in its own tests. The [`mock`] provider ("temp directories on
//! the host", no isolation) lives here too.

pub mod agent_client;
pub mod capabilities;
pub mod conformance;
pub mod error;
pub mod host_exec;
pub mod mock;
pub mod registry;
mod types;

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

pub use capabilities::Capabilities;
pub use error::{ProviderError, ProviderResult};
pub use registry::ProviderRegistry;
pub use stacyvm_fs::{FileEntry, FsError, SandboxPath};
pub use stacyvm_types::exec::PtySize;
pub use types::{
    ByteSource, ExecInput, ExecOutcome, ExecSpec, ExitReason, FileReader, OutputChunk, RuntimeHandle, RuntimeState,
    SandboxSpec,
};

/// A sandbox backend. Implementations must be cheap to share (`Arc<dyn Provider>`).
#[async_trait]
pub trait Provider: Send + Sync {
    /// Registry name, e.g. `mock`, `oci`.
    fn name(&self) -> &str;
    /// What this provider supports.
    fn capabilities(&self) -> Capabilities;
    /// Non-secret settings for `GET /providers/{name}`; always includes `type`.
    fn describe(&self) -> BTreeMap<String, String>;
    /// Provider-specific capability names added to the base set (e.g. `test_provider`).
    fn extra_capabilities(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks the backend is usable.
    async fn health(&self) -> ProviderResult<()>;

    /// Creates and starts a runtime; returns once commands can run in it.
    async fn create(&self, spec: &SandboxSpec) -> ProviderResult<RuntimeHandle>;
    /// Removes every trace of the runtime. Idempotent: destroying a missing runtime is `Ok`.
    async fn destroy(&self, handle: &RuntimeHandle) -> ProviderResult<()>;
    /// Observed state of a runtime.
    async fn inspect(&self, handle: &RuntimeHandle) -> ProviderResult<RuntimeState>;
    /// Sandbox IDs of every runtime this provider instance owns (for orphan reconciliation).
    async fn list_owned(&self) -> ProviderResult<Vec<String>>;

    /// Runs a process; output chunks go to `output` in arrival order, the outcome is returned
    /// last. Dropping the future, or closing `output`, kills the process.
    async fn exec(
        &self,
        handle: &RuntimeHandle,
        spec: ExecSpec,
        output: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome>;
    /// [`Provider::exec`] with input while it runs: terminal input, resizes and signals from
    /// `input` (its closing is not an error). Providers with [`Capabilities::pty`] implement it;
    /// the default runs execs without a PTY through [`Provider::exec`] (ignoring `input`) and
    /// refuses the others with [`ProviderError::Unsupported`].
    async fn exec_interactive(
        &self,
        handle: &RuntimeHandle,
        spec: ExecSpec,
        input: mpsc::Receiver<ExecInput>,
        output: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        drop(input);
        if spec.pty.is_some() {
            return Err(ProviderError::Unsupported("exec with a pty"));
        }
        self.exec(handle, spec, output).await
    }
    /// Last `lines` console lines.
    async fn logs(&self, handle: &RuntimeHandle, lines: usize) -> ProviderResult<Vec<String>>;

    /// Writes a file (parents created, overwritten, `mode` applied).
    async fn write_file(&self, h: &RuntimeHandle, path: &SandboxPath, content: Bytes, mode: u32) -> ProviderResult<()>;
    /// Writes a file streamed from `source` (parents created, overwritten, `mode` applied) and
    /// returns its size. Implementations hold a bounded amount of the content in memory and
    /// replace the target atomically at the end: when `source` fails (e.g. the client went away)
    /// or the future is dropped, nothing is written and an existing file stays intact. The
    /// default refuses with [`ProviderError::Unsupported`].
    async fn write_file_stream(
        &self,
        h: &RuntimeHandle,
        path: &SandboxPath,
        source: ByteSource,
        mode: u32,
    ) -> ProviderResult<u64> {
        let _ = (h, path, source, mode);
        Err(ProviderError::Unsupported("streamed file writes"))
    }
    /// Opens a regular file for streaming.
    async fn read_file(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<FileReader>;
    /// Direct children of a directory, sorted by name.
    async fn list_dir(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<Vec<FileEntry>>;
    /// Metadata of one path.
    async fn stat(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<FileEntry>;
    /// Absolute paths matching a shell glob, sorted.
    async fn glob(&self, h: &RuntimeHandle, pattern: &str) -> ProviderResult<Vec<String>>;
    /// Renames, creating the destination's parent.
    async fn rename(&self, h: &RuntimeHandle, from: &SandboxPath, to: &SandboxPath) -> ProviderResult<()>;
    /// Changes permission bits.
    async fn chmod(&self, h: &RuntimeHandle, path: &SandboxPath, mode: u32) -> ProviderResult<()>;
    /// Deletes a file, or a directory (non-empty only with `recursive`).
    async fn remove(&self, h: &RuntimeHandle, path: &SandboxPath, recursive: bool) -> ProviderResult<()>;
}
