//! Core errors. The server turns each variant into one HTTP status and stable code.

use stacyvm_provider::ProviderError;
use stacyvm_store::StoreError;

/// Everything a Manager call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Bad input (`invalid input: ...`).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown resource (`sandbox not found: sb-x`, `template not found: t`, ...).
    #[error("{0}")]
    NotFound(String),
    /// Duplicate resource or a state that forbids the operation.
    #[error("{0}")]
    Conflict(String),
    /// A limit was hit (TTL, capacity, exec timeout above max).
    #[error("{0}")]
    ResourceLimit(String),
    /// Exec ran past its timeout (`exec timeout: sb-x`).
    #[error("{0}")]
    Timeout(String),
    /// The provider (or another dependency) cannot serve now.
    #[error("{0}")]
    Unavailable(String),
    /// Unexpected failure.
    #[error("{0}")]
    Internal(String),
}

/// Result alias.
pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// `invalid input: <detail>`.
    pub fn invalid(detail: impl std::fmt::Display) -> Self {
        CoreError::BadRequest(format!("invalid input: {detail}"))
    }

    /// `sandbox not found: <id>`.
    pub fn sandbox_not_found(id: &str) -> Self {
        CoreError::NotFound(format!("sandbox not found: {id}"))
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => CoreError::NotFound("not found".into()),
            StoreError::Conflict => CoreError::Conflict("already exists".into()),
            StoreError::Backend(msg) => CoreError::Internal(msg),
        }
    }
}

impl From<stacyvm_provider::FsError> for CoreError {
    fn from(e: stacyvm_provider::FsError) -> Self {
        ProviderError::from(e).into()
    }
}

impl From<ProviderError> for CoreError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::FileNotFound(_) => CoreError::NotFound(e.to_string()),
            ProviderError::PathEscape(p) => CoreError::invalid(format!("path {p:?} escapes sandbox")),
            ProviderError::InvalidInput(msg) => CoreError::invalid(msg),
            ProviderError::RuntimeMissing(_) => CoreError::Internal(e.to_string()),
            ProviderError::Unavailable(_) => CoreError::Unavailable(e.to_string()),
            ProviderError::Unsupported(_) => CoreError::BadRequest(e.to_string()),
            ProviderError::Failed(msg) => CoreError::Internal(msg),
        }
    }
}
