//! A Debian bookworm root filesystem with python3, built once with `mmdebstrap` and cached.
//!
//! The build itself is `scripts/build-test-rootfs.sh python` — the one implementation shared with
//! the oci run of the live SDK suite (`scripts/with-server.sh`), so both use the same tree. The
//! cache lives in `$STACYVM_TEST_CACHE` (default [`DEFAULT_CACHE_DIR`]) as `python-rootfs/`.
//! The first build takes roughly 20–60 s (it downloads from the Debian mirror); the script builds
//! under an exclusive lock (`python-rootfs.lock`) into a temporary sibling directory that is
//! renamed into place only when complete, so concurrent tests and interrupted builds never see a
//! partial tree. Delete the directory to force a rebuild.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::describe;
use crate::prereq::{find_program, is_root, skip};

/// The cache directory when `STACYVM_TEST_CACHE` is unset.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/stacyvm-test";

/// The Debian mirror (the one in the host's apt sources); `STACYVM_DEBIAN_MIRROR` overrides it.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The script that builds the test root filesystems (`scripts/build-test-rootfs.sh`).
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-rootfs.sh")
}

/// `$STACYVM_TEST_CACHE`, else [`DEFAULT_CACHE_DIR`].
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("STACYVM_TEST_CACHE").map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from)
}

/// The path of a Debian bookworm minbase root filesystem with python3
/// (`mmdebstrap --variant=minbase --include=python3 bookworm`), plus a `user` (uid/gid 1000,
/// home `/workspace`) and a `/workspace` directory owned by 1000:1000.
///
/// `cache_dir` (else [`default_cache_dir`]) holds it as `python-rootfs/`; it is built on the first
/// call (by [`build_script`]) and reused afterwards. `None` (skipped, reason printed) without root
/// or `mmdebstrap`, or when the build fails (e.g. no mirror); with `STACYVM_REQUIRE_RUNTIMES=1`
/// those fail instead, the build failure showing mmdebstrap's output. Treat the tree as
/// read-only: copy it (or use it as a lower layer) before changing anything.
pub fn python_rootfs(cache_dir: Option<&Path>) -> Option<PathBuf> {
    let cache = cache_dir.map_or_else(default_cache_dir, Path::to_path_buf);
    let rootfs = cache.join("python-rootfs");
    if rootfs.join("usr/bin/python3").exists() {
        return Some(rootfs);
    }
    if !is_root() {
        return skip("building the python rootfs with mmdebstrap needs root");
    }
    if find_program("mmdebstrap").is_none() {
        return skip("mmdebstrap is not installed (apt-get install mmdebstrap)");
    }
    let mut cmd = Command::new("bash");
    cmd.arg(build_script()).arg("python").arg(&cache);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => return skip(&format!("`{}` could not be started: {e}", describe(&cmd))),
    };
    if !out.status.success() {
        return skip(&format!(
            "`{}` failed ({}):\n{}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let printed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end());
    assert_eq!(printed, rootfs, "{} printed an unexpected path", describe(&cmd));
    Some(rootfs)
}
