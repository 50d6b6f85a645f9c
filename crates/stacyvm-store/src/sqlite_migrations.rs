//! Versioned, forward-only SQLite migrations. Append new versions; never edit old ones.

/// `(version, SQL)` in ascending order.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        provider TEXT NOT NULL,
        image TEXT NOT NULL,
        memory_mb INTEGER NOT NULL,
        vcpus INTEGER NOT NULL,
        owner_id TEXT NOT NULL DEFAULT '',
        tenant_id TEXT NOT NULL DEFAULT '',
        vm_id TEXT NOT NULL DEFAULT '',
        worker_id TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        destroyed_at TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        env TEXT NOT NULL DEFAULT '{}',
        runtime TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX sandboxes_state ON sandboxes(state);
    CREATE TABLE templates (
        name TEXT PRIMARY KEY,
        image TEXT NOT NULL,
        version INTEGER NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        memory_mb INTEGER NOT NULL,
        vcpus INTEGER NOT NULL,
        ttl_seconds INTEGER NOT NULL,
        provider TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        env TEXT NOT NULL DEFAULT '{}',
        pool_size INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE exec_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sandbox_id TEXT NOT NULL,
        command TEXT NOT NULL,
        exit_code INTEGER NOT NULL,
        stdout TEXT NOT NULL,
        stderr TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX exec_logs_sandbox ON exec_logs(sandbox_id, id);",
    ),
    (
        2,
        "CREATE TABLE owner_quotas (
        owner_id TEXT PRIMARY KEY,
        max_sandboxes INTEGER NOT NULL DEFAULT 0,
        max_ttl_secs INTEGER NOT NULL DEFAULT 0,
        max_exec_timeout_secs INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
    ),
];
