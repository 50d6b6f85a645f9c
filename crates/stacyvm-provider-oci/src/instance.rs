//! Instance-scoped cgroups. Every sandbox's cgroup is `/stacyvm/<instance>/<sandbox id>`, where
//! `<instance>` is derived from the canonical data directory, so several StacyVM servers on one
//! host (each with its own data directory) never see, or sweep, each other's cgroups.
//!
//! At start the provider sweeps its own parent: cgroups whose sandbox directory no longer exists
//! (a crash between the runtime's create and our cleanup, or a runtime that failed half-way) have
//! their processes killed and are removed. Sweeping only ever happens from the host's mount
//! namespace (see `stacyvm_oci::cgroup_sweep`).

use std::io;
use std::path::Path;

/// The top-level cgroup shared by every StacyVM instance on the host.
pub const CGROUP_ROOT: &str = "/stacyvm";

/// The instance id of a data directory: 12 hex digits of a 64-bit FNV-1a hash of its canonical
/// path (the directory must exist). Stable across restarts and independent of how the path was
/// spelled in the configuration.
pub fn instance_id(data_dir: &Path) -> io::Result<String> {
    let canonical = data_dir.canonicalize()?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in canonical.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(format!("{:012x}", hash >> 16))
}

/// The cgroup parent of an instance's sandboxes, e.g. `/stacyvm/3f9a0c12ab77`.
pub fn cgroup_parent(instance: &str) -> String {
    format!("{CGROUP_ROOT}/{instance}")
}

/// Removes this instance's cgroups that belong to no sandbox directory under `sandboxes_dir`,
/// killing their processes first. Logs what it did; never fails the caller.
pub fn sweep(parent: &str, sandboxes_dir: &Path) {
    let known = |name: &str| sandboxes_dir.join(name).is_dir();
    match stacyvm_oci::sweep_stale_cgroups(parent, &known) {
        Ok(report) if report == stacyvm_oci::SweepReport::default() => {}
        Ok(report) => {
            tracing::info!(
                parent,
                removed = report.removed.len(),
                killed = report.killed.len(),
                failed = ?report.failed,
                "swept stale sandbox cgroups"
            )
        }
        Err(e) => tracing::warn!(parent, error = %e, "stale cgroup sweep skipped"),
    }
}

/// Removes the (empty) parent directories of this instance in every hierarchy; directories that
/// still have children stay. Only from the host's mount namespace.
pub fn remove_empty_parent(parent: &str) {
    if !stacyvm_oci::cgroup_sweep::in_host_mount_namespace() {
        return;
    }
    let Ok(hierarchies) = stacyvm_oci::cgroup::hierarchies() else { return };
    for h in hierarchies {
        let _ = std::fs::remove_dir(h.mount_point.join(parent.trim_start_matches('/')));
    }
}

/// How long an instance's empty cgroup parent must have been untouched before another
/// instance's start removes it.
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes other instances' parents that are empty (no sandbox cgroup below them) and untouched
/// for [`ABANDONED_AFTER`]: the leftovers of servers killed without a clean shutdown (test
/// runs, moved data directories), which would otherwise pile up — every v1 memory cgroup holds
/// kernel memory and the kernel allows only 65,535 of them. A live but idle server loses nothing:
/// the runtime recreates its parent at its next spawn. Only from the host's mount namespace.
/// Returns how many directories were removed.
pub fn remove_abandoned_parents(own: &str, older_than: std::time::Duration) -> usize {
    if !stacyvm_oci::cgroup_sweep::in_host_mount_namespace() {
        return 0;
    }
    let Ok(hierarchies) = stacyvm_oci::cgroup::hierarchies() else { return 0 };
    let own = own.trim_start_matches(CGROUP_ROOT).trim_start_matches('/');
    let mut removed = 0;
    for h in hierarchies {
        let Ok(entries) = std::fs::read_dir(h.mount_point.join(CGROUP_ROOT.trim_start_matches('/'))) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let is_instance = name.len() == 12 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_instance || name == own {
                continue;
            }
            let path = entry.path();
            let has_children = std::fs::read_dir(&path)
                .map(|d| d.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir())))
                .unwrap_or(true);
            let idle = path
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= older_than);
            if !has_children && idle && std::fs::remove_dir(&path).is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed abandoned empty cgroup parents of other StacyVM instances");
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_stable_and_differ_per_directory() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let id = instance_id(a.path()).unwrap();
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(instance_id(&a.path().join(".")).unwrap(), id, "spelling does not matter");
        assert_ne!(instance_id(b.path()).unwrap(), id);
        assert!(instance_id(&a.path().join("missing")).is_err());
        assert_eq!(cgroup_parent("abc"), "/stacyvm/abc");
    }
}
