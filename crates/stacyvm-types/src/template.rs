//! Templates: named spawn presets. Both the server's and the SDK's field names are accepted
//! on input and both are emitted on output (spec `rest-api.md` §7).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;

/// Template as sent by clients (`POST /templates`, `PUT /templates/{name}`).
///
/// `cpu_cores` wins over its alias `vcpus`, and `ttl_seconds` over `ttl` (a Go duration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TemplateInput {
    /// Unique name (taken from the path on PUT).
    pub name: Option<String>,
    /// Image reference (required).
    pub image: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Memory in MiB (default 512).
    pub memory_mb: Option<i64>,
    /// vCPUs (server spelling).
    pub cpu_cores: Option<i64>,
    /// vCPUs (SDK spelling).
    pub vcpus: Option<i64>,
    /// TTL in seconds (server spelling).
    pub ttl_seconds: Option<i64>,
    /// TTL as a Go duration (SDK spelling).
    pub ttl: Option<String>,
    /// Provider to spawn on; empty means the server default.
    pub provider: Option<String>,
    /// Metadata merged into spawned sandboxes.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Environment applied to every exec in spawned sandboxes.
    pub env: Option<BTreeMap<String, String>>,
    /// Warm pool size (used once warm pools exist).
    pub pool_size: Option<i64>,
}

/// A stored template, with both field spellings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    /// Unique name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Bumped on every update, starting at 1.
    pub version: u32,
    /// Free text; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// vCPUs (server spelling).
    pub cpu_cores: u32,
    /// vCPUs (SDK spelling, same value).
    pub vcpus: u32,
    /// TTL in seconds.
    pub ttl_seconds: u64,
    /// TTL as a Go duration string, e.g. `5m0s`.
    pub ttl: String,
    /// Provider; empty means the server default.
    pub provider: String,
    /// Metadata merged into spawned sandboxes.
    pub metadata: BTreeMap<String, String>,
    /// Environment applied to every exec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Warm pool size.
    #[serde(default)]
    pub pool_size: u32,
    /// Creation time.
    #[serde(with = "crate::time::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last update time.
    #[serde(with = "crate::time::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// Optional body of `POST /templates/{name}/spawn`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TemplateSpawnRequest {
    /// Provider override.
    pub provider: Option<String>,
    /// TTL override.
    pub ttl: Option<String>,
}
