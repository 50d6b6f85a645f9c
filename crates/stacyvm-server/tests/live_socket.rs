//! End-to-end tests over a real TCP socket: WebSocket exec, and a client that disconnects in
//! the middle of an exec (the process must be killed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use stacyvm_core::{Manager, Settings};
use stacyvm_provider::mock::MockProvider;
use stacyvm_provider::ProviderRegistry;
use stacyvm_server::HttpSettings;
use stacyvm_store::sqlite::SqliteStore;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

struct Live {
    _dir: tempfile::TempDir,
    base: String,
    ws_base: String,
}

async fn start() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = ProviderRegistry::new("mock");
    registry.register(Arc::new(MockProvider::new(dir.path().join("mock")).unwrap()));
    let manager = Manager::new(Arc::new(SqliteStore::in_memory().unwrap()), registry, Settings::default());
    manager.reconcile().await.unwrap();
    manager.refresh_health().await;
    let app = stacyvm_server::router(manager, &HttpSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Live { _dir: dir, base: format!("http://{addr}/api/v1"), ws_base: format!("ws://{addr}/api/v1") }
}

async fn spawn(live: &Live) -> String {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/sandboxes", live.base))
        .json(&serde_json::json!({"image": "alpine"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["id"].as_str().unwrap().to_string()
}

async fn ws_messages(live: &Live, id: &str, first: Message) -> (Vec<serde_json::Value>, Option<CloseCode>) {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/sandboxes/{id}/exec/ws", live.ws_base)).await.unwrap();
    ws.send(first).await.unwrap();
    let mut messages = Vec::new();
    let mut close = None;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match msg.unwrap() {
            Message::Text(t) => messages.push(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(frame) => {
                close = frame.map(|f| f.code);
                break;
            }
            _ => {}
        }
    }
    (messages, close)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_exec_streams_chunks_then_done_with_exit_code() {
    let live = start().await;
    let id = spawn(&live).await;
    let req = serde_json::json!({"command": "echo out; sleep 0.1; echo err >&2; exit 3"}).to_string();
    let (messages, close) = ws_messages(&live, &id, Message::Text(req.into())).await;
    let chunks: Vec<_> = messages.iter().filter(|m| m.get("stream").is_some()).cloned().collect();
    assert_eq!(
        chunks,
        vec![
            serde_json::json!({"stream": "stdout", "data": "out\n"}),
            serde_json::json!({"stream": "stderr", "data": "err\n"}),
        ]
    );
    assert_eq!(messages.last().unwrap(), &serde_json::json!({"type": "done", "exit_code": 3}));
    assert_eq!(close, Some(CloseCode::Normal));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_errors_use_the_documented_close_codes() {
    let live = start().await;
    let id = spawn(&live).await;
    let (messages, close) = ws_messages(&live, &id, Message::Text("not json".into())).await;
    assert!(messages.is_empty());
    assert_eq!(close, Some(CloseCode::Invalid), "1007 for an unparseable request");

    let bad_mode = serde_json::json!({"command": "true", "mode": "bogus"}).to_string();
    let (messages, close) = ws_messages(&live, &id, Message::Text(bad_mode.into())).await;
    assert!(messages[0]["error"].as_str().unwrap().contains("unsupported exec mode"));
    assert_eq!(close, Some(CloseCode::Error), "1011 when the exec cannot start");

    let err = tokio_tungstenite::connect_async(format!("{}/sandboxes/sb-nonexistent/exec/ws", live.ws_base))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 404),
        other => panic!("expected a 404 before the upgrade, got {other:?}"),
    }
}

fn marker_processes(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(marker))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_kills_its_exec() {
    let live = start().await;
    let id = spawn(&live).await;
    for stream in [false, true] {
        let marker = format!("{}{}", 4242 + stream as u32, std::process::id());
        let body = serde_json::json!({"command": format!("sleep {marker}"), "stream": stream});
        let client = reqwest::Client::new();
        let request = client.post(format!("{}/sandboxes/{id}/exec", live.base)).json(&body).send();
        // Give up on the request after 500 ms: the connection is dropped.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let resp = request.await.unwrap();
            let _ = resp.bytes().await;
        })
        .await;
        drop(client);
        let mut gone = false;
        for _ in 0..50 {
            if marker_processes(&marker) == 0 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "exec (stream={stream}) still running after the client went away");
    }
}
