//! `/sandboxes`: spawn, list, get, destroy, extend, prune, admission, logs, stats.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stacyvm_types::sandbox::{
    ExtendRequest, PruneResponse, Sandbox, SandboxStats, SpawnAdmissionDecision, SpawnRequest, StatusResponse,
};
use stacyvm_types::ErrorBody;
use utoipa::IntoParams;

use super::spawn_context;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sandboxes", get(list).post(spawn).delete(prune))
        .route("/sandboxes/admission", post(admission))
        .route("/sandboxes/{id}", get(get_one).delete(destroy))
        .route("/sandboxes/{id}/extend", post(extend))
        .route("/sandboxes/{id}/logs", get(logs))
        .route("/sandboxes/{id}/stats", get(stats))
}

/// List live sandboxes, newest first.
#[utoipa::path(get, path = "/api/v1/sandboxes", tag = "sandboxes",
    responses((status = 200, body = [Sandbox])))]
pub async fn list(State(s): State<AppState>) -> Json<Vec<Sandbox>> {
    Json(s.manager.list())
}

/// Spawn a sandbox; returns once it can run commands.
#[utoipa::path(post, path = "/api/v1/sandboxes", tag = "sandboxes", request_body = SpawnRequest,
    responses((status = 201, body = Sandbox), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn spawn(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SpawnRequest>,
) -> ApiResult<(StatusCode, Json<Sandbox>)> {
    let ctx = spawn_context(&headers)?;
    Ok((StatusCode::CREATED, Json(s.manager.spawn(req, &ctx).await?)))
}

/// Would a spawn be admitted now? (Exactly the SDK's eight keys.)
#[utoipa::path(post, path = "/api/v1/sandboxes/admission", tag = "sandboxes", request_body = SpawnRequest,
    responses((status = 200, body = SpawnAdmissionDecision), (status = 400, body = ErrorBody)))]
pub async fn admission(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SpawnRequest>,
) -> ApiResult<Json<SpawnAdmissionDecision>> {
    let ctx = spawn_context(&headers)?;
    Ok(Json(s.manager.admission(&req, &ctx).await?))
}

/// Destroy every sandbox whose TTL has passed.
#[utoipa::path(delete, path = "/api/v1/sandboxes", tag = "sandboxes",
    responses((status = 200, body = PruneResponse)))]
pub async fn prune(State(s): State<AppState>) -> ApiResult<Json<PruneResponse>> {
    Ok(Json(PruneResponse { pruned: s.manager.prune().await? }))
}

/// One sandbox.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path)),
    responses((status = 200, body = Sandbox), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Sandbox>> {
    Ok(Json(s.manager.get(&id).await?))
}

/// Destroy a sandbox (idempotent for known IDs; 404 for IDs that never existed).
#[utoipa::path(delete, path = "/api/v1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path)),
    responses((status = 200, body = StatusResponse), (status = 404, body = ErrorBody)))]
pub async fn destroy(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<StatusResponse>> {
    s.manager.destroy(&id).await?;
    Ok(Json(StatusResponse::new("destroyed")))
}

/// Set a new TTL counted from now; returns the full sandbox.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/extend", tag = "sandboxes", params(("id" = String, Path)),
    request_body = ExtendRequest,
    responses((status = 200, body = Sandbox), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn extend(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> ApiResult<Json<Sandbox>> {
    Ok(Json(s.manager.extend(&id, &req.ttl).await?))
}

/// `?lines=N` (default 100; invalid or non-positive values fall back to 100).
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogsQuery {
    /// Lines to return.
    lines: Option<String>,
}

/// Last console lines.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/logs", tag = "sandboxes",
    params(("id" = String, Path), LogsQuery),
    responses((status = 200, body = [String]), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Vec<String>>> {
    let lines = q.lines.and_then(|l| l.trim().parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(100).min(10_000);
    Ok(Json(s.manager.logs(&id, lines).await?))
}

/// Resource usage.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/stats", tag = "sandboxes", params(("id" = String, Path)),
    responses((status = 200, body = SandboxStats), (status = 404, body = ErrorBody)))]
pub async fn stats(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SandboxStats>> {
    Ok(Json(s.manager.stats(&id).await?))
}
