//! The Manager: one object that owns sandbox state and coordinates store, providers and events.
//!
//! Live sandboxes are held in memory (`sandboxes`), each behind its own lock, and written
//! through to the store on every state change; reads never touch the store. Spawn admission
//! reserves a slot by inserting a `pending` entry under a short map lock, then releases the lock
//! before the provider is called, so a slow runtime never blocks other spawns. Operations on
//! one sandbox are serialised by that sandbox's `op_lock`.

mod destroy;
mod exec;
mod files;
mod providers;
mod quotas;
mod reconcile;
mod spawn;
mod templates;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use stacyvm_provider::{Provider, ProviderRegistry, RuntimeHandle};
use stacyvm_store::{SandboxRecord, Store};
use stacyvm_types::lifecycle::LifecycleState;
use stacyvm_types::sandbox::Sandbox;

use crate::error::{CoreError, CoreResult};
use crate::events::EventBus;
use crate::lifecycle;
use crate::metrics::Metrics;
use crate::settings::Settings;

pub use destroy::Destroyed;
pub use exec::{build_argv, shell_quote, ExecEvent, ExecInputSender, ExecStream};
pub use files::file_info;
pub use providers::ProviderHealth;
pub use reconcile::ReconcileReport;
pub use spawn::SpawnContext;
pub use templates::to_template;

/// One live sandbox: its row, and the lock that serialises lifecycle operations on it.
pub(crate) struct SandboxEntry {
    record: Mutex<SandboxRecord>,
    op_lock: tokio::sync::Mutex<()>,
}

impl SandboxEntry {
    fn new(record: SandboxRecord) -> Arc<Self> {
        Arc::new(SandboxEntry { record: Mutex::new(record), op_lock: tokio::sync::Mutex::new(()) })
    }

    /// A copy of the row.
    pub(crate) fn snapshot(&self) -> SandboxRecord {
        self.record.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update<T>(&self, f: impl FnOnce(&mut SandboxRecord) -> T) -> T {
        f(&mut self.record.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Coordinates sandboxes. Share it as `Arc<Manager>`.
pub struct Manager {
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    settings: Settings,
    events: EventBus,
    metrics: Metrics,
    sandboxes: RwLock<HashMap<String, Arc<SandboxEntry>>>,
    health: RwLock<std::collections::BTreeMap<String, ProviderHealth>>,
    quotas: RwLock<HashMap<String, stacyvm_store::QuotaRecord>>,
    started: Instant,
}

impl Manager {
    /// Builds a manager. Call [`Manager::reconcile`] and [`Manager::start_background`] next.
    pub fn new(store: Arc<dyn Store>, providers: ProviderRegistry, settings: Settings) -> Arc<Self> {
        Arc::new(Manager {
            store,
            providers,
            settings,
            events: EventBus::default(),
            metrics: Metrics::default(),
            sandboxes: RwLock::new(HashMap::new()),
            health: RwLock::new(Default::default()),
            quotas: RwLock::new(HashMap::new()),
            started: Instant::now(),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Operation metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The store (for health and diagnostics).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The provider registry.
    pub fn providers(&self) -> &ProviderRegistry {
        &self.providers
    }

    /// Time since the manager was built.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Starts the TTL reaper and the provider health loop.
    pub fn start_background(self: &Arc<Self>) {
        let reaper = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(reaper.settings.reaper_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                reaper.reap_once().await;
            }
        });
        let health = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                health.refresh_health().await;
            }
        });
    }

    pub(crate) fn entry(&self, id: &str) -> Option<Arc<SandboxEntry>> {
        self.sandboxes.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// The entry of a live sandbox, or 404 (`sandbox destroyed` when the store remembers it).
    pub(crate) async fn live_entry(&self, id: &str) -> CoreResult<Arc<SandboxEntry>> {
        if let Some(entry) = self.entry(id) {
            return Ok(entry);
        }
        match self.store.get_sandbox(id).await? {
            Some(r) if r.state == LifecycleState::Destroyed => {
                Err(CoreError::NotFound(format!("sandbox destroyed: {id}")))
            }
            _ => Err(CoreError::sandbox_not_found(id)),
        }
    }

    /// A sandbox by ID.
    pub async fn get(&self, id: &str) -> CoreResult<Sandbox> {
        let entry = self.live_entry(id).await?;
        Ok(self.to_wire(&entry.snapshot()))
    }

    /// Every live sandbox, newest first.
    pub fn list(&self) -> Vec<Sandbox> {
        let mut records: Vec<SandboxRecord> =
            self.sandboxes.read().unwrap_or_else(|e| e.into_inner()).values().map(|e| e.snapshot()).collect();
        records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        records.iter().map(|r| self.to_wire(r)).collect()
    }

    /// Live sandboxes per state and provider (for metrics and diagnostics).
    pub fn live_records(&self) -> Vec<SandboxRecord> {
        self.sandboxes.read().unwrap_or_else(|e| e.into_inner()).values().map(|e| e.snapshot()).collect()
    }

    pub(crate) fn to_wire(&self, r: &SandboxRecord) -> Sandbox {
        Sandbox {
            id: r.id.clone(),
            state: r.state.wire(),
            provider: r.provider.clone(),
            image: r.image.clone(),
            memory_mb: r.memory_mb,
            vcpus: r.vcpus,
            owner_id: r.owner_id.clone(),
            tenant_id: r.tenant_id.clone(),
            vm_id: r.vm_id.clone(),
            worker_id: r.worker_id.clone(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            metadata: r.metadata.clone(),
            preview_domain: self.settings.preview_domain.clone(),
            // Parsed only when the handle has an address (bridge-networked oci sandboxes).
            ip_address: Some(r)
                .filter(|r| r.runtime.contains("\"ip\""))
                .and_then(Self::handle_of)
                .and_then(|h| h.details.get("ip").cloned())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn provider(&self, name: &str) -> CoreResult<Arc<dyn Provider>> {
        self.providers.get(name).ok_or_else(|| CoreError::NotFound(format!("provider not found: {name}")))
    }

    /// Moves an entry to `to` (checked by the state machine) and persists the row.
    pub(crate) async fn set_state(
        &self,
        entry: &SandboxEntry,
        to: LifecycleState,
        error: Option<String>,
    ) -> CoreResult<SandboxRecord> {
        let record = entry.update(|r| -> CoreResult<SandboxRecord> {
            lifecycle::transition(r.state, to).map_err(|e| CoreError::Internal(e.to_string()))?;
            r.state = to;
            r.updated_at = chrono::Utc::now();
            if let Some(msg) = error {
                r.error = msg;
            }
            if to == LifecycleState::Destroyed {
                r.destroyed_at = Some(r.updated_at);
            }
            Ok(r.clone())
        })?;
        self.store.update_sandbox(&record).await?;
        Ok(record)
    }

    pub(crate) fn handle_of(record: &SandboxRecord) -> Option<RuntimeHandle> {
        serde_json::from_str(&record.runtime).ok()
    }

    pub(crate) fn require_running(record: &SandboxRecord) -> CoreResult<RuntimeHandle> {
        if record.state != LifecycleState::Running {
            return Err(CoreError::Conflict(format!(
                "sandbox {} is not running (state: {})",
                record.id,
                record.state.wire().as_str()
            )));
        }
        Self::handle_of(record).ok_or_else(|| CoreError::Internal(format!("sandbox {} has no runtime", record.id)))
    }
}
