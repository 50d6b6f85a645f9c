//! Crash safety of the real server process: SIGKILL it (idle and in the middle of spawns),
//! restart it on the same database and mock root, and check that the store, the provider's
//! runtimes and the API agree again.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use stacyvm_client::{Client, ClientError};
use stacyvm_types::exec::ExecRequest;
use stacyvm_types::sandbox::{SpawnRequest, WireState};
use support::{Server, Workdir};

/// Reaper every second so a 2 s TTL is reaped within the test's time budget.
const FAST_REAPER: (&str, &str) = ("STACYVM_DEFAULTS_REAPER_INTERVAL", "1s");

fn http_status(err: &ClientError) -> Option<u16> {
    match err {
        ClientError::Http { status, .. } => Some(*status),
        _ => None,
    }
}

async fn exec_argv(client: &Client, id: &str, argv: &[&str]) -> Result<i32, ClientError> {
    let req = ExecRequest {
        command: argv[0].to_string(),
        args: argv[1..].iter().map(|s| s.to_string()).collect(),
        mode: "argv".into(),
        ..ExecRequest::default()
    };
    Ok(client.exec(id, &req).await?.exit_code)
}

/// Checks the SQLite file with `PRAGMA integrity_check` (the server must not be running).
fn assert_db_integrity(workdir: &Workdir) {
    let conn = rusqlite::Connection::open(workdir.db_path()).expect("open database");
    let result: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).expect("integrity_check");
    assert_eq!(result, "ok", "database integrity check failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_survives_sigkill_and_restart() {
    let workdir = Workdir::new();
    let mut server = Server::start(&workdir, &[FAST_REAPER]);
    let client = server.client();
    let http = reqwest::Client::new();

    let metadata = BTreeMap::from([("purpose".to_string(), "crash-test".to_string()), ("k".into(), "v".into())]);
    let live = client
        .spawn(&SpawnRequest {
            owner_id: Some("alice".into()),
            metadata: Some(metadata.clone()),
            ttl: Some("30m".into()),
            ..SpawnRequest::default()
        })
        .await
        .expect("spawn live sandbox");
    let doomed = client.spawn(&SpawnRequest::default()).await.expect("spawn sandbox to destroy");
    let short = client
        .spawn(&SpawnRequest { ttl: Some("2s".into()), ..SpawnRequest::default() })
        .await
        .expect("spawn short-lived sandbox");

    // Binary content with every byte value, written through the file API as base64.
    let content: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let write = http
        .post(format!("{}/api/v1/sandboxes/{}/files", server.url, live.id))
        .json(&serde_json::json!({
            "path": "/workspace/data.bin",
            "content": support::base64(&content),
            "encoding": "base64",
        }))
        .send()
        .await
        .expect("write file");
    assert_eq!(write.status(), 200, "{}", write.text().await.unwrap_or_default());

    client.destroy(&doomed.id).await.expect("destroy");
    assert!(!workdir.sandbox_dir(&doomed.id).exists());

    server.kill();
    assert!(workdir.sandbox_dir(&live.id).is_dir(), "the live sandbox's runtime must survive the crash");
    assert_db_integrity(&workdir);

    let server = Server::start(&workdir, &[FAST_REAPER]);
    let client = server.client();

    // The live sandbox is intact.
    let after = client.get(&live.id).await.expect("GET live sandbox after restart");
    assert_eq!(after.state, WireState::Running);
    assert_eq!(after.owner_id, "alice");
    assert_eq!(after.metadata, metadata);
    assert_eq!(after.expires_at, live.expires_at);
    assert_eq!(after.created_at, live.created_at);
    assert_eq!((after.provider.as_str(), after.image.as_str()), (live.provider.as_str(), live.image.as_str()));
    assert_eq!((after.memory_mb, after.vcpus), (live.memory_mb, live.vcpus));
    assert!(client.list().await.expect("list").iter().any(|s| s.id == live.id));

    let read = http
        .get(format!("{}/api/v1/sandboxes/{}/files", server.url, live.id))
        .query(&[("path", "/workspace/data.bin")])
        .send()
        .await
        .expect("read file");
    assert_eq!(read.status(), 200);
    assert_eq!(read.bytes().await.expect("file body").as_ref(), content.as_slice(), "file content changed");
    assert_eq!(exec_argv(&client, &live.id, &["test", "-f", "data.bin"]).await.expect("exec"), 0);

    // The destroyed one stays destroyed; destroying again is idempotent.
    let err = client.get(&doomed.id).await.expect_err("destroyed sandbox must not be found");
    assert_eq!(http_status(&err), Some(404), "{err}");
    client.destroy(&doomed.id).await.expect("DELETE of a destroyed sandbox is idempotent (200)");
    assert!(!workdir.sandbox_dir(&doomed.id).exists());

    // The 2 s sandbox is reaped once it expires (it may already be gone).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = matches!(client.get(&short.id).await, Err(ref e) if http_status(e) == Some(404));
        if gone && !workdir.sandbox_dir(&short.id).exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox {} (ttl 2s) still present 10 s after restart (api gone: {gone}, dir exists: {})\n{}",
            short.id,
            workdir.sandbox_dir(&short.id).exists(),
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reaping the short one left the others alone.
    assert_eq!(client.get(&live.id).await.expect("live sandbox").state, WireState::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_concurrent_spawns_leaves_no_creating_rows_or_orphans() {
    const ROUNDS: u64 = 4;
    const SPAWNS: usize = 20;
    // The same workdir across rounds: each restart also inherits every earlier crash's leftovers.
    let workdir = Workdir::new();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();

    for round in 0..ROUNDS {
        let mut server = Server::start(&workdir, &[]);
        let client =
            Client::with_timeout(&server.url, None, Duration::from_secs(5)).expect("client with short timeout");
        let tasks: Vec<_> = (0..SPAWNS)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let req = SpawnRequest {
                        metadata: Some(BTreeMap::from([("n".into(), i.to_string())])),
                        ..Default::default()
                    };
                    client.spawn(&req).await
                })
            })
            .collect();
        // 5..=50 ms, different every round.
        let delay = 5 + (u64::from(seed) / 1000 + round * 17) % 46;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        for task in tasks {
            if let Ok(sandbox) = task.await.expect("spawn task panicked") {
                acknowledged.insert(sandbox.id);
            }
        }
        assert_db_integrity(&workdir);

        let server = Server::start(&workdir, &[]);
        let client = server.client();
        let listed = client.list().await.expect("list after restart");
        let ids: BTreeSet<String> = listed.iter().map(|s| s.id.clone()).collect();
        let errors = listed.iter().filter(|s| s.state == WireState::Error).count();
        eprintln!(
            "round {round}: killed after {delay} ms; {} acknowledged so far, {} listed ({errors} error)",
            acknowledged.len(),
            listed.len()
        );
        let context = || format!("round {round}, delay {delay} ms, listed {listed:#?}\n{}", server.log_text());

        for sandbox in &listed {
            assert!(
                matches!(sandbox.state, WireState::Running | WireState::Error),
                "sandbox {} is {:?} after restart; {}",
                sandbox.id,
                sandbox.state,
                context()
            );
            if sandbox.state == WireState::Running {
                let code = exec_argv(&client, &sandbox.id, &["true"]).await;
                assert!(matches!(code, Ok(0)), "exec `true` in running {} gave {code:?}; {}", sandbox.id, context());
            }
        }
        // A spawn the server acknowledged (201) is durable: it must come back running.
        for id in &acknowledged {
            let sandbox = listed.iter().find(|s| &s.id == id);
            assert!(
                sandbox.is_some_and(|s| s.state == WireState::Running),
                "acknowledged sandbox {id} is not running after restart: {sandbox:?}; {}",
                context()
            );
        }
        // No runtime without a listed sandbox.
        let orphans: Vec<String> = workdir.sandbox_dirs().into_iter().filter(|d| !ids.contains(d)).collect();
        assert!(orphans.is_empty(), "orphan sandbox directories {orphans:?}; {}", context());
        drop(server);
    }
    assert_db_integrity(&workdir);
}

#[test]
fn orphan_runtime_directory_is_removed_at_start() {
    let workdir = Workdir::new();
    let orphan = workdir.sandbox_dir("sb-deadbeef");
    std::fs::create_dir_all(orphan.join("workspace")).expect("create orphan dir");
    std::fs::write(orphan.join("workspace/file.txt"), b"left behind").expect("write orphan file");
    // Something under the root that is not a sandbox directory is not the provider's to remove.
    let unrelated = workdir.mock_root().join("not-a-sandbox");
    std::fs::create_dir_all(&unrelated).expect("create unrelated dir");

    let server = Server::start(&workdir, &[]);
    assert!(!orphan.exists(), "orphan {} still exists after start\n{}", orphan.display(), server.log_text());
    assert!(unrelated.is_dir(), "reconciliation removed a directory that is not a sandbox");
    assert_eq!(support::http_status(server.port, "GET", "/api/v1/sandboxes/sb-deadbeef"), Some(404));
}
