//! A test provider that runs one real agent process per sandbox on the host (a temporary
//! directory as the sandbox root) and routes every exec and file operation through
//! `AgentClient` over the Unix socket.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stacyvm_provider::agent_client::AgentClient;
use stacyvm_provider::{
    ByteSource, Capabilities, ExecInput, ExecOutcome, ExecSpec, FileEntry, FileReader, OutputChunk, Provider,
    ProviderError, ProviderResult, RuntimeHandle, RuntimeState, SandboxPath, SandboxSpec,
};
use tokio::sync::mpsc;

pub struct Sandbox {
    pub agent: Child,
    pub client: AgentClient,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

pub struct HostAgentProvider {
    dir: PathBuf,
    sandboxes: Mutex<HashMap<String, Arc<Sandbox>>>,
    ids: (u32, u32),
}

impl HostAgentProvider {
    fn get(&self, h: &RuntimeHandle) -> ProviderResult<Arc<Sandbox>> {
        self.sandboxes
            .lock()
            .unwrap()
            .get(&h.sandbox_id)
            .cloned()
            .ok_or_else(|| ProviderError::RuntimeMissing(h.sandbox_id.clone()))
    }
}

#[async_trait]
impl Provider for HostAgentProvider {
    fn name(&self) -> &str {
        "host-agent"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { exec_stream: true, files: true, pty: true, ..Capabilities::default() }
    }
    fn describe(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("type".into(), "test".into())])
    }
    async fn health(&self) -> ProviderResult<()> {
        Ok(())
    }
    async fn create(&self, spec: &SandboxSpec) -> ProviderResult<RuntimeHandle> {
        let root = self.dir.join(&spec.id);
        std::fs::create_dir_all(root.join("workspace")).unwrap();
        std::os::unix::fs::chown(root.join("workspace"), Some(self.ids.0), Some(self.ids.1)).unwrap();
        let socket = self.dir.join(format!("{}.sock", spec.id));
        let mut agent = Command::new(env!("CARGO_BIN_EXE_stacyvm-agent"))
            .args(["--listen", socket.to_str().unwrap(), "--root", root.to_str().unwrap()])
            .args(["--uid", &self.ids.0.to_string(), "--gid", &self.ids.1.to_string()])
            .spawn()
            .unwrap();
        let connected = async {
            let client = AgentClient::connect(&socket, Duration::from_secs(5)).await?;
            client.ping().await.map(|()| client)
        };
        let client = match connected.await {
            Ok(client) => client,
            Err(e) => {
                let _ = agent.kill();
                let _ = agent.wait();
                return Err(e);
            }
        };
        self.sandboxes.lock().unwrap().insert(spec.id.clone(), Arc::new(Sandbox { agent, client }));
        Ok(RuntimeHandle { sandbox_id: spec.id.clone(), runtime_id: spec.id.clone(), details: BTreeMap::new() })
    }
    async fn destroy(&self, h: &RuntimeHandle) -> ProviderResult<()> {
        // Dropping the sandbox kills its agent.
        drop(self.sandboxes.lock().unwrap().remove(&h.sandbox_id));
        let _ = std::fs::remove_dir_all(self.dir.join(&h.sandbox_id));
        Ok(())
    }
    async fn inspect(&self, h: &RuntimeHandle) -> ProviderResult<RuntimeState> {
        Ok(if self.sandboxes.lock().unwrap().contains_key(&h.sandbox_id) {
            RuntimeState::Running
        } else {
            RuntimeState::Missing
        })
    }
    async fn list_owned(&self) -> ProviderResult<Vec<String>> {
        Ok(self.sandboxes.lock().unwrap().keys().cloned().collect())
    }
    async fn exec(
        &self,
        h: &RuntimeHandle,
        spec: ExecSpec,
        out: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        let sb = self.get(h)?;
        sb.client.exec(spec, self.ids.0, self.ids.1, out).await
    }
    async fn exec_interactive(
        &self,
        h: &RuntimeHandle,
        spec: ExecSpec,
        input: mpsc::Receiver<ExecInput>,
        out: mpsc::Sender<OutputChunk>,
    ) -> ProviderResult<ExecOutcome> {
        let sb = self.get(h)?;
        sb.client.exec_interactive(spec, self.ids.0, self.ids.1, Some(input), out).await
    }
    async fn logs(&self, _h: &RuntimeHandle, _lines: usize) -> ProviderResult<Vec<String>> {
        Ok(Vec::new())
    }
    async fn write_file(&self, h: &RuntimeHandle, p: &SandboxPath, c: Bytes, mode: u32) -> ProviderResult<()> {
        self.get(h)?.client.write_file(&p.to_string(), c, mode, self.ids.0, self.ids.1).await
    }
    async fn write_file_stream(
        &self,
        h: &RuntimeHandle,
        p: &SandboxPath,
        source: ByteSource,
        mode: u32,
    ) -> ProviderResult<u64> {
        self.get(h)?.client.write_file_stream(&p.to_string(), source, mode, self.ids.0, self.ids.1).await
    }
    async fn read_file(&self, h: &RuntimeHandle, p: &SandboxPath) -> ProviderResult<FileReader> {
        self.get(h)?.client.read_file(&p.to_string()).await
    }
    async fn list_dir(&self, h: &RuntimeHandle, p: &SandboxPath) -> ProviderResult<Vec<FileEntry>> {
        self.get(h)?.client.list_dir(&p.to_string()).await
    }
    async fn stat(&self, h: &RuntimeHandle, p: &SandboxPath) -> ProviderResult<FileEntry> {
        self.get(h)?.client.stat(&p.to_string()).await
    }
    async fn glob(&self, h: &RuntimeHandle, pattern: &str) -> ProviderResult<Vec<String>> {
        self.get(h)?.client.glob(pattern).await
    }
    async fn rename(&self, h: &RuntimeHandle, a: &SandboxPath, b: &SandboxPath) -> ProviderResult<()> {
        self.get(h)?.client.rename(&a.to_string(), &b.to_string()).await
    }
    async fn chmod(&self, h: &RuntimeHandle, p: &SandboxPath, mode: u32) -> ProviderResult<()> {
        self.get(h)?.client.chmod(&p.to_string(), mode).await
    }
    async fn remove(&self, h: &RuntimeHandle, p: &SandboxPath, recursive: bool) -> ProviderResult<()> {
        self.get(h)?.client.remove(&p.to_string(), recursive).await
    }
}

/// A provider running agents as the current user, for processes of the current user.
pub fn provider(dir: &std::path::Path) -> HostAgentProvider {
    // SAFETY: plain getters.
    let ids = unsafe { (libc::getuid(), libc::getgid()) };
    provider_as(dir, ids)
}

/// A provider whose processes and files belong to `ids` (needs root unless they are ours).
pub fn provider_as(dir: &std::path::Path, ids: (u32, u32)) -> HostAgentProvider {
    HostAgentProvider { dir: dir.to_path_buf(), sandboxes: Mutex::default(), ids }
}

/// Kills (and reaps) a child process when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
