//! The `mock` provider: each sandbox is a directory on the host.
//!
//! It exists for development and tests of code built on StacyVM: it is instant and needs
//! nothing installed. It gives **no isolation**: commands run on the host as the server's own
//! user, with the sandbox directory's `workspace` as working directory. File API paths are
//! confined to the sandbox directory (see [`crate::hostfs`]); commands are not.
//!
//! Layout under the root directory: `<root>/<sandbox-id>/` is the sandbox's `/` (with
//! `workspace/` and `tmp/`). Console logs are kept in memory.

mod console;
mod processes;
mod upload;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::capabilities::Capabilities;
use crate::error::{ProviderError, ProviderResult};
use crate::host_exec::{self, HostCommand};
use crate::types::{
    ByteSource, ExecOutcome, ExecSpec, FileReader, OutputChunk, RuntimeHandle, RuntimeState, SandboxSpec,
};
use crate::Provider;
use stacyvm_fs::{FileEntry, HostRoot, ResolveMode, SandboxPath};

/// The mock provider.
#[derive(Debug, Clone)]
pub struct MockProvider {
    root: Arc<PathBuf>,
    consoles: Arc<console::Consoles>,
    /// Sandboxes created by this instance that never ran a command: destroying them needs no
    /// search for leftover processes.
    untouched: Arc<Mutex<HashSet<String>>>,
}

