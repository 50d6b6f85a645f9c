//! `/providers`, `/snapshots`, `/pool/status`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use stacyvm_types::provider::{ProviderDetail, ProviderInfo};
use stacyvm_types::system::{PoolStatus, SnapshotInfo};
use stacyvm_types::ErrorBody;

use crate::error::ApiResult;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/providers", get(list))
        .route("/providers/test", post(test))
        .route("/providers/{name}", get(detail))
        .route("/snapshots", get(snapshots))
        .route("/pool/status", get(pool_status))
}

/// Providers sorted by name, with their last health check.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers", responses((status = 200, body = [ProviderInfo])))]
pub async fn list(State(s): State<AppState>) -> Json<Vec<ProviderInfo>> {
    Json(s.manager.provider_infos())
}

/// Run every provider's health check now: `{"<name>": bool}`.
#[utoipa::path(post, path = "/api/v1/providers/test", tag = "providers",
    responses((status = 200, body = BTreeMap<String, bool>)))]
pub async fn test(State(s): State<AppState>) -> Json<BTreeMap<String, bool>> {
    Json(s.manager.refresh_health().await)
}

/// One provider in detail.
#[utoipa::path(get, path = "/api/v1/providers/{name}", tag = "providers", params(("name" = String, Path)),
    responses((status = 200, body = ProviderDetail), (status = 404, body = ErrorBody)))]
pub async fn detail(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<ProviderDetail>> {
    Ok(Json(s.manager.provider_detail(&name)?))
}

/// Snapshots held by providers that support them (none support them yet).
#[utoipa::path(get, path = "/api/v1/snapshots", tag = "providers", responses((status = 200, body = [SnapshotInfo])))]
pub async fn snapshots() -> Json<Vec<SnapshotInfo>> {
    // Only providers declaring the `snapshots` capability can hold snapshots; none does yet.
    Json(Vec::new())
}

/// Pool mode status (`enabled` is always present).
#[utoipa::path(get, path = "/api/v1/pool/status", tag = "providers", responses((status = 200, body = PoolStatus)))]
pub async fn pool_status() -> Json<PoolStatus> {
    Json(PoolStatus { enabled: false, vms: None, max_vms: None, total_users: None, max_users_per_vm: None })
}
