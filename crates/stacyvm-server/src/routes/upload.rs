//! `PUT /sandboxes/{id}/files?path=…&mode=…`: a raw upload (an extension; the spec's write is the
//! JSON `POST`). The request body is streamed to the provider as it arrives — never collected —
//! so its size is bounded only by `server.max_upload_bytes`, not by the request body limit.
//!
//! The file replaces the target only after the whole body arrived: a client that disconnects,
//! or an upload over the limit, leaves the previous file (or no file) in place.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use futures::Stream;
use serde::Deserialize;
use stacyvm_types::files::FileUploadResponse;
use stacyvm_types::ErrorBody;
use tokio::io::{AsyncRead, ReadBuf};
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::AppState;

/// `?path=…&mode=…` of an upload.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// Absolute path inside the sandbox (relative paths resolve under `/workspace`).
    path: Option<String>,
    /// Octal mode (`644` or `0644`); default `0644`.
    mode: Option<String>,
}

/// Upload a file as raw bytes (streamed; parents created, replaced atomically; default mode 0644).
#[utoipa::path(put, path = "/api/v1/sandboxes/{id}/files", tag = "files",
    params(("id" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The raw file content (any length up to server.max_upload_bytes)"),
    responses((status = 200, body = FileUploadResponse),
              (status = 400, body = ErrorBody, description = "Bad path or mode, path escape, upload too large"),
              (status = 404, body = ErrorBody)))]
pub async fn upload(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<FileUploadResponse>> {
    let path =
        q.path.filter(|p| !p.is_empty()).ok_or_else(|| ApiError::bad_request("path query parameter required"))?;
    let limit = s.max_upload_bytes;
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let source = BodyReader {
        stream: body.into_data_stream(),
        chunk: Bytes::new(),
        received: 0,
        limit,
        exceeded: Arc::clone(&exceeded),
    };
    let mode = q.mode.unwrap_or_default();
    match s.manager.write_file_stream(&id, &path, &mode, Box::pin(source)).await {
        Ok((path, size)) => Ok(Json(FileUploadResponse { status: "written".into(), path, size })),
        Err(_) if exceeded.load(Ordering::Relaxed) => Err(too_large(limit)),
        Err(e) => Err(e.into()),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::bad_request(format!("upload larger than the limit of {limit} bytes (server.max_upload_bytes)"))
}

/// `AsyncRead` over a request body that fails once more than `limit` bytes arrived.
struct BodyReader {
    stream: BodyDataStream,
    chunk: Bytes,
    received: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl AsyncRead for BodyReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match Pin::new(&mut this.stream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Ready(Some(Ok(data))) => {
                    this.received += data.len() as u64;
                    if this.received > this.limit {
                        this.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Err(std::io::Error::other("upload larger than the limit")));
                    }
                    this.chunk = data;
                }
            }
        }
        let n = this.chunk.len().min(buf.remaining());
        buf.put_slice(&this.chunk.split_to(n));
        Poll::Ready(Ok(()))
    }
}
