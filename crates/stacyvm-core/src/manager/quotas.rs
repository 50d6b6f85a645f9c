//! Per-owner quotas: CRUD and the effective limits that spawn, extend and exec enforce.
//! Quotas are cached in memory (loaded at start, written through) so checks never touch the
//! store.

use std::time::Duration;

use chrono::Utc;
use stacyvm_store::{QuotaRecord, StoreError};
use stacyvm_types::quota::{OwnerQuota, QuotaSummary, QuotaUpsert, QuotaUsage};
use stacyvm_types::GoDuration;

use super::Manager;
use crate::error::{CoreError, CoreResult};
use crate::validate;

fn to_wire(q: &QuotaRecord) -> OwnerQuota {
    OwnerQuota {
        owner_id: q.owner_id.clone(),
        max_sandboxes: q.max_sandboxes,
        max_ttl: validate::go(Duration::from_secs(q.max_ttl_secs)),
        max_exec_timeout: validate::go(Duration::from_secs(q.max_exec_timeout_secs)),
        created_at: stacyvm_types::time::rfc3339_millis(&q.created_at),
        updated_at: stacyvm_types::time::rfc3339_millis(&q.updated_at),
    }
}

/// Whole seconds ≥ 1s, or `""`/`0`/`0s` for "inherit" (returned as 0).
fn quota_seconds(field: &str, raw: &str) -> CoreResult<u64> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let d = GoDuration::parse(text).map_err(|e| CoreError::invalid(format!("{field}: {e}")))?;
    match d.as_nanos() {
        0 => Ok(0),
        n if n < 0 => Err(CoreError::invalid(format!("{field} must not be negative"))),
        n if n % 1_000_000_000 != 0 => Err(CoreError::invalid(format!("{field} must be whole seconds"))),
        n => Ok((n / 1_000_000_000) as u64),
    }
}

fn required_owner(raw: &str) -> CoreResult<String> {
    let owner = validate::owner_id(raw)?;
    if owner.is_empty() {
        return Err(CoreError::invalid("owner_id is required"));
    }
    Ok(owner)
}

impl Manager {
    /// Loads every quota into the cache (called at start).
    pub(crate) async fn load_quotas(&self) -> CoreResult<()> {
        let all = self.store.list_quotas().await?;
        let mut cache = self.quotas.write().unwrap_or_else(|e| e.into_inner());
        cache.clear();
        cache.extend(all.into_iter().map(|q| (q.owner_id.clone(), q)));
        Ok(())
    }

    fn quota_of(&self, owner: &str) -> Option<QuotaRecord> {
        if owner.is_empty() {
            return None;
        }
        self.quotas.read().unwrap_or_else(|e| e.into_inner()).get(owner).cloned()
    }

    /// Largest TTL for `owner` (quota, else default; zero = no cap).
    pub(crate) fn effective_max_ttl(&self, owner: &str) -> Duration {
        match self.quota_of(owner) {
            Some(q) if q.max_ttl_secs > 0 => Duration::from_secs(q.max_ttl_secs),
            _ => self.settings.max_ttl,
        }
    }

    /// Largest exec timeout for `owner`.
    pub(crate) fn effective_max_exec_timeout(&self, owner: &str) -> Duration {
        match self.quota_of(owner) {
            Some(q) if q.max_exec_timeout_secs > 0 => Duration::from_secs(q.max_exec_timeout_secs),
            _ => self.settings.max_exec_timeout,
        }
    }

    /// Live sandboxes `owner` may hold (0 = unlimited).
    pub(crate) fn effective_owner_cap(&self, owner: &str) -> u64 {
        match self.quota_of(owner) {
            Some(q) if q.max_sandboxes > 0 => u64::from(q.max_sandboxes),
            _ => u64::from(self.settings.max_sandboxes_per_owner),
        }
    }

    /// All quotas by owner.
    pub fn list_quotas(&self) -> Vec<OwnerQuota> {
        let cache = self.quotas.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = cache.values().map(to_wire).collect();
        all.sort_by(|a, b| a.owner_id.cmp(&b.owner_id));
        all
    }

