//! A Debian + python3 image built here from Debian packages (mmdebstrap, cached), pushed to a
//! local `docker-registry` with umoci and skopeo, pulled by the `oci` provider at first spawn
//! through the image store, and running Python as the sandbox user.
//! Needs root, crun, the static agent, docker-registry, umoci, skopeo, mmdebstrap and the Debian
//! mirror; skipped otherwise unless `STACYVM_REQUIRE_RUNTIMES=1`.

use std::sync::Arc;

use stacyvm_image::{ImageStore, RegistrySettings};
use stacyvm_oci::RuntimeKind;
use stacyvm_provider::conformance::{capture, shell};
use stacyvm_provider::{ExitReason, Provider, SandboxSpec};
use stacyvm_provider_oci::{OciProvider, OciSettings, PullPolicy};
use stacyvm_testkit::{ImageConfig, TestRegistry};
use stacyvm_types::exec::StreamName;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_image_pulled_from_the_local_registry_runs_python() {
    let Some(agent_binary) = stacyvm_testkit::oci_prerequisites("crun") else { return };
    let Some(registry) = TestRegistry::start() else { return };
    let Some(rootfs) = tokio::task::spawn_blocking(|| stacyvm_testkit::python_rootfs(None)).await.unwrap() else {
        return;
    };
    let _ = stacyvm_oci::ensure_hugetlb_v1_mount();
    let config = ImageConfig {
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
        workdir: Some("/workspace".into()),
        cmd: vec!["python3".into()],
        ..ImageConfig::default()
    };
    let (host, pushed) = (registry.host(), rootfs.clone());
    // Pushing ~100 MB through umoci and skopeo blocks: off the runtime, keeping the registry.
    let (registry, digest) = tokio::task::spawn_blocking(move || {
        let digest = stacyvm_testkit::push_rootfs(&registry, &pushed, "python:3.11", config);
        (registry, digest)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registries = RegistrySettings { insecure: vec![host.clone()], ..Default::default() };
    let images = Arc::new(ImageStore::open(&dir.path().join("images"), registries).unwrap());
    let provider = OciProvider::new(OciSettings {
        runtime: RuntimeKind::Crun,
        runtime_path: None,
        data_dir: dir.path().join("data"),
        images: images.clone(),
        pull_policy: PullPolicy::IfMissing,
        agent_binary,
        pids_limit: 256,
        network: Default::default(),
        readonly_rootfs: false,
    })
    .unwrap();
    let image = format!("{host}/python:3.11");
    let spec = SandboxSpec {
        id: format!("sb-{:08x}", std::process::id() ^ 0x9e3779b9),
        image: image.clone(),
        memory_mb: 256,
        vcpus: 1,
    };
    let h = provider.create(&spec).await.unwrap();
    let stored = images.get(&image).unwrap().expect("pulled into the store");
    assert_eq!(stored.digest.to_string(), digest);
    assert!(stored.size() > 20 << 20, "a Debian + python3 image is tens of MB, got {}", stored.size());
    let script = "python3 -c 'import os, sys; print(sys.version_info[0], os.getuid(), os.getcwd())'";
    let out = capture(&provider, &h, shell(script)).await.unwrap();
    let text = out.text(StreamName::Stdout);
    provider.destroy(&h).await.unwrap();
    drop(registry);
    assert_eq!(out.reason, ExitReason::Exited(0), "{text} {}", out.text(StreamName::Stderr));
    assert_eq!(text, "3 1000 /workspace\n");
}
