//! Offline import: `docker save` archives, OCI image layouts (a directory or a tar of one) and
//! plain rootfs tarballs.
//!
//! An archive is first extracted into `tmp/` with the same confined unpacker as layers, then
//! recognised by its top level: `oci-layout` → OCI layout, `manifest.json` → `docker save`,
//! anything else → a rootfs tarball, which becomes a one-layer image and needs a reference.
//! Every blob is verified against its digest and every layer against its `diff_id`.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::{Descriptor, ImageConfigBlob, ManifestOrIndex};
use crate::pull::{check_layer_count, LayerGuards, TmpPath};
use crate::reference::Reference;
use crate::store::{ImageRecord, ImageStore, LayerRecord};
use crate::unpack::unpack_layer;
use crate::{ImageError, ImageResult};

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

fn bad_archive(what: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(format!("archive: {what}"))
}

/// Joins a path named inside an archive to its root, refusing anything that leaves it.
fn inside(root: &Path, name: &str) -> ImageResult<PathBuf> {
    let rel = Path::new(name.trim_start_matches("./"));
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(bad_archive(format!("path {name:?} leaves the archive")));
    }
    Ok(root.join(rel))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> ImageResult<T> {
    let bytes = std::fs::read(path).map_err(|_| bad_archive(format!("{} is missing", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| bad_archive(format!("{}: {e}", path.display())))
}

fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs/sha256").join(digest.hex())
}

fn read_verified(layout: &Path, digest: &Digest) -> ImageResult<Vec<u8>> {
    let bytes =
        std::fs::read(blob_path(layout, digest)).map_err(|_| bad_archive(format!("blob {digest} is missing")))?;
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(ImageError::Corrupt(format!("blob {digest} has digest {actual}")));
    }
    Ok(bytes)
}

impl ImageStore {
    /// Imports every image in `source` (an archive file or an OCI layout directory).
    /// `reference` names the image: required for rootfs tarballs, optional otherwise (archives
    /// carry their own names), and only allowed when the archive holds one image.
    pub async fn import(&self, source: &Path, reference: Option<&str>) -> ImageResult<Vec<ImageRecord>> {
        if let Some(r) = reference {
            Reference::parse(r)?;
        }
        if source.is_dir() {
            return self.import_oci_layout(source, reference).await;
        }
        let extracted = TmpPath(self.tmp_path("import"));
        let (src, dest) = (source.to_path_buf(), extracted.0.clone());
        let unpacked = tokio::task::spawn_blocking(move || -> ImageResult<_> {
            std::fs::create_dir(&dest).map_err(|e| ImageError::io("create import dir", e))?;
            let file = std::fs::File::open(&src).map_err(|e| ImageError::io(&format!("open {}", src.display()), e))?;
            unpack_layer(file, &dest)
        })
        .await
        .map_err(|e| ImageError::Corrupt(format!("import task: {e}")))??;
        if extracted.0.join("oci-layout").is_file() {
            self.import_oci_layout(&extracted.0, reference).await
        } else if extracted.0.join("manifest.json").is_file() {
            self.import_docker_archive(&extracted.0, reference).await
        } else {
            let reference = reference.ok_or_else(|| {
                ImageError::InvalidReference("a rootfs tarball carries no name: give the image a reference".into())
            })?;
            self.import_rootfs(extracted, unpacked.diff_id, unpacked.content_bytes, reference).await.map(|r| vec![r])
        }
    }

    async fn import_rootfs(
        &self,
        dir: TmpPath,
        diff_id: Digest,
        size: u64,
        reference: &str,
    ) -> ImageResult<ImageRecord> {
        let guard = self.layer_locks.lock(diff_id.hex()).await;
        let target = self.layer_dir(&diff_id);
        if !target.is_dir() {
            std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(|e| ImageError::io("chmod layer", e))?;
            std::fs::rename(&dir.0, &target).map_err(|e| ImageError::io("install layer", e))?;
        }
        let record = ImageRecord {
            reference: Reference::parse(reference)?.to_string(),
            digest: diff_id.clone(),
            layers: vec![LayerRecord { diff_id, size }],
            config: Default::default(),
            created_at: Utc::now(),
        };
        self.publish(&record).await?;
        drop(guard);
        Ok(record)
    }

