//! Router tests for the raw streamed upload, `PUT /api/v1/sandboxes/{id}/files?path=…&mode=…`.

mod support;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, Method};
use serde_json::json;
use support::{Harness, Resp};
use tokio::sync::mpsc;

/// Deterministic binary content (every byte value occurs).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn put_raw(h: &Harness, url: &str, body: Body, length: Option<usize>) -> Resp {
    let mut b = h.request(Method::PUT, url).header(header::CONTENT_TYPE, "application/octet-stream");
    if let Some(n) = length {
        b = b.header(header::CONTENT_LENGTH, n);
    }
    h.send(b.body(body).unwrap()).await
}

/// A body fed chunk by chunk from the test.
fn channel_body() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Body) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    (tx, Body::from_stream(stream))
}

/// Names of the temporary files of unfinished writes in `dir`.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".stacyvm-"))
        .collect()
}

#[tokio::test]
async fn upload_then_read_is_byte_exact_and_ignores_the_body_limit() {
    // The JSON body limit does not apply to raw uploads.
    let h = Harness::builder().http(|s| s.max_body_bytes = 1024).build().await;
    let id = h.spawn().await;
    let content = pattern(3 << 20);
    let url = h.files_url(&id, "", &[("path", "/workspace/up/blob.bin"), ("mode", "0600")]);
    let res = put_raw(&h, &url, Body::from(content.clone()), Some(content.len())).await;
    assert_eq!(res.ok_json(200), json!({"status": "written", "path": "/workspace/up/blob.bin", "size": 3 << 20}));
    let read = h.read_file(&id, "/workspace/up/blob.bin").await;
    assert_eq!(read.status.as_u16(), 200);
    assert!(read.body == content, "content differs");
    let stat = h.stat(&id, "/workspace/up/blob.bin").await.ok_json(200);
    assert_eq!(stat["mode"], "0600");
    // Streamed without a length, chunk by chunk; replaces the file; default mode; relative path.
    let (tx, body) = channel_body();
    let url = h.files_url(&id, "", &[("path", "up/blob.bin")]);
    let (h2, url2) = (&h, url.clone());
    let sender = async move {
        for piece in content.chunks(100_000) {
            tx.send(Ok(Bytes::copy_from_slice(piece))).await.unwrap();
        }
    };
    let (res, ()) = tokio::join!(put_raw(h2, &url2, body, None), sender);
    assert_eq!(res.ok_json(200)["size"], 3 << 20);
    assert_eq!(h.stat(&id, "/workspace/up/blob.bin").await.ok_json(200)["mode"], "0644");
    // An empty upload makes an empty file.
    let url = h.files_url(&id, "", &[("path", "/workspace/empty")]);
    assert_eq!(put_raw(&h, &url, Body::empty(), Some(0)).await.ok_json(200)["size"], 0);
    assert_eq!(h.read_file(&id, "/workspace/empty").await.body.len(), 0);
    assert!(leftovers(&h.sandbox_dir(&id).join("workspace/up")).is_empty());
}

