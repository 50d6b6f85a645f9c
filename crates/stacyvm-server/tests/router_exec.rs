//! Router tests for `POST /sandboxes/{id}/exec` (sync and NDJSON streaming) and
//! `GET /sandboxes/{id}/exec/ws` (WebSocket, over the in-memory server).

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method};
use serde_json::{json, Value};
use support::{keys, read_until, Harness, WsFrame};

#[tokio::test]
async fn sync_result_shape() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let res = h.exec(&id, json!({"command": "echo hello"})).await;
    let body = res.ok_json(200);
    assert_eq!(keys(&body), ["duration", "exit_code", "stderr", "stdout"]);
    assert_eq!(body["exit_code"], 0);
    assert_eq!(body["stdout"], "hello\n");
    assert_eq!(body["stderr"], "", "empty strings are still emitted");
    let duration = body["duration"].as_str().expect("duration is a Go duration string");
    assert!(duration.ends_with('s') && duration.chars().next().unwrap().is_ascii_digit(), "{duration}");

    let body = h.run(&id, "echo out; echo err 1>&2").await;
    assert_eq!((body["stdout"].as_str(), body["stderr"].as_str()), (Some("out\n"), Some("err\n")));
}

#[tokio::test]
async fn shell_mode_is_default_and_quotes_args() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let body = h.run(&id, "echo a && echo b | tr b c").await;
    assert_eq!(body["stdout"], "a\nc\n");
    for mode in ["", "shell", "  shell  "] {
        let res = h.exec(&id, json!({"command": "echo $((1+2))", "mode": mode})).await;
        assert_eq!(res.ok_json(200)["stdout"], "3\n", "mode {mode:?}");
    }
    let res = h.exec(&id, json!({"command": "printf '%s|'", "args": ["a b", "it's", "$HOME"]})).await;
    assert_eq!(res.ok_json(200)["stdout"], "a b|it's|$HOME|", "args are single-quoted");
}

#[tokio::test]
async fn nonzero_exit_is_a_normal_result() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let body = h.run(&id, "echo partial; exit 42").await;
    assert_eq!(body["exit_code"], 42);
    assert_eq!(body["stdout"], "partial\n");
    assert_eq!(h.run(&id, "false").await["exit_code"], 1);
    // A missing binary in shell mode is the shell's 127.
    assert_eq!(h.run(&id, "definitely-not-a-command-xyz").await["exit_code"], 127);
}

#[tokio::test]
async fn argv_mode_never_uses_a_shell() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let res = h.exec(&id, json!({"command": "echo", "args": ["$HOME", "a;b", "*"], "mode": "argv"})).await;
    assert_eq!(res.ok_json(200)["stdout"], "$HOME a;b *\n");
    let res = h.exec(&id, json!({"command": "sh", "args": ["-c", "exit 7"], "mode": "argv"})).await;
    assert_eq!(res.ok_json(200)["exit_code"], 7);
    h.exec(&id, json!({"command": "  ", "mode": "argv"})).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn invalid_exec_requests_are_400() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let msg = h.exec(&id, json!({"command": "echo", "mode": "x"})).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "invalid input: unsupported exec mode \"x\"");
    h.exec(&id, json!({"command": ""})).await.err(400, "BAD_REQUEST");
    h.exec(&id, json!({})).await.err(400, "BAD_REQUEST");
    for timeout in ["abc", "-1s", "5", "1d"] {
        let msg = h.exec(&id, json!({"command": "true", "timeout": timeout})).await.err(400, "BAD_REQUEST");
        assert!(msg.contains("timeout"), "{timeout}: {msg}");
    }
    let msg = h.exec(&id, json!({"command": "true", "timeout": "11m"})).await.err(429, "RESOURCE_LIMIT");
    assert!(msg.contains("10m0s"), "{msg}");
    // The max itself and zero ("none") are fine.
    h.exec(&id, json!({"command": "true", "timeout": "10m"})).await.ok_json(200);
    h.exec(&id, json!({"command": "true", "timeout": "0s"})).await.ok_json(200);
    let msg = h.exec(&id, json!({"command": "true", "env": {"A=B": "x"}})).await.err(400, "BAD_REQUEST");
    assert!(msg.starts_with("invalid input:"), "{msg}");
    let msg = h.exec(&id, json!({"command": "true", "workdir": "/nope"})).await.err(400, "BAD_REQUEST");
    assert!(msg.contains("workdir"), "{msg}");
    let res = h.post_raw(&format!("/api/v1/sandboxes/{id}/exec"), Some("application/json"), "{").await;
    assert!(res.err(400, "BAD_REQUEST").starts_with("invalid request body"));
    let res = h.exec(&id, json!({"command": 5})).await;
    assert!(res.err(400, "BAD_REQUEST").starts_with("invalid request body"));
    // Only the two valid requests ran.
    let logs = h.get(&format!("/api/v1/sandboxes/{id}/logs")).await.ok_json(200);
    let ran = logs.as_array().unwrap().iter().filter(|l| l.as_str().unwrap().contains("exec: ")).count();
    assert_eq!(ran, 2, "{logs}");
}

