//! `/images`: the local image store (pull, import, list, remove, prune). Additions of this
//! project; see `docs/images.md`.
//!
//! A pull answers with the stored image, or, when the client sends
//! `Accept: application/x-ndjson`, with one progress event per line and a last line that is
//! either `{"status":"done","image":{…}}` or `{"status":"error","code":…,"message":…}`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use stacyvm_image::{ImageError, ImageRecord, ImageStore};
use stacyvm_types::image::{ImageInfo, ImagePullRequest, ImageRemoval};
use stacyvm_types::{ErrorBody, ErrorCode};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

/// Routes of this module (relative to `/images`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list).delete(remove))
        .route("/pull", post(pull))
        .route("/import", post(import).layer(DefaultBodyLimit::disable()))
        .route("/prune", post(prune))
}

/// Maps image store errors to API errors (the only such mapping).
pub fn image_api_error(e: ImageError) -> ApiError {
    let code = match &e {
        ImageError::InvalidReference(_) | ImageError::Unsupported(_) => ErrorCode::BadRequest,
        ImageError::NotFound(_) => ErrorCode::NotFound,
        ImageError::Unauthorized(_) => ErrorCode::Forbidden,
        ImageError::InUse(_) => ErrorCode::Conflict,
        ImageError::Unavailable(_) | ImageError::Corrupt(_) | ImageError::DiskFull(_) => ErrorCode::Unavailable,
        ImageError::Io { .. } => ErrorCode::InternalError,
    };
    ApiError::new(code, e.to_string())
}

/// Converts a store record into its wire shape.
pub fn image_info(r: &ImageRecord) -> ImageInfo {
    ImageInfo {
        reference: r.reference.clone(),
        digest: r.digest.to_string(),
        size_bytes: r.size(),
        layers: r.layers.iter().map(|l| l.diff_id.to_string()).collect(),
        created_at: r.created_at,
        env: r.config.env.clone().unwrap_or_default(),
        cmd: r.config.cmd.clone().unwrap_or_default(),
        working_dir: r.config.working_dir.clone().unwrap_or_default(),
    }
}

fn store(s: &AppState) -> ApiResult<Arc<ImageStore>> {
    s.images.clone().ok_or_else(|| {
        ApiError::new(ErrorCode::Unavailable, "this server has no image store (the oci provider is not enabled)")
    })
}

/// Images in the store.
#[utoipa::path(get, path = "/api/v1/images", tag = "images",
    responses((status = 200, body = [ImageInfo]), (status = 503, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<ImageInfo>>> {
    let records = store(&s)?.list().map_err(image_api_error)?;
    Ok(Json(records.iter().map(image_info).collect()))
}

/// Pulls an image from its registry (NDJSON progress with `Accept: application/x-ndjson`).
#[utoipa::path(post, path = "/api/v1/images/pull", tag = "images", request_body = ImagePullRequest,
    responses((status = 200, body = ImageInfo, description = "The stored image (or NDJSON progress lines)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn pull(State(s): State<AppState>, headers: HeaderMap, ApiJson(body): ApiJson<ImagePullRequest>) -> Response {
    let images = match store(&s) {
        Ok(images) => images,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = stacyvm_image::Reference::parse(&body.reference) {
        return image_api_error(e).into_response();
    }
    let wants_stream =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/x-ndjson"));
    if !wants_stream {
        return match images.pull(&body.reference, &|_| {}).await {
            Ok(record) => Json(image_info(&record)).into_response(),
            Err(e) => image_api_error(e).into_response(),
        };
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    tokio::spawn(async move {
        let events = tx.clone();
        let progress = move |e: stacyvm_image::PullEvent| {
            let _ = events.send(serde_json::to_value(e).unwrap_or_default());
        };
        // The pull goes on when the client leaves: the image is wanted, and others may wait on it.
        let last = match images.pull(&body.reference, &progress).await {
            Ok(record) => serde_json::json!({ "status": "done", "image": image_info(&record) }),
            Err(e) => {
                let e = image_api_error(e);
                serde_json::json!({ "status": "error", "code": e.code, "message": e.message })
            }
        };
        let _ = tx.send(last);
    });
    let lines = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<Bytes, Infallible>(Bytes::from(line))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}

/// Query of `/images/import` and `DELETE /images`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReferenceQuery {
    /// Image reference.
    pub reference: Option<String>,
}

/// Imports an archive sent as the body: a `docker save` tar, an OCI layout tar or a rootfs tar
/// (optionally gzip-compressed). `reference` names the image (required for a rootfs tar).
#[utoipa::path(post, path = "/api/v1/images/import", tag = "images", params(ReferenceQuery),
    request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 200, body = [ImageInfo]), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn import(
    State(s): State<AppState>,
    Query(q): Query<ReferenceQuery>,
    body: Body,
) -> ApiResult<Json<Vec<ImageInfo>>> {
    let images = store(&s)?;
    let reference = q.reference.filter(|r| !r.is_empty());
    if let Some(r) = &reference {
        stacyvm_image::Reference::parse(r).map_err(image_api_error)?;
    }
    let upload = images.tmp_path("upload");
    let result = async {
        let mut file = tokio::fs::File::create(&upload)
            .await
            .map_err(|e| image_api_error(ImageError::io("store the upload", e)))?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the upload failed: {e}")))?;
            file.write_all(&chunk).await.map_err(|e| image_api_error(ImageError::io("store the upload", e)))?;
        }
        file.flush().await.map_err(|e| image_api_error(ImageError::io("store the upload", e)))?;
        images.import(&upload, reference.as_deref()).await.map_err(image_api_error)
    }
    .await;
    let _ = tokio::fs::remove_file(&upload).await;
    Ok(Json(result?.iter().map(image_info).collect()))
}

/// Removes an image, then the layers nothing uses any more. `409` while a sandbox uses it.
#[utoipa::path(delete, path = "/api/v1/images", tag = "images", params(ReferenceQuery),
    responses((status = 200, body = ImageRemoval), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn remove(State(s): State<AppState>, Query(q): Query<ReferenceQuery>) -> ApiResult<Json<ImageRemoval>> {
    let reference =
        q.reference.filter(|r| !r.is_empty()).ok_or_else(|| ApiError::bad_request("reference is required"))?;
    let (record, report) = store(&s)?.remove(&reference).await.map_err(image_api_error)?;
    Ok(Json(ImageRemoval {
        image: Some(image_info(&record)),
        layers_removed: report.layers_removed,
        bytes_freed: report.bytes_freed,
    }))
}

/// Deletes layers that no image and no sandbox uses.
#[utoipa::path(post, path = "/api/v1/images/prune", tag = "images",
    responses((status = 200, body = ImageRemoval), (status = 503, body = ErrorBody)))]
pub async fn prune(State(s): State<AppState>) -> ApiResult<Json<ImageRemoval>> {
    let report = store(&s)?.gc().await.map_err(image_api_error)?;
    Ok(Json(ImageRemoval { image: None, layers_removed: report.layers_removed, bytes_freed: report.bytes_freed }))
}
