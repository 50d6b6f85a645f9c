//! The JSON documents of the OCI image spec and Docker's schema 2, as far as a pull needs them.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::ImageError;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The `Accept` header of manifest requests.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Most bytes a manifest or config may have (they are JSON documents, not layers).
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;

/// A reference to a blob.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The platform of one entry of an index.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A manifest or an index: which one it is shows in `manifests` vs `layers`.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestOrIndex {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
}

/// A single-platform manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl ManifestOrIndex {
    /// Parses a manifest document.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        serde_json::from_slice(bytes).map_err(|e| ImageError::Corrupt(format!("manifest is not valid JSON: {e}")))
    }

    /// The manifest for linux/amd64 when this is an index.
    pub fn pick_platform(&self) -> Option<Result<&Descriptor, ImageError>> {
        let list = self.manifests.as_ref()?;
        let wanted = |d: &&Descriptor| {
            d.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == host_architecture())
        };
        Some(list.iter().find(wanted).ok_or_else(|| {
            let offered: Vec<String> = list
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| format!("{}/{}", p.os, p.architecture)))
                .collect();
            ImageError::NotFound(format!(
                "no linux/{} image in the index (offered: {})",
                host_architecture(),
                offered.join(", ")
            ))
        }))
    }

    /// The single-platform manifest, or an error when this is neither.
    pub fn into_manifest(self) -> Result<Manifest, ImageError> {
        match (self.config, self.layers) {
            (Some(config), Some(layers)) => Ok(Manifest { config, layers }),
            _ => Err(ImageError::Corrupt(format!("unsupported manifest (media type {:?})", self.media_type))),
        }
    }
}

/// The architecture name OCI uses for this host.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The image configuration blob (only what StacyVM uses).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfigBlob {
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

/// `rootfs` of the config: the uncompressed digests of the layers, bottom first.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// How the image wants its processes run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunConfig {
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl ImageConfigBlob {
    /// Parses a config blob.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        serde_json::from_slice(bytes).map_err(|e| ImageError::Corrupt(format!("image config is not valid JSON: {e}")))
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

impl Compression {
    /// Reads the compression from a layer media type; zstd and foreign layers are refused.
    pub fn from_media_type(media_type: &str) -> Result<Self, ImageError> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar" | "application/vnd.docker.image.rootfs.diff.tar" => {
                Ok(Compression::None)
            }
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
            other => Err(ImageError::Unsupported(format!("layer media type {other:?} is not supported"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_host_platform_from_an_index() {
        let d = |arch: &str, c: char| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}","size":1,"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                c.to_string().repeat(64)
            )
        };
        let json = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#, d("s390x", 'a'), d("amd64", 'b'));
        let index = ManifestOrIndex::parse(json.as_bytes()).unwrap();
        let picked = index.pick_platform().unwrap().unwrap();
        assert_eq!(picked.digest.hex(), "b".repeat(64));
        let json = format!(r#"{{"manifests":[{}]}}"#, d("s390x", 'a'));
        let err = ManifestOrIndex::parse(json.as_bytes()).unwrap().pick_platform().unwrap().unwrap_err();
        assert!(err.to_string().contains("linux/s390x"), "{err}");
    }

    #[test]
    fn a_document_without_layers_is_not_a_manifest() {
        assert!(ManifestOrIndex::parse(b"{}").unwrap().into_manifest().is_err());
        assert!(ManifestOrIndex::parse(b"not json").is_err());
        assert!(Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").is_err());
    }
}
