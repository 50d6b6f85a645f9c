//! Host prerequisites for tests that need real tools (root, OCI runtimes, busybox, the agent).
//!
//! A missing piece skips the test with a `SKIPPED: …` line on stderr, or fails it when
//! `STACYVM_REQUIRE_RUNTIMES=1` (CI), so nothing is silently skipped there.

use std::path::{Path, PathBuf};

/// Whether `STACYVM_REQUIRE_RUNTIMES=1`: missing prerequisites fail instead of skipping.
pub fn required() -> bool {
    std::env::var("STACYVM_REQUIRE_RUNTIMES").is_ok_and(|v| v == "1")
}

/// Skips (prints `SKIPPED: why`, returns `None`) or, when [`required`], panics with `why`.
#[track_caller]
pub fn skip<T>(why: &str) -> Option<T> {
    assert!(!required(), "STACYVM_REQUIRE_RUNTIMES=1 but {why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An executable named `name` on `PATH` or in the sbin directories (not always on a test's PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The workspace root (this crate lives in `crates/stacyvm-testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static in-sandbox agent: `STACYVM_AGENT_BIN`, else built with `scripts/build-agent.sh`
/// (a cached release build under `target/agent`). `None` (skipped) when the build fails.
pub fn agent_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STACYVM_AGENT_BIN") {
        return Some(PathBuf::from(path));
    }
    let script = workspace_root().join("scripts/build-agent.sh");
    let out = match std::process::Command::new(&script).current_dir(workspace_root()).output() {
        Ok(out) => out,
        Err(e) => return skip(&format!("could not run {}: {e}", script.display())),
    };
    if !out.status.success() {
        return skip(&format!("could not build the agent: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Some(workspace_root().join(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Everything an `oci`-provider test needs: root, the `runtime` binary (e.g. `crun`),
/// `/bin/busybox` and the agent. Returns the agent binary, or `None` (skipped).
pub fn oci_prerequisites(runtime: &str) -> Option<PathBuf> {
    if !is_root() {
        return skip("the oci provider needs root");
    }
    if find_program(runtime).is_none() {
        return skip(&format!("{runtime} is not installed (apt-get install {runtime})"));
    }
    if !Path::new(crate::rootfs::BUSYBOX).exists() {
        return skip("/bin/busybox is missing (apt-get install busybox-static)");
    }
    agent_binary()
}

/// `Some(())` when every program in `names` is installed (Debian package of the same name),
/// else skipped naming the first missing one; e.g. `programs(&["umoci", "skopeo"])?`.
pub fn programs(names: &[&str]) -> Option<()> {
    match names.iter().find(|n| find_program(n).is_none()) {
        Some(missing) => skip(&format!("{missing} is not installed (apt-get install {missing})")),
        None => Some(()),
    }
}
