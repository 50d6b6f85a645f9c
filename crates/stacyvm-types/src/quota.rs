//! Per-owner quotas.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stored quota. Durations are Go strings; `0s` and 0 mean "inherit the server default".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnerQuota {
    /// Owner the quota applies to.
    pub owner_id: String,
    /// Live sandboxes allowed (0 = inherit).
    pub max_sandboxes: u32,
    /// Largest TTL (`0s` = inherit).
    pub max_ttl: String,
    /// Largest exec timeout (`0s` = inherit).
    pub max_exec_timeout: String,
    /// Created.
    pub created_at: String,
    /// Updated.
    pub updated_at: String,
}

/// Body of `PUT /quotas/{owner}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct QuotaUpsert {
    /// Live sandboxes allowed (0 = inherit; negative is an error).
    pub max_sandboxes: i64,
    /// Largest TTL: whole seconds ≥ 1s, or `""`/`0`/`0s` to inherit.
    pub max_ttl: String,
    /// Largest exec timeout, same rules.
    pub max_exec_timeout: String,
}

/// `GET /quotas/summary`. Exactly these four keys: the Python SDK builds a dataclass from
/// every key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaSummary {
    /// Quotas stored.
    pub total: u64,
    /// With a sandbox cap.
    pub with_max_sandboxes: u64,
    /// With a TTL cap.
    pub with_max_ttl: u64,
    /// With an exec timeout cap.
    pub with_max_exec_timeout: u64,
}

/// `GET /quotas/{owner}/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsage {
    /// Owner.
    pub owner_id: String,
    /// Live sandboxes of this owner.
    pub active_sandboxes: u64,
    /// Effective cap (0 = unlimited).
    pub max_sandboxes: u32,
    /// Effective TTL cap.
    pub max_ttl: String,
    /// Effective exec timeout cap.
    pub max_exec_timeout: String,
    /// Whether a quota row exists.
    pub quota_configured: bool,
}