    async fn import_oci_layout(&self, layout: &Path, reference: Option<&str>) -> ImageResult<Vec<ImageRecord>> {
        let index: OciIndex = read_json(&layout.join("index.json"))?;
        if reference.is_some() && index.manifests.len() != 1 {
            return Err(ImageError::InvalidReference(format!(
                "the layout holds {} images; a reference can only name one",
                index.manifests.len()
            )));
        }
        let mut out = Vec::new();
        for entry in &index.manifests {
            let name = match reference {
                Some(r) => r.to_string(),
                None => entry
                    .annotations
                    .get("io.containerd.image.name")
                    .or_else(|| entry.annotations.get("org.opencontainers.image.ref.name"))
                    .filter(|n| Reference::parse(n).is_ok() && n.contains([':', '/', '@']))
                    .cloned()
                    .ok_or_else(|| {
                        ImageError::InvalidReference("the layout does not name its image: give a reference".into())
                    })?,
            };
            let mut doc = ManifestOrIndex::parse(&read_verified(layout, &entry.descriptor.digest)?)?;
            if let Some(picked) = doc.pick_platform() {
                doc = ManifestOrIndex::parse(&read_verified(layout, &picked?.digest)?)?;
            }
            let manifest = doc.into_manifest()?;
            let config = ImageConfigBlob::parse(&read_verified(layout, &manifest.config.digest)?)?;
            check_layer_count(&config, manifest.layers.len())?;
            let files: Vec<(PathBuf, Option<Digest>)> =
                manifest.layers.iter().map(|l| (blob_path(layout, &l.digest), Some(l.digest.clone()))).collect();
            out.push(self.store_image(&name, entry.descriptor.digest.clone(), &config, &files).await?);
        }
        Ok(out)
    }

    async fn import_docker_archive(&self, root: &Path, reference: Option<&str>) -> ImageResult<Vec<ImageRecord>> {
        let entries: Vec<DockerManifestEntry> = read_json(&root.join("manifest.json"))?;
        if reference.is_some() && entries.len() != 1 {
            return Err(ImageError::InvalidReference(format!(
                "the archive holds {} images; a reference can only name one",
                entries.len()
            )));
        }
        let mut out = Vec::new();
        for entry in &entries {
            let config_bytes = std::fs::read(inside(root, &entry.config)?)
                .map_err(|_| bad_archive(format!("config {} is missing", entry.config)))?;
            let config = ImageConfigBlob::parse(&config_bytes)?;
            check_layer_count(&config, entry.layers.len())?;
            let files: Vec<(PathBuf, Option<Digest>)> =
                entry.layers.iter().map(|l| inside(root, l).map(|p| (p, None))).collect::<ImageResult<_>>()?;
            let tags = entry.repo_tags.clone().unwrap_or_default();
            let names: Vec<String> = match reference {
                Some(r) => vec![r.to_string()],
                None if tags.is_empty() => {
                    return Err(ImageError::InvalidReference(
                        "the archive does not name its image: give a reference".into(),
                    ))
                }
                None => tags,
            };
            for name in names {
                out.push(self.store_image(&name, Digest::of(&config_bytes), &config, &files).await?);
            }
        }
        Ok(out)
    }

    /// Installs the layers in `files` (verified against the config's diff_ids and, when given,
    /// their blob digests) and publishes the image.
    async fn store_image(
        &self,
        reference: &str,
        digest: Digest,
        config: &ImageConfigBlob,
        files: &[(PathBuf, Option<Digest>)],
    ) -> ImageResult<ImageRecord> {
        let mut layers = Vec::new();
        let mut guards: LayerGuards = Vec::new();
        for ((file, blob_digest), diff_id) in files.iter().zip(&config.rootfs.diff_ids) {
            guards.push(self.layer_locks.lock(diff_id.hex()).await);
            let size = match self.cached_layer_size(diff_id)? {
                Some(size) => size,
                None => self.install_layer(file, blob_digest.as_ref(), Some(diff_id)).await?.1,
            };
            layers.push(LayerRecord { diff_id: diff_id.clone(), size });
        }
        let record = ImageRecord {
            reference: Reference::parse(reference)?.to_string(),
            digest,
            layers,
            config: config.config.clone().unwrap_or_default(),
            created_at: Utc::now(),
        };
        self.publish(&record).await?;
        drop(guards);
        Ok(record)
    }
}
