//! Manager behaviour on a real SQLite store and the mock provider: TTL expiry, crash
//! reconciliation, concurrency (no global spawn lock, per-sandbox serialisation, atomic
//! admission) and failed spawns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use stacyvm_core::manager::{Destroyed, SpawnContext};
use stacyvm_core::{CoreError, Manager, Settings};
use stacyvm_provider::mock::MockProvider;
use stacyvm_provider::{
    Capabilities, ExecOutcome, ExecSpec, FileEntry, FileReader, OutputChunk, Provider, ProviderError, ProviderRegistry,
    ProviderResult, RuntimeHandle, RuntimeState, SandboxPath, SandboxSpec,
};
use stacyvm_store::sqlite::SqliteStore;
use stacyvm_store::{SandboxRecord, SandboxStore};
use stacyvm_types::exec::ExecRequest;
use stacyvm_types::lifecycle::LifecycleState;
use stacyvm_types::sandbox::SpawnRequest;
use tokio::sync::mpsc;

/// The mock provider, except that image `slow` takes 2 s to create and image `fail` fails.
struct TestProvider(MockProvider);

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &str {
        "mock"
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn describe(&self) -> BTreeMap<String, String> {
        self.0.describe()
    }
    async fn health(&self) -> ProviderResult<()> {
        self.0.health().await
    }
    async fn create(&self, spec: &SandboxSpec) -> ProviderResult<RuntimeHandle> {
        match spec.image.as_str() {
            "slow" => tokio::time::sleep(Duration::from_secs(2)).await,
            "fail" => return Err(ProviderError::Failed("image could not be unpacked".into())),
            _ => {}
        }
        self.0.create(spec).await
    }
    async fn destroy(&self, h: &RuntimeHandle) -> ProviderResult<()> {
        self.0.destroy(h).await
    }
    async fn inspect(&self, h: &RuntimeHandle) -> ProviderResult<RuntimeState> {
        self.0.inspect(h).await
    }
    async fn list_owned(&self) -> ProviderResult<Vec<String>> {
        self.0.list_owned().await
    }
    async fn exec(&self, h: &RuntimeHandle, s: ExecSpec, o: mpsc::Sender<OutputChunk>) -> ProviderResult<ExecOutcome> {
        self.0.exec(h, s, o).await
    }
    async fn logs(&self, h: &RuntimeHandle, lines: usize) -> ProviderResult<Vec<String>> {
        self.0.logs(h, lines).await
    }
    async fn write_file(&self, h: &RuntimeHandle, p: &SandboxPath, c: Bytes, m: u32) -> ProviderResult<()> {
        self.0.write_file(h, p, c, m).await
    }
    async fn read_file(&self, h: &RuntimeHandle, p: &SandboxPath) -> ProviderResult<FileReader> {
        self.0.read_file(h, p).await
    }
    async fn list_dir(&self, h: &RuntimeHandle, p: &SandboxPath) -> ProviderResult<Vec<FileEntry>> {
        self.0.list_dir(h, p).await
    }
    async fn stat(&self, h: &RuntimeHandle, p: &SandboxPath) -> ProviderResult<FileEntry> {
        self.0.stat(h, p).await
    }
    async fn glob(&self, h: &RuntimeHandle, pattern: &str) -> ProviderResult<Vec<String>> {
        self.0.glob(h, pattern).await
    }
    async fn rename(&self, h: &RuntimeHandle, a: &SandboxPath, b: &SandboxPath) -> ProviderResult<()> {
        self.0.rename(h, a, b).await
    }
    async fn chmod(&self, h: &RuntimeHandle, p: &SandboxPath, m: u32) -> ProviderResult<()> {
        self.0.chmod(h, p, m).await
    }
    async fn remove(&self, h: &RuntimeHandle, p: &SandboxPath, r: bool) -> ProviderResult<()> {
        self.0.remove(h, p, r).await
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<SqliteStore>,
    manager: Arc<Manager>,
}

async fn fixture(settings: Settings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mock");
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let manager = build(&store, &root, settings).await;
    Fixture { _dir: dir, root, store, manager }
}

async fn build(store: &Arc<SqliteStore>, root: &std::path::Path, settings: Settings) -> Arc<Manager> {
    let mut registry = ProviderRegistry::new("mock");
    registry.register(Arc::new(TestProvider(MockProvider::new(root).unwrap())));
    let manager = Manager::new(store.clone(), registry, settings);
    manager.reconcile().await.unwrap();
    manager.refresh_health().await;
    manager
}

fn spawn_req(image: &str) -> SpawnRequest {
    SpawnRequest { image: Some(image.into()), ..SpawnRequest::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_destroys_and_emits_events() {
    let f = fixture(Settings::default()).await;
    let mut events = f.manager.events().subscribe();
    let req = SpawnRequest { ttl: Some("150ms".into()), ..spawn_req("alpine") };
    let sb = f.manager.spawn(req, &SpawnContext::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    f.manager.reap_once().await;
    let err = f.manager.get(&sb.id).await.unwrap_err();
    assert_eq!(err, CoreError::NotFound(format!("sandbox destroyed: {}", sb.id)));
    assert!(!f.root.join(&sb.id).exists(), "runtime directory removed");
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push((e.kind, e.data.and_then(|d| d.get("reason").cloned())));
    }
    assert!(kinds.iter().any(|(k, _)| k == "sandbox.created"));
    assert!(kinds.contains(&("sandbox.destroyed".into(), Some(serde_json::json!("expired")))), "{kinds:?}");
    let row = f.store.get_sandbox(&sb.id).await.unwrap().unwrap();
    assert_eq!(row.state, LifecycleState::Destroyed);
}

fn row(id: &str, state: LifecycleState, runtime: bool) -> SandboxRecord {
    let now = Utc::now();
    SandboxRecord {
        id: id.into(),
        state,
        provider: "mock".into(),
        image: "alpine".into(),
        memory_mb: 256,
        vcpus: 1,
        owner_id: String::new(),
        tenant_id: String::new(),
        vm_id: String::new(),
        worker_id: "local".into(),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(30),
        updated_at: now,
        destroyed_at: None,
        metadata: BTreeMap::new(),
        env: BTreeMap::new(),
        runtime: if runtime {
            serde_json::json!({"sandbox_id": id, "runtime_id": id}).to_string()
        } else {
            String::new()
        },
        error: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_repairs_every_crash_state() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mock");
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let mock = MockProvider::new(&root).unwrap();
    // Runtimes as a crash would leave them.
    for id in ["sb-0000000a", "sb-0000000b", "sb-0000000d", "sb-0000000e"] {
        let spec = SandboxSpec { id: id.into(), image: "alpine".into(), memory_mb: 1, vcpus: 1 };
        mock.create(&spec).await.unwrap();
    }
    store.insert_sandbox(&row("sb-0000000a", LifecycleState::Running, true)).await.unwrap(); // healthy
    store.insert_sandbox(&row("sb-0000000b", LifecycleState::Starting, false)).await.unwrap(); // mid-spawn
    store.insert_sandbox(&row("sb-0000000c", LifecycleState::Running, true)).await.unwrap(); // runtime lost
    store.insert_sandbox(&row("sb-0000000d", LifecycleState::Stopping, true)).await.unwrap(); // mid-destroy
                                                                                              // sb-0000000e has a runtime but no row: an orphan.

    let mut registry = ProviderRegistry::new("mock");
    registry.register(Arc::new(mock));
    let manager = Manager::new(store.clone(), registry, Settings::default());
    let report = manager.reconcile().await.unwrap();
    assert_eq!(report.loaded, 4);
    let mut marked = report.marked_error.clone();
    marked.sort();
    assert_eq!(marked, ["sb-0000000b", "sb-0000000c"]);
    assert_eq!(report.finished_destroys, ["sb-0000000d"]);
    assert_eq!(report.orphans_destroyed, ["sb-0000000e"]);

    let state = |id: &str| {
        let store = store.clone();
        let id = id.to_string();
        async move { store.get_sandbox(&id).await.unwrap().unwrap().state }
    };
    assert_eq!(state("sb-0000000a").await, LifecycleState::Running);
    assert_eq!(state("sb-0000000b").await, LifecycleState::Error);
    assert_eq!(state("sb-0000000c").await, LifecycleState::Error);
    assert_eq!(state("sb-0000000d").await, LifecycleState::Destroyed);
    for gone in ["sb-0000000b", "sb-0000000d", "sb-0000000e"] {
        assert!(!root.join(gone).exists(), "{gone} runtime removed");
    }
    manager.refresh_health().await;
    let out = manager
        .exec(
            "sb-0000000a",
            &ExecRequest {
                command: "echo".into(),
                args: vec!["alive".into()],
                mode: "argv".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "alive\n");
    // Listed states are truthful: nothing is reported as creating.
    let listed: Vec<_> = manager.list().into_iter().map(|s| (s.id, s.state)).collect();
    assert_eq!(listed.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_spawn_does_not_block_other_spawns() {
    let f = fixture(Settings::default()).await;
    let slow = {
        let m = f.manager.clone();
        tokio::spawn(async move { m.spawn(spawn_req("slow"), &SpawnContext::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let fast = f.manager.spawn(spawn_req("alpine"), &SpawnContext::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "fast spawn waited {:?}", started.elapsed());
    assert!(!slow.is_finished(), "the slow spawn is still running");
    // While the slow one is being created it is listed as creating.
    let states: Vec<_> = f.manager.list().into_iter().map(|s| serde_json::to_value(s.state).unwrap()).collect();
    assert!(states.contains(&serde_json::json!("creating")), "{states:?}");
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(f.manager.get(&slow.id).await.unwrap().id, slow.id);
    f.manager.destroy(&fast.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_destroys_of_one_sandbox_are_serialised() {
    let f = fixture(Settings::default()).await;
    let sb = f.manager.spawn(spawn_req("alpine"), &SpawnContext::default()).await.unwrap();
    let results = futures::future::join_all((0..10).map(|_| {
        let m = f.manager.clone();
        let id = sb.id.clone();
        tokio::spawn(async move { m.destroy(&id).await })
    }))
    .await;
    let outcomes: Vec<Destroyed> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Destroyed::Now).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == Destroyed::Already).count(), 9);
    assert!(matches!(f.manager.destroy("sb-nonexistent").await, Err(CoreError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_reserves_slots_atomically() {
    let f = fixture(Settings { max_sandboxes: 3, ..Settings::default() }).await;
    let results = futures::future::join_all((0..10).map(|_| {
        let m = f.manager.clone();
        tokio::spawn(async move { m.spawn(spawn_req("alpine"), &SpawnContext::default()).await })
    }))
    .await;
    let ok = results.iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    let limited = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), Err(CoreError::ResourceLimit(m)) if m == "max sandboxes reached (3)"))
        .count();
    assert_eq!((ok, limited), (3, 7));
    assert_eq!(f.manager.list().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_spawn_leaves_nothing_behind() {
    let f = fixture(Settings::default()).await;
    let err = f.manager.spawn(spawn_req("fail"), &SpawnContext::default()).await.unwrap_err();
    assert!(matches!(err, CoreError::Internal(ref m) if m.contains("could not be unpacked")), "{err:?}");
    assert!(f.manager.list().is_empty());
    assert!(f.store.list_live_sandboxes().await.unwrap().is_empty());
    let entries: Vec<_> =
        std::fs::read_dir(&f.root).unwrap().flatten().filter(|e| e.file_name() != ".console").collect();
    assert!(entries.is_empty(), "no runtime directory left");
}
