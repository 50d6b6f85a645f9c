//! OCI images built locally with `umoci` and moved with `skopeo`: pushed to a [`TestRegistry`],
//! or packed as offline archives (OCI layout tar, `docker save` tar, plain rootfs tar).
//!
//! Every failing command panics with its command line and stderr. `skopeo` runs with
//! `--insecure-policy` so the host's `/etc/containers/policy.json` does not matter.

use std::path::Path;

use crate::cmd::{run, run_command};
use crate::registry::TestRegistry;

/// The tag of the image inside [`oci_layout_archive`] (`oci-archive:<file>:latest`).
pub const ARCHIVE_TAG: &str = "latest";

/// The image name inside [`docker_archive`] (`docker-archive:<file>:stacyvm-test/image:latest`).
pub const DOCKER_ARCHIVE_REF: &str = "stacyvm-test/image:latest";

/// Runtime configuration written into an image's config with `umoci config`. Empty fields are
/// left as `umoci new` made them (no env, no cmd, no user, no working directory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `KEY=value` entries (`Env`).
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `User`, e.g. `1000:1000` or `user`.
    pub user: Option<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
}

impl ImageConfig {
    /// A sensible config for a busybox image: `PATH=/bin:/usr/bin`, working directory
    /// `/workspace`, command `/bin/sh`, user unset (root).
    pub fn busybox() -> Self {
        ImageConfig {
            env: vec!["PATH=/bin:/usr/bin".into()],
            workdir: Some("/workspace".into()),
            cmd: vec!["/bin/sh".into()],
            ..ImageConfig::default()
        }
    }

    fn umoci_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        args.extend(self.env.iter().map(|e| format!("--config.env={e}")));
        args.extend(self.workdir.iter().map(|w| format!("--config.workingdir={w}")));
        args.extend(self.user.iter().map(|u| format!("--config.user={u}")));
        args.extend(self.entrypoint.iter().map(|e| format!("--config.entrypoint={e}")));
        args.extend(self.cmd.iter().map(|c| format!("--config.cmd={c}")));
        args
    }
}

/// Builds (or adds to) the OCI layout `layout` an image tagged `tag` with one layer holding
/// `rootfs` (copied with `cp -a`: symlinks, modes and owners preserved) and `config` applied.
pub fn oci_layout(rootfs: &Path, layout: &Path, tag: &str, config: &ImageConfig) {
    let image = format!("{}:{tag}", layout.display());
    if !layout.join("index.json").exists() {
        run("umoci", ["init", "--layout", &layout.display().to_string()]);
    }
    run("umoci", ["new", "--image", &image]);
    add_rootfs_layer(&image, |bundle_rootfs| copy_tree(rootfs, bundle_rootfs));
    configure(&image, config);
}

/// Unpacks `image` into a temporary bundle, lets `change` edit its rootfs, repacks it (umoci
/// writes the difference as one new gzip layer, deletions as `.wh.` whiteouts).
fn add_rootfs_layer(image: &str, change: impl FnOnce(&Path)) {
    let work = tempdir("stacyvm-umoci.");
    let bundle = work.path().join("bundle");
    run("umoci", ["unpack", "--image", image, &bundle.display().to_string()]);
    change(&bundle.join("rootfs"));
    run("umoci", ["repack", "--image", image, &bundle.display().to_string()]);
}

fn configure(image: &str, config: &ImageConfig) {
    let args = config.umoci_args();
    if !args.is_empty() {
        run("umoci", ["config".to_string(), "--image".into(), image.into()].into_iter().chain(args));
    }
}

/// Pushes the tagged image of `layout` to `registry` as `repo_tag`; returns the manifest digest.
fn push(layout: &Path, tag: &str, registry: &TestRegistry, repo_tag: &str) -> String {
    let (repo, dest_tag) = split_repo_tag(repo_tag);
    let digest_file = tempfile::NamedTempFile::new().expect("create digest file");
    run(
        "skopeo",
        [
            "--insecure-policy".to_string(),
            "copy".into(),
            "--quiet".into(),
            "--dest-tls-verify=false".into(),
            format!("--digestfile={}", digest_file.path().display()),
            format!("oci:{}:{tag}", layout.display()),
            format!("docker://{}/{repo}:{dest_tag}", registry.host()),
        ],
    );
    let digest = std::fs::read_to_string(digest_file.path()).expect("read skopeo digest file");
    let digest = digest.trim().to_string();
    assert!(digest.starts_with("sha256:"), "skopeo wrote an unexpected digest: {digest:?}");
    digest
}

