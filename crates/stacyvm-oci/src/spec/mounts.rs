//! The container's mounts: caller-supplied [`BindMount`]s and the default mount set.

use std::path::{Path, PathBuf};

use super::{BundleSpec, Mount};

/// A host path bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path (file or directory).
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// Mount read-only.
    pub readonly: bool,
}

impl BindMount {
    /// A bind mount of `source` at `destination`.
    pub fn new(source: impl Into<PathBuf>, destination: impl Into<PathBuf>, readonly: bool) -> Self {
        BindMount { source: source.into(), destination: destination.into(), readonly }
    }
}

impl Mount {
    fn new(destination: &str, kind: &str, source: &str, options: &[&str]) -> Self {
        Mount {
            destination: destination.into(),
            kind: Some(kind.into()),
            source: Some(source.into()),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl BundleSpec {
    /// `mounts`: `/proc`, `/dev` (tmpfs) with `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`
    /// (read-only), optionally `/sys/fs/cgroup` (read-only), tmpfs `/tmp` and `/run`, tmpfs
    /// `/workspace` when the rootfs is read-only (and no bind mount covers it), then the bind
    /// mounts. Parents come before children.
    pub(super) fn oci_mounts(&self) -> Vec<Mount> {
        let p = &self.process;
        let mut mounts = vec![
            Mount::new("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            Mount::new("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount::new(
                "/dev/pts",
                "devpts",
                "devpts",
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            ),
            Mount::new("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount::new("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            Mount::new("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        ];
        if self.mount_cgroupfs {
            mounts.push(Mount::new(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ));
        }
        // tmpfs pages are charged to the writer's memory cgroup, so the memory limit bounds them.
        mounts.push(Mount::new("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"]));
        mounts.push(Mount::new("/run", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=755"]));
        let workspace_bound = self.mounts.iter().any(|m| m.destination == Path::new("/workspace"));
        if self.readonly_rootfs && !workspace_bound {
            let owner = [format!("uid={}", p.uid), format!("gid={}", p.gid)];
            let mut m = Mount::new("/workspace", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=755"]);
            m.options.extend(owner);
            mounts.push(m);
        }
        for b in &self.mounts {
            let mut options: Vec<String> =
                ["rbind", "rprivate", "nosuid", "nodev"].iter().map(|s| s.to_string()).collect();
            if b.readonly {
                options.push("ro".into());
            }
            mounts.push(Mount {
                destination: b.destination.to_string_lossy().into_owned(),
                kind: Some("bind".into()),
                source: Some(b.source.to_string_lossy().into_owned()),
                options,
            });
        }
        mounts
    }
}
