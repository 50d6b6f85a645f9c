//! Route table: one module per resource.

pub mod exec;
pub mod exec_ws;
pub mod files;
pub mod images;
pub mod providers;
pub mod quotas;
pub mod sandboxes;
pub mod system;
pub mod templates;
pub mod upload;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use stacyvm_core::manager::SpawnContext;
use stacyvm_types::ErrorCode;

use crate::error::ApiError;
use crate::{openapi, AppState};

/// Every `/api/v1` route.
pub fn api_routes() -> Router<AppState> {
    let admin = Router::new()
        .route("/providers", get(providers::list))
        .route("/providers/test", post(providers::test))
        .route("/providers/{name}", get(providers::detail))
        .route("/diagnostics", get(system::diagnostics))
        .route("/metrics", get(system::metrics))
        .route("/metrics/prometheus", get(system::prometheus))
        .nest("/quotas", quotas::routes());
    Router::new()
        .merge(sandboxes::routes())
        .merge(exec::routes())
        .merge(files::routes())
        .merge(templates::routes())
        .merge(providers::routes())
        .merge(system::routes())
        .nest("/quotas", quotas::routes())
        .nest("/images", images::routes())
        .route("/openapi.json", get(openapi::serve))
        .nest("/admin", admin)
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route not found")
}

/// JSON 405 (code `BAD_REQUEST`) for a known path with the wrong method.
pub async fn method_not_allowed() -> (axum::http::StatusCode, axum::Json<stacyvm_types::ErrorBody>) {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(stacyvm_types::ErrorBody { code: ErrorCode::BadRequest, message: "method not allowed".into() }),
    )
}

/// Spawn context from headers: `X-User-ID` (validated by the core).
pub fn spawn_context(headers: &HeaderMap) -> Result<SpawnContext, ApiError> {
    let header_owner = match headers.get("x-user-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid input: X-User-ID must be valid UTF-8 text"))?
                .to_string(),
        ),
    };
    Ok(SpawnContext { header_owner, tenant_id: String::new() })
}
