//! Sandbox shapes: the Sandbox resource, spawn requests and admission decisions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;

/// Sandbox state as seen on the wire (spec `rest-api.md` §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WireState {
    /// Being created.
    Creating,
    /// Ready to run commands.
    Running,
    /// The owning worker or runtime does not answer.
    Unhealthy,
    /// Its TTL passed; it will be reaped.
    Expired,
    /// Stopped.
    Stopped,
    /// Paused.
    Paused,
    /// Gone (never returned by GET, which answers 404 instead).
    Destroyed,
    /// Failed.
    Error,
}

impl WireState {
    /// The wire spelling, e.g. `running`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WireState::Creating => "creating",
            WireState::Running => "running",
            WireState::Unhealthy => "unhealthy",
            WireState::Expired => "expired",
            WireState::Stopped => "stopped",
            WireState::Paused => "paused",
            WireState::Destroyed => "destroyed",
            WireState::Error => "error",
        }
    }
}

/// A sandbox as returned by spawn, get, list, extend and template spawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sandbox {
    /// `sb-` + 8 hex digits.
    #[schema(example = "sb-1a2b3c4d")]
    pub id: String,
    /// Current state.
    pub state: WireState,
    /// Provider that runs it.
    pub provider: String,
    /// Image it was spawned from.
    pub image: String,
    /// Memory limit in MiB.
    pub memory_mb: u32,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Owner (from `X-User-ID` or the body); omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner_id: String,
    /// Tenant; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant_id: String,
    /// Runtime ID of the host VM or remote runtime; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vm_id: String,
    /// Worker that owns it (`local` on a single node).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub worker_id: String,
    /// Creation time (UTC).
    #[serde(with = "crate::time::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Expiry time (UTC).
    #[serde(with = "crate::time::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Caller-supplied metadata; omitted when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Domain suffix for preview URLs (`http://<port>-<id>.<domain>`).
    pub preview_domain: String,
    /// The sandbox's IPv4 address on its provider's network (the `oci` provider with
    /// `network: bridge`); omitted when it has none. An extension field: SDKs ignore it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_address: String,
}

/// Body of `POST /sandboxes` and `POST /sandboxes/admission`. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct SpawnRequest {
    /// Image reference; defaults to `defaults.image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Provider name; defaults to `providers.default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Memory in MiB; absent or 0 means the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<i64>,
    /// vCPUs; absent or 0 means the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i64>,
    /// TTL as a Go duration string, e.g. `30m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Template whose values fill in absent fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Owner; overridden by the `X-User-ID` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Ignored on input: the tenant comes from the caller's identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Metadata stored and echoed with the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Admission preflight answer. Exactly these keys: the Python SDK builds a dataclass from
/// every key, so an extra one breaks it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpawnAdmissionDecision {
    /// Whether a spawn would be admitted now.
    pub allowed: bool,
    /// Whether a denied spawn would wait in the spawn queue.
    pub queueable: bool,
    /// Why it was denied: `max_ttl`, `max_sandboxes`, `max_sandboxes_per_owner`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Active sandboxes server-wide.
    #[serde(default)]
    pub active_sandboxes: u64,
    /// Server-wide cap (0 = unlimited).
    #[serde(default)]
    pub max_sandboxes: u64,
    /// Active sandboxes of this owner; omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub active_owner_sandboxes: u64,
    /// Per-owner cap; omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_owner_sandboxes: u64,
    /// Effective maximum TTL, when one is in force.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub max_ttl: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Body of `POST /sandboxes/{id}/extend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ExtendRequest {
    /// New TTL counted from now, e.g. `1h`.
    pub ttl: String,
}

/// Answer of `DELETE /sandboxes` (prune).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PruneResponse {
    /// How many expired sandboxes were destroyed.
    pub pruned: u64,
}

/// `{"status": "..."}` acknowledgements (destroyed, written, deleted, moved, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// What happened.
    pub status: String,
}

impl StatusResponse {
    /// Builds an acknowledgement.
    pub fn new(status: &str) -> Self {
        StatusResponse { status: status.to_string() }
    }
}

/// Resource usage of a sandbox (`GET /sandboxes/{id}/stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxStats {
    /// Whether the provider reports usage.
    pub supported: bool,
    /// CPU use in percent of one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pct: Option<f64>,
    /// Memory in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bytes: Option<u64>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_state_spelling_matches_serde() {
        for state in [
            WireState::Creating,
            WireState::Running,
            WireState::Unhealthy,
            WireState::Expired,
            WireState::Stopped,
            WireState::Paused,
            WireState::Destroyed,
            WireState::Error,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn ip_address_is_emitted_only_when_known() {
        let json = r#"{"id":"sb-1a2b3c4d","state":"running","provider":"oci","image":"i","memory_mb":1,"vcpus":1,
            "created_at":"2026-05-08T10:30:00.123Z","expires_at":"2026-05-08T11:00:00.123Z","preview_domain":"localhost"}"#;
        let mut sb: Sandbox = serde_json::from_str(json).unwrap();
        assert!(!serde_json::to_value(&sb).unwrap().as_object().unwrap().contains_key("ip_address"));
        sb.ip_address = "10.88.0.2".into();
        assert_eq!(serde_json::to_value(&sb).unwrap()["ip_address"], "10.88.0.2");
    }

    #[test]
    fn admission_emits_only_documented_keys() {
        let d = SpawnAdmissionDecision { allowed: true, ..Default::default() };
        let v = serde_json::to_value(&d).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["active_sandboxes", "allowed", "max_sandboxes", "queueable"]);
    }
}
