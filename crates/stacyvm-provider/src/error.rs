//! Provider errors. The server maps these (through the core) to HTTP codes in one place.

/// What went wrong inside a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// A path inside the sandbox does not exist.
    #[error("file not found: {0}")]
    FileNotFound(String),
    /// A path tries to leave the sandbox (`..` past the root, or a symlink pointing out).
    #[error("path {0:?} escapes sandbox")]
    PathEscape(String),
    /// Input the provider cannot act on (reading a directory, deleting a non-empty one, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The runtime is gone.
    #[error("runtime not found: {0}")]
    RuntimeMissing(String),
    /// The backend cannot be used (binary missing, daemon down).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider does not support this operation (see its capabilities).
    #[error("not supported by this provider: {0}")]
    Unsupported(&'static str),
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
}

/// Result alias.
pub type ProviderResult<T> = Result<T, ProviderError>;

impl From<stacyvm_fs::FsError> for ProviderError {
    fn from(e: stacyvm_fs::FsError) -> Self {
        use stacyvm_fs::FsError;
        match e {
            FsError::NotFound(p) => ProviderError::FileNotFound(p),
            FsError::PathEscape(p) => ProviderError::PathEscape(p),
            FsError::InvalidInput(m) => ProviderError::InvalidInput(m),
            FsError::Failed(m) => ProviderError::Failed(m),
        }
    }
}
