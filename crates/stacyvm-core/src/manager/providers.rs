//! Provider health (checked in the background and on demand) and provider listings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stacyvm_types::lifecycle::LifecycleState;
use stacyvm_types::provider::{ProviderDetail, ProviderInfo};

use super::Manager;
use crate::error::{CoreError, CoreResult};

/// Longest a health check may take before it counts as failed.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Last health check result of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderHealth {
    /// Passed?
    pub healthy: bool,
    /// How long it took.
    pub latency_ms: f64,
    /// When it ran.
    pub checked_at: chrono::DateTime<chrono::Utc>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Manager {
    /// Runs every provider's health check now and caches the results.
    pub async fn refresh_health(&self) -> BTreeMap<String, bool> {
        let mut results = BTreeMap::new();
        for (name, provider) in self.providers.all() {
            let started = Instant::now();
            let outcome = tokio::time::timeout(HEALTH_TIMEOUT, provider.health()).await;
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("health check timed out after {}s", HEALTH_TIMEOUT.as_secs())),
            };
            let health = ProviderHealth {
                healthy: error.is_none(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                checked_at: chrono::Utc::now(),
                error,
            };
            if let Some(e) = &health.error {
                self.events.publish(
                    "provider.failed",
                    None,
                    Some(serde_json::json!({"operation": "health", "provider": name, "error": e})),
                );
            }
            results.insert(name.to_string(), health.healthy);
            self.health.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), health);
        }
        results
    }

    /// Why a provider is unusable, if its last check failed.
    pub(crate) fn unhealthy_reason(&self, name: &str) -> Option<String> {
        let health = self.health.read().unwrap_or_else(|e| e.into_inner());
        health.get(name).filter(|h| !h.healthy).map(|h| h.error.clone().unwrap_or_default())
    }

    fn runtime_count(&self, name: &str) -> u64 {
        self.live_records().iter().filter(|r| r.provider == name && r.state != LifecycleState::Destroyed).count() as u64
    }

    fn info(&self, name: &str) -> Option<ProviderInfo> {
        let provider = self.providers.get(name)?;
        let health = self.health.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
        let (healthy, latency_ms, last_checked, error) = match health {
            Some(h) => (
                h.healthy,
                h.latency_ms,
                stacyvm_types::time::rfc3339_millis(&h.checked_at),
                h.error.map(|e| if e.is_empty() { "health check returned false".into() } else { e }),
            ),
            None => (false, 0.0, String::new(), Some("not checked yet".into())),
        };
        Some(ProviderInfo {
            name: name.to_string(),
            healthy,
            default: name == self.providers.default_name(),
            latency_ms,
            last_checked,
            error,
            capabilities: provider.capabilities().names(provider.extra_capabilities()),
            runtime_count: Some(self.runtime_count(name)),
        })
    }

    /// Every provider, sorted by name.
    pub fn provider_infos(&self) -> Vec<ProviderInfo> {
        self.providers.all().filter_map(|(name, _)| self.info(name)).collect()
    }

    /// One provider in detail; 404 when unknown.
    pub fn provider_detail(&self, name: &str) -> CoreResult<ProviderDetail> {
        let provider = self.provider(name)?;
        let info = self.info(name).ok_or_else(|| CoreError::NotFound(format!("provider not found: {name}")))?;
        Ok(ProviderDetail {
            name: name.to_string(),
            healthy: info.healthy,
            default: info.default,
            sandbox_count: self.runtime_count(name),
            health: info,
            config: provider.describe(),
        })
    }

    /// True when at least one provider passed its last check.
    pub fn any_provider_healthy(&self) -> bool {
        self.health.read().unwrap_or_else(|e| e.into_inner()).values().any(|h| h.healthy)
    }
}