#[tokio::test]
async fn exec_on_unknown_sandbox_is_404() {
    let h = Harness::new().await;
    let msg = h.exec("sb-nonexistent", json!({"command": "true"})).await.err(404, "NOT_FOUND");
    assert_eq!(msg, "sandbox not found: sb-nonexistent");
    h.exec("sb-nonexistent", json!({"command": "true", "stream": true})).await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn timeout_is_408_and_kills_the_process() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let started = Instant::now();
    let res = h.exec(&id, json!({"command": "sleep 5; touch survived", "timeout": "1s"})).await;
    let msg = res.err(408, "TIMEOUT");
    assert_eq!(msg, format!("exec timeout: {id}"));
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    // The sandbox is still usable.
    assert_eq!(h.run(&id, "echo ok").await["stdout"], "ok\n");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    h.stat(&id, "/workspace/survived").await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn env_and_workdir() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/sub/x.txt", "x").await;
    let res = h
        .exec(
            &id,
            json!({"command": "echo \"$FOO-$BAR\"; pwd; ls", "env": {"FOO": "foo", "BAR": "with space"},
                   "workdir": "/workspace/sub"}),
        )
        .await;
    let body = res.ok_json(200);
    let out = body["stdout"].as_str().unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "foo-with space");
    assert!(lines[1].ends_with("/workspace/sub"), "pwd {}", lines[1]);
    assert_eq!(lines[2], "x.txt");
    // Default workdir is /workspace.
    assert!(h.run(&id, "pwd").await["stdout"].as_str().unwrap().trim_end().ends_with("/workspace"));
}

#[tokio::test]
async fn invalid_utf8_output_is_decoded_lossily() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let body = h.run(&id, r"printf '\377\376ok'; printf 'e\377' 1>&2").await;
    assert_eq!(body["exit_code"], 0);
    assert_eq!(body["stdout"], "\u{FFFD}\u{FFFD}ok");
    assert_eq!(body["stderr"], "e\u{FFFD}");
    // A multi-byte character split across writes survives intact.
    let body = h.run(&id, r"printf '\303'; sleep 0.1; printf '\251'").await;
    assert_eq!(body["stdout"], "é");
}

// --- NDJSON streaming -------------------------------------------------------------------------

async fn stream_lines(h: &Harness, id: &str, body: Value) -> (String, Vec<Value>) {
    let res = h.exec(id, body).await;
    assert_eq!(res.status.as_u16(), 200, "{}", res.text());
    let ct = res.content_type().to_string();
    let text = res.text();
    assert!(text.is_empty() || text.ends_with('\n'), "every line is newline-terminated: {text:?}");
    let lines = text
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?} is not JSON: {e}"));
            assert!(v.is_object(), "line {l:?} is not an object");
            v
        })
        .collect();
    (ct, lines)
}

