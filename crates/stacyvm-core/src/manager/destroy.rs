//! Destroy, extend, prune and the TTL reaper.

use std::time::{Duration, Instant};

use chrono::Utc;
use stacyvm_types::lifecycle::LifecycleState;
use stacyvm_types::sandbox::Sandbox;

use super::{Manager, SandboxEntry};
use crate::error::{CoreError, CoreResult};
use crate::validate;

/// What a destroy call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destroyed {
    /// It was live and is now gone.
    Now,
    /// It was already destroyed (idempotent success).
    Already,
}

impl Manager {
    /// Destroys a sandbox. Unknown IDs are 404; already destroyed ones succeed again.
    pub async fn destroy(&self, id: &str) -> CoreResult<Destroyed> {
        let Some(entry) = self.entry(id) else {
            return match self.store.get_sandbox(id).await? {
                Some(r) if r.state == LifecycleState::Destroyed => Ok(Destroyed::Already),
                _ => Err(CoreError::sandbox_not_found(id)),
            };
        };
        self.destroy_entry(&entry, "destroy").await
    }

    pub(crate) async fn destroy_entry(&self, entry: &SandboxEntry, reason: &str) -> CoreResult<Destroyed> {
        let _guard = entry.op_lock.lock().await;
        let record = entry.snapshot();
        if record.state == LifecycleState::Destroyed {
            return Ok(Destroyed::Already);
        }
        let started = Instant::now();
        if record.state != LifecycleState::Stopping {
            self.set_state(entry, LifecycleState::Stopping, None).await?;
        }
        let provider = self.provider(&record.provider)?;
        let handle = Self::handle_of(&record).unwrap_or_else(|| stacyvm_provider::RuntimeHandle {
            sandbox_id: record.id.clone(),
            runtime_id: String::new(),
            details: Default::default(),
        });
        if let Err(err) = provider.destroy(&handle).await {
            self.metrics.record("destroy", &record.provider, false, started.elapsed());
            let message = format!("destroy failed: {err}");
            let _ = self.set_state(entry, LifecycleState::Error, Some(message.clone())).await;
            self.events.publish(
                "operation.failed",
                Some(&record.id),
                Some(
                    serde_json::json!({"operation": "destroy", "provider": record.provider, "error": err.to_string()}),
                ),
            );
            return Err(CoreError::Internal(message));
        }
        self.set_state(entry, LifecycleState::Destroyed, None).await?;
        self.forget(&record.id);
        self.metrics.record("destroy", &record.provider, true, started.elapsed());
        self.events.publish("sandbox.destroyed", Some(&record.id), Some(serde_json::json!({"reason": reason})));
        Ok(Destroyed::Now)
    }

    /// Sets `expires_at = now + ttl` (capped at the max TTL) and returns the sandbox.
    pub async fn extend(&self, id: &str, ttl: &str) -> CoreResult<Sandbox> {
        if ttl.trim().is_empty() {
            return Err(CoreError::BadRequest("ttl is required".into()));
        }
        let ttl = validate::positive_duration("ttl", Some(ttl))?.unwrap_or_default();
        let entry = self.live_entry(id).await?;
        self.check_ttl(ttl, &entry.snapshot().owner_id)?;
        let _guard = entry.op_lock.lock().await;
        let expires_at = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|d| Utc::now().checked_add_signed(d))
            .ok_or_else(|| CoreError::invalid("ttl is too large"))?;
        let record = entry.update(|r| {
            if r.state == LifecycleState::Running {
                r.expires_at = expires_at;
                r.updated_at = Utc::now();
                Ok(r.clone())
            } else {
                Err(CoreError::Conflict(format!("sandbox {} cannot be extended in state {}", r.id, r.state)))
            }
        })?;
        self.store.update_sandbox(&record).await?;
        Ok(self.to_wire(&record))
    }

    /// Destroys every live sandbox whose TTL has passed; returns how many.
    pub async fn prune(&self) -> CoreResult<u64> {
        let now = Utc::now();
        let expired: Vec<_> = self
            .sandboxes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.update(|r| r.expires_at < now))
            .cloned()
            .collect();
        let mut pruned = 0;
        for entry in expired {
            if entry.update(|r| {
                matches!(r.state, LifecycleState::Running | LifecycleState::Paused | LifecycleState::Unhealthy)
            }) {
                let _ = self.set_state(&entry, LifecycleState::Expired, None).await;
            }
            if self.destroy_entry(&entry, "expired").await? == Destroyed::Now {
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    /// One reaper pass: expire and destroy sandboxes past their TTL, then purge old rows.
    pub async fn reap_once(&self) {
        match self.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "reaped expired sandboxes"),
            Err(e) => tracing::warn!(error = %e, "reaper pass failed"),
        }
        let now = Utc::now();
        for (retention, which) in [
            (self.settings.destroyed_retention, "destroyed sandboxes"),
            (self.settings.exec_log_retention, "exec logs"),
        ] {
            if retention == Duration::ZERO {
                continue;
            }
            let Some(cutoff) = chrono::Duration::from_std(retention).ok().and_then(|d| now.checked_sub_signed(d))
            else {
                continue;
            };
            let purged = if which == "exec logs" {
                self.store.purge_exec_logs_before(cutoff).await
            } else {
                self.store.purge_destroyed_before(cutoff).await
            };
            if let Err(e) = purged {
                tracing::warn!(error = %e, what = which, "retention purge failed");
            }
        }
    }
}
