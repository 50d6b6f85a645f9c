//! Shared setup of the oci tests that need no registry: a crun provider whose image store holds
//! a busybox image imported offline (pulls disabled).

use stacyvm_image::{ImageStore, RegistrySettings};
use stacyvm_oci::RuntimeKind;
use stacyvm_provider_oci::{OciProvider, OciSettings, PullPolicy};

/// The imported image's reference.
pub const IMAGE: &str = "busybox:latest";

/// The provider and the temp dir holding its data; `None` when prerequisites are missing
/// (skipped, or a failure under `STACYVM_REQUIRE_RUNTIMES=1`).
pub async fn offline_busybox_provider() -> Option<(tempfile::TempDir, OciProvider)> {
    let agent = stacyvm_testkit::oci_prerequisites("crun")?;
    let _ = stacyvm_oci::ensure_hugetlb_v1_mount();
    let dir = tempfile::tempdir().unwrap();
    let images = ImageStore::open(&dir.path().join("images"), RegistrySettings::default()).unwrap();
    let tarball = dir.path().join("busybox.tar");
    stacyvm_testkit::busybox_tarball(&tarball);
    images.import(&tarball, Some(IMAGE)).await.unwrap();
    let settings = OciSettings {
        runtime: RuntimeKind::Crun,
        runtime_path: None,
        data_dir: dir.path().join("data"),
        images: std::sync::Arc::new(images),
        pull_policy: PullPolicy::Never,
        agent_binary: agent,
        pids_limit: 64,
        network: Default::default(),
        readonly_rootfs: false,
    };
    Some((dir, OciProvider::new(settings).unwrap()))
}
