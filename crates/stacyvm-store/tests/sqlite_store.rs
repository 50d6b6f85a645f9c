//! Contract tests for the SQLite store.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use stacyvm_store::sqlite::SqliteStore;
use stacyvm_store::{
    ExecLogRecord, ExecLogStore, QuotaRecord, QuotaStore, SandboxRecord, SandboxStore, Store, StoreError,
    TemplateRecord, TemplateStore,
};
use stacyvm_types::lifecycle::LifecycleState;

fn sandbox(id: &str, age_secs: i64) -> SandboxRecord {
    let now = Utc::now() - Duration::seconds(age_secs);
    SandboxRecord {
        id: id.into(),
        state: LifecycleState::Running,
        provider: "mock".into(),
        image: "alpine:latest".into(),
        memory_mb: 1024,
        vcpus: 1,
        owner_id: "alice".into(),
        tenant_id: String::new(),
        vm_id: String::new(),
        worker_id: "local".into(),
        created_at: now,
        expires_at: now + Duration::minutes(30),
        updated_at: now,
        destroyed_at: None,
        metadata: BTreeMap::from([("k".into(), "v".into())]),
        env: BTreeMap::new(),
        runtime: "{}".into(),
        error: String::new(),
    }
}

#[tokio::test]
async fn sandbox_rows_round_trip_and_list_newest_first() {
    let store = SqliteStore::in_memory().unwrap();
    store.insert_sandbox(&sandbox("sb-00000001", 10)).await.unwrap();
    store.insert_sandbox(&sandbox("sb-00000002", 5)).await.unwrap();
    assert!(matches!(store.insert_sandbox(&sandbox("sb-00000001", 1)).await, Err(StoreError::Conflict)));

    let got = store.get_sandbox("sb-00000001").await.unwrap().unwrap();
    assert_eq!(got.metadata.get("k").map(String::as_str), Some("v"));
    assert_eq!(got.owner_id, "alice");

    let ids: Vec<_> = store.list_live_sandboxes().await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["sb-00000002", "sb-00000001"]);

    let mut destroyed = got.clone();
    destroyed.state = LifecycleState::Destroyed;
    destroyed.destroyed_at = Some(Utc::now() - Duration::hours(2));
    store.update_sandbox(&destroyed).await.unwrap();
    assert_eq!(store.list_live_sandboxes().await.unwrap().len(), 1);
    assert_eq!(store.purge_destroyed_before(Utc::now() - Duration::hours(1)).await.unwrap(), 1);
    assert!(store.get_sandbox("sb-00000001").await.unwrap().is_none());
    assert!(matches!(store.update_sandbox(&destroyed).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn templates_crud_with_conflict_and_not_found() {
    let store = SqliteStore::in_memory().unwrap();
    let now = Utc::now();
    let t = TemplateRecord {
        name: "py".into(),
        image: "python:3.12".into(),
        version: 1,
        description: String::new(),
        memory_mb: 512,
        vcpus: 2,
        ttl_seconds: 2700,
        provider: String::new(),
        metadata: BTreeMap::new(),
        env: BTreeMap::new(),
        pool_size: 0,
        created_at: now,
        updated_at: now,
    };
    store.insert_template(&t).await.unwrap();
    assert!(matches!(store.insert_template(&t).await, Err(StoreError::Conflict)));
    assert_eq!(store.get_template("py").await.unwrap().unwrap().vcpus, 2);
    assert_eq!(store.list_templates().await.unwrap().len(), 1);
    store.delete_template("py").await.unwrap();
    assert!(matches!(store.delete_template("py").await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn exec_logs_append_list_purge() {
    let store = SqliteStore::in_memory().unwrap();
    for i in 0..3 {
        store
            .append_exec_log(&ExecLogRecord {
                sandbox_id: "sb-1".into(),
                command: format!("echo {i}"),
                exit_code: 0,
                stdout: i.to_string(),
                stderr: String::new(),
                duration_ms: 1,
                created_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    let logs = store.list_exec_logs("sb-1", 2).await.unwrap();
    assert_eq!(logs.iter().map(|l| l.stdout.as_str()).collect::<Vec<_>>(), ["2", "1"]);
    assert_eq!(store.purge_exec_logs_before(Utc::now() + Duration::seconds(1)).await.unwrap(), 3);
}

#[tokio::test]
async fn file_database_survives_reopen_and_records_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/stacyvm.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_sandbox(&sandbox("sb-0000000a", 0)).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.get_sandbox("sb-0000000a").await.unwrap().is_some());
    assert_eq!(store.schema_versions().await.unwrap(), [1, 2]);
    assert!(store.ping().await.is_ok());
}

#[tokio::test]
async fn refuses_a_database_from_a_newer_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'x')", []).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).err().expect("must refuse");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn quotas_upsert_keeps_created_at_and_delete_reports_missing() {
    let store = SqliteStore::in_memory().unwrap();
    let first = Utc::now() - Duration::hours(1);
    let mut q = QuotaRecord {
        owner_id: "alice".into(),
        max_sandboxes: 2,
        max_ttl_secs: 3600,
        max_exec_timeout_secs: 0,
        created_at: first,
        updated_at: first,
    };
    store.upsert_quota(&q).await.unwrap();
    q.max_sandboxes = 5;
    q.created_at = Utc::now();
    q.updated_at = Utc::now();
    let stored = store.upsert_quota(&q).await.unwrap();
    assert_eq!(stored.max_sandboxes, 5);
    assert_eq!(stored.created_at, first, "created_at survives updates");
    assert_eq!(store.list_quotas().await.unwrap().len(), 1);
    store.delete_quota("alice").await.unwrap();
    assert!(matches!(store.delete_quota("alice").await, Err(StoreError::NotFound)));
}
