//! The store on disk: image records, content-addressed layers, leases, garbage collection.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::manifest::RunConfig;
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistrySettings};
use crate::{ImageError, ImageResult};

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the uncompressed layer tarball: the layer's identity in the store.
    pub diff_id: Digest,
    /// Bytes of file content in the layer.
    pub size: u64,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Normalised reference (`docker.io/library/alpine:latest`).
    pub reference: String,
    /// Manifest digest (for imported rootfs tarballs: the digest of the tarball).
    pub digest: Digest,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// How the image wants its processes run.
    #[serde(default)]
    pub config: RunConfig,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl ImageRecord {
    /// Bytes of file content over all layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// What [`ImageStore::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    image: String,
    layers: Vec<Digest>,
}

/// Per-key async locks: one pull per reference, one unpack per layer, in this process.
#[derive(Default)]
pub(crate) struct KeyedLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyedLocks {
    pub(crate) async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, l| Arc::strong_count(l) > 1 || l.try_lock().is_err());
            map.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Whether someone holds the lock of `key` right now.
    pub(crate) fn is_held(&self, key: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).is_some_and(|l| l.try_lock().is_err())
    }
}

/// The image store. Cheap to share behind an `Arc`; all methods are safe to call concurrently.
pub struct ImageStore {
    root: PathBuf,
    pub(crate) registry: RegistryClient,
    pub(crate) pull_locks: KeyedLocks,
    pub(crate) layer_locks: KeyedLocks,
    /// Held by gc and remove while they delete, and by writers while they publish a record.
    pub(crate) publish: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore").field("root", &self.root).finish_non_exhaustive()
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> ImageResult<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| ImageError::io(&format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| ImageError::io(&format!("rename {}", path.display()), e))
}

/// Removes temporary files left by processes that are gone (names are `<what>-<pid>-<n>`);
/// those of live processes (a CLI import while the server runs) are theirs to clean.
fn clear_abandoned_tmp(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|d| d.flatten().map(|e| dir_size(&e.path())).sum()).unwrap_or(0)
}