/// Builds an image from `rootfs` with `config` and pushes it to `registry` as `repo_tag`
/// (`repo:tag`, tag `latest` if omitted). Returns the pushed manifest digest (`sha256:…`),
/// the one `skopeo inspect docker://<host>/<repo>:<tag>` reports.
pub fn push_rootfs(registry: &TestRegistry, rootfs: &Path, repo_tag: &str, config: ImageConfig) -> String {
    let work = tempdir("stacyvm-image.");
    let layout = work.path().join("layout");
    oci_layout(rootfs, &layout, "build", &config);
    push(&layout, "build", registry, repo_tag)
}

/// Files of [`push_layered`]'s image that a correct unpacker shows in the merged view, with their
/// content (symlinks: their target).
pub const LAYERED_PRESENT: &[(&str, &str)] = &[
    ("etc/motd", "layer2\n"),
    ("etc/added-by-layer2", "layer2\n"),
    ("etc/link-to-added", "added-by-layer2"),
    ("etc/kept", "layer1\n"),
    ("data/new", "new\n"),
    ("opaque/fresh", "fresh\n"),
    ("bin/busybox", ""),
];

/// Paths of [`push_layered`]'s image that a correct unpacker must not show in the merged view.
pub const LAYERED_ABSENT: &[&str] = &[
    "etc/removed-by-layer2",
    "etc/.wh.removed-by-layer2",
    "data/old",
    "data/.wh.old",
    "opaque/stale",
    "opaque/.wh..wh..opq",
];

/// Pushes a three-layer busybox image (config [`ImageConfig::busybox`]) that exercises whiteouts;
/// returns its manifest digest.
///
/// Layers, in order:
/// 1. (`umoci repack`) the [`busybox_rootfs`](crate::rootfs::busybox_rootfs) plus
///    `/etc/motd` = `layer1\n`, `/etc/kept` = `layer1\n`, `/etc/removed-by-layer2`,
///    `/data/old` = `old\n`, `/opaque/stale` = `stale\n`.
/// 2. (second `umoci repack` of a fresh unpack) `/etc/removed-by-layer2` deleted, `/data`
///    removed and recreated holding only `/data/new` = `new\n`, `/etc/motd` rewritten to
///    `layer2\n`, `/etc/added-by-layer2` = `layer2\n` added, symlink `/etc/link-to-added` →
///    `added-by-layer2` added. umoci 0.4.7 emits **per-file whiteouts**, never an opaque one:
///    `etc/.wh.removed-by-layer2` and `data/.wh.old` (plus `data/new`; no entry for `data/`
///    itself).
/// 3. (hand-written tar added with `umoci raw add-layer`) an **opaque whiteout**
///    `opaque/.wh..wh..opq` and `opaque/fresh` = `fresh\n`, so everything layer 1 put in
///    `/opaque` is hidden.
///
/// A correct unpacker's merged view: every path of [`LAYERED_PRESENT`] exists with that content
/// (or symlink target), none of [`LAYERED_ABSENT`] exists (no `.wh.*` name survives anywhere),
/// and the busybox applets from layer 1 are untouched.
pub fn push_layered(registry: &TestRegistry, repo_tag: &str) -> String {
    let work = tempdir("stacyvm-layered.");
    let layout = work.path().join("layout");
    let image = format!("{}:build", layout.display());
    run("umoci", ["init", "--layout", &layout.display().to_string()]);
    run("umoci", ["new", "--image", &image]);
    add_rootfs_layer(&image, |root| {
        crate::rootfs::busybox_rootfs(root);
        write(&root.join("etc/motd"), "layer1\n");
        write(&root.join("etc/kept"), "layer1\n");
        write(&root.join("etc/removed-by-layer2"), "layer1\n");
        write(&root.join("data/old"), "old\n");
        write(&root.join("opaque/stale"), "stale\n");
    });
    add_rootfs_layer(&image, |root| {
        remove_file(&root.join("etc/removed-by-layer2"));
        std::fs::remove_dir_all(root.join("data")).expect("remove data/ in the bundle");
        write(&root.join("data/new"), "new\n");
        write(&root.join("etc/motd"), "layer2\n");
        write(&root.join("etc/added-by-layer2"), "layer2\n");
        std::os::unix::fs::symlink("added-by-layer2", root.join("etc/link-to-added")).expect("symlink in the bundle");
    });
    let stage = work.path().join("layer3");
    write(&stage.join("opaque/.wh..wh..opq"), "");
    write(&stage.join("opaque/fresh"), "fresh\n");
    let layer3 = work.path().join("layer3.tar");
    tar_dir(&stage, &layer3);
    run("umoci", ["raw", "add-layer", "--image", &image, &layer3.display().to_string()]);
    configure(&image, &ImageConfig::busybox());
    push(&layout, "build", registry, repo_tag)
}

