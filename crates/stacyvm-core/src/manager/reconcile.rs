//! Start-up reconciliation: make memory, store and providers agree after any crash.
//!
//! - Rows caught mid-spawn (`pending`/`starting`) never reached their caller: their runtime is
//!   removed and they are marked `error`.
//! - Rows caught mid-destroy (`stopping`) finish their destroy.
//! - Live rows whose runtime is gone are marked `error` ("runtime lost").
//! - Runtimes that a provider owns but no live row claims are orphans and are destroyed.
//! - Expired rows are left to the reaper, which runs right after.

use std::collections::HashSet;

use stacyvm_provider::RuntimeState;
use stacyvm_types::lifecycle::LifecycleState;

use super::{Manager, SandboxEntry};
use crate::error::CoreResult;

/// What a reconciliation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Live rows loaded from the store.
    pub loaded: usize,
    /// Rows marked `error` (interrupted spawn or lost runtime).
    pub marked_error: Vec<String>,
    /// Interrupted destroys completed.
    pub finished_destroys: Vec<String>,
    /// Orphan runtimes destroyed.
    pub orphans_destroyed: Vec<String>,
}

impl Manager {
    /// Loads live sandboxes from the store and converges store and providers.
    pub async fn reconcile(&self) -> CoreResult<ReconcileReport> {
        self.load_quotas().await?;
        let rows = self.store.list_live_sandboxes().await?;
        let mut report = ReconcileReport { loaded: rows.len(), ..Default::default() };
        let known: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        {
            let mut map = self.sandboxes.write().unwrap_or_else(|e| e.into_inner());
            for row in rows {
                map.insert(row.id.clone(), SandboxEntry::new(row));
            }
        }
        let entries: Vec<_> = self.sandboxes.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for entry in entries {
            let record = entry.snapshot();
            let Some(provider) = self.providers.get(&record.provider) else {
                tracing::warn!(sandbox = %record.id, provider = %record.provider, "provider of sandbox is not configured");
                continue;
            };
            match record.state {
                LifecycleState::Pending | LifecycleState::Starting => {
                    if let Some(h) = Self::handle_of(&record) {
                        let _ = provider.destroy(&h).await;
                    } else {
                        let _ = provider
                            .destroy(&stacyvm_provider::RuntimeHandle {
                                sandbox_id: record.id.clone(),
                                runtime_id: String::new(),
                                details: Default::default(),
                            })
                            .await;
                    }
                    self.set_state(&entry, LifecycleState::Error, Some("server restarted during spawn".into())).await?;
                    self.note(&mut report.marked_error, &record.id, "interrupted spawn");
                }
                LifecycleState::Stopping => {
                    if self.destroy_entry(&entry, "reconcile").await.is_ok() {
                        self.note(&mut report.finished_destroys, &record.id, "interrupted destroy finished");
                    }
                }
                LifecycleState::Error | LifecycleState::Destroyed => {}
                _ => {
                    let state = match Self::handle_of(&record) {
                        Some(h) => provider.inspect(&h).await.unwrap_or(RuntimeState::Missing),
                        None => RuntimeState::Missing,
                    };
                    if state != RuntimeState::Running {
                        self.set_state(
                            &entry,
                            LifecycleState::Error,
                            Some("runtime lost while the server was down".into()),
                        )
                        .await?;
                        self.note(&mut report.marked_error, &record.id, "runtime lost");
                    }
                }
            }
        }
        for (_, provider) in self.providers.all() {
            let Ok(owned) = provider.list_owned().await else { continue };
            for id in owned.into_iter().filter(|id| !known.contains(id)) {
                let handle = stacyvm_provider::RuntimeHandle {
                    sandbox_id: id.clone(),
                    runtime_id: String::new(),
                    details: Default::default(),
                };
                if provider.destroy(&handle).await.is_ok() {
                    self.note(&mut report.orphans_destroyed, &id, "orphan runtime destroyed");
                }
            }
        }
        Ok(report)
    }

    fn note(&self, list: &mut Vec<String>, id: &str, reason: &str) {
        tracing::info!(sandbox = %id, reason, "reconcile");
        self.events.publish(
            "reconcile.action",
            Some(id),
            Some(serde_json::json!({"action": reason, "reason": reason, "worker": self.settings.worker_id})),
        );
        list.push(id.to_string());
    }
}