fn joined(lines: &[Value], stream: &str) -> String {
    lines.iter().filter(|l| l["stream"] == stream).map(|l| l["data"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn stream_ndjson_chunks_in_order() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let (ct, lines) = stream_lines(
        &h,
        &id,
        json!({"command": "echo one; sleep 0.2; echo two 1>&2; sleep 0.2; echo three", "stream": true}),
    )
    .await;
    assert_eq!(ct, "application/x-ndjson");
    for l in &lines {
        assert_eq!(keys(l), ["data", "stream"], "no exit line unless asked: {l}");
        assert!(l["stream"] == "stdout" || l["stream"] == "stderr", "{l}");
    }
    assert_eq!(joined(&lines, "stdout"), "one\nthree\n");
    assert_eq!(joined(&lines, "stderr"), "two\n");
    let order: Vec<(&str, &str)> =
        lines.iter().map(|l| (l["stream"].as_str().unwrap(), l["data"].as_str().unwrap())).collect();
    assert_eq!(order, [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]);
}

#[tokio::test]
async fn stream_headers_and_incremental_delivery() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let req = h
        .request(Method::POST, &format!("/api/v1/sandboxes/{id}/exec"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"command": "echo first; sleep 3; echo second", "stream": true}).to_string()))
        .unwrap();
    let started = Instant::now();
    let res = h.send_streaming(req).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let mut body = res.into_body();
    let first = read_until(&mut body, "first", Duration::from_secs(10)).await;
    assert!(first.contains("\"first\\n\""), "{first}");
    assert!(started.elapsed() < Duration::from_secs(2), "chunks are flushed as they arrive");
    let rest = read_until(&mut body, "second", Duration::from_secs(10)).await;
    assert!(rest.contains("second"), "{rest}");
}

#[tokio::test]
async fn stream_exit_line_only_when_asked() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let (_, lines) = stream_lines(&h, &id, json!({"command": "echo hi; exit 3", "stream": true})).await;
    assert!(lines.iter().all(|l| l.get("type").is_none()), "{lines:?}");
    assert_eq!(joined(&lines, "stdout"), "hi\n");

    let (_, lines) =
        stream_lines(&h, &id, json!({"command": "echo hi; exit 3", "stream": true, "include_exit": true})).await;
    let last = lines.last().expect("lines");
    assert_eq!(keys(last), ["duration", "exit_code", "type"]);
    assert_eq!(last["type"], "exit");
    assert_eq!(last["exit_code"], 3);
    assert!(last["duration"].as_str().unwrap().ends_with('s'));
    assert_eq!(lines.iter().filter(|l| l.get("type").is_some()).count(), 1);
    assert_eq!(joined(&lines[..lines.len() - 1], "stdout"), "hi\n");

    // A silent command still gets its exit line.
    let (_, lines) = stream_lines(&h, &id, json!({"command": "true", "stream": true, "include_exit": true})).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["exit_code"], 0);
    // Without include_exit a silent command streams nothing at all.
    let (_, lines) = stream_lines(&h, &id, json!({"command": "true", "stream": true})).await;
    assert!(lines.is_empty());
}

#[tokio::test]
async fn stream_timeout_ends_with_stderr_chunk() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let (_, lines) =
        stream_lines(&h, &id, json!({"command": "echo start; sleep 5", "timeout": "1s", "stream": true})).await;
    assert_eq!(lines.first().unwrap(), &json!({"stream": "stdout", "data": "start\n"}));
    assert_eq!(lines.last().unwrap(), &json!({"stream": "stderr", "data": format!("exec timeout: {id}")}));
    let (_, lines) =
        stream_lines(&h, &id, json!({"command": "sleep 5", "timeout": "1s", "stream": true, "include_exit": true}))
            .await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["data"], format!("exec timeout: {id}"));
    assert_eq!(lines[1]["type"], "exit");
}