/// Writes `out_tar`: an OCI image layout (`oci-layout`, `index.json`, `blobs/`) as a plain tar,
/// holding `rootfs` as a one-layer image tagged [`ARCHIVE_TAG`] with a default (empty) config.
/// `skopeo inspect oci-archive:<out_tar>` reads it.
pub fn oci_layout_archive(rootfs: &Path, out_tar: &Path) {
    let work = tempdir("stacyvm-oci-archive.");
    let layout = work.path().join("layout");
    oci_layout(rootfs, &layout, ARCHIVE_TAG, &ImageConfig::default());
    tar_dir(&layout, out_tar);
}

/// Writes `out_tar` in `docker save` format (`manifest.json`, config and layer blobs), holding
/// `rootfs` as a one-layer image named [`DOCKER_ARCHIVE_REF`] with a default (empty) config.
/// `skopeo inspect docker-archive:<out_tar>` reads it. An existing `out_tar` is replaced.
pub fn docker_archive(rootfs: &Path, out_tar: &Path) {
    let work = tempdir("stacyvm-docker-archive.");
    let layout = work.path().join("layout");
    oci_layout(rootfs, &layout, ARCHIVE_TAG, &ImageConfig::default());
    let _ = std::fs::remove_file(out_tar);
    run(
        "skopeo",
        [
            "--insecure-policy".to_string(),
            "copy".into(),
            "--quiet".into(),
            format!("oci:{}:{ARCHIVE_TAG}", layout.display()),
            format!("docker-archive:{}:{DOCKER_ARCHIVE_REF}", out_tar.display()),
        ],
    );
}

/// Writes `out_tar`: a plain (uncompressed) tar of `rootfs`'s contents, numeric owners kept
/// (`tar -C rootfs -cf out_tar .`).
pub fn rootfs_tarball(rootfs: &Path, out_tar: &Path) {
    tar_dir(rootfs, out_tar);
}

/// A tarball of a fresh [`busybox_rootfs`](crate::rootfs::busybox_rootfs) at `out_tar`, ready
/// for an offline image import.
pub fn busybox_tarball(out_tar: &Path) {
    let rootfs = tempfile::tempdir().expect("tempdir");
    crate::rootfs::busybox_rootfs(rootfs.path());
    tar_dir(rootfs.path(), out_tar);
}

/// `skopeo inspect` of `reference` (e.g. `docker://127.0.0.1:5000/repo:tag`,
/// `oci-archive:/x.tar`), TLS verification off, as JSON (`Digest`, `Layers`, `Env`, …).
pub fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let mut args = vec!["--insecure-policy", "inspect"];
    if reference.starts_with("docker://") {
        args.push("--tls-verify=false");
    }
    args.push(reference);
    let out = run("skopeo", args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo inspect {reference}: bad JSON ({e}): {out}"))
}

fn tar_dir(dir: &Path, out_tar: &Path) {
    let mut cmd = std::process::Command::new("tar");
    cmd.arg("--numeric-owner").arg("-C").arg(dir).arg("-cf").arg(out_tar).arg(".");
    run_command(&mut cmd);
}

/// Copies the contents of `from` into `to` with `cp -a` (symlinks, modes, owners, times kept).
fn copy_tree(from: &Path, to: &Path) {
    let mut cmd = std::process::Command::new("cp");
    cmd.arg("-a").arg(from.join(".")).arg(to);
    run_command(&mut cmd);
}

/// `repo:tag` → (`repo`, `tag`); a missing tag is `latest` (a `:` before the last `/` is a port).
fn split_repo_tag(repo_tag: &str) -> (&str, &str) {
    match repo_tag.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (repo_tag, "latest"),
    }
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("create temp dir")
}

#[track_caller]
fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[track_caller]
fn remove_file(path: &Path) {
    std::fs::remove_file(path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::split_repo_tag;

    #[test]
    fn repo_tag_splits_at_the_last_colon_after_the_last_slash() {
        assert_eq!(split_repo_tag("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(split_repo_tag("team/busybox"), ("team/busybox", "latest"));
        assert_eq!(split_repo_tag("host:5000/busybox"), ("host:5000/busybox", "latest"));
    }
}
