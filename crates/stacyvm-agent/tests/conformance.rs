//! The agent passes the provider conformance suite: a test provider runs one real agent
//! process per sandbox (on the host, with a temporary directory as the sandbox root) and
//! routes every exec and file operation through `AgentClient` over the Unix socket.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stacyvm_provider::agent_client::AgentClient;
use stacyvm_provider::{
    Capabilities, ExecOutcome, ExecSpec, FileEntry, FileReader, OutputChunk, Provider, ProviderError, ProviderResult,
    RuntimeHandle, RuntimeState, SandboxPath, SandboxSpec,
};
use tokio::sync::mpsc;

struct Sandbox {
    agent: Child,
    client: AgentClient,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

struct HostAgentProvider {
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
        Capabilities { exec_stream: true, files: true, ..Capabilities::default() }
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
    async fn logs(&self, _h: &RuntimeHandle, _lines: usize) -> ProviderResult<Vec<String>> {
        Ok(Vec::new())
    }
    async fn write_file(&self, h: &RuntimeHandle, p: &SandboxPath, c: Bytes, mode: u32) -> ProviderResult<()> {
        self.get(h)?.client.write_file(&p.to_string(), c, mode, self.ids.0, self.ids.1).await
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

fn provider(dir: &std::path::Path) -> HostAgentProvider {
    // SAFETY: plain getters.
    let ids = unsafe { (libc::getuid(), libc::getgid()) };
    HostAgentProvider { dir: dir.to_path_buf(), sandboxes: Mutex::default(), ids }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_passes_the_provider_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    stacyvm_provider::conformance::run(Arc::new(provider(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_processes_run_unprivileged_and_cancel_kills_them() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping to another uid needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("workspace")).unwrap();
    std::os::unix::fs::chown(root.join("workspace"), Some(1000), Some(1000)).unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = Command::new(env!("CARGO_BIN_EXE_stacyvm-agent"))
        .args(["--listen", socket.to_str().unwrap(), "--root", root.to_str().unwrap()])
        .spawn()
        .unwrap();
    let _guard = Sandbox { agent, client: AgentClient::connect(&socket, Duration::from_secs(5)).await.unwrap() };
    let client = &_guard.client;
    let run = |argv: &[&str]| ExecSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
        workdir: "/workspace".into(),
        timeout: Some(Duration::from_secs(10)),
    };
    let (tx, mut rx) = mpsc::channel(16);
    let script = "id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status";
    let outcome = client.exec(run(&["sh", "-c", script]), 1000, 1000, tx).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = rx.recv().await {
        text.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    assert_eq!(outcome.reason, stacyvm_provider::ExitReason::Exited(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["1000", "1000"], "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    assert!(text.contains("CapPrm:\t0000000000000000"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");

    // Files written by the agent belong to the sandbox user.
    client.write_file("/workspace/owned.txt", Bytes::from_static(b"x"), 0o644, 1000, 1000).await.unwrap();
    let meta = std::fs::metadata(root.join("workspace/owned.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);

    // Dropping an exec (the host gave up) kills the process inside.
    let marker = format!("{}", 31_000_000 + std::process::id());
    let (tx, _rx) = mpsc::channel(16);
    let long = client.exec(run(&["sleep", &marker]), 1000, 1000, tx);
    let _ = tokio::time::timeout(Duration::from_millis(300), long).await;
    let mut gone = false;
    for _ in 0..50 {
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        });
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "cancelled exec still running");
}
