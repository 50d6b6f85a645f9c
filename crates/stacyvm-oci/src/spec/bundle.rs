//! [`BundleSpec`], the provider-facing description of one sandbox: defaults, validation, the
//! conversion to a [`Spec`] and [`write_bundle`].

use std::path::{Path, PathBuf};

use super::{BindMount, NetworkSpec, ProcessSpec, Root, Seccomp, Spec, DEFAULT_NOFILE};
use crate::runtime::RuntimeKind;

/// The OCI runtime-spec version we emit.
pub const OCI_VERSION: &str = "1.0.2";

/// Everything the provider decides about one sandbox; see [`BundleSpec::to_spec`] for the
/// defaults that are always applied.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleSpec {
    /// Root filesystem (e.g. the sandbox's overlay mount point). Must exist.
    pub rootfs: PathBuf,
    /// Make `/` read-only; `/tmp`, `/run` and `/workspace` stay writable (tmpfs unless a bind mount
    /// targets them).
    pub readonly_rootfs: bool,
    /// Hostname inside the UTS namespace.
    pub hostname: String,
    /// The container's init process.
    pub process: ProcessSpec,
    /// Memory limit in bytes (swap limited to the same value, i.e. no swap). `None`: unlimited.
    pub memory_bytes: Option<u64>,
    /// CPU limit in vCPUs (e.g. `0.5`, `2`), turned into a CFS quota over [`CPU_PERIOD_US`].
    ///
    /// [`CPU_PERIOD_US`]: super::CPU_PERIOD_US
    pub vcpus: Option<f64>,
    /// Maximum number of tasks (processes + threads) in the container's cgroup.
    pub pids_limit: Option<i64>,
    /// Network namespace.
    pub network: NetworkSpec,
    /// Extra bind mounts, applied after the defaults (so one may cover `/workspace`).
    pub mounts: Vec<BindMount>,
    /// Cgroup path handed to the runtime (`linux.cgroupsPath`), e.g. `stacyvm/<id>`.
    ///
    /// With the cgroupfs driver a relative path is created under the cgroup of the runtime
    /// process (that is, of the server) in every v1 hierarchy; an absolute path is created from
    /// the hierarchy root. On a cgroup v2 host, prefer an absolute path in a delegated subtree
    /// (the v2 "no internal processes" rule forbids enabling controllers below a cgroup that
    /// itself holds processes). `None` lets the runtime pick (usually `/<container id>`).
    pub cgroups_path: Option<String>,
    /// Mount a read-only cgroupfs at `/sys/fs/cgroup` (the container sees only its own cgroup),
    /// so the agent can read its own limits and usage. Default `true`.
    pub mount_cgroupfs: bool,
    /// Capability override for the init process. `None` (the default): [`AGENT_CAPABILITIES`] when
    /// `process.uid == 0`, no capabilities at all otherwise.
    ///
    /// [`AGENT_CAPABILITIES`]: super::AGENT_CAPABILITIES
    pub capabilities: Option<Vec<String>>,
    /// Seccomp profile. `None` (the default): [`seccomp::default_profile_for`] the
    /// [`runtime`](Self::runtime). A custom profile replaces it entirely.
    ///
    /// [`seccomp::default_profile_for`]: crate::seccomp::default_profile_for
    pub seccomp: Option<Seccomp>,
    /// The runtime that will run the bundle; only used to work around runtime quirks in the
    /// generated config (see [`seccomp::default_profile_for`]). Default: crun.
    ///
    /// [`seccomp::default_profile_for`]: crate::seccomp::default_profile_for
    pub runtime: RuntimeKind,
    /// `RLIMIT_NOFILE` (soft = hard) of the init process; `None` inherits the runtime's (i.e. the
    /// server's) limits. Clamped to the calling process's hard limit: raising it above needs
    /// `CAP_SYS_RESOURCE`, which the server may lack (it does on the CI machines), and the runtime
    /// would then refuse the container.
    pub nofile: Option<u64>,
}

impl BundleSpec {
    /// A spec with every default: writable rootfs, no limits, network `None`, no extra mounts.
    pub fn new(rootfs: impl Into<PathBuf>, process: ProcessSpec) -> Self {
        BundleSpec {
            rootfs: rootfs.into(),
            readonly_rootfs: false,
            hostname: "sandbox".into(),
            process,
            memory_bytes: None,
            vcpus: None,
            pids_limit: None,
            network: NetworkSpec::None,
            mounts: Vec::new(),
            cgroups_path: None,
            mount_cgroupfs: true,
            capabilities: None,
            seccomp: None,
            runtime: RuntimeKind::Crun,
            nofile: Some(DEFAULT_NOFILE),
        }
    }

