//! Provider status shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Health and capabilities of one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderInfo {
    /// Provider name.
    pub name: String,
    /// Last health check passed.
    pub healthy: bool,
    /// It is `providers.default`.
    pub default: bool,
    /// Health check latency.
    pub latency_ms: f64,
    /// When the health check ran (UTC).
    pub last_checked: String,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it supports: `spawn`, `exec`, `exec_stream`, `files`, ...
    pub capabilities: Vec<String>,
    /// Runtimes it currently holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_count: Option<u64>,
}

/// `GET /providers/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderDetail {
    /// Provider name.
    pub name: String,
    /// Last health check passed.
    pub healthy: bool,
    /// It is `providers.default`.
    pub default: bool,
    /// Live sandboxes on it.
    pub sandbox_count: u64,
    /// Same as the list entry.
    pub health: ProviderInfo,
    /// Non-secret settings; always has `type`.
    pub config: BTreeMap<String, String>,
}
