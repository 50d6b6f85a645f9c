//! The agent passes the provider conformance suite: a test provider runs one real agent
//! process per sandbox (on the host, with a temporary directory as the sandbox root) and
//! routes every exec and file operation through `AgentClient` over the Unix socket.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{provider, Sandbox};
use stacyvm_provider::agent_client::AgentClient;
use stacyvm_provider::ExecSpec;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_passes_the_provider_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    stacyvm_provider::conformance::run(Arc::new(provider(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_processes_run_unprivileged_and_cancel_kills_them() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping to another uid needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("workspace")).unwrap();
    std::os::unix::fs::chown(root.join("workspace"), Some(1000), Some(1000)).unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = Command::new(env!("CARGO_BIN_EXE_stacyvm-agent"))
        .args(["--listen", socket.to_str().unwrap(), "--root", root.to_str().unwrap()])
        .spawn()
        .unwrap();
    let _guard = Sandbox { agent, client: AgentClient::connect(&socket, Duration::from_secs(5)).await.unwrap() };
    let client = &_guard.client;
    let run = |argv: &[&str]| ExecSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
        workdir: "/workspace".into(),
        timeout: Some(Duration::from_secs(10)),
        pty: None,
    };
    let (tx, mut rx) = mpsc::channel(16);
    let script = "id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status";
    let outcome = client.exec(run(&["sh", "-c", script]), 1000, 1000, tx).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = rx.recv().await {
        text.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    assert_eq!(outcome.reason, stacyvm_provider::ExitReason::Exited(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["1000", "1000"], "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    assert!(text.contains("CapPrm:\t0000000000000000"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");

    // Files written by the agent belong to the sandbox user.
    client.write_file("/workspace/owned.txt", Bytes::from_static(b"x"), 0o644, 1000, 1000).await.unwrap();
    let meta = std::fs::metadata(root.join("workspace/owned.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);

    // Dropping an exec (the host gave up) kills the process inside.
    let marker = format!("{}", 31_000_000 + std::process::id());
    let (tx, _rx) = mpsc::channel(16);
    let long = client.exec(run(&["sleep", &marker]), 1000, 1000, tx);
    let _ = tokio::time::timeout(Duration::from_millis(300), long).await;
    let mut gone = false;
    for _ in 0..50 {
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        });
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "cancelled exec still running");
}
