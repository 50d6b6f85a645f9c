//! Images in the local store (`/images` routes; additions of this project).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageInfo {
    /// Normalised reference, e.g. `docker.io/library/alpine:3.19`.
    pub reference: String,
    /// Manifest digest (`sha256:…`; for an imported rootfs tarball, the tarball's digest).
    pub digest: String,
    /// Bytes of file content over all layers.
    pub size_bytes: u64,
    /// Layer `diff_id`s, bottom first.
    pub layers: Vec<String>,
    /// When the image was stored.
    #[serde(with = "crate::time::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// `KEY=value` entries of the image's config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The image's default command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// The image's working directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
}

/// `POST /images/pull`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImagePullRequest {
    /// OCI reference, e.g. `alpine:3.19` or `registry.lan:5000/team/tools@sha256:…`.
    pub reference: String,
}

/// The answer of `DELETE /images` and `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageRemoval {
    /// The removed image (absent for a prune).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
    /// Layers deleted because nothing used them any more.
    pub layers_removed: usize,
    /// Bytes freed by deleting them.
    pub bytes_freed: u64,
}
