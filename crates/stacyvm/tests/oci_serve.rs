//! `stacyvm serve` with the `oci` provider, end to end over HTTP: spawn a real container from a
//! busybox image pulled at first use from a local registry, run commands as the unprivileged
//! sandbox user, move files, manage images through `/images`, destroy.
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
    let Some(registry) = stacyvm_testkit::TestRegistry::start() else { return };
    let rootfs = workdir.path().join("busybox-rootfs");
    stacyvm_testkit::busybox_rootfs(&rootfs);
    stacyvm_testkit::push_rootfs(&registry, &rootfs, "busybox:latest", Default::default());
    stacyvm_testkit::push_rootfs(&registry, &rootfs, "busybox:two", Default::default());
    let image = format!("{}/busybox:latest", registry.host());
    let data_dir = data.display().to_string();
    let server = Server::start(
        &workdir,
        &[
            ("STACYVM_PROVIDERS_DEFAULT", "oci"),
            ("STACYVM_PROVIDERS_OCI_DATA_DIR", &data_dir),
            ("STACYVM_PROVIDERS_OCI_AGENT_PATH", &agent),
            ("STACYVM_PROVIDERS_OCI_INSECURE_REGISTRIES", &registry.host()),
        ],
    );
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1", server.url);
    let sb: serde_json::Value = http
        .post(format!("{base}/sandboxes"))
        .json(&json!({"image": image, "memory_mb": 128}))
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
    let missing = format!("{}/nope:1", registry.host());
    let missing = http.post(format!("{base}/sandboxes")).json(&json!({"image": missing})).send().await.unwrap();
    assert_eq!(missing.status(), 400, "an image that does not exist is a clear error");

    // The image store over HTTP: list, refuse removal while in use, pull with progress, import.
    let listed: serde_json::Value = http.get(format!("{base}/images")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["reference"], image, "{listed}");
    let in_use = http.delete(format!("{base}/images")).query(&[("reference", &image)]).send().await.unwrap();
    assert_eq!(in_use.status(), 409);
    let two = format!("{}/busybox:two", registry.host());
    let progress = http
        .post(format!("{base}/images/pull"))
        .header("accept", "application/x-ndjson")
        .json(&json!({"reference": two}))
        .send()
        .await
        .unwrap();
    assert_eq!(progress.headers()["content-type"], "application/x-ndjson");
    let text = progress.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["status"], "resolved", "{text}");
    assert_eq!(lines.last().unwrap()["status"], "done", "{text}");
    assert_eq!(lines.last().unwrap()["image"]["reference"], two, "{text}");
    let bad = http.post(format!("{base}/images/pull")).json(&json!({"reference": "Not A Ref"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let tarball = workdir.path().join("busybox.tar");
    stacyvm_testkit::busybox_tarball(&tarball);
    let imported: serde_json::Value = http
        .post(format!("{base}/images/import"))
        .query(&[("reference", "local/busybox:offline")])
        .body(std::fs::read(&tarball).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(imported[0]["reference"], "docker.io/local/busybox:offline", "{imported}");

    let gone = http.delete(format!("{base}/sandboxes/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    assert!(!data.join("sandboxes").join(id).exists(), "sandbox files removed");
    let removed = http.delete(format!("{base}/images")).query(&[("reference", &image)]).send().await.unwrap();
    assert_eq!(removed.status(), 200, "removable once no sandbox uses it");
    let removed: serde_json::Value = removed.json().await.unwrap();
    assert_eq!(removed["layers_removed"], 0, "busybox:two still uses the layer: {removed}");
    let listed: serde_json::Value = http.get(format!("{base}/images")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}
