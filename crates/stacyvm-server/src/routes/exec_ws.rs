//! Exec over WebSocket (`GET /sandboxes/{id}/exec/ws`, spec §5.4, plus the PTY extension).
//!
//! 1. The client sends one ExecRequest (text or binary JSON). With `"pty": {"rows", "cols"}`
//!    the command runs on a terminal (providers with the `pty` capability only).
//! 2. The server sends `{"stream","data"}` per output chunk and finally
//!    `{"type":"done","exit_code":N}`, then closes with 1000.
//! 3. While a PTY exec runs, the client may send [`ExecWsInput`] text messages (`stdin`,
//!    `stdin_close`, `resize`, `signal`) and binary messages (raw terminal input). A message the
//!    server cannot use is answered with `{"error","code":"BAD_REQUEST"}` and the exec goes on.
//!    Without a PTY, client messages are ignored (as before the extension).
//!
//! Errors: an unparseable first message closes with 1007 `invalid request`; a start failure sends
//! `{"error","code"}` and closes with 1011 `exec failed`.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use stacyvm_core::manager::{ExecEvent, ExecInputSender};
use stacyvm_core::CoreError;
use stacyvm_provider::{ExecInput, PtySize};
use stacyvm_types::exec::{ExecRequest, ExecWsInput, StreamChunk, StreamName};
use stacyvm_types::{ErrorBody, ErrorCode};

use crate::error::{code_for, ApiResult};
use crate::AppState;

/// WebSocket exec: send one ExecRequest message (optionally with `pty`); receive
/// `{"stream","data"}` messages and finally `{"type":"done","exit_code":N}`. During a PTY exec,
/// send ExecWsInput messages (stdin, stdin_close, resize, signal) or binary terminal input.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/exec/ws", tag = "exec", params(("id" = String, Path)),
    responses((status = 101, description = "WebSocket upgrade"), (status = 404, body = ErrorBody)))]
pub async fn exec_ws(State(s): State<AppState>, Path(id): Path<String>, ws: WebSocketUpgrade) -> ApiResult<Response> {
    s.manager.get(&id).await?;
    Ok(ws.on_upgrade(move |socket| run_ws(s, id, socket)))
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

fn error_message(code: ErrorCode, message: impl std::fmt::Display) -> Message {
    Message::Text(serde_json::json!({"error": message.to_string(), "code": code.as_str()}).to_string().into())
}

async fn fail(mut socket: WebSocket, err: CoreError) {
    let _ = socket.send(error_message(code_for(&err), &err)).await;
    close(socket, 1011, "exec failed").await
}

async fn run_ws(s: AppState, id: String, mut socket: WebSocket) {
    let req = match socket.recv().await {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<ExecRequest>(text.as_str()).ok(),
        Some(Ok(Message::Binary(bytes))) => serde_json::from_slice::<ExecRequest>(&bytes).ok(),
        _ => None,
    };
    let Some(req) = req else {
        return close(socket, 1007, "invalid request").await;
    };
    let started = if req.pty.is_some() {
        s.manager.exec_interactive(&id, &req).await.map(|(events, input)| (events, Some(input)))
    } else {
        s.manager.exec_stream(&id, &req).await.map(|events| (events, None))
    };
    let (mut events, input) = match started {
        Ok(started) => started,
        Err(err) => return fail(socket, err).await,
    };
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let (message, done) = match event {
                    ExecEvent::Output(chunk) => (serde_json::to_string(&chunk).unwrap_or_default(), false),
                    ExecEvent::Exit { exit_code, timed_out, .. } => {
                        if timed_out {
                            let chunk = StreamChunk { stream: StreamName::Stderr, data: format!("exec timeout: {id}") };
                            let _ = socket.send(Message::Text(serde_json::to_string(&chunk).unwrap_or_default().into())).await;
                        }
                        (serde_json::json!({"type": "done", "exit_code": exit_code}).to_string(), true)
                    }
                    ExecEvent::Failed(err) => return fail(socket, err).await,
                };
                if socket.send(Message::Text(message.into())).await.is_err() {
                    return;
                }
                if done {
                    return close(socket, 1000, "").await;
                }
            }
            incoming = socket.recv() => {
                let message = match incoming {
                    // The client went away (or closed): dropping `events` kills the process.
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(message)) => message,
                };
                let Some(input) = input.as_ref() else { continue };
                if let Err(problem) = forward(input, message).await {
                    if socket.send(error_message(ErrorCode::BadRequest, problem)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Turns one client message into exec input; `Err` explains why it was not used.
async fn forward(input: &ExecInputSender, message: Message) -> Result<(), String> {
    let item = match message {
        Message::Binary(bytes) => ExecInput::Stdin(bytes),
        Message::Text(text) => match serde_json::from_str::<ExecWsInput>(text.as_str()) {
            Ok(ExecWsInput::Stdin { data }) => ExecInput::Stdin(Bytes::from(data)),
            Ok(ExecWsInput::StdinClose) => ExecInput::StdinClose,
            Ok(ExecWsInput::Resize { rows, cols }) => {
                let size = PtySize { rows, cols };
                size.validate().map_err(|e| format!("invalid input: {e}"))?;
                ExecInput::Resize(size)
            }
            Ok(ExecWsInput::Signal { signal }) => {
                ExecInput::Signal(signal.number().map_err(|e| format!("invalid input: {e}"))?)
            }
            Err(e) => return Err(format!("invalid input: unknown exec message: {e}")),
        },
        _ => return Ok(()),
    };
    // A closed input means the exec is ending; its done message follows.
    let _ = input.send(item).await;
    Ok(())
}
