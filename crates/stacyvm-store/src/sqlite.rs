//! Embedded SQLite store (WAL, one connection behind a mutex, calls run on the blocking pool).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::sqlite_migrations::MIGRATIONS;
use crate::{
    ExecLogRecord, ExecLogStore, QuotaRecord, QuotaStore, SandboxRecord, SandboxStore, Store, StoreError, StoreResult,
    TemplateRecord, TemplateStore,
};

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_sql(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict
        }
        _ => backend(e),
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_ts(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn json_map(text: &str) -> rusqlite::Result<BTreeMap<String, String>> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn map_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| backend(format!("create {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| backend(format!("open {}: {e}", path.display())))?;
        Self::init(conn)
    }

    /// An in-memory database (tests, benchmarks).
    pub fn in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> StoreResult<Self> {
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        // WAL + NORMAL is durable across process crashes (kill -9); only an OS crash may lose
        // the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        conn.pragma_update(None, "busy_timeout", 5000).map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
        migrate(&conn)?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| backend("store mutex poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .map_err(backend)?;
    let current: u32 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(backend)?;
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(backend(format!(
            "database schema version {current} is newer than this binary supports ({newest}); upgrade stacyvm"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.unchecked_transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(|e| backend(format!("migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, ts(&Utc::now())],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

const SANDBOX_COLUMNS: &str = "id, state, provider, image, memory_mb, vcpus, owner_id, tenant_id, vm_id, worker_id, \
     created_at, expires_at, updated_at, destroyed_at, metadata, env, runtime, error";

fn sandbox_from_row(row: &Row<'_>) -> rusqlite::Result<SandboxRecord> {
    let state: String = row.get(1)?;
    let destroyed_at: Option<String> = row.get(13)?;
    Ok(SandboxRecord {
        id: row.get(0)?,
        state: state
            .parse()
            .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into()))?,
        provider: row.get(2)?,
        image: row.get(3)?,
        memory_mb: row.get(4)?,
        vcpus: row.get(5)?,
        owner_id: row.get(6)?,
        tenant_id: row.get(7)?,
        vm_id: row.get(8)?,
        worker_id: row.get(9)?,
        created_at: parse_ts(&row.get::<_, String>(10)?)?,
        expires_at: parse_ts(&row.get::<_, String>(11)?)?,
        updated_at: parse_ts(&row.get::<_, String>(12)?)?,
        destroyed_at: destroyed_at.as_deref().map(parse_ts).transpose()?,
        metadata: json_map(&row.get::<_, String>(14)?)?,
        env: json_map(&row.get::<_, String>(15)?)?,
        runtime: row.get(16)?,
        error: row.get(17)?,
    })
}

#[async_trait]
impl SandboxStore for SqliteStore {
    async fn insert_sandbox(&self, r: &SandboxRecord) -> StoreResult<()> {
        let r = r.clone();
        self.with(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO sandboxes ({SANDBOX_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)"
            ))
            .and_then(|mut s| s.execute(params_from_iter(sandbox_params(&r))))
            .map_err(map_sql)?;
            Ok(())
        })
        .await
    }

    async fn update_sandbox(&self, r: &SandboxRecord) -> StoreResult<()> {
        let r = r.clone();
        self.with(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE sandboxes SET state=?2, provider=?3, image=?4, memory_mb=?5, vcpus=?6, owner_id=?7, \
                     tenant_id=?8, vm_id=?9, worker_id=?10, created_at=?11, expires_at=?12, updated_at=?13, \
                     destroyed_at=?14, metadata=?15, env=?16, runtime=?17, error=?18 WHERE id=?1",
                )
                .and_then(|mut s| s.execute(params_from_iter(sandbox_params(&r))))
                .map_err(map_sql)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        let id = id.to_string();
        self.with(move |c| {
            c.prepare_cached(&format!("SELECT {SANDBOX_COLUMNS} FROM sandboxes WHERE id=?1"))
                .and_then(|mut s| s.query_row([id], sandbox_from_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn list_live_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        self.with(|c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {SANDBOX_COLUMNS} FROM sandboxes WHERE state != 'destroyed' ORDER BY created_at DESC"
                ))
                .map_err(backend)?;
            let rows = s.query_map([], sandbox_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn purge_destroyed_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.with(move |c| {
            c.execute("DELETE FROM sandboxes WHERE state = 'destroyed' AND destroyed_at < ?1", [ts(&cutoff)])
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }
}

fn sandbox_params(r: &SandboxRecord) -> Vec<Box<dyn rusqlite::ToSql>> {
    vec![
        Box::new(r.id.clone()),
        Box::new(r.state.as_str()),
        Box::new(r.provider.clone()),
        Box::new(r.image.clone()),
        Box::new(r.memory_mb),
        Box::new(r.vcpus),
        Box::new(r.owner_id.clone()),
        Box::new(r.tenant_id.clone()),
        Box::new(r.vm_id.clone()),
        Box::new(r.worker_id.clone()),
        Box::new(ts(&r.created_at)),
        Box::new(ts(&r.expires_at)),
        Box::new(ts(&r.updated_at)),
        Box::new(r.destroyed_at.as_ref().map(ts)),
        Box::new(map_json(&r.metadata)),
        Box::new(map_json(&r.env)),
        Box::new(r.runtime.clone()),
        Box::new(r.error.clone()),
    ]
}

const TEMPLATE_COLUMNS: &str =
    "name, image, version, description, memory_mb, vcpus, ttl_seconds, provider, metadata, env, pool_size, created_at, updated_at";

fn template_from_row(row: &Row<'_>) -> rusqlite::Result<TemplateRecord> {
    Ok(TemplateRecord {
        name: row.get(0)?,
        image: row.get(1)?,
        version: row.get(2)?,
        description: row.get(3)?,
        memory_mb: row.get(4)?,
        vcpus: row.get(5)?,
        ttl_seconds: row.get(6)?,
        provider: row.get(7)?,
        metadata: json_map(&row.get::<_, String>(8)?)?,
        env: json_map(&row.get::<_, String>(9)?)?,
        pool_size: row.get(10)?,
        created_at: parse_ts(&row.get::<_, String>(11)?)?,
        updated_at: parse_ts(&row.get::<_, String>(12)?)?,
    })
}

fn template_params(t: &TemplateRecord) -> Vec<Box<dyn rusqlite::ToSql>> {
    vec![
        Box::new(t.name.clone()),
        Box::new(t.image.clone()),
        Box::new(t.version),
        Box::new(t.description.clone()),
        Box::new(t.memory_mb),
        Box::new(t.vcpus),
        Box::new(t.ttl_seconds),
        Box::new(t.provider.clone()),
        Box::new(map_json(&t.metadata)),
        Box::new(map_json(&t.env)),
        Box::new(t.pool_size),
        Box::new(ts(&t.created_at)),
        Box::new(ts(&t.updated_at)),
    ]
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn insert_template(&self, t: &TemplateRecord) -> StoreResult<()> {
        let t = t.clone();
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO templates ({TEMPLATE_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"
                ),
                params_from_iter(template_params(&t)),
            )
            .map_err(map_sql)?;
            Ok(())
        })
        .await
    }

    async fn update_template(&self, t: &TemplateRecord) -> StoreResult<()> {
        let t = t.clone();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE templates SET image=?2, version=?3, description=?4, memory_mb=?5, vcpus=?6, ttl_seconds=?7, \
                     provider=?8, metadata=?9, env=?10, pool_size=?11, created_at=?12, updated_at=?13 WHERE name=?1",
                    params_from_iter(template_params(&t)),
                )
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn get_template(&self, name: &str) -> StoreResult<Option<TemplateRecord>> {
        let name = name.to_string();
        self.with(move |c| {
            c.query_row(&format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE name=?1"), [name], template_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn list_templates(&self) -> StoreResult<Vec<TemplateRecord>> {
        self.with(|c| {
            let mut s =
                c.prepare(&format!("SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY name")).map_err(backend)?;
            let rows = s.query_map([], template_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_template(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.with(move |c| {
            let n = c.execute("DELETE FROM templates WHERE name=?1", [name]).map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ExecLogStore for SqliteStore {
    async fn append_exec_log(&self, r: &ExecLogRecord) -> StoreResult<()> {
        let r = r.clone();
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO exec_logs (sandbox_id, command, exit_code, stdout, stderr, duration_ms, created_at) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.sandbox_id,
                    r.command,
                    r.exit_code,
                    r.stdout,
                    r.stderr,
                    r.duration_ms,
                    ts(&r.created_at)
                ])
            })
            .map_err(map_sql)?;
            Ok(())
        })
        .await
    }

    async fn list_exec_logs(&self, sandbox_id: &str, limit: u32) -> StoreResult<Vec<ExecLogRecord>> {
        let id = sandbox_id.to_string();
        self.with(move |c| {
            let mut s = c
                .prepare(
                    "SELECT sandbox_id, command, exit_code, stdout, stderr, duration_ms, created_at FROM exec_logs \
                     WHERE sandbox_id=?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = s
                .query_map(params![id, limit], |row| {
                    Ok(ExecLogRecord {
                        sandbox_id: row.get(0)?,
                        command: row.get(1)?,
                        exit_code: row.get(2)?,
                        stdout: row.get(3)?,
                        stderr: row.get(4)?,
                        duration_ms: row.get(5)?,
                        created_at: parse_ts(&row.get::<_, String>(6)?)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn purge_exec_logs_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.with(move |c| {
            c.execute("DELETE FROM exec_logs WHERE created_at < ?1", [ts(&cutoff)]).map(|n| n as u64).map_err(backend)
        })
        .await
    }
}

fn quota_from_row(row: &Row<'_>) -> rusqlite::Result<QuotaRecord> {
    Ok(QuotaRecord {
        owner_id: row.get(0)?,
        max_sandboxes: row.get(1)?,
        max_ttl_secs: row.get(2)?,
        max_exec_timeout_secs: row.get(3)?,
        created_at: parse_ts(&row.get::<_, String>(4)?)?,
        updated_at: parse_ts(&row.get::<_, String>(5)?)?,
    })
}

const QUOTA_COLUMNS: &str = "owner_id, max_sandboxes, max_ttl_secs, max_exec_timeout_secs, created_at, updated_at";

#[async_trait]
impl QuotaStore for SqliteStore {
    async fn upsert_quota(&self, q: &QuotaRecord) -> StoreResult<QuotaRecord> {
        let q = q.clone();
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO owner_quotas ({QUOTA_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6) \
                     ON CONFLICT(owner_id) DO UPDATE SET max_sandboxes=excluded.max_sandboxes, \
                     max_ttl_secs=excluded.max_ttl_secs, max_exec_timeout_secs=excluded.max_exec_timeout_secs, \
                     updated_at=excluded.updated_at"
                ),
                params![
                    q.owner_id,
                    q.max_sandboxes,
                    q.max_ttl_secs,
                    q.max_exec_timeout_secs,
                    ts(&q.created_at),
                    ts(&q.updated_at)
                ],
            )
            .map_err(map_sql)?;
            c.query_row(
                &format!("SELECT {QUOTA_COLUMNS} FROM owner_quotas WHERE owner_id=?1"),
                [&q.owner_id],
                quota_from_row,
            )
            .map_err(backend)
        })
        .await
    }

    async fn list_quotas(&self) -> StoreResult<Vec<QuotaRecord>> {
        self.with(|c| {
            let mut s =
                c.prepare(&format!("SELECT {QUOTA_COLUMNS} FROM owner_quotas ORDER BY owner_id")).map_err(backend)?;
            let rows = s.query_map([], quota_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_quota(&self, owner_id: &str) -> StoreResult<()> {
        let owner = owner_id.to_string();
        self.with(move |c| {
            let n = c.execute("DELETE FROM owner_quotas WHERE owner_id=?1", [owner]).map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<Duration> {
        let start = Instant::now();
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await?;
        Ok(start.elapsed())
    }

    async fn schema_versions(&self) -> StoreResult<Vec<u32>> {
        self.with(|c| {
            let mut s = c.prepare("SELECT version FROM schema_migrations ORDER BY version").map_err(backend)?;
            let rows = s.query_map([], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }
}
