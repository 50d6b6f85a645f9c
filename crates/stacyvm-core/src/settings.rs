//! Limits and defaults the Manager enforces (filled from the validated config by the binary).

use std::time::Duration;

/// Manager settings. Zero durations and counts mean "no limit" where the field says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Image when a spawn names none.
    pub default_image: String,
    /// Memory (MiB) when a spawn gives none or 0.
    pub default_memory_mb: u32,
    /// vCPUs when a spawn gives none or 0.
    pub default_vcpus: u32,
    /// TTL when a spawn gives none.
    pub default_ttl: Duration,
    /// Largest TTL (0 = no cap).
    pub max_ttl: Duration,
    /// Exec timeout when a request gives none (0 = none).
    pub default_exec_timeout: Duration,
    /// Largest exec timeout (0 = no cap).
    pub max_exec_timeout: Duration,
    /// Live sandboxes server-wide (0 = unlimited).
    pub max_sandboxes: u32,
    /// Live sandboxes per owner (0 = unlimited).
    pub max_sandboxes_per_owner: u32,
    /// Bytes of stdout (and of stderr) kept for a synchronous exec result.
    pub max_exec_output_bytes: usize,
    /// Bytes of each stream kept in the exec log.
    pub exec_log_bytes: usize,
    /// Preview URL domain suffix.
    pub preview_domain: String,
    /// This node's worker ID.
    pub worker_id: String,
    /// How often the TTL reaper runs.
    pub reaper_interval: Duration,
    /// Destroyed rows are purged after this long (0 = keep).
    pub destroyed_retention: Duration,
    /// Exec logs are purged after this long (0 = keep).
    pub exec_log_retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_image: "alpine:latest".into(),
            default_memory_mb: 1024,
            default_vcpus: 1,
            default_ttl: Duration::from_secs(30 * 60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_exec_timeout: Duration::ZERO,
            max_exec_timeout: Duration::from_secs(600),
            max_sandboxes: 0,
            max_sandboxes_per_owner: 0,
            max_exec_output_bytes: 16 << 20,
            exec_log_bytes: 64 << 10,
            preview_domain: "localhost".into(),
            worker_id: "local".into(),
            reaper_interval: Duration::from_secs(30),
            destroyed_retention: Duration::from_secs(7 * 24 * 3600),
            exec_log_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}