#[tokio::test]
async fn stream_errors_before_output_are_json() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.exec(&id, json!({"command": "true", "mode": "x", "stream": true})).await.err(400, "BAD_REQUEST");
    h.exec(&id, json!({"command": "true", "timeout": "1h", "stream": true})).await.err(429, "RESOURCE_LIMIT");
    h.exec(&id, json!({"command": "true", "timeout": "zz", "stream": true})).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn stream_start_failures_are_json_errors() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    // The sync forms are 400 ...
    h.exec(&id, json!({"command": "true", "workdir": "/nope"})).await.err(400, "BAD_REQUEST");
    h.exec(&id, json!({"command": "no-such-binary-xyz", "mode": "argv"})).await.err(400, "BAD_REQUEST");
    // ... and so must the streaming forms be: nothing has been output yet.
    let msg = h.exec(&id, json!({"command": "true", "workdir": "/nope", "stream": true})).await.err(400, "BAD_REQUEST");
    assert!(msg.contains("workdir"), "{msg}");
    let msg = h
        .exec(&id, json!({"command": "no-such-binary-xyz", "mode": "argv", "stream": true}))
        .await
        .err(400, "BAD_REQUEST");
    assert!(msg.contains("executable not found"), "{msg}");
}

#[tokio::test]
async fn ws_start_failure_after_upgrade_sends_error_then_1011() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text(&json!({"command": "true", "workdir": "/nope"}).to_string()).await;
    let frames = ws.recv_all().await;
    let msgs = texts(&frames);
    assert_eq!(msgs.len(), 1, "{frames:?}");
    assert!(msgs[0]["error"].as_str().unwrap().contains("workdir"), "{frames:?}");
    assert_eq!(frames.last(), Some(&WsFrame::Close(Some(1011), "exec failed".into())));
}

#[tokio::test]
async fn stream_invalid_utf8_is_lossy() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let (_, lines) = stream_lines(&h, &id, json!({"command": r"printf 'a\377b'", "stream": true})).await;
    assert_eq!(joined(&lines, "stdout"), "a\u{FFFD}b");
}

// --- WebSocket ----------------------------------------------------------------------------------

fn texts(frames: &[WsFrame]) -> Vec<Value> {
    frames
        .iter()
        .filter_map(|f| match f {
            WsFrame::Text(t) => Some(serde_json::from_str(t).unwrap_or_else(|e| panic!("ws text {t:?}: {e}"))),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn ws_exec_streams_and_reports_done() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text(&json!({"command": "echo out; echo err 1>&2; exit 5"}).to_string()).await;
    let frames = ws.recv_all().await;
    assert_eq!(frames.last(), Some(&WsFrame::Close(Some(1000), String::new())), "{frames:?}");
    let msgs = texts(&frames);
    let done = msgs.last().expect("done message");
    assert_eq!(done["type"], "done");
    assert_eq!(done["exit_code"], 5);
    let chunks = &msgs[..msgs.len() - 1];
    assert_eq!(joined(chunks, "stdout"), "out\n");
    assert_eq!(joined(chunks, "stderr"), "err\n");
    for c in chunks {
        assert_eq!(keys(c), ["data", "stream"]);
    }
}

#[tokio::test]
async fn ws_argv_mode_and_binary_request() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    let req = json!({"command": "echo", "args": ["$X"], "mode": "argv"}).to_string();
    ws.send_frame(0x2, req.as_bytes()).await;
    let msgs = texts(&ws.recv_all().await);
    assert_eq!(joined(&msgs, "stdout"), "$X\n");
    assert_eq!(msgs.last().unwrap()["exit_code"], 0);
}

#[tokio::test]
async fn ws_invalid_first_message_closes_1007() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text("not json").await;
    let frames = ws.recv_all().await;
    assert_eq!(frames, vec![WsFrame::Close(Some(1007), "invalid request".into())]);
}

