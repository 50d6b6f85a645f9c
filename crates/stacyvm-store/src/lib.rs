//! Persistence for StacyVM.
//!
//! The store is split into one trait per resource ([`SandboxStore`], [`TemplateStore`],
//! [`ExecLogStore`]); [`Store`] bundles them. [`sqlite::SqliteStore`] is the embedded default
//! (WAL mode, versioned forward-only migrations). The core depends only on the traits.

mod records;
pub mod sqlite;
mod sqlite_migrations;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use records::{ExecLogRecord, QuotaRecord, SandboxRecord, TemplateRecord};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key already exists.
    #[error("already exists")]
    Conflict,
    /// The database failed.
    #[error("store: {0}")]
    Backend(String),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Sandbox rows.
#[async_trait]
pub trait SandboxStore: Send + Sync {
    /// Inserts a new row; `Conflict` if the ID exists.
    async fn insert_sandbox(&self, record: &SandboxRecord) -> StoreResult<()>;
    /// Replaces an existing row; `NotFound` if absent.
    async fn update_sandbox(&self, record: &SandboxRecord) -> StoreResult<()>;
    /// One row, destroyed or not.
    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>>;
    /// Rows not in state `destroyed`, newest first.
    async fn list_live_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>>;
    /// Deletes destroyed rows whose `destroyed_at` is before `cutoff`; returns how many.
    async fn purge_destroyed_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}

/// Template rows.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Inserts; `Conflict` if the name exists.
    async fn insert_template(&self, record: &TemplateRecord) -> StoreResult<()>;
    /// Replaces; `NotFound` if absent.
    async fn update_template(&self, record: &TemplateRecord) -> StoreResult<()>;
    /// One template.
    async fn get_template(&self, name: &str) -> StoreResult<Option<TemplateRecord>>;
    /// All templates ordered by name.
    async fn list_templates(&self) -> StoreResult<Vec<TemplateRecord>>;
    /// Deletes; `NotFound` if absent.
    async fn delete_template(&self, name: &str) -> StoreResult<()>;
}

/// Bounded exec history.
#[async_trait]
pub trait ExecLogStore: Send + Sync {
    /// Appends one exec record (output already truncated by the caller).
    async fn append_exec_log(&self, record: &ExecLogRecord) -> StoreResult<()>;
    /// Most recent records of one sandbox, newest first.
    async fn list_exec_logs(&self, sandbox_id: &str, limit: u32) -> StoreResult<Vec<ExecLogRecord>>;
    /// Deletes records created before `cutoff`.
    async fn purge_exec_logs_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}

/// Per-owner quotas.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Inserts or replaces (keeping the original `created_at`); returns the stored row.
    async fn upsert_quota(&self, record: &QuotaRecord) -> StoreResult<QuotaRecord>;
    /// All quotas ordered by owner.
    async fn list_quotas(&self) -> StoreResult<Vec<QuotaRecord>>;
    /// Deletes; `NotFound` if absent.
    async fn delete_quota(&self, owner_id: &str) -> StoreResult<()>;
}

/// Everything the core needs from persistence.
#[async_trait]
pub trait Store: SandboxStore + TemplateStore + ExecLogStore + QuotaStore {
    /// Round-trips a trivial query; returns its latency.
    async fn ping(&self) -> StoreResult<std::time::Duration>;
    /// Applied migration versions, ascending.
    async fn schema_versions(&self) -> StoreResult<Vec<u32>>;
}
