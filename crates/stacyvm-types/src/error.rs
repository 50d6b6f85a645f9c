//! The closed set of API error codes and the error body every failing route returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable, UPPERCASE error codes (spec `rest-api.md` §3). Each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: invalid body, parameter, duration, owner ID or path.
    BadRequest,
    /// 401: missing or invalid credentials.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: unknown or destroyed resource.
    NotFound,
    /// 408: exec exceeded its timeout.
    Timeout,
    /// 409: duplicate resource.
    Conflict,
    /// 429: a limit was hit (TTL, capacity, queue, rate).
    ResourceLimit,
    /// 500: unexpected failure.
    InternalError,
    /// 503: provider or dependency unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Timeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::ResourceLimit => 429,
            ErrorCode::InternalError => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The wire spelling, e.g. `NOT_FOUND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::ResourceLimit => "RESOURCE_LIMIT",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }
}

/// The JSON body of every error response: `{"code": "NOT_FOUND", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable error code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_uppercase_and_match_as_str() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Timeout,
            ErrorCode::Conflict,
            ErrorCode::ResourceLimit,
            ErrorCode::InternalError,
            ErrorCode::Unavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::Timeout.http_status(), 408);
        assert_eq!(ErrorCode::ResourceLimit.http_status(), 429);
    }
}