#[tokio::test]
async fn ws_exec_failure_sends_error_then_1011() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text(&json!({"command": "true", "mode": "bogus"}).to_string()).await;
    let frames = ws.recv_all().await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    let msgs = texts(&frames);
    assert_eq!(msgs[0], json!({"error": "invalid input: unsupported exec mode \"bogus\"", "code": "BAD_REQUEST"}));
    assert_eq!(frames[1], WsFrame::Close(Some(1011), "exec failed".into()));
}

#[tokio::test]
async fn ws_timeout_reports_stderr_then_done() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text(&json!({"command": "sleep 5", "timeout": "1s"}).to_string()).await;
    let started = Instant::now();
    let msgs = texts(&ws.recv_all().await);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(msgs[0], json!({"stream": "stderr", "data": format!("exec timeout: {id}")}));
    assert_eq!(msgs[1]["type"], "done");
}

#[tokio::test]
async fn ws_unknown_sandbox_is_json_404_before_upgrade() {
    let h = Harness::new().await;
    let server = h.serve_in_memory();
    let refused = match server.ws("/api/v1/sandboxes/sb-nonexistent/exec/ws").await {
        Ok(_) => panic!("upgrade must be refused"),
        Err(r) => r,
    };
    assert_eq!(refused.status, 404, "{}", refused.head);
    let body: Value = serde_json::from_slice(&refused.body).expect("JSON body");
    assert_eq!(body, json!({"code": "NOT_FOUND", "message": "sandbox not found: sb-nonexistent"}));
}

#[tokio::test]
async fn ws_without_upgrade_is_a_client_error() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let res = h.get(&format!("/api/v1/sandboxes/{id}/exec/ws")).await;
    assert!(res.status.is_client_error(), "plain GET on the ws route: {}", res.status);
}

#[tokio::test]
async fn pty_on_a_provider_without_pty_is_a_clear_bad_request() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let msg = h.exec(&id, json!({"command": "tty", "pty": {"rows": 24, "cols": 80}})).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "invalid input: pty is not supported by provider \"mock\"");
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text(&json!({"command": "tty", "pty": {"rows": 24, "cols": 80}}).to_string()).await;
    let frames = ws.recv_all().await;
    let msgs = texts(&frames);
    assert_eq!(
        msgs,
        [json!({"error": "invalid input: pty is not supported by provider \"mock\"", "code": "BAD_REQUEST"})]
    );
    assert_eq!(frames.last(), Some(&WsFrame::Close(Some(1011), "exec failed".into())));
}

#[tokio::test]
async fn bad_pty_sizes_are_rejected_before_anything_runs() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    for (pty, detail) in [
        (json!({"rows": 0, "cols": 80}), "pty rows must be between 1 and 1000, got 0"),
        (json!({"rows": 24, "cols": 1001}), "pty cols must be between 1 and 1000, got 1001"),
    ] {
        let msg = h.exec(&id, json!({"command": "true", "pty": pty})).await.err(400, "BAD_REQUEST");
        assert_eq!(msg, format!("invalid input: {detail}"));
    }
    // Not a size at all: the body does not parse.
    h.exec(&id, json!({"command": "true", "pty": {"rows": -1, "cols": 80}})).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn ws_messages_after_the_request_are_ignored_without_pty() {
    // Old clients never send more; extra messages on a plain exec change nothing.
    let h = Harness::new().await;
    let id = h.spawn().await;
    let server = h.serve_in_memory();
    let mut ws = server.ws(&format!("/api/v1/sandboxes/{id}/exec/ws")).await.expect("upgrade");
    ws.send_text(&json!({"command": "sleep 0.2; echo fine"}).to_string()).await;
    ws.send_text(&json!({"type": "resize", "rows": 0, "cols": 0}).to_string()).await;
    ws.send_text("garbage").await;
    let msgs = texts(&ws.recv_all().await);
    assert_eq!(joined(&msgs, "stdout"), "fine\n");
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    assert_eq!(msgs.last().unwrap()["exit_code"], 0);
}
