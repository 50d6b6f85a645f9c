//! `stacyvm image …` and `stacyvm build-image` (the real binary) against a live server whose
//! image store pulls from a local `docker-registry` with busybox images built by umoci.

mod support;

use std::time::Duration;

use support::{Server, Workdir};

#[test]
fn image_commands_pull_import_list_and_remove() {
    let Some(registry) = stacyvm_testkit::TestRegistry::start() else { return };
    let workdir = Workdir::new();
    let rootfs = workdir.path().join("rootfs");
    stacyvm_testkit::busybox_rootfs(&rootfs);
    stacyvm_testkit::push_rootfs(&registry, &rootfs, "tools/busybox:1", Default::default());
    let server = Server::start(&workdir, &[("STACYVM_PROVIDERS_OCI_INSECURE_REGISTRIES", &registry.host())]);
    let image = format!("{}/tools/busybox:1", registry.host());

    let out = server.cli(&["image", "pull", &image]);
    assert!(out.ok().starts_with(&format!("Pulled {image} (sha256:")), "{out:?}");
    assert!(out.stderr.contains("Pulling") && out.stderr.contains("1/1"), "progress on stderr: {out:?}");
    let tarball = workdir.path().join("busybox.tar");
    stacyvm_testkit::rootfs_tarball(&rootfs, &tarball);
    let out = server.cli(&["image", "import", tarball.to_str().unwrap(), "--ref", "local/offline:1"]);
    assert!(out.ok().starts_with("Imported docker.io/local/offline:1"), "{out:?}");
    let err = server.cli(&["image", "import", tarball.to_str().unwrap()]).failed().to_string();
    assert!(err.contains("BAD_REQUEST") || err.contains("reference"), "{err}");

    let listed = server.cli(&["image", "list"]);
    let text = listed.ok();
    assert!(text.starts_with("REFERENCE"), "{text}");
    assert!(text.contains(&image) && text.contains("docker.io/local/offline:1"), "{text}");
    let json: serde_json::Value = serde_json::from_str(server.cli(&["--json", "image", "ls"]).ok()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);

    let err = server.cli(&["image", "pull", &format!("{}/nope:1", registry.host())]).failed().to_string();
    assert!(err.contains("NOT_FOUND") && err.contains("not found"), "{err}");
    let err = server.cli(&["image", "pull", "Bad Ref"]).failed().to_string();
    assert!(err.contains("invalid image reference"), "{err}");

    let out = server.cli(&["image", "rm", "local/offline:1"]);
    assert!(out.ok().contains("1 layers deleted"), "{out:?}");
    let err = server.cli(&["image", "rm", "local/offline:1"]).failed().to_string();
    assert!(err.contains("404"), "{err}");
    assert!(server.cli(&["image", "prune"]).ok().starts_with("0 layers deleted"));
}

#[test]
fn build_image_prepares_the_store_without_a_server() {
    if !stacyvm_testkit::is_root() {
        return eprintln!("SKIPPED: needs root (layer ownership)");
    }
    let workdir = Workdir::new();
    let tarball = workdir.path().join("busybox.tar");
    stacyvm_testkit::busybox_tarball(&tarball);
    let data = workdir.path().join("oci");
    let mut cmd = workdir.command();
    cmd.args(["build-image", "local/prepared:1", "--from", tarball.to_str().unwrap()])
        .env("STACYVM_PROVIDERS_OCI_DATA_DIR", &data);
    let out = support::run(cmd, Duration::from_secs(60));
    assert!(out.ok().starts_with("Prepared docker.io/local/prepared:1"), "{out:?}");
    // The server started afterwards finds it.
    let server = Server::start(&workdir, &[]);
    assert!(server.cli(&["image", "list"]).ok().contains("docker.io/local/prepared:1"));
    let mut cmd = workdir.command();
    cmd.args(["build-image", "127.0.0.1:1/none:1"]).env("STACYVM_PROVIDERS_OCI_DATA_DIR", &data);
    let err = support::run(cmd, Duration::from_secs(60)).failed().to_string();
    assert!(err.contains("unreachable"), "{err}");
}
