//! `/quotas` (also mounted at `/admin/quotas`): per-owner limits.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use stacyvm_types::quota::{OwnerQuota, QuotaSummary, QuotaUpsert, QuotaUsage};
use stacyvm_types::sandbox::StatusResponse;
use stacyvm_types::ErrorBody;

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::AppState;

/// Routes of this module (relative to `/quotas`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/summary", get(summary))
        .route("/{owner}", get(get_one).put(put).delete(delete))
        .route("/{owner}/usage", get(usage))
}

/// All quotas by owner.
#[utoipa::path(get, path = "/api/v1/quotas", tag = "quotas", responses((status = 200, body = [OwnerQuota])))]
pub async fn list(State(s): State<AppState>) -> Json<Vec<OwnerQuota>> {
    Json(s.manager.list_quotas())
}

/// Counts of configured quotas (exactly four keys).
#[utoipa::path(get, path = "/api/v1/quotas/summary", tag = "quotas", responses((status = 200, body = QuotaSummary)))]
pub async fn summary(State(s): State<AppState>) -> Json<QuotaSummary> {
    Json(s.manager.quota_summary())
}

/// One owner's quota.
#[utoipa::path(get, path = "/api/v1/quotas/{owner}", tag = "quotas", params(("owner" = String, Path)),
    responses((status = 200, body = OwnerQuota), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(s): State<AppState>, Path(owner): Path<String>) -> ApiResult<Json<OwnerQuota>> {
    Ok(Json(s.manager.get_quota(&owner)?))
}

/// Create or replace an owner's quota (0 / `0s` inherit the server default).
#[utoipa::path(put, path = "/api/v1/quotas/{owner}", tag = "quotas", params(("owner" = String, Path)),
    request_body = QuotaUpsert,
    responses((status = 200, body = OwnerQuota), (status = 400, body = ErrorBody)))]
pub async fn put(
    State(s): State<AppState>,
    Path(owner): Path<String>,
    ApiJson(body): ApiJson<QuotaUpsert>,
) -> ApiResult<Json<OwnerQuota>> {
    Ok(Json(s.manager.put_quota(&owner, &body).await?))
}

/// Delete an owner's quota.
#[utoipa::path(delete, path = "/api/v1/quotas/{owner}", tag = "quotas", params(("owner" = String, Path)),
    responses((status = 200, body = StatusResponse), (status = 404, body = ErrorBody)))]
pub async fn delete(State(s): State<AppState>, Path(owner): Path<String>) -> ApiResult<Json<StatusResponse>> {
    s.manager.delete_quota(&owner).await?;
    Ok(Json(StatusResponse::new("deleted")))
}

/// An owner's usage against their effective limits.
#[utoipa::path(get, path = "/api/v1/quotas/{owner}/usage", tag = "quotas", params(("owner" = String, Path)),
    responses((status = 200, body = QuotaUsage), (status = 400, body = ErrorBody)))]
pub async fn usage(State(s): State<AppState>, Path(owner): Path<String>) -> ApiResult<Json<QuotaUsage>> {
    Ok(Json(s.manager.quota_usage(&owner)?))
}
