//! Pulling an image from a registry, and installing verified layers into the store.
//!
//! One pull per reference at a time in this process: a caller that arrives while the same
//! reference is being pulled waits and gets that pull's result (any record stored after the call
//! began) without asking the registry again. Layers are keyed by `diff_id`, so a layer shared by several images is downloaded and
//! unpacked once. Nothing enters `layers/` or `images/` before its digests are verified; a
//! failure leaves only files under `tmp/`, which are removed on the way out.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::Serialize;

use crate::digest::{Digest, Hashing};
use crate::manifest::{Compression, Descriptor, ImageConfigBlob, ManifestOrIndex};
use crate::reference::Reference;
use crate::store::{ImageRecord, ImageStore, LayerRecord};
use crate::unpack::unpack_layer;
use crate::{ImageError, ImageResult};

/// Progress of a pull, for progress bars and NDJSON streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PullEvent {
    /// The manifest was found.
    Resolved { reference: String, digest: String, layers: usize, bytes: u64 },
    /// A layer is already in the store.
    LayerCached { digest: String },
    /// Bytes of a layer received so far.
    Downloading { digest: String, downloaded: u64, total: u64 },
    /// A layer was verified and unpacked.
    LayerDone { digest: String },
}

/// Receives progress events.
pub type Progress<'a> = &'a (dyn Fn(PullEvent) + Send + Sync);

/// Removes a temporary file or directory when dropped.
pub(crate) struct TmpPath(pub(crate) PathBuf);

impl Drop for TmpPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
    }
}

/// Guards that keep freshly installed layers safe from `gc` until the image is published.
pub(crate) type LayerGuards = Vec<tokio::sync::OwnedMutexGuard<()>>;

