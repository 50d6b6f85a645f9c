//! `kill -9` of a server running the `oci` provider while spawns are in flight: after a
//! restart, half-made sandboxes are cleaned up, acknowledged ones still run, and once every
//! sandbox is destroyed nothing is left on the host (mounts, cgroups, directories, agents).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use stacyvm_client::Client;
use stacyvm_types::exec::ExecRequest;
use stacyvm_types::sandbox::{SpawnRequest, WireState};
use support::{Server, Workdir};

fn agent_processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("/.stacyvm/run/agent.sock"))
        })
        .count()
}

fn host_traces(data: &Path, ids: &BTreeSet<String>) -> Vec<String> {
    let mut traces = Vec::new();
    let data_text = data.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    traces.extend(mounts.lines().filter(|l| l.contains(&data_text)).map(|l| format!("mount {l}")));
    for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        // `/stacyvm/<instance>/<id>` (and the pre-instance layout `/stacyvm/<id>`).
        let mut parents = vec![h.path().join("stacyvm")];
        parents.extend(std::fs::read_dir(h.path().join("stacyvm")).into_iter().flatten().flatten().map(|e| e.path()));
        for parent in &parents {
            for id in ids {
                let dir = parent.join(id);
                if dir.exists() {
                    traces.push(format!("cgroup {}", dir.display()));
                }
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(data.join("sandboxes")) {
        traces.extend(entries.flatten().map(|e| format!("dir {}", e.path().display())));
    }
    if let Ok(entries) = std::fs::read_dir(data.join("images/leases")) {
        traces.extend(entries.flatten().map(|e| format!("image lease {}", e.path().display())));
    }
    traces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_oci_spawns_leaves_nothing_behind() {
    let workdir = Workdir::new();
    let Some(support::OciData { data, data_dir, agent }) = support::oci_with_busybox(&workdir).await else { return };
    let env = [
        ("STACYVM_PROVIDERS_DEFAULT", "oci"),
        ("STACYVM_DEFAULTS_IMAGE", "busybox:latest"),
        ("STACYVM_PROVIDERS_OCI_DATA_DIR", data_dir.as_str()),
        ("STACYVM_PROVIDERS_OCI_AGENT_PATH", agent.as_str()),
    ];
    let agents_before = agent_processes();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    for (round, delay_ms) in [60u64, 150, 300].into_iter().enumerate() {
        let mut server = Server::start(&workdir, &env);
        let client = Client::with_timeout(&server.url, None, Duration::from_secs(10)).unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.spawn(&SpawnRequest::default()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill();
        for task in tasks {
            if let Ok(sandbox) = task.await.unwrap() {
                acknowledged.insert(sandbox.id);
            }
        }
        let server = Server::start(&workdir, &env);
        let client = server.client();
        let listed = client.list().await.unwrap();
        seen.extend(listed.iter().map(|s| s.id.clone()));
        eprintln!("round {round}: killed after {delay_ms} ms; {} listed", listed.len());
        for sandbox in &listed {
            assert!(matches!(sandbox.state, WireState::Running | WireState::Error), "{sandbox:?}");
            if sandbox.state == WireState::Running {
                let req = ExecRequest { command: "true".into(), mode: "argv".into(), ..Default::default() };
                let result = client.exec(&sandbox.id, &req).await.unwrap();
                assert_eq!(result.exit_code, 0, "exec in {} after restart", sandbox.id);
            }
        }
        for id in &acknowledged {
            assert!(
                listed.iter().any(|s| &s.id == id && s.state == WireState::Running),
                "acknowledged {id} did not survive the crash"
            );
        }
        // Every sandbox directory on disk belongs to a listed sandbox (orphans were removed).
        let listed_ids: BTreeSet<String> = listed.iter().map(|s| s.id.clone()).collect();
        for entry in std::fs::read_dir(data.join("sandboxes")).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(listed_ids.contains(&name), "orphan sandbox directory {name} after restart");
        }
        drop(server);
    }
    // Destroy everything through a final server; then the host must be clean.
    let server = Server::start(&workdir, &env);
    let client = server.client();
    for sandbox in client.list().await.unwrap() {
        client.destroy(&sandbox.id).await.unwrap();
    }
    drop(server);
    assert_eq!(host_traces(&data, &seen), Vec::<String>::new(), "leaked host state");
    assert_eq!(agent_processes(), agents_before, "agent processes leaked");
}
