//! Hostile workloads against the `oci` provider: a memory bomb is OOM-killed and reported as
//! such, and a fork bomb hits the pids limit while the sandbox (and its neighbours) stay usable.
//! Same prerequisites as `conformance.rs` (checked by `stacyvm_testkit::oci_prerequisites`).

mod common;

use std::time::{Duration, Instant};

use stacyvm_provider::conformance::{argv, capture, shell};
use stacyvm_provider::{ExitReason, Provider, RuntimeHandle, SandboxSpec};
use stacyvm_provider_oci::OciProvider;

use common::IMAGE;

async fn provider() -> Option<(tempfile::TempDir, OciProvider)> {
    common::offline_busybox_provider().await
}

/// A sandbox spec whose ID is unique to this test run (cgroup paths are host-global).
fn spec(tag: u32, memory_mb: u32) -> SandboxSpec {
    let id = format!("sb-{:08x}", (std::process::id() << 8) ^ tag);
    SandboxSpec { id, image: IMAGE.into(), memory_mb, vcpus: 1 }
}

/// Runs `body`, then destroys `sandboxes` whether or not it panicked.
async fn with_cleanup<F: std::future::Future<Output = ()>>(p: &OciProvider, sandboxes: &[&RuntimeHandle], body: F) {
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(body)).await;
    for h in sandboxes {
        let _ = p.destroy(h).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_oom_killed_and_reported() {
    let Some((_dir, p)) = provider().await else { return };
    let h = p.create(&spec(1, 48)).await.unwrap();
    with_cleanup(&p, &[&h], async {
        let out = capture(&p, &h, argv(&["tail", "/dev/zero"])).await.unwrap();
        assert_eq!(out.reason, ExitReason::OomKilled, "reported as an OOM kill");
        assert_eq!(out.reason.exit_code(), 137);
        let logs = p.logs(&h, 50).await.unwrap();
        assert!(
            logs.iter().any(|l| l.contains("[\"tail\", \"/dev/zero\"]") && l.contains("OomKilled")),
            "the console log records the OOM kill: {logs:?}"
        );
        let after = capture(&p, &h, argv(&["echo", "alive"])).await.unwrap();
        assert_eq!(after.text(stacyvm_types::exec::StreamName::Stdout), "alive\n", "the sandbox survives");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_hits_the_pids_limit_and_neighbours_stay_responsive() {
    let Some((_dir, p)) = provider().await else { return };
    let bomb = p.create(&spec(2, 128)).await.unwrap();
    let neighbour = p.create(&spec(3, 128)).await.unwrap();
    with_cleanup(&p, &[&bomb, &neighbour], fork_bomb(&p, &bomb, &neighbour)).await;
}

async fn fork_bomb(p: &OciProvider, bomb: &RuntimeHandle, neighbour: &RuntimeHandle) {
    let mut script = shell("i=0; while [ $i -lt 500 ]; do sleep 30 & i=$((i+1)); done; echo spawned $i");
    script.timeout = Some(Duration::from_secs(5));
    let out = capture(p, bomb, script).await.unwrap();
    let stdout = out.text(stacyvm_types::exec::StreamName::Stdout);
    assert!(!stdout.contains("spawned 500"), "500 processes fit under a 64-task limit: {stdout}");
    assert_ne!(out.reason, ExitReason::Exited(0), "the bomb failed to fork: {:?}", out.reason);
    // With the bomb's sandbox full of processes, the neighbour still answers quickly.
    let started = Instant::now();
    let ok = capture(p, neighbour, argv(&["true"])).await.unwrap();
    assert_eq!(ok.reason, ExitReason::Exited(0));
    assert!(started.elapsed() < Duration::from_secs(2), "neighbour exec took {:?}", started.elapsed());
    // Destroy removes every process the bomb left behind, promptly.
    let started = Instant::now();
    p.destroy(bomb).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "destroy took {:?}", started.elapsed());
    let leftover = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x0030")));
    assert!(!leftover, "a bomb process survived destroy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_kills_processes_that_ignore_sigterm() {
    let Some((_dir, p)) = provider().await else { return };
    let h = p.create(&spec(4, 64)).await.unwrap();
    let marker = format!("{}", 7_000_000 + std::process::id());
    let script = format!("trap '' TERM; sleep {marker} & sleep {marker} & echo started");
    let out = capture(&p, &h, shell(&script)).await.unwrap();
    assert_eq!(out.text(stacyvm_types::exec::StreamName::Stdout), "started\n");
    let running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
    };
    assert!(running(), "the stubborn processes run before destroy");
    let started = Instant::now();
    p.destroy(&h).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "destroy took {:?}", started.elapsed());
    assert!(!running(), "a process that ignores SIGTERM survived destroy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_cannot_reach_host_loopback_services() {
    let Some((_dir, p)) = provider().await else { return };
    // A service on the host's loopback that must stay out of reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let h = p.create(&spec(5, 64)).await.unwrap();
    with_cleanup(&p, &[&h], async {
        let probe = format!("echo x | nc -w 2 127.0.0.1 {port} && echo REACHED || echo unreachable");
        let out = capture(&p, &h, shell(&probe)).await.unwrap();
        let text = out.text(stacyvm_types::exec::StreamName::Stdout);
        assert!(text.contains("unreachable") && !text.contains("REACHED"), "{text}");
        assert!(listener.accept().is_err(), "the host service saw a connection");
    })
    .await;
}
