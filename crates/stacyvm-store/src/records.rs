//! Plain row types shared by every store implementation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use stacyvm_types::lifecycle::LifecycleState;

/// One sandbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxRecord {
    /// `sb-xxxxxxxx`.
    pub id: String,
    /// Lifecycle state.
    pub state: LifecycleState,
    /// Provider name.
    pub provider: String,
    /// Image reference.
    pub image: String,
    /// Memory limit.
    pub memory_mb: u32,
    /// vCPUs.
    pub vcpus: u32,
    /// Owner or empty.
    pub owner_id: String,
    /// Tenant or empty.
    pub tenant_id: String,
    /// Host VM / remote runtime id, or empty.
    pub vm_id: String,
    /// Owning worker.
    pub worker_id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry time.
    pub expires_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was destroyed.
    pub destroyed_at: Option<DateTime<Utc>>,
    /// Caller metadata.
    pub metadata: BTreeMap<String, String>,
    /// Environment applied to every exec (from a template).
    pub env: BTreeMap<String, String>,
    /// Provider's opaque runtime handle (JSON), empty until created.
    pub runtime: String,
    /// Last error, if the sandbox failed.
    pub error: String,
}

/// One template row (values already validated and normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRecord {
    /// Unique name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Version, from 1.
    pub version: u32,
    /// Free text.
    pub description: String,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// vCPUs.
    pub vcpus: u32,
    /// TTL in seconds.
    pub ttl_seconds: u64,
    /// Provider or empty.
    pub provider: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Exec environment.
    pub env: BTreeMap<String, String>,
    /// Warm pool size.
    pub pool_size: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

/// One exec record; output is bounded by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecLogRecord {
    /// Sandbox.
    pub sandbox_id: String,
    /// Command line as requested.
    pub command: String,
    /// Exit code, or -1 when it did not finish.
    pub exit_code: i32,
    /// Truncated stdout.
    pub stdout: String,
    /// Truncated stderr.
    pub stderr: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// When it started.
    pub created_at: DateTime<Utc>,
}

/// A per-owner quota; zero values inherit the server defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRecord {
    /// Owner.
    pub owner_id: String,
    /// Live sandboxes allowed.
    pub max_sandboxes: u32,
    /// Largest TTL in seconds.
    pub max_ttl_secs: u64,
    /// Largest exec timeout in seconds.
    pub max_exec_timeout_secs: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}
