//! Removing stale container cgroups below one parent (e.g. `/stacyvm/<instance>`) in every
//! mounted hierarchy: what a crashed server, or a runtime that failed half-way, left behind.
//!
//! For each child directory the caller does not claim: every process in it (and below it) is
//! killed with `SIGKILL`, then the directories are removed bottom-up. Only directories strictly
//! below the parent are touched, and only from the host's mount namespace: `rmdir` under
//! `/sys/fs/cgroup` from another mount namespace can detach the host's controller mounts.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::hierarchies;

/// How long the processes of a stale cgroup get to die after `SIGKILL`.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// What [`sweep_stale_cgroups`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Directories removed.
    pub removed: Vec<PathBuf>,
    /// Processes killed.
    pub killed: Vec<i32>,
    /// Directories that could not be removed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Whether this process runs in PID 1's mount namespace (`true` when that cannot be read: PID 1
/// may hold capabilities we lack, and the server runs in the host namespace).
pub fn in_host_mount_namespace() -> bool {
    match (std::fs::read_link("/proc/self/ns/mnt"), std::fs::read_link("/proc/1/ns/mnt")) {
        (Ok(ours), Ok(host)) => ours == host,
        _ => true,
    }
}

/// Sweeps the children of `parent` (an absolute cgroup path such as `/stacyvm/ab12cd34`) in every
/// hierarchy, except those for which `keep(name)` is true.
///
/// Fails without touching anything when `parent` is not a plain absolute path with at least two
/// components (it must never be a hierarchy root or a shared top level), or when this process is
/// not in the host's mount namespace.
pub fn sweep_stale_cgroups(parent: &str, keep: &dyn Fn(&str) -> bool) -> io::Result<SweepReport> {
    let rel = parent.trim_matches('/');
    let parts: Vec<&str> = rel.split('/').collect();
    if !parent.starts_with('/') || parts.len() < 2 || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to sweep cgroup parent {parent:?}")));
    }
    if !in_host_mount_namespace() {
        return Err(io::Error::other(
            "refusing to sweep cgroups from a mount namespace other than the host's (it can detach the host's cgroup mounts)",
        ));
    }
    let mut report = SweepReport::default();
    for h in hierarchies()? {
        let dir = h.mount_point.join(rel);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) || keep(&name) {
                continue;
            }
            sweep_one(&entry.path(), &mut report);
        }
    }
    Ok(report)
}

/// Every cgroup directory at and below `dir`, children before parents.
fn bottom_up(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                bottom_up(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn sweep_one(dir: &Path, report: &mut SweepReport) {
    let mut dirs = Vec::new();
    bottom_up(dir, &mut dirs);
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let alive: Vec<i32> = dirs.iter().flat_map(|d| procs(d)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            break;
        }
        for pid in alive {
            // SAFETY: plain syscall; a vanished process is fine.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 && !report.killed.contains(&pid) {
                report.killed.push(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for d in dirs {
        match std::fs::remove_dir(&d) {
            Ok(()) => report.removed.push(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => report.failed.push((d, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_roots_and_shared_parents() {
        for parent in ["", "/", "/stacyvm", "stacyvm/x", "/stacyvm/../x", "/stacyvm//x", "/stacyvm/./x"] {
            let err = sweep_stale_cgroups(parent, &|_| true).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{parent:?}");
        }
    }

    #[test]
    fn a_missing_parent_is_nothing_to_do() {
        if !in_host_mount_namespace() {
            return;
        }
        let report = sweep_stale_cgroups("/stacyvm-test-none/none", &|_| false).unwrap();
        assert_eq!(report, SweepReport::default());
    }
}