#[tokio::test]
async fn escapes_and_bad_input_get_the_json_write_codes() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let marker = format!("stacyvm-upload-escape-{}", &id[3..]);
    let escape = format!("/workspace/../../{marker}");
    let url = h.files_url(&id, "", &[("path", &escape)]);
    let msg = put_raw(&h, &url, Body::from("pwned"), None).await.err(400, "BAD_REQUEST");
    // The same message as the JSON write.
    let json_msg = h.post(&h.files_url(&id, "", &[]), json!({"path": escape, "content": "pwned"})).await;
    assert_eq!(msg, json_msg.err(400, "BAD_REQUEST"));
    assert!(!h.root.path().join(&marker).exists() && !h.mock_root.join(&marker).exists());
    // Through a symlink.
    h.run(&id, "ln -s ../../.. up").await;
    let url = h.files_url(&id, "", &[("path", &format!("/workspace/up/{marker}"))]);
    put_raw(&h, &url, Body::from("pwned"), None).await.err(400, "BAD_REQUEST");
    assert!(!h.root.path().join(&marker).exists());
    // Missing path, bad mode, a directory as target.
    put_raw(&h, &h.files_url(&id, "", &[]), Body::from("x"), None).await.err(400, "BAD_REQUEST");
    let url = h.files_url(&id, "", &[("path", "/workspace/m"), ("mode", "rwx")]);
    put_raw(&h, &url, Body::from("x"), None).await.err(400, "BAD_REQUEST");
    let url = h.files_url(&id, "", &[("path", "/workspace")]);
    put_raw(&h, &url, Body::from("x"), None).await.err(400, "BAD_REQUEST");
    // Unknown sandbox.
    let url = h.files_url("sb-missing", "", &[("path", "/workspace/a")]);
    put_raw(&h, &url, Body::from("x"), None).await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn over_the_upload_limit_is_400_and_keeps_the_old_file() {
    let h = Harness::builder().http(|s| s.max_upload_bytes = 1000).build().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/keep.txt", "old").await;
    let url = h.files_url(&id, "", &[("path", "/workspace/keep.txt")]);
    // Announced too large: refused before reading.
    let msg = put_raw(&h, &url, Body::from(vec![1u8; 1001]), Some(1001)).await.err(400, "BAD_REQUEST");
    assert!(msg.contains("max_upload_bytes"), "{msg}");
    // Streamed past the limit without a length.
    let (tx, body) = channel_body();
    let sender = async move {
        for _ in 0..4 {
            if tx.send(Ok(Bytes::from(vec![2u8; 400]))).await.is_err() {
                break;
            }
        }
    };
    let (res, ()) = tokio::join!(put_raw(&h, &url, body, None), sender);
    assert!(res.err(400, "BAD_REQUEST").contains("max_upload_bytes"));
    assert_eq!(&h.read_file(&id, "/workspace/keep.txt").await.body[..], b"old");
    assert!(leftovers(&h.sandbox_dir(&id).join("workspace")).is_empty());
    // Exactly the limit is fine.
    assert_eq!(put_raw(&h, &url, Body::from(vec![3u8; 1000]), Some(1000)).await.ok_json(200)["size"], 1000);
}

#[tokio::test]
async fn client_disconnect_mid_upload_writes_nothing() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/data.bin", "old").await;
    let dir = h.sandbox_dir(&id).join("workspace");
    let url = h.files_url(&id, "", &[("path", "/workspace/data.bin")]);

    // 1. The body fails (what hyper reports when the connection drops mid-body).
    let (tx, body) = channel_body();
    let sender = async move {
        for _ in 0..8 {
            tx.send(Ok(Bytes::from(vec![9u8; 256 * 1024]))).await.unwrap();
        }
        let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer gone"))).await;
    };
    let (res, ()) = tokio::join!(put_raw(&h, &url, body, None), sender);
    assert!(res.status.is_client_error() || res.status.is_server_error(), "{}", res.status);
    assert_eq!(&h.read_file(&id, "/workspace/data.bin").await.body[..], b"old");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    // 2. The client goes away while the body is stalled: the server drops the request.
    let (tx, body) = channel_body();
    let req = h.request(Method::PUT, &url).header(header::CONTENT_TYPE, "application/octet-stream").body(body).unwrap();
    let app = h.app.clone();
    let call = tokio::spawn(async move { tower::ServiceExt::oneshot(app, req).await });
    for _ in 0..8 {
        tx.send(Ok(Bytes::from(vec![7u8; 256 * 1024]))).await.unwrap();
    }
    // The partial upload is in a temporary file beside the target...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while leftovers(&dir).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no temporary file appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    call.abort();
    let _ = call.await;
    drop(tx);
    // ...which goes away with the request; the old file is intact.
    while !leftovers(&dir).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "temporary file left: {:?}", leftovers(&dir));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(&h.read_file(&id, "/workspace/data.bin").await.body[..], b"old");
    assert_eq!(h.stat(&id, "/workspace/data.bin").await.ok_json(200)["size"], 3);
}
