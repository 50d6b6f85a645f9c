//! System routes: health, readiness, pool status, snapshots.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::provider::ProviderInfo;

/// `GET /health` and `GET /live`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` (health) or `alive` (live).
    pub status: String,
    /// Server version.
    pub version: String,
    /// Uptime as a Go duration string.
    pub uptime: String,
}

/// `GET /ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Server version.
    pub version: String,
    /// Uptime as a Go duration string.
    pub uptime: String,
    /// Every provider's health.
    pub providers: Vec<ProviderInfo>,
    /// How many are healthy.
    pub ready_providers: u64,
    /// How many there are.
    pub total_providers: u64,
    /// What to do when not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

/// `GET /pool/status`. `enabled` is always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolStatus {
    /// Whether pool mode is on.
    pub enabled: bool,
    /// Host VMs running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vms: Option<u64>,
    /// Host VM cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vms: Option<u64>,
    /// Users placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_users: Option<u64>,
    /// Users per host VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users_per_vm: Option<u64>,
}

/// One entry of `GET /snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotInfo {
    /// Image the snapshot boots.
    pub image: String,
    /// Provider that owns it.
    pub provider: String,
    /// When it was taken.
    pub created_at: String,
}
