//! The fixtures work against the real tools: the registry answers, pushed images are what
//! `skopeo inspect` reports, the layered image has the documented whiteouts and merged view, and
//! the archives are readable by `skopeo`.
//!
//! Needs root (plain `umoci unpack`), `docker-registry`, `umoci`, `skopeo`, `/bin/busybox`;
//! missing pieces skip, or fail with `STACYVM_REQUIRE_RUNTIMES=1`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use stacyvm_testkit::cmd::run;
use stacyvm_testkit::images::{skopeo_inspect, LAYERED_ABSENT, LAYERED_PRESENT};
use stacyvm_testkit::registry::http_status;
use stacyvm_testkit::{busybox_rootfs, ImageConfig, TestRegistry};

/// Root and the image tools, or `None` (skipped).
fn tools() -> Option<()> {
    if !stacyvm_testkit::is_root() {
        return stacyvm_testkit::skip("umoci unpack needs root");
    }
    stacyvm_testkit::programs(&["umoci", "skopeo", "busybox"])
}

fn busybox_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    busybox_rootfs(dir.path());
    dir
}

#[test]
fn busybox_rootfs_has_applets_users_and_a_sticky_tmp() {
    if !Path::new("/bin/busybox").exists() {
        let _: Option<()> = stacyvm_testkit::skip("/bin/busybox is missing");
        return;
    }
    let dir = busybox_dir();
    let root = dir.path();
    assert_eq!(std::fs::read_link(root.join("bin/sh")).unwrap(), Path::new("busybox"));
    assert!(root.join("bin/busybox").is_file());
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("user:x:1000:1000::/workspace:"), "{passwd}");
    assert!(std::fs::read_to_string(root.join("etc/group")).unwrap().contains("user:x:1000:"));
    assert_eq!(std::fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    for sub in ["proc", "sys", "dev", "root", "workspace"] {
        assert!(root.join(sub).is_dir(), "{sub}");
    }
}

#[test]
fn registry_answers_v2_and_is_gone_after_drop() {
    let Some(registry) = TestRegistry::start() else { return };
    assert_eq!(http_status(registry.port(), "/v2/"), Some(200));
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    let (port, storage) = (registry.port(), registry.storage_dir());
    drop(registry);
    assert_eq!(http_status(port, "/v2/"), None, "the registry still answers after drop");
    assert!(!storage.parent().unwrap().exists(), "the registry's temp dir survived drop");
}

#[test]
fn pushed_rootfs_has_the_returned_digest_and_config() {
    let Some(()) = tools() else { return };
    let Some(registry) = TestRegistry::start() else { return };
    let rootfs = busybox_dir();
    let config = ImageConfig { user: Some("1000:1000".into()), ..ImageConfig::busybox() };
    let digest = stacyvm_testkit::push_rootfs(&registry, rootfs.path(), "kit/busybox:v1", config);
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    let info = skopeo_inspect(&format!("docker://{}/kit/busybox:v1", registry.host()));
    assert_eq!(info["Digest"], digest.as_str(), "{info:#}");
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "{info:#}");
    assert_eq!(info["Env"][0], "PATH=/bin:/usr/bin", "{info:#}");
    // The config's user and working directory arrive too (raw config blob).
    let raw = run(
        "skopeo",
        ["inspect", "--config", "--tls-verify=false", &format!("docker://{}/kit/busybox:v1", registry.host())],
    );
    let config: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(config["config"]["User"], "1000:1000", "{config:#}");
    assert_eq!(config["config"]["WorkingDir"], "/workspace", "{config:#}");
}