    /// Checks the fields the runtime would otherwise reject with a less helpful message.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.process.args.is_empty() {
            return Err(SpecError::Invalid("process.args must not be empty".into()));
        }
        if !self.process.cwd.starts_with('/') {
            return Err(SpecError::Invalid(format!("process.cwd must be absolute, got {:?}", self.process.cwd)));
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return Err(SpecError::Invalid(format!("hostname must be 1..=64 bytes, got {:?}", self.hostname)));
        }
        if let Some(v) = self.vcpus {
            if !(v.is_finite() && v > 0.0) {
                return Err(SpecError::Invalid(format!("vcpus must be > 0, got {v}")));
            }
        }
        if let Some(m) = self.memory_bytes {
            // Below this the runtime itself cannot start the init process.
            if m < 4 * 1024 * 1024 {
                return Err(SpecError::Invalid(format!("memory limit must be at least 4 MiB, got {m} bytes")));
            }
            if m > i64::MAX as u64 {
                return Err(SpecError::Invalid(format!("memory limit too large: {m}")));
            }
        }
        if let Some(p) = self.pids_limit {
            if p < 1 {
                return Err(SpecError::Invalid(format!("pids limit must be >= 1, got {p}")));
            }
        }
        for m in &self.mounts {
            if !m.destination.is_absolute() {
                return Err(SpecError::Invalid(format!("mount destination must be absolute: {:?}", m.destination)));
            }
            if !m.source.is_absolute() {
                return Err(SpecError::Invalid(format!("mount source must be absolute: {:?}", m.source)));
            }
        }
        if let Some(cg) = &self.cgroups_path {
            if cg.is_empty() || cg.split('/').any(|c| c == "..") {
                return Err(SpecError::Invalid(format!("invalid cgroups path {cg:?}")));
            }
        }
        Ok(())
    }

    /// The full OCI spec with StacyVM's isolation defaults:
    ///
    /// - namespaces: pid, mount, ipc, uts, network (a new empty one for [`NetworkSpec::None`]);
    /// - `noNewPrivileges`; capabilities as described on [`BundleSpec::capabilities`], never ambient
    ///   or inheritable;
    /// - masked and read-only `/proc` and `/sys` paths ([`MASKED_PATHS`], [`READONLY_PATHS`]);
    /// - mounts: `/proc`, `/dev` (tmpfs) with `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`
    ///   (read-only), optionally `/sys/fs/cgroup` (read-only), tmpfs `/tmp` and `/run`, and tmpfs
    ///   `/workspace` when the rootfs is read-only;
    /// - resources: device access denied except the runtime's default device nodes, memory limit
    ///   with swap = limit, CFS quota/period, pids limit;
    /// - our default seccomp profile (see `docs/seccomp.md`).
    ///
    /// [`MASKED_PATHS`]: super::MASKED_PATHS
    /// [`READONLY_PATHS`]: super::READONLY_PATHS
    pub fn to_spec(&self) -> Result<Spec, SpecError> {
        self.validate()?;
        Ok(Spec {
            oci_version: OCI_VERSION.into(),
            process: self.oci_process(),
            root: Root { path: self.rootfs.to_string_lossy().into_owned(), readonly: self.readonly_rootfs },
            hostname: Some(self.hostname.clone()),
            mounts: self.oci_mounts(),
            linux: Some(self.oci_linux()),
        })
    }
}

/// Writes `<bundle_dir>/config.json` for `spec` (atomically: temp file + rename) and returns its
/// path. `bundle_dir` is created if missing. The rootfs is referenced by absolute path, so it does
/// not have to live inside the bundle.
pub fn write_bundle(bundle_dir: &Path, spec: &BundleSpec) -> Result<PathBuf, SpecError> {
    let oci = spec.to_spec()?;
    std::fs::create_dir_all(bundle_dir)?;
    let path = bundle_dir.join("config.json");
    let tmp = bundle_dir.join(".config.json.tmp");
    // One write of the whole document, no fsync: a bundle does not outlive a host crash (its
    // container does not either), and an fsync here costs milliseconds on every spawn.
    let mut json = serde_json::to_vec_pretty(&oci)?;
    json.push(b'\n');
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Errors while building or writing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A field of the [`BundleSpec`] is out of range.
    #[error("invalid bundle spec: {0}")]
    Invalid(String),
    /// Writing `config.json` failed.
    #[error("writing bundle: {0}")]
    Io(#[from] std::io::Error),
    /// Serialising `config.json` failed.
    #[error("serialising config.json: {0}")]
    Json(#[from] serde_json::Error),
}
