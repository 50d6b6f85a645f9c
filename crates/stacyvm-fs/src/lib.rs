//! Files inside a sandbox, safely.
//!
//! [`SandboxPath`] is a lexically normalised absolute path (`..` above `/` is refused).
//! [`HostRoot`] performs file operations on a directory treated as the sandbox's `/`, resolving
//! every path in the kernel with `openat2` so that neither `..` nor symlinks can leave it. It is
//! used on the host by the `mock` provider and inside sandboxes by the agent.

pub mod hostfs;
pub mod path;

pub use hostfs::{HostRoot, PendingWrite, ResolveMode};
pub use path::{SandboxPath, WORKSPACE};

/// Metadata of a file inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path inside the sandbox.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Directory?
    pub is_dir: bool,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// Why a file operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// The path does not exist.
    #[error("file not found: {0}")]
    NotFound(String),
    /// The path tries to leave the sandbox root.
    #[error("path {0:?} escapes sandbox")]
    PathEscape(String),
    /// The operation does not make sense for this input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
}

/// Result alias.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// Maps an I/O error on `path` to the matching variant.
    pub fn from_io(path: &str, err: std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::ENOENT) => FsError::NotFound(path.to_string()),
            Some(libc::EXDEV) => FsError::PathEscape(path.to_string()),
            Some(libc::ELOOP) => FsError::InvalidInput(format!("{path}: too many levels of symbolic links")),
            Some(libc::EISDIR) => FsError::InvalidInput(format!("{path} is a directory")),
            Some(libc::ENOTDIR) => FsError::InvalidInput(format!("{path}: a parent is not a directory")),
            Some(libc::ENOTEMPTY) => FsError::InvalidInput(format!("directory {path} is not empty")),
            Some(libc::EEXIST) => FsError::InvalidInput(format!("{path} already exists")),
            _ => FsError::Failed(format!("{path}: {err}")),
        }
    }
}