#[test]
fn layered_image_has_whiteouts_and_the_documented_merged_view() {
    let Some(()) = tools() else { return };
    let Some(registry) = TestRegistry::start() else { return };
    let digest = stacyvm_testkit::push_layered(&registry, "kit/layered:v1");
    let reference = format!("docker://{}/kit/layered:v1", registry.host());
    let info = skopeo_inspect(&reference);
    assert_eq!(info["Digest"], digest.as_str());
    let layers: Vec<String> =
        info["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
    assert_eq!(layers.len(), 3, "{info:#}");

    // Pull it back and look at the layer tars and at umoci's merged view.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("pulled");
    run(
        "skopeo",
        [
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &reference,
            &format!("oci:{}:pulled", layout.display()),
        ],
    );
    let listing = |layer: &str| {
        let blob = layout.join("blobs/sha256").join(layer.trim_start_matches("sha256:"));
        run("tar", ["-tzf", &blob.display().to_string()])
    };
    let second = listing(&layers[1]);
    assert!(second.contains("etc/.wh.removed-by-layer2") && second.contains("data/.wh.old"), "{second}");
    assert!(!second.contains(".wh..wh..opq"), "umoci now emits opaque whiteouts; update the docs: {second}");
    assert!(listing(&layers[2]).contains("opaque/.wh..wh..opq"));

    let bundle = work.path().join("bundle");
    run("umoci", ["unpack", "--image", &format!("{}:pulled", layout.display()), &bundle.display().to_string()]);
    let root = bundle.join("rootfs");
    for (path, content) in LAYERED_PRESENT {
        let full = root.join(path);
        let meta = std::fs::symlink_metadata(&full).unwrap_or_else(|e| panic!("{path} missing: {e}"));
        if meta.file_type().is_symlink() {
            assert_eq!(std::fs::read_link(&full).unwrap(), Path::new(content), "{path}");
        } else if !content.is_empty() {
            assert_eq!(std::fs::read_to_string(&full).unwrap(), *content, "{path}");
        }
    }
    for path in LAYERED_ABSENT {
        assert!(std::fs::symlink_metadata(root.join(path)).is_err(), "{path} must be absent");
    }
}

#[test]
fn archives_are_readable_by_skopeo() {
    let Some(()) = tools() else { return };
    let rootfs = busybox_dir();
    let out = tempfile::tempdir().unwrap();

    let oci = out.path().join("oci.tar");
    stacyvm_testkit::oci_layout_archive(rootfs.path(), &oci);
    let info = skopeo_inspect(&format!("oci-archive:{}", oci.display()));
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "{info:#}");
    let info = skopeo_inspect(&format!("oci-archive:{}:{}", oci.display(), stacyvm_testkit::images::ARCHIVE_TAG));
    assert!(info["Digest"].as_str().unwrap().starts_with("sha256:"));

    let docker = out.path().join("docker.tar");
    stacyvm_testkit::docker_archive(rootfs.path(), &docker);
    let info = skopeo_inspect(&format!("docker-archive:{}", docker.display()));
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "{info:#}");
    let members = run("tar", ["-tf", &docker.display().to_string()]);
    assert!(members.lines().any(|m| m == "manifest.json"), "{members}");

    let plain = out.path().join("rootfs.tar");
    stacyvm_testkit::rootfs_tarball(rootfs.path(), &plain);
    let members = run("tar", ["-tvf", &plain.display().to_string()]);
    assert!(members.contains("./bin/busybox"), "{members}");
    assert!(members.contains("./bin/sh -> busybox"), "{members}");
}

#[test]
fn failing_commands_panic_with_their_stderr() {
    let panic = std::panic::catch_unwind(|| run("sh", ["-c", "echo oops >&2; exit 3"])).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("sh -c") && message.contains("oops"), "{message}");
}

/// Slow the first time (mmdebstrap downloads from the Debian mirror, ~20–60 s); cached after.
#[test]
fn slow_python_rootfs_has_python3_and_user_1000() {
    let Some(rootfs) = stacyvm_testkit::python_rootfs(None) else { return };
    let version =
        run("chroot", [rootfs.to_str().unwrap(), "/usr/bin/python3", "-c", "import sys; print(sys.version_info[0])"]);
    assert_eq!(version, "3\n");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("user:x:1000:1000::/workspace:"), "{passwd}");
    let workspace = std::fs::metadata(rootfs.join("workspace")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&workspace), 1000);
    // A second call reuses the cache.
    let started = std::time::Instant::now();
    assert_eq!(stacyvm_testkit::python_rootfs(None), Some(rootfs));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