impl ImageStore {
    /// Opens (creating) a store at `root`; clears leftovers of interrupted pulls.
    pub fn open(root: &Path, settings: RegistrySettings) -> ImageResult<Self> {
        for sub in ["layers", "images", "leases"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| ImageError::io(&format!("create {sub}"), e))?;
        }
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io("create tmp", e))?;
        clear_abandoned_tmp(&tmp);
        Ok(ImageStore {
            root: root.to_path_buf(),
            registry: RegistryClient::new(settings)?,
            pull_locks: KeyedLocks::default(),
            layer_locks: KeyedLocks::default(),
            publish: tokio::sync::Mutex::new(()),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of an unpacked layer.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// A fresh path under `tmp/` (same file system as the layers), removed at the next open
    /// once this process is gone.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{what}-{}-{n}", std::process::id()))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.root.join("images").join(format!("{}.json", &Digest::of(reference.as_bytes()).hex()[..32]))
    }

    /// The stored image for a reference (normalised first), if any.
    pub fn get(&self, reference: &str) -> ImageResult<Option<ImageRecord>> {
        let canonical = Reference::parse(reference)?.to_string();
        match std::fs::read(self.record_path(&canonical)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ImageError::Corrupt(format!("image record of {canonical}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("read image record", e)),
        }
    }

    /// Every stored image, sorted by reference.
    pub fn list(&self) -> ImageResult<Vec<ImageRecord>> {
        let dir = std::fs::read_dir(self.root.join("images")).map_err(|e| ImageError::io("list images", e))?;
        let mut out: Vec<ImageRecord> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Stores a record once all its layers are in place.
    pub(crate) async fn publish(&self, record: &ImageRecord) -> ImageResult<()> {
        let _guard = self.publish.lock().await;
        if let Some(missing) = record.layers.iter().find(|l| !self.layer_dir(&l.diff_id).is_dir()) {
            return Err(ImageError::Corrupt(format!("layer {} vanished before the image was stored", missing.diff_id)));
        }
        let json = serde_json::to_vec_pretty(record).map_err(|e| ImageError::Corrupt(e.to_string()))?;
        write_atomic(&self.record_path(&record.reference), &json)
    }

    /// Directories to stack for a sandbox, top layer first (overlayfs `lowerdir` order).
    pub fn lower_dirs(&self, record: &ImageRecord) -> Vec<PathBuf> {
        record.layers.iter().rev().map(|l| self.layer_dir(&l.diff_id)).collect()
    }

    fn lease_path(&self, holder: &str) -> ImageResult<PathBuf> {
        if holder.is_empty() || !holder.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ImageError::InvalidReference(format!("lease holder {holder:?}")));
        }
        Ok(self.root.join("leases").join(format!("{holder}.json")))
    }

    /// Records that `holder` (a sandbox) uses the image's layers, so they are not collected.
    pub async fn lease(&self, holder: &str, record: &ImageRecord) -> ImageResult<()> {
        let _guard = self.publish.lock().await;
        if let Some(missing) = record.layers.iter().find(|l| !self.layer_dir(&l.diff_id).is_dir()) {
            return Err(ImageError::NotFound(format!("layer {} of {} is gone", missing.diff_id, record.reference)));
        }
        let lease = Lease {
            image: record.reference.clone(),
            layers: record.layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        write_atomic(
            &self.lease_path(holder)?,
            &serde_json::to_vec(&lease).map_err(|e| ImageError::Corrupt(e.to_string()))?,
        )
    }

    /// Drops `holder`'s lease. Idempotent.
    pub fn release(&self, holder: &str) -> ImageResult<()> {
        match std::fs::remove_file(self.lease_path(holder)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ImageError::io("remove lease", e)),
            _ => Ok(()),
        }
    }

    /// Holders of leases (sandbox ids), for reconciliation.
    pub fn lease_holders(&self) -> ImageResult<Vec<String>> {
        let dir = std::fs::read_dir(self.root.join("leases")).map_err(|e| ImageError::io("list leases", e))?;
        Ok(dir.flatten().filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string)).collect())
    }

    fn leases(&self) -> Vec<Lease> {
        let Ok(dir) = std::fs::read_dir(self.root.join("leases")) else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Removes an image's record, then collects layers nothing else uses. Refused while a
    /// sandbox uses the image.
    pub async fn remove(&self, reference: &str) -> ImageResult<(ImageRecord, GcReport)> {
        let record = self
            .get(reference)?
            .ok_or_else(|| ImageError::NotFound(format!("image {reference} is not in the store")))?;
        {
            let _guard = self.publish.lock().await;
            let users = self.leases().into_iter().filter(|l| l.image == record.reference).count();
            if users > 0 {
                return Err(ImageError::InUse(format!("image {} is used by {users} sandbox(es)", record.reference)));
            }
            std::fs::remove_file(self.record_path(&record.reference))
                .map_err(|e| ImageError::io("remove record", e))?;
        }
        let report = self.gc().await?;
        Ok((record, report))
    }

    /// Removes layers that no image record and no lease references, and stale temporary files.
    pub async fn gc(&self) -> ImageResult<GcReport> {
        let guard = self.publish.lock().await;
        let mut keep: BTreeSet<String> = BTreeSet::new();
        for record in self.list()? {
            keep.extend(record.layers.iter().map(|l| l.diff_id.hex().to_string()));
        }
        for lease in self.leases() {
            keep.extend(lease.layers.iter().map(|d| d.hex().to_string()));
        }
        // Under the lock, doomed layers only move into `tmp/` (a rename); measuring and
        // deleting them happens after, off the async threads, without holding up spawns.
        let mut doomed = Vec::new();
        let dir = std::fs::read_dir(self.root.join("layers")).map_err(|e| ImageError::io("list layers", e))?;
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // A pull holds the lock of each layer it unpacked until its record is published.
            if keep.contains(&name) || self.layer_locks.is_held(&name) {
                continue;
            }
            let target = self.tmp_path("gc");
            std::fs::rename(entry.path(), &target).map_err(|e| ImageError::io("retire layer", e))?;
            doomed.push(target);
        }
        drop(guard);
        tokio::task::spawn_blocking(move || {
            let mut report = GcReport::default();
            for path in doomed {
                report.bytes_freed += dir_size(&path);
                std::fs::remove_dir_all(&path).map_err(|e| ImageError::io("remove layer", e))?;
                report.layers_removed += 1;
            }
            Ok(report)
        })
        .await
        .map_err(|e| ImageError::Corrupt(format!("gc task: {e}")))?
    }
}
