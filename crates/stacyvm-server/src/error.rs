//! The one place where failures become HTTP responses: `{code, message}` with a stable code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use stacyvm_core::CoreError;
use stacyvm_types::{ErrorBody, ErrorCode};

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable code (decides the status).
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

/// Maps every core error to its code. This is the only such mapping in the server.
pub fn code_for(err: &CoreError) -> ErrorCode {
    match err {
        CoreError::BadRequest(_) => ErrorCode::BadRequest,
        CoreError::NotFound(_) => ErrorCode::NotFound,
        CoreError::Conflict(_) => ErrorCode::Conflict,
        CoreError::ResourceLimit(_) => ErrorCode::ResourceLimit,
        CoreError::Timeout(_) => ErrorCode::Timeout,
        CoreError::Unavailable(_) => ErrorCode::Unavailable,
        CoreError::Internal(_) => ErrorCode::InternalError,
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        ApiError::new(code_for(&err), err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), message = %self.message, "request failed");
        }
        (status, Json(ErrorBody { code: self.code, message: self.message })).into_response()
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