impl ImageStore {
    /// Pulls `reference` from its registry (or returns the result of a concurrent pull of it).
    pub async fn pull(&self, reference: &str, progress: Progress<'_>) -> ImageResult<ImageRecord> {
        let r = Reference::parse(reference)?;
        let canonical = r.to_string();
        let asked_at = Utc::now();
        let _pull = self.pull_locks.lock(&canonical).await;
        // Stored by a pull that finished after this call began (it ran concurrently): reuse it.
        if let Some(record) = self.get(&canonical)? {
            if record.created_at >= asked_at {
                return Ok(record);
            }
        }
        let (bytes, digest) = self.registry.manifest(&r, &r.manifest_ref()).await?;
        let mut doc = ManifestOrIndex::parse(&bytes)?;
        if let Some(picked) = doc.pick_platform() {
            let picked = picked?.digest.to_string();
            doc = ManifestOrIndex::parse(&self.registry.manifest(&r, &picked).await?.0)?;
        }
        let manifest = doc.into_manifest()?;
        let config = ImageConfigBlob::parse(&self.registry.small_blob(&r, &manifest.config).await?)?;
        check_layer_count(&config, manifest.layers.len())?;
        progress(PullEvent::Resolved {
            reference: canonical.clone(),
            digest: digest.to_string(),
            layers: manifest.layers.len(),
            bytes: manifest.layers.iter().map(|l| l.size).sum(),
        });
        let fetches = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(desc, diff_id)| self.fetch_layer(&r, desc, diff_id, progress));
        let (layers, guards): (Vec<LayerRecord>, Vec<LayerGuards>) =
            futures::future::try_join_all(fetches).await?.into_iter().unzip();
        let record = ImageRecord {
            reference: canonical,
            digest,
            layers,
            config: config.config.unwrap_or_default(),
            created_at: Utc::now(),
        };
        self.publish(&record).await?;
        drop(guards);
        Ok(record)
    }

    /// Returns the stored image, pulling it first when it is missing.
    pub async fn ensure(&self, reference: &str, progress: Progress<'_>) -> ImageResult<ImageRecord> {
        match self.get(reference)? {
            Some(record) => Ok(record),
            None => self.pull(reference, progress).await,
        }
    }

    async fn fetch_layer(
        &self,
        r: &Reference,
        desc: &Descriptor,
        diff_id: &Digest,
        progress: Progress<'_>,
    ) -> ImageResult<(LayerRecord, LayerGuards)> {
        Compression::from_media_type(&desc.media_type)?;
        let guard = self.layer_locks.lock(diff_id.hex()).await;
        if let Some(size) = self.cached_layer_size(diff_id)? {
            progress(PullEvent::LayerCached { digest: desc.digest.to_string() });
            return Ok((LayerRecord { diff_id: diff_id.clone(), size }, vec![guard]));
        }
        let blob = TmpPath(self.tmp_path("blob"));
        let file = std::fs::File::create(&blob.0).map_err(|e| ImageError::io("create download file", e))?;
        let report = |downloaded| {
            progress(PullEvent::Downloading { digest: desc.digest.to_string(), downloaded, total: desc.size })
        };
        self.registry.blob_to_file(r, desc, file, &report).await?;
        let size = self.install_layer(&blob.0, None, Some(diff_id)).await?.1;
        progress(PullEvent::LayerDone { digest: desc.digest.to_string() });
        Ok((LayerRecord { diff_id: diff_id.clone(), size }, vec![guard]))
    }

    /// Size of a layer already in the store, or `None` when it is not there.
    pub(crate) fn cached_layer_size(&self, diff_id: &Digest) -> ImageResult<Option<u64>> {
        if !self.layer_dir(diff_id).is_dir() {
            return Ok(None);
        }
        let known = self.list()?.into_iter().flat_map(|i| i.layers).find(|l| &l.diff_id == diff_id);
        Ok(Some(known.map_or(0, |l| l.size)))
    }

    /// Unpacks the layer blob at `blob` into the store, verifying the blob's digest and the
    /// `diff_id` when given. Returns the `diff_id` and the bytes of file content. The caller
    /// holds the layer's lock when the `diff_id` is known in advance.
    pub(crate) async fn install_layer(
        &self,
        blob: &Path,
        blob_digest: Option<&Digest>,
        diff_id: Option<&Digest>,
    ) -> ImageResult<(Digest, u64)> {
        let staging = TmpPath(self.tmp_path("layer"));
        let (blob, staged) = (blob.to_path_buf(), staging.0.clone());
        let (unpacked, raw_digest) = tokio::task::spawn_blocking(move || -> ImageResult<_> {
            std::fs::create_dir(&staged).map_err(|e| ImageError::io("create staging dir", e))?;
            let file = std::fs::File::open(&blob).map_err(|e| ImageError::io("open layer blob", e))?;
            let mut raw = Hashing::new(file);
            let unpacked = unpack_layer(&mut raw, &staged)?;
            std::io::copy(&mut raw, &mut std::io::sink()).map_err(|e| ImageError::io("read layer blob", e))?;
            Ok((unpacked, raw.finish().0))
        })
        .await
        .map_err(|e| ImageError::Corrupt(format!("unpack task: {e}")))??;
        if let Some(expected) = blob_digest {
            if &raw_digest != expected {
                return Err(ImageError::Corrupt(format!("layer blob has digest {raw_digest}, expected {expected}")));
            }
        }
        if let Some(expected) = diff_id {
            if &unpacked.diff_id != expected {
                return Err(ImageError::Corrupt(format!(
                    "layer content has diff_id {}, the image config says {expected}",
                    unpacked.diff_id
                )));
            }
        }
        let target = self.layer_dir(&unpacked.diff_id);
        std::fs::set_permissions(&staging.0, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| ImageError::io("chmod layer", e))?;
        match std::fs::rename(&staging.0, &target) {
            Ok(()) => {}
            // Another process installed the same layer first: keep theirs.
            Err(_) if target.is_dir() => {}
            Err(e) => return Err(ImageError::io("install layer", e)),
        }
        if unpacked.skipped_devices > 0 {
            tracing::info!(layer = %unpacked.diff_id, devices = unpacked.skipped_devices, "skipped device nodes in layer");
        }
        Ok((unpacked.diff_id, unpacked.content_bytes))
    }
}

pub(crate) fn check_layer_count(config: &ImageConfigBlob, layers: usize) -> ImageResult<()> {
    if config.rootfs.diff_ids.len() != layers {
        return Err(ImageError::Corrupt(format!(
            "the manifest lists {layers} layers but the config {} diff_ids",
            config.rootfs.diff_ids.len()
        )));
    }
    Ok(())
}
