//! Refuses CORS preflights from origins outside an explicit allow-list with 403 (tower-http's
//! `CorsLayer` only omits the allow header). Runs before auth, so keyless preflights are
//! answered without a credential.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stacyvm_types::ErrorCode;

use crate::error::ApiError;

/// The allow-list, or `None` for any origin.
#[derive(Debug, Clone)]
pub struct PreflightPolicy {
    allowed: Option<Vec<String>>,
}

impl PreflightPolicy {
    /// Builds the policy from `server.cors_allowed_origins` (`*` or empty = any).
    pub fn new(origins: &[String]) -> Self {
        let any = origins.is_empty() || origins.iter().any(|o| o.trim() == "*");
        let allowed = (!any).then(|| origins.iter().map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect());
        PreflightPolicy { allowed }
    }
}

/// Middleware: 403 for a preflight whose `Origin` is not allowed.
pub async fn reject_unlisted_preflight(
    State(policy): State<Arc<PreflightPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(allowed) = &policy.allowed {
        let is_preflight =
            req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if let (true, Some(origin)) = (is_preflight, origin) {
            if !allowed.iter().any(|a| a == origin) {
                return ApiError::new(ErrorCode::Forbidden, format!("origin {origin} is not allowed")).into_response();
            }
        }
    }
    next.run(req).await
}
