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

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The next text message as JSON (`None` once the socket closes); output chunks are appended to
/// `screen`.
async fn next_json<S>(ws: &mut S, screen: &mut String) -> Option<serde_json::Value>
where
    S: futures::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(15), ws.next()).await;
        let Ok(Some(Ok(message))) = next else { panic!("websocket stalled or failed; screen {screen:?}") };
        match message {
            WsMessage::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                if value["stream"] == "stdout" {
                    screen.push_str(value["data"].as_str().unwrap());
                }
                return Some(value);
            }
            WsMessage::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_exec_with_a_pty_in_a_real_container() {
    let workdir = Workdir::new();
    let Some(support::OciData { data_dir, agent, .. }) = support::oci_with_busybox(&workdir).await else { return };
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
        .json(&json!({"image": "busybox:latest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sb["id"].as_str().unwrap().to_string();
    let oci: serde_json::Value = http.get(format!("{base}/providers/oci")).send().await.unwrap().json().await.unwrap();
    assert!(oci["health"]["capabilities"].as_array().unwrap().contains(&json!("pty")), "{oci}");

    let url = format!("{}/sandboxes/{id}/exec/ws", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let script = "tty; stty size; id -u; echo err >&2; echo READY; read line; echo \"got:$line\"; stty size; exit 4";
    let start = json!({"command": script, "pty": {"rows": 24, "cols": 80}});
    ws.send(WsMessage::Text(start.to_string().into())).await.unwrap();
    let mut screen = String::new();
    while !screen.contains("READY") {
        let message = next_json(&mut ws, &mut screen).await.expect("output before READY");
        assert_eq!(message["stream"], "stdout", "a terminal has one stream: {message}");
    }
    assert!(screen.starts_with("/dev/pts/"), "{screen:?}");
    assert!(screen.contains("24 80\r\n1000\r\nerr\r\n"), "{screen:?}");

    // A bad resize is answered with an error, and the exec goes on.
    ws.send(WsMessage::Text(json!({"type": "resize", "rows": 0, "cols": 10}).to_string().into())).await.unwrap();
    let error = loop {
        let message = next_json(&mut ws, &mut screen).await.expect("error reply");
        if message.get("error").is_some() {
            break message;
        }
    };
    assert_eq!(
        error,
        json!({"error": "invalid input: pty rows must be between 1 and 1000, got 0", "code": "BAD_REQUEST"})
    );

    ws.send(WsMessage::Text(json!({"type": "resize", "rows": 30, "cols": 100}).to_string().into())).await.unwrap();
    ws.send(WsMessage::Text(json!({"type": "stdin", "data": "typed over ws\n"}).to_string().into())).await.unwrap();
    let done = loop {
        let message = next_json(&mut ws, &mut screen).await.expect("done message");
        if message["type"] == "done" {
            break message;
        }
    };
    assert!(screen.contains("got:typed over ws\r\n30 100"), "{screen:?}");
    assert_eq!(done, json!({"type": "done", "exit_code": 4}));
    assert!(next_json(&mut ws, &mut screen).await.is_none(), "closed after done");

    let gone = http.delete(format!("{base}/sandboxes/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), 200);
}
