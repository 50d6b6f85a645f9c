//! StacyVM's OCI image store.
//!
//! An image given at spawn is an OCI reference (`alpine:3.19`, `127.0.0.1:5000/tools@sha256:…`).
//! The store pulls it from any OCI/Docker registry ([`registry`]: anonymous, bearer-token and
//! basic auth; plain HTTP only for registries configured as insecure), verifies every blob's
//! digest and every layer's `diff_id`, and unpacks each layer once into a content-addressed
//! directory ([`unpack`]) that sandboxes stack as overlayfs lower layers. Offline, images come
//! from `docker save` archives, OCI layouts and rootfs tarballs ([`import`]).
//!
//! Layout under the store's root:
//! - `layers/<diff_id hex>/`: one unpacked layer; present means complete (renamed into place).
//! - `images/<sha256 of the reference>.json`: one [`ImageRecord`] per reference.
//! - `leases/<holder>.json`: layers a sandbox is using; [`ImageStore::gc`] and
//!   [`ImageStore::remove`] never touch leased layers.
//! - `tmp/`: downloads and unpacks in progress (same file system, so completion is a rename);
//!   emptied at open.

pub mod digest;
pub mod import;
pub mod manifest;
mod pull;
pub mod reference;
pub mod registry;
mod store;
pub mod unpack;

pub use digest::Digest;
pub use manifest::RunConfig;
pub use pull::PullEvent;
pub use reference::Reference;
pub use registry::RegistrySettings;
pub use store::{GcReport, ImageRecord, ImageStore, LayerRecord};

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {0}")]
    InvalidReference(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("corrupt image content: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InUse(String),
    #[error("no space left on the image store's disk: {0}")]
    DiskFull(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl ImageError {
    /// An I/O error; `ENOSPC`/`EDQUOT` become [`ImageError::DiskFull`].
    pub fn io(context: &str, source: std::io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => ImageError::DiskFull(format!("{context}: {source}")),
            _ => ImageError::Io { context: context.to_string(), source },
        }
    }
}

/// Result of image operations.
pub type ImageResult<T> = Result<T, ImageError>;
