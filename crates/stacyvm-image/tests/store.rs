//! Offline import, leases, removal and garbage collection, and token authentication against a
//! real registry behind a token-checking front.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use stacyvm_image::{ImageError, ImageStore, RegistrySettings};
use stacyvm_testkit::{busybox_rootfs, push_rootfs, ImageConfig, TestRegistry};

fn offline_store(root: &Path) -> ImageStore {
    ImageStore::open(root, RegistrySettings::default()).unwrap()
}

fn prerequisites() -> bool {
    stacyvm_testkit::programs(&["umoci", "skopeo"]).is_some() && stacyvm_testkit::is_root()
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_oci_layouts_docker_archives_and_rootfs_tarballs() {
    if !prerequisites() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let (oci, docker, plain) =
        (work.path().join("oci.tar"), work.path().join("docker.tar"), work.path().join("rootfs.tar"));
    stacyvm_testkit::images::oci_layout_archive(&rootfs, &oci);
    stacyvm_testkit::images::docker_archive(&rootfs, &docker);
    stacyvm_testkit::images::rootfs_tarball(&rootfs, &plain);
    let store = offline_store(&work.path().join("store"));

    // An OCI layout names its image only by tag: a reference is required, then it imports.
    let err = store.import(&oci, None).await.unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference(_)), "{err}");
    let from_oci = store.import(&oci, Some("local/oci:1")).await.unwrap();
    assert_eq!(from_oci[0].reference, "docker.io/local/oci:1");
    let from_docker = store.import(&docker, None).await.unwrap();
    assert_eq!(from_docker[0].reference, "docker.io/stacyvm-test/image:latest");
    let err = store.import(&plain, None).await.unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference(_)), "{err}");
    let from_rootfs = store.import(&plain, Some("local/rootfs:1")).await.unwrap();
    for image in [&from_oci[0], &from_docker[0], &from_rootfs[0]] {
        let top = &store.lower_dirs(image)[0];
        assert!(top.join("bin/busybox").is_file(), "{}", image.reference);
        assert_eq!(std::fs::read_link(top.join("bin/sh")).unwrap(), Path::new("busybox"));
    }
    assert_eq!(store.list().unwrap().len(), 3);
    // A tampered blob in an OCI layout is refused and nothing is added.
    let layout = work.path().join("layout");
    stacyvm_testkit::images::oci_layout(&rootfs, &layout, "t", &ImageConfig::busybox());
    let blobs = layout.join("blobs/sha256");
    let biggest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 1;
    std::fs::write(&biggest, bytes).unwrap();
    // (A fresh store: the main one already has this layer and would not need the blob.)
    let fresh = offline_store(&work.path().join("fresh"));
    fresh.import(&plain, Some("local/rootfs:1")).await.unwrap();
    let err = fresh.import(&layout, Some("local/tampered:1")).await.unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    assert!(fresh.get("local/tampered:1").unwrap().is_none());
    assert_eq!(fresh.list().unwrap().len(), 1, "nothing already stored is lost");
    assert_eq!(std::fs::read_dir(fresh.root().join("layers")).unwrap().count(), 1);
    assert!(std::fs::read_dir(fresh.root().join("tmp")).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn removal_respects_leases_and_gc_frees_only_unused_layers() {
    if !prerequisites() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let plain = work.path().join("rootfs.tar");
    stacyvm_testkit::images::rootfs_tarball(&rootfs, &plain);
    std::fs::write(rootfs.join("etc/extra"), "other image").unwrap();
    let other = work.path().join("other.tar");
    stacyvm_testkit::images::rootfs_tarball(&rootfs, &other);
    let store = offline_store(&work.path().join("store"));
    let a = store.import(&plain, Some("a:1")).await.unwrap().remove(0);
    let a2 = store.import(&plain, Some("a:2")).await.unwrap().remove(0);
    let b = store.import(&other, Some("b:1")).await.unwrap().remove(0);
    assert_eq!(a.layers, a2.layers, "identical content is stored once");
    assert_ne!(a.layers, b.layers);

    store.lease("sb-00000001", &b).await.unwrap();
    let err = store.remove("b:1").await.unwrap_err();
    assert!(matches!(err, ImageError::InUse(_)), "{err}");
    assert!(store.get("b:1").unwrap().is_some(), "a refused removal keeps the image");
    assert_eq!(store.lease_holders().unwrap(), ["sb-00000001"]);
    store.release("sb-00000001").unwrap();
    store.release("sb-00000001").unwrap();
    let (_, report) = store.remove("b:1").await.unwrap();
    assert_eq!(report.layers_removed, 1);
    assert!(report.bytes_freed > 0);
    assert!(!store.layer_dir(&b.layers[0].diff_id).exists());

    // a:1 and a:2 share their layer: removing one keeps it.
    let (_, report) = store.remove("a:1").await.unwrap();
    assert_eq!(report.layers_removed, 0);
    assert!(store.layer_dir(&a.layers[0].diff_id).is_dir());
    assert!(matches!(store.remove("a:1").await.unwrap_err(), ImageError::NotFound(_)));
    assert!(store.lease("../escape", &a2).await.is_err());
}

struct Front {
    upstream: String,
    realm: String,
    hits: AtomicUsize,
}

const TOKEN: &str = "token-for-alice";

/// Answers `/token` (Basic alice:s3cret only) and forwards `/v2/…` to the registry when the
/// request carries the bearer token, like Docker Hub's auth flow.
async fn front(State(f): State<Arc<Front>>, headers: HeaderMap, req: Request) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    if path.starts_with("/token") {
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:s3cret"));
        if auth != basic || !path.contains("scope=repository%3Aprivate%2Fbusybox%3Apull") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        return axum::Json(serde_json::json!({ "token": TOKEN })).into_response();
    }
    if auth != format!("Bearer {TOKEN}") {
        let challenge =
            format!(r#"Bearer realm="{}",service="test-registry",scope="repository:private/busybox:pull""#, f.realm);
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response();
    }
    f.hits.fetch_add(1, Ordering::Relaxed);
    let mut upstream = reqwest::Client::new().get(format!("{}{path}", f.upstream));
    if let Some(accept) = headers.get("accept") {
        upstream = upstream.header("accept", accept.as_bytes());
    }
    let resp = upstream.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, [("content-type", content_type)], resp.bytes().await.unwrap()).into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_auth_with_credentials_from_a_docker_config() {
    let Some(registry) = TestRegistry::start() else { return };
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    push_rootfs(&registry, rootfs.path(), "private/busybox:1", ImageConfig::busybox());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let state =
        Arc::new(Front { upstream: registry.url(), realm: format!("http://{host}/token"), hits: AtomicUsize::new(0) });
    let app = axum::Router::new().fallback(front).with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let work = tempfile::tempdir().unwrap();
    let reference = format!("{host}/private/busybox:1");
    // Without credentials the token service refuses: a clear authorization error.
    let anonymous = ImageStore::open(
        &work.path().join("anon"),
        RegistrySettings { insecure: vec![host.clone()], ..Default::default() },
    )
    .unwrap();
    let err = anonymous.pull(&reference, &|_| {}).await.unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized(_)), "{err}");
    // With credentials from a Docker-style config file the pull goes through.
    let config = work.path().join("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(&config, format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#)).unwrap();
    let settings = RegistrySettings { insecure: vec![host.clone()], auth_file: Some(config), ..Default::default() };
    let store = ImageStore::open(&work.path().join("store"), settings).unwrap();
    let image = store.pull(&reference, &|_| {}).await.unwrap();
    assert_eq!(image.layers.len(), 1);
    assert!(state.hits.load(Ordering::Relaxed) >= 3, "manifest, config and layer went through the front");
}
