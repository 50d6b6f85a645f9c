//! A Debian bookworm root filesystem with python3, built once with `mmdebstrap` and cached.
//!
//! The cache lives in `$STACYVM_TEST_CACHE` (default [`DEFAULT_CACHE_DIR`]) as `python-rootfs/`.
//! The first build takes roughly 20–60 s (it downloads from the Debian mirror); it happens under
//! an exclusive lock (`python-rootfs.lock`) into a temporary sibling directory that is renamed
//! into place only when complete, so concurrent tests and interrupted builds never see a partial
//! tree. Delete the directory to force a rebuild.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::describe;
use crate::prereq::{find_program, is_root, skip};

/// The cache directory when `STACYVM_TEST_CACHE` is unset.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/stacyvm-test";

/// The Debian mirror (the one in the host's apt sources); `STACYVM_DEBIAN_MIRROR` overrides it.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// `$STACYVM_TEST_CACHE`, else [`DEFAULT_CACHE_DIR`].
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("STACYVM_TEST_CACHE").map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from)
}

/// The path of a Debian bookworm minbase root filesystem with python3
/// (`mmdebstrap --variant=minbase --include=python3 bookworm`), plus a `user` (uid/gid 1000,
/// home `/workspace`) and a `/workspace` directory owned by 1000:1000.
///
/// `cache_dir` (else [`default_cache_dir`]) holds it as `python-rootfs/`; it is built on the first
/// call and reused afterwards. `None` (skipped, reason printed) without root or `mmdebstrap`, or
/// when the build fails (e.g. no mirror); with `STACYVM_REQUIRE_RUNTIMES=1` those fail instead,
/// the build failure showing mmdebstrap's stderr. Treat the tree as read-only: copy it (or use it
/// as a lower layer) before changing anything.
pub fn python_rootfs(cache_dir: Option<&Path>) -> Option<PathBuf> {
    let cache = cache_dir.map_or_else(default_cache_dir, Path::to_path_buf);
    let rootfs = cache.join("python-rootfs");
    if is_built(&rootfs) {
        return Some(rootfs);
    }
    if !is_root() {
        return skip("building the python rootfs with mmdebstrap needs root");
    }
    let Some(mmdebstrap) = find_program("mmdebstrap") else {
        return skip("mmdebstrap is not installed (apt-get install mmdebstrap)");
    };
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("create {}: {e}", cache.display()));
    let _lock = lock(&cache.join("python-rootfs.lock"));
    if is_built(&rootfs) {
        return Some(rootfs); // another process built it while we waited
    }
    remove_stale_builds(&cache);
    let staging = cache.join(format!("python-rootfs.tmp-{}", std::process::id()));
    if let Err(why) = build(&mmdebstrap, &staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return skip(&why);
    }
    std::fs::rename(&staging, &rootfs)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", staging.display(), rootfs.display()));
    Some(rootfs)
}

fn is_built(rootfs: &Path) -> bool {
    rootfs.join("usr/bin/python3").exists()
}

/// Runs mmdebstrap into `staging` and adds the uid-1000 user; `Err` carries the reason.
fn build(mmdebstrap: &Path, staging: &Path) -> Result<(), String> {
    let mirror = std::env::var("STACYVM_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
    let mut cmd = Command::new(mmdebstrap);
    cmd.args(["--variant=minbase", "--include=python3", "bookworm"]).arg(staging).arg(&mirror);
    let out = cmd.output().map_err(|e| format!("`{}` could not be started: {e}", describe(&cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}):\n{}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    append(&staging.join("etc/passwd"), "user:x:1000:1000::/workspace:/bin/sh\n");
    append(&staging.join("etc/group"), "user:x:1000:\n");
    let workspace = staging.join("workspace");
    std::fs::create_dir_all(&workspace).unwrap_or_else(|e| panic!("create {}: {e}", workspace.display()));
    std::os::unix::fs::chown(&workspace, Some(1000), Some(1000))
        .unwrap_or_else(|e| panic!("chown 1000:1000 {}: {e}", workspace.display()));
    Ok(())
}

/// Removes `python-rootfs.tmp-*` left by interrupted builds (called with the lock held).
fn remove_stale_builds(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("python-rootfs.tmp-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[track_caller]
fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for append: {e}", path.display()));
    file.write_all(line.as_bytes()).unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

/// An exclusive `flock` on `path`, held until the returned file is dropped.
fn lock(path: &Path) -> std::fs::File {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open lock file {}: {e}", path.display()));
    // SAFETY: flock on a file descriptor we own; it stays open as long as `file`.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}: {}", path.display(), std::io::Error::last_os_error());
    file
}
