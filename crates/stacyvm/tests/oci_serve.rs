//! `stacyvm serve` with the `oci` provider, end to end over HTTP: spawn a real container from a
//! local busybox image, run commands as the unprivileged sandbox user, move files, destroy.
//! Needs root, crun, `/bin/busybox` (static) and the static agent (`STACYVM_AGENT_BIN`, else
//! built with `scripts/build-agent.sh`); skipped otherwise unless `STACYVM_REQUIRE_RUNTIMES=1`.

mod support;

use serde_json::json;
use support::{Server, Workdir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_oci_spawns_real_containers() {
    let Some(agent) = stacyvm_testkit::oci_prerequisites("crun") else { return };
    let agent = agent.display().to_string();
    let workdir = Workdir::new();
    let data = workdir.path().join("oci");
    stacyvm_testkit::busybox_rootfs(&data.join("images/busybox_latest"));
    let data_dir = data.display().to_string();
    let server = Server::start(
        &workdir,
        &[
            ("STACYVM_PROVIDERS_DEFAULT", "oci"),
            ("STACYVM_PROVIDERS_OCI_DATA_DIR", &data_dir),
            ("STACYVM_PROVIDERS_OCI_AGENT_PATH", &agent),
        ],
    );
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1", server.url);
    let sb: serde_json::Value = http
        .post(format!("{base}/sandboxes"))
        .json(&json!({"image": "busybox:latest", "memory_mb": 128}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sb["provider"], "oci", "{sb}");
    assert_eq!(sb["state"], "running", "{sb}");
    let id = sb["id"].as_str().unwrap();
    let exec: serde_json::Value = http
        .post(format!("{base}/sandboxes/{id}/exec"))
        .json(&json!({"command": "id -u; hostname; echo hi > note.txt"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(exec["exit_code"], 0, "{exec}");
    assert_eq!(exec["stdout"], format!("1000\n{id}\n"), "{exec}");
    let body = http.get(format!("{base}/sandboxes/{id}/files?path=/workspace/note.txt")).send().await.unwrap();
    assert_eq!(body.text().await.unwrap(), "hi\n");
    let missing = http.post(format!("{base}/sandboxes")).json(&json!({"image": "nope:1"})).send().await.unwrap();
    assert_eq!(missing.status(), 400, "an image that does not exist is a clear error");
    let gone = http.delete(format!("{base}/sandboxes/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    assert!(!data.join("sandboxes").join(id).exists(), "sandbox files removed");
}
