//! Pulls through our registry client from a real `docker-registry` on 127.0.0.1, with images
//! built by umoci and pushed by skopeo (see `stacyvm-testkit`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use stacyvm_image::{ImageError, ImageStore, PullEvent, RegistrySettings};
use stacyvm_testkit::{busybox_rootfs, push_layered, push_rootfs, ImageConfig, TestRegistry};

fn store_for(root: &Path, registry: &TestRegistry) -> ImageStore {
    let settings = RegistrySettings { insecure: vec![registry.host()], ..Default::default() };
    ImageStore::open(root, settings).unwrap()
}

fn push_busybox(registry: &TestRegistry, repo_tag: &str) -> String {
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    push_rootfs(registry, rootfs.path(), repo_tag, ImageConfig::busybox())
}

fn events() -> (Arc<Mutex<Vec<PullEvent>>>, impl Fn(PullEvent) + Send + Sync) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |e| sink.lock().unwrap().push(e))
}

fn tmp_is_empty(store: &ImageStore) -> bool {
    std::fs::read_dir(store.root().join("tmp")).unwrap().next().is_none()
}

fn layer_count(store: &ImageStore) -> usize {
    std::fs::read_dir(store.root().join("layers")).unwrap().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_verifies_and_reuses_layers() {
    let Some(registry) = TestRegistry::start() else { return };
    let digest = push_busybox(&registry, "tools/busybox:1.0");
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), &registry);
    let reference = format!("{}/tools/busybox:1.0", registry.host());
    let (seen, progress) = events();
    let image = store.pull(&reference, &progress).await.unwrap();
    assert_eq!(image.reference, reference);
    assert_eq!(image.digest.to_string(), digest);
    assert_eq!(image.layers.len(), 1);
    assert!(image.size() > 500_000, "busybox content is about 1-2 MB, got {}", image.size());
    assert_eq!(image.config.env.as_deref(), Some(&["PATH=/bin:/usr/bin".to_string()][..]));
    assert_eq!(image.config.working_dir.as_deref(), Some("/workspace"));
    let top = &store.lower_dirs(&image)[0];
    assert!(top.join("bin/busybox").is_file() && top.join("etc/passwd").is_file());
    assert!(seen.lock().unwrap().iter().any(|e| matches!(e, PullEvent::Downloading { .. })));
    assert_eq!(store.list().unwrap(), vec![image.clone()]);
    assert!(store.get("  bad ref").unwrap_err().to_string().contains("invalid image reference"));
    assert!(tmp_is_empty(&store));

    // The same content under another tag: nothing is downloaded again.
    let (from, to) = (format!("docker://{reference}"), format!("docker://{}/tools/busybox:copy", registry.host()));
    stacyvm_testkit::cmd::run(
        "skopeo",
        ["copy", "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false", &from, &to],
    );
    let (seen, progress) = events();
    let copy = store.pull(&format!("{}/tools/busybox:copy", registry.host()), &progress).await.unwrap();
    assert_eq!(copy.layers, image.layers);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().any(|e| matches!(e, PullEvent::LayerCached { .. })), "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, PullEvent::Downloading { .. })), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_of_one_image_download_once() {
    let Some(registry) = TestRegistry::start() else { return };
    push_busybox(&registry, "busybox:latest");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store_for(dir.path(), &registry));
    let downloads = Arc::new(Mutex::new(0usize));
    let reference = format!("{}/busybox", registry.host());
    let pulls = (0..8).map(|_| {
        let (store, downloads, reference) = (store.clone(), downloads.clone(), reference.clone());
        tokio::spawn(async move {
            let progress = move |e: PullEvent| {
                if matches!(e, PullEvent::Resolved { .. }) {
                    *downloads.lock().unwrap() += 1;
                }
            };
            store.pull(&reference, &progress).await.unwrap()
        })
    });
    let images: Vec<_> = futures::future::join_all(pulls).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(images.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(*downloads.lock().unwrap(), 1, "one pull must serve all eight callers");
    assert_eq!(store.list().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn whiteouts_and_opaque_dirs_give_the_right_merged_view() {
    let Some(registry) = TestRegistry::start() else { return };
    if unsafe { libc::geteuid() } != 0 {
        return eprintln!("SKIPPED: mounting the overlay needs root");
    }
    push_layered(&registry, "layered:1");
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), &registry);
    let image = store.pull(&format!("{}/layered:1", registry.host()), &|_| {}).await.unwrap();
    assert_eq!(image.layers.len(), 3);
    let lower: Vec<String> = store.lower_dirs(&image).iter().map(|p| p.display().to_string()).collect();
    let merged = dir.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let options = format!("lowerdir={}", lower.join(":"));
    rustix::mount::mount("overlay", &merged, "overlay", rustix::mount::MountFlags::RDONLY, options.as_str()).unwrap();
    let check = std::panic::catch_unwind(|| {
        for (path, content) in stacyvm_testkit::images::LAYERED_PRESENT {
            let p = merged.join(path);
            let meta = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{path}: {e}"));
            if meta.file_type().is_symlink() {
                assert_eq!(std::fs::read_link(&p).unwrap().to_str().unwrap(), *content, "{path}");
            } else if !content.is_empty() {
                assert_eq!(std::fs::read_to_string(&p).unwrap(), *content, "{path}");
            }
        }
        for path in stacyvm_testkit::images::LAYERED_ABSENT {
            assert!(std::fs::symlink_metadata(merged.join(path)).is_err(), "{path} must not be visible");
        }
    });
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).unwrap();
    check.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_images_and_unreachable_registries_are_clear_errors() {
    let Some(registry) = TestRegistry::start() else { return };
    push_busybox(&registry, "busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), &registry);
    for missing in [format!("{}/nope:1", registry.host()), format!("{}/busybox:2", registry.host())] {
        let err = store.pull(&missing, &|_| {}).await.unwrap_err();
        assert!(matches!(err, ImageError::NotFound(_)), "{missing}: {err}");
        assert!(err.to_string().contains("not found"), "{err}");
    }
    // A registry that is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let settings = RegistrySettings { insecure: vec![closed.to_string()], ..Default::default() };
    let down = ImageStore::open(&dir.path().join("other"), settings).unwrap();
    let err = down.pull(&format!("{closed}/busybox:1"), &|_| {}).await.unwrap_err();
    assert!(matches!(err, ImageError::Unavailable(_)) && err.to_string().contains("unreachable"), "{err}");
    // A plain-HTTP registry that is not listed as insecure is spoken to over TLS, which fails.
    let strict = ImageStore::open(&dir.path().join("strict"), RegistrySettings::default()).unwrap();
    let err = strict.pull(&format!("{}/busybox:1", registry.host()), &|_| {}).await.unwrap_err();
    assert!(matches!(err, ImageError::Unavailable(_)), "{err}");
    assert!(store.list().unwrap().is_empty() && layer_count(&store) == 0 && tmp_is_empty(&store));
}

/// Every blob file the registry stores, by digest hex.
fn registry_blob(registry: &TestRegistry, hex: &str) -> std::path::PathBuf {
    registry.storage_dir().join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_layer_is_refused_and_nothing_is_stored() {
    let Some(registry) = TestRegistry::start() else { return };
    push_busybox(&registry, "busybox:bad");
    let manifest = stacyvm_testkit::skopeo_inspect(&format!("docker://{}/busybox:bad", registry.host()));
    let layer = manifest["Layers"][0].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = registry_blob(&registry, &layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), &registry);
    let err = store.pull(&format!("{}/busybox:bad", registry.host()), &|_| {}).await.unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("digest"), "{err}");
    assert!(store.list().unwrap().is_empty(), "no record for a corrupt image");
    assert_eq!(layer_count(&store), 0, "no layer from a corrupt image");
    assert!(tmp_is_empty(&store));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_the_pull_cleanly() {
    let Some(registry) = TestRegistry::start() else { return };
    if unsafe { libc::geteuid() } != 0 {
        return eprintln!("SKIPPED: mounting a small tmpfs needs root");
    }
    push_busybox(&registry, "busybox:big");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("small");
    std::fs::create_dir(&root).unwrap();
    rustix::mount::mount("tmpfs", &root, "tmpfs", rustix::mount::MountFlags::empty(), "size=1200k").unwrap();
    let result = async {
        let store = store_for(&root, &registry);
        let err = store.pull(&format!("{}/busybox:big", registry.host()), &|_| {}).await.unwrap_err();
        (err, store.list().unwrap().len(), layer_count(&store), tmp_is_empty(&store))
    }
    .await;
    rustix::mount::unmount(&root, rustix::mount::UnmountFlags::DETACH).unwrap();
    let (err, records, layers, tmp_empty) = result;
    assert!(matches!(err, ImageError::DiskFull(_)), "{err}");
    assert_eq!((records, layers, tmp_empty), (0, 0, true));
}