    /// Counts for the SDK's `QuotaSummary`.
    pub fn quota_summary(&self) -> QuotaSummary {
        let cache = self.quotas.read().unwrap_or_else(|e| e.into_inner());
        QuotaSummary {
            total: cache.len() as u64,
            with_max_sandboxes: cache.values().filter(|q| q.max_sandboxes > 0).count() as u64,
            with_max_ttl: cache.values().filter(|q| q.max_ttl_secs > 0).count() as u64,
            with_max_exec_timeout: cache.values().filter(|q| q.max_exec_timeout_secs > 0).count() as u64,
        }
    }

    /// One owner's quota; 404 when none.
    pub fn get_quota(&self, owner: &str) -> CoreResult<OwnerQuota> {
        let owner = required_owner(owner)?;
        self.quota_of(&owner)
            .map(|q| to_wire(&q))
            .ok_or_else(|| CoreError::NotFound(format!("quota not found: {owner}")))
    }

    /// Creates or replaces a quota.
    pub async fn put_quota(&self, owner: &str, body: &QuotaUpsert) -> CoreResult<OwnerQuota> {
        let owner = required_owner(owner)?;
        if body.max_sandboxes < 0 {
            return Err(CoreError::invalid("max_sandboxes must not be negative"));
        }
        let max_sandboxes =
            u32::try_from(body.max_sandboxes).map_err(|_| CoreError::invalid("max_sandboxes is too large"))?;
        let now = Utc::now();
        let record = QuotaRecord {
            owner_id: owner.clone(),
            max_sandboxes,
            max_ttl_secs: quota_seconds("max_ttl", &body.max_ttl)?,
            max_exec_timeout_secs: quota_seconds("max_exec_timeout", &body.max_exec_timeout)?,
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.upsert_quota(&record).await?;
        self.quotas.write().unwrap_or_else(|e| e.into_inner()).insert(owner.clone(), stored.clone());
        self.events.publish("quota.saved", None, Some(serde_json::json!({"owner_id": owner})));
        Ok(to_wire(&stored))
    }

    /// Deletes a quota; 404 when none.
    pub async fn delete_quota(&self, owner: &str) -> CoreResult<()> {
        let owner = required_owner(owner)?;
        self.store.delete_quota(&owner).await.map_err(|e| match e {
            StoreError::NotFound => CoreError::NotFound(format!("quota not found: {owner}")),
            other => other.into(),
        })?;
        self.quotas.write().unwrap_or_else(|e| e.into_inner()).remove(&owner);
        self.events.publish("quota.deleted", None, Some(serde_json::json!({"owner_id": owner})));
        Ok(())
    }

    /// An owner's usage against their effective limits.
    pub fn quota_usage(&self, owner: &str) -> CoreResult<QuotaUsage> {
        let owner = required_owner(owner)?;
        let active = self.live_records().iter().filter(|r| r.owner_id == owner && r.state.is_live()).count() as u64;
        Ok(QuotaUsage {
            owner_id: owner.clone(),
            active_sandboxes: active,
            max_sandboxes: self.effective_owner_cap(&owner) as u32,
            max_ttl: validate::go(self.effective_max_ttl(&owner)),
            max_exec_timeout: validate::go(self.effective_max_exec_timeout(&owner)),
            quota_configured: self.quota_of(&owner).is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_durations() {
        assert_eq!(quota_seconds("max_ttl", "").unwrap(), 0);
        assert_eq!(quota_seconds("max_ttl", "0").unwrap(), 0);
        assert_eq!(quota_seconds("max_ttl", "0s").unwrap(), 0);
        assert_eq!(quota_seconds("max_ttl", "2h").unwrap(), 7200);
        for bad in ["1.5s", "500ms", "-1m", "abc"] {
            assert!(quota_seconds("max_ttl", bad).is_err(), "{bad}");
        }
    }
}
