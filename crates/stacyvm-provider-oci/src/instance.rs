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
