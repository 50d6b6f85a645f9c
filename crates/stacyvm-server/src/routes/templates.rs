//! `/templates`: CRUD and spawn. Both field spellings are accepted and emitted.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use stacyvm_types::sandbox::{Sandbox, StatusResponse};
use stacyvm_types::template::{Template, TemplateInput, TemplateSpawnRequest};
use stacyvm_types::ErrorBody;

use super::spawn_context;
use crate::error::ApiResult;
use crate::extract::{ApiJson, OptionalJson};
use crate::AppState;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list).post(create))
        .route("/templates/{name}", get(get_one).put(update).delete(delete))
        .route("/templates/{name}/spawn", post(spawn))
}

/// All templates, by name.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", responses((status = 200, body = [Template])))]
pub async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(s.manager.list_templates().await?))
}

/// Create a template (409 when the name exists).
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", request_body = TemplateInput,
    responses((status = 201, body = Template), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    Ok((StatusCode::CREATED, Json(s.manager.create_template(&input).await?)))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Template>> {
    Ok(Json(s.manager.get_template(&name).await?))
}

/// Replace a template (name from the path; version bumped, created_at kept).
#[utoipa::path(put, path = "/api/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    request_body = TemplateInput,
    responses((status = 200, body = Template), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Json<Template>> {
    Ok(Json(s.manager.update_template(&name, &input).await?))
}

/// Delete a template.
#[utoipa::path(delete, path = "/api/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    responses((status = 200, body = StatusResponse), (status = 404, body = ErrorBody)))]
pub async fn delete(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<StatusResponse>> {
    s.manager.delete_template(&name).await?;
    Ok(Json(StatusResponse::new("deleted")))
}

/// Spawn from a template; the optional body overrides provider and TTL.
#[utoipa::path(post, path = "/api/v1/templates/{name}/spawn", tag = "templates", params(("name" = String, Path)),
    request_body(content = TemplateSpawnRequest, description = "optional"),
    responses((status = 201, body = Sandbox), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn spawn(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<TemplateSpawnRequest>,
) -> ApiResult<(StatusCode, Json<Sandbox>)> {
    let ctx = spawn_context(&headers)?;
    Ok((StatusCode::CREATED, Json(s.manager.spawn_template(&name, &body, &ctx).await?)))
}
