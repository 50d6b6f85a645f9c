//! File routes under `/sandboxes/{id}/files`. Paths are absolute paths inside the sandbox;
//! escapes are refused by the provider layer with 400. The raw streamed upload (`PUT`) lives in
//! [`super::upload`].

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::handler::Handler;
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stacyvm_types::files::{FileChmodRequest, FileInfo, FileMoveRequest, FileWriteRequest};
use stacyvm_types::sandbox::StatusResponse;
use stacyvm_types::ErrorBody;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/sandboxes/{id}/files",
            post(write).get(read).delete(delete).put(super::upload::upload.layer(DefaultBodyLimit::disable())),
        )
        .route("/sandboxes/{id}/files/list", get(list))
        .route("/sandboxes/{id}/files/stat", get(stat))
        .route("/sandboxes/{id}/files/glob", get(glob))
        .route("/sandboxes/{id}/files/move", post(move_file))
        .route("/sandboxes/{id}/files/chmod", post(chmod))
}

/// `?path=` (and `recursive=true` on delete).
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct PathQuery {
    /// Absolute path inside the sandbox.
    path: Option<String>,
    /// Delete only: `true` removes non-empty directories.
    recursive: Option<String>,
}

impl PathQuery {
    fn required(&self) -> ApiResult<&str> {
        self.path
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::bad_request("path query parameter required"))
    }
}

/// `?pattern=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct GlobQuery {
    /// Shell glob, e.g. `/workspace/*.log`.
    pattern: Option<String>,
}

/// Write a file (parents created, overwritten; default mode 0644).
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/files", tag = "files", params(("id" = String, Path)),
    request_body = FileWriteRequest,
    responses((status = 200, body = StatusResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn write(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FileWriteRequest>,
) -> ApiResult<Json<StatusResponse>> {
    s.manager.write_file(&id, &req).await?;
    Ok(Json(StatusResponse::new("written")))
}

/// Read a file: the raw bytes, streamed.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/files", tag = "files", params(("id" = String, Path), PathQuery),
    responses((status = 200, description = "raw file bytes", content_type = "application/octet-stream"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> ApiResult<Response> {
    let file = s.manager.read_file(&id, q.required()?).await?;
    let body = Body::from_stream(tokio_util_stream(file.reader));
    let mut response = Response::builder().header(header::CONTENT_TYPE, "application/octet-stream");
    if let Some(size) = file.size {
        response = response.header(header::CONTENT_LENGTH, size);
    }
    Ok(response.body(body).expect("static response parts"))
}

fn tokio_util_stream(
    reader: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
) -> impl futures::Stream<Item = std::io::Result<axum::body::Bytes>> {
    futures::stream::unfold(reader, |mut reader| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    })
}

/// Delete a file or directory.
#[utoipa::path(delete, path = "/api/v1/sandboxes/{id}/files", tag = "files", params(("id" = String, Path), PathQuery),
    responses((status = 200, body = StatusResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> ApiResult<Json<StatusResponse>> {
    let recursive = q.recursive.as_deref() == Some("true");
    s.manager.delete_file(&id, q.required()?, recursive).await?;
    Ok(Json(StatusResponse::new("deleted")))
}

/// Direct children of a directory (default `/`).
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/files/list", tag = "files", params(("id" = String, Path), PathQuery),
    responses((status = 200, body = [FileInfo]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> ApiResult<Json<Vec<FileInfo>>> {
    Ok(Json(s.manager.list_files(&id, q.path.as_deref().unwrap_or("/")).await?))
}

/// Metadata of one path.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/files/stat", tag = "files", params(("id" = String, Path), PathQuery),
    responses((status = 200, body = FileInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stat(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> ApiResult<Json<FileInfo>> {
    Ok(Json(s.manager.stat_file(&id, q.required()?).await?))
}

/// Paths matching a shell glob (always an array).
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/files/glob", tag = "files", params(("id" = String, Path), GlobQuery),
    responses((status = 200, body = [String]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn glob(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<GlobQuery>,
) -> ApiResult<Json<Vec<String>>> {
    let pattern =
        q.pattern.filter(|p| !p.is_empty()).ok_or_else(|| ApiError::bad_request("pattern query parameter required"))?;
    Ok(Json(s.manager.glob_files(&id, &pattern).await?))
}

/// Move or rename.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/files/move", tag = "files", params(("id" = String, Path)),
    request_body = FileMoveRequest,
    responses((status = 200, body = StatusResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn move_file(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FileMoveRequest>,
) -> ApiResult<Json<StatusResponse>> {
    s.manager.move_file(&id, &req.old_path, &req.new_path).await?;
    Ok(Json(StatusResponse::new("moved")))
}

/// Change permission bits (`755` or `0755`).
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/files/chmod", tag = "files", params(("id" = String, Path)),
    request_body = FileChmodRequest,
    responses((status = 200, body = StatusResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn chmod(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FileChmodRequest>,
) -> ApiResult<Json<StatusResponse>> {
    s.manager.chmod_file(&id, &req.path, &req.mode).await?;
    Ok(Json(StatusResponse::new("chmod applied")))
}
