//! Exec: synchronous JSON and NDJSON streaming (`"stream": true`); the WebSocket form lives in
//! [`super::exec_ws`].

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use stacyvm_core::manager::ExecEvent;
use stacyvm_core::validate;
use stacyvm_types::exec::{ExecRequest, ExecResult, ExitLine, StreamChunk, StreamName};
use stacyvm_types::ErrorBody;

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::AppState;

/// How long a streamed exec may take to fail at start before the 200 headers are sent.
const START_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sandboxes/{id}/exec", post(exec))
        .route("/sandboxes/{id}/exec/ws", get(super::exec_ws::exec_ws))
}

/// Run a command. With `"stream": true` the answer is NDJSON: one `{"stream","data"}` object
/// per line (plus a final `{"type":"exit",...}` line when `include_exit` is set).
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/exec", tag = "exec", params(("id" = String, Path)),
    request_body = ExecRequest,
    responses((status = 200, description = "ExecResult, or NDJSON StreamChunk lines when stream=true", body = ExecResult),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 408, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn exec(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ExecRequest>,
) -> ApiResult<Response> {
    if !req.stream {
        return Ok(Json(s.manager.exec(&id, &req).await?).into_response());
    }
    let mut events = s.manager.exec_stream(&id, &req).await?;
    // Start failures (missing workdir or program) arrive at once: answer them with a normal
    // JSON error instead of a 200 stream. A silent command delays the headers only briefly.
    let first = match tokio::time::timeout(START_GRACE, events.recv()).await {
        Ok(Some(ExecEvent::Failed(err))) => return Err(err.into()),
        Ok(first) => first,
        Err(_) => None,
    };
    let include_exit = req.include_exit;
    let remaining = tokio_stream::wrappers::ReceiverStream::new(events);
    let lines = futures::stream::iter(first).chain(remaining).filter_map(move |event| {
        let id = id.clone();
        async move { ndjson_line(&id, event, include_exit).map(Ok::<Bytes, Infallible>) }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(lines))
        .expect("static response parts"))
}

fn json_line<T: serde::Serialize>(value: &T) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn stderr_line(data: String) -> Bytes {
    json_line(&StreamChunk { stream: StreamName::Stderr, data })
}

fn ndjson_line(id: &str, event: ExecEvent, include_exit: bool) -> Option<Bytes> {
    match event {
        ExecEvent::Output(chunk) => Some(json_line(&chunk)),
        ExecEvent::Exit { timed_out: true, exit_code, duration } => {
            let mut out = stderr_line(format!("exec timeout: {id}")).to_vec();
            if include_exit {
                out.extend_from_slice(&json_line(&exit_line(exit_code, duration)));
            }
            Some(Bytes::from(out))
        }
        ExecEvent::Exit { exit_code, duration, .. } => include_exit.then(|| json_line(&exit_line(exit_code, duration))),
        ExecEvent::Failed(err) => Some(stderr_line(err.to_string())),
    }
}

fn exit_line(exit_code: i32, duration: std::time::Duration) -> ExitLine {
    ExitLine { kind: "exit".into(), exit_code, duration: validate::go(duration) }
}