impl MockProvider {
    /// Uses (and creates) `root` as the parent of every sandbox directory.
    pub fn new(root: impl Into<PathBuf>) -> ProviderResult<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| ProviderError::Unavailable(format!("create {}: {e}", root.display())))?;
        Ok(MockProvider { root: Arc::new(root), consoles: Arc::default(), untouched: Arc::default() })
    }

    /// Parent directory of all sandboxes.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn sandbox_dir(&self, sandbox_id: &str) -> ProviderResult<PathBuf> {
        if sandbox_id.is_empty() || sandbox_id.starts_with('.') || sandbox_id.contains(['/', '\0']) {
            return Err(ProviderError::InvalidInput(format!("invalid sandbox id {sandbox_id:?}")));
        }
        Ok(self.root.join(sandbox_id))
    }

    fn set_untouched(&self, sandbox_id: &str, untouched: bool) -> bool {
        let mut set = self.untouched.lock().unwrap_or_else(|e| e.into_inner());
        if untouched {
            set.insert(sandbox_id.to_string())
        } else {
            set.remove(sandbox_id)
        }
    }

    fn host_root(&self, h: &RuntimeHandle) -> ProviderResult<HostRoot> {
        let dir = self.sandbox_dir(&h.sandbox_id)?;
        if !dir.is_dir() {
            return Err(ProviderError::RuntimeMissing(h.sandbox_id.clone()));
        }
        Ok(HostRoot::open(&dir, ResolveMode::Beneath)?)
    }

    /// Runs a blocking file operation against the sandbox root.
    async fn with_root<T, F>(&self, h: &RuntimeHandle, op: F) -> ProviderResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&HostRoot) -> stacyvm_fs::FsResult<T> + Send + 'static,
    {
        let root = self.host_root(h)?;
        tokio::task::spawn_blocking(move || op(&root))
            .await
            .map_err(|e| ProviderError::Failed(format!("file task: {e}")))?
            .map_err(ProviderError::from)
    }
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &str {
        "mock"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { exec_stream: true, files: true, console: true, ..Capabilities::default() }
    }

    fn extra_capabilities(&self) -> &'static [&'static str] {
        &["test_provider"]
    }

    fn describe(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("type".to_string(), "mock".to_string()),
            ("root_dir".to_string(), self.root.display().to_string()),
            ("isolation".to_string(), "none".to_string()),
        ])
    }

    async fn health(&self) -> ProviderResult<()> {
        let meta = tokio::fs::metadata(self.root.as_path())
            .await
            .map_err(|e| ProviderError::Unavailable(format!("{}: {e}", self.root.display())))?;
        if !meta.is_dir() {
            return Err(ProviderError::Unavailable(format!("{} is not a directory", self.root.display())));
        }
        Ok(())
    }

    async fn create(&self, spec: &SandboxSpec) -> ProviderResult<RuntimeHandle> {
        let dir = self.sandbox_dir(&spec.id)?;
        let target = dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir(&target)?;
            std::fs::create_dir(target.join("workspace"))?;
            std::fs::create_dir(target.join("tmp"))
        })
        .await
        .map_err(|e| ProviderError::Failed(format!("create task: {e}")))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ProviderError::Failed(format!("runtime {} already exists", spec.id)),
            _ => ProviderError::Failed(format!("create {}: {e}", dir.display())),
        })?;
        self.set_untouched(&spec.id, true);
        self.consoles.append(&spec.id, &format!("sandbox {} created (image {})", spec.id, spec.image));
        Ok(RuntimeHandle {
            sandbox_id: spec.id.clone(),
            runtime_id: dir.display().to_string(),
            details: BTreeMap::new(),
        })
    }

    async fn destroy(&self, h: &RuntimeHandle) -> ProviderResult<()> {
        let dir = self.sandbox_dir(&h.sandbox_id)?;
        // Processes started by execs may outlive them; a sandbox that never ran one (and was
        // created by this instance) cannot have any.
        let search_processes = !self.set_untouched(&h.sandbox_id, false);
        let target = dir.clone();
        let removed = tokio::task::spawn_blocking(move || {
            if search_processes {
                processes::kill_all_under(&target);
            }
            match std::fs::remove_dir_all(&target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| ProviderError::Failed(format!("destroy task: {e}")))?;
        removed.map_err(|e| ProviderError::Failed(format!("remove {}: {e}", dir.display())))?;
        self.consoles.remove(&h.sandbox_id);
        Ok(())
    }

    async fn inspect(&self, h: &RuntimeHandle) -> ProviderResult<RuntimeState> {
        let dir = self.sandbox_dir(&h.sandbox_id)?;
        Ok(match tokio::fs::metadata(&dir).await {
            Ok(m) if m.is_dir() => RuntimeState::Running,
            _ => RuntimeState::Missing,
        })
    }

    async fn list_owned(&self) -> ProviderResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut entries = tokio::fs::read_dir(self.root.as_path())
            .await
            .map_err(|e| ProviderError::Unavailable(format!("{}: {e}", self.root.display())))?;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("sb-") && entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    async fn exec(
        &self,
        h: &RuntimeHandle,
        spec: ExecSpec,
        output: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        let dir = self.sandbox_dir(&h.sandbox_id)?;
        let workdir = SandboxPath::parse(&spec.workdir)?;
        // Resolve the working directory beneath the sandbox root; it must exist.
        let probe = workdir.clone();
        let entry = self.with_root(h, move |root| root.stat(&probe)).await.map_err(|e| match e {
            ProviderError::FileNotFound(p) => ProviderError::InvalidInput(format!("workdir {p} does not exist")),
            other => other,
        })?;
        if !entry.is_dir {
            return Err(ProviderError::InvalidInput(format!("workdir {workdir} is not a directory")));
        }
        let cwd = dir.join(workdir.relative());
        let mut env = BTreeMap::from([
            ("PATH".to_string(), std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())),
            ("HOME".to_string(), dir.join("workspace").display().to_string()),
            ("TMPDIR".to_string(), dir.join("tmp").display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("STACYVM_SANDBOX_ID".to_string(), h.sandbox_id.clone()),
        ]);
        env.extend(spec.env.clone());
        self.set_untouched(&h.sandbox_id, false);
        self.consoles.append(&h.sandbox_id, &format!("exec: {}", spec.argv.join(" ")));
        let outcome =
            host_exec::run(HostCommand { argv: &spec.argv, env: &env, cwd: &cwd, timeout: spec.timeout }, output)
                .await?;
        self.consoles.append(&h.sandbox_id, &format!("exit: {} ({:?})", outcome.reason.exit_code(), outcome.reason));
        Ok(outcome)
    }

    async fn logs(&self, h: &RuntimeHandle, lines: usize) -> ProviderResult<Vec<String>> {
        self.host_root(h)?;
        Ok(self.consoles.tail(&h.sandbox_id, lines))
    }

    async fn write_file(&self, h: &RuntimeHandle, path: &SandboxPath, content: Bytes, mode: u32) -> ProviderResult<()> {
        let path = path.clone();
        self.with_root(h, move |root| root.write(&path, &content, mode)).await
    }

    async fn write_file_stream(
        &self,
        h: &RuntimeHandle,
        path: &SandboxPath,
        source: ByteSource,
        mode: u32,
    ) -> ProviderResult<u64> {
        upload::write_stream(self.host_root(h)?, path.clone(), source, mode).await
    }

    async fn read_file(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<FileReader> {
        let path = path.clone();
        let (file, size) = self.with_root(h, move |root| root.open_read(&path)).await?;
        Ok(FileReader { size: Some(size), reader: Box::pin(tokio::fs::File::from_std(file)) })
    }

    async fn list_dir(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<Vec<FileEntry>> {
        let path = path.clone();
        self.with_root(h, move |root| root.list(&path)).await
    }

    async fn stat(&self, h: &RuntimeHandle, path: &SandboxPath) -> ProviderResult<FileEntry> {
        let path = path.clone();
        self.with_root(h, move |root| root.stat(&path)).await
    }

    async fn glob(&self, h: &RuntimeHandle, pattern: &str) -> ProviderResult<Vec<String>> {
        let pattern = pattern.to_string();
        self.with_root(h, move |root| root.glob(&pattern)).await
    }

    async fn rename(&self, h: &RuntimeHandle, from: &SandboxPath, to: &SandboxPath) -> ProviderResult<()> {
        let (from, to) = (from.clone(), to.clone());
        self.with_root(h, move |root| root.rename(&from, &to)).await
    }

    async fn chmod(&self, h: &RuntimeHandle, path: &SandboxPath, mode: u32) -> ProviderResult<()> {
        let path = path.clone();
        self.with_root(h, move |root| root.chmod(&path, mode)).await
    }

    async fn remove(&self, h: &RuntimeHandle, path: &SandboxPath, recursive: bool) -> ProviderResult<()> {
        let path = path.clone();
        self.with_root(h, move |root| root.remove(&path, recursive)).await
    }
}
