//! Generation of the OCI runtime `config.json`.
//!
//! We only model the subset of the [OCI runtime spec] that StacyVM uses; the structs serialise to
//! the exact field names of the spec (`camelCase`) and every optional field is omitted when unset,
//! so crun, runc and runsc all accept the result.
//!
//! [`BundleSpec`] is the provider-facing description of one sandbox; [`BundleSpec::to_spec`] turns
//! it into a [`Spec`] with our isolation defaults and [`write_bundle`] writes `config.json`.
//!
//! [OCI runtime spec]: https://github.com/opencontainers/runtime-spec/blob/main/config.md

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeKind;
use crate::seccomp;

/// The OCI runtime-spec version we emit.
pub const OCI_VERSION: &str = "1.0.2";

/// CFS period used to turn a vCPU count into a quota (100 ms, the kernel default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Default `RLIMIT_NOFILE` (soft and hard) for the container's init.
pub const DEFAULT_NOFILE: u64 = 65_536;

/// Default `PATH` given to the init process when the caller does not set one.
pub const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capabilities kept by a **root** init process (the in-sandbox agent, PID 1).
///
/// Everything else is dropped from every set, including the bounding set, so no descendant can
/// ever regain it. Each one is needed by an agent that runs user commands with lower privileges:
///
/// | capability | why the agent needs it |
/// |---|---|
/// | `CAP_SETUID` | `setuid()/setresuid()` to the sandbox user before `execve` of a user command |
/// | `CAP_SETGID` | `setgid()/setgroups()` to the sandbox user's groups before `execve` |
/// | `CAP_CHOWN` | file API: create files on behalf of the user and hand them over (`chown`) |
/// | `CAP_DAC_OVERRIDE` | file API: read/write paths the user made unreadable to root-without-caps (e.g. mode 0600 files owned by uid 1000) |
/// | `CAP_FOWNER` | file API: `chmod`/`utimes` on files the agent does not own |
/// | `CAP_KILL` | signal, time out and kill user processes that run under another uid |
/// | `CAP_SETPCAP` | drop the bounding set (`PR_CAPBSET_DROP`) and clear capabilities for user processes |
///
/// User processes started by the agent get **no** capabilities (all sets empty) and
/// `no_new_privs`; that is the agent's job, not the runtime's.
pub const AGENT_CAPABILITIES: &[&str] =
    &["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP"];

/// Paths hidden from the container (runc/Docker defaults): bind-mounted over with `/dev/null`
/// (files) or an empty read-only tmpfs (directories).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths remounted read-only inside the container (runc/Docker defaults).
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Network setup of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkSpec {
    /// A new, empty network namespace (loopback only, and down until someone brings it up).
    #[default]
    None,
    /// Join an existing network namespace, e.g. `/run/netns/stacyvm-<id>` prepared with a veth.
    Path(PathBuf),
}

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

/// The init process of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// `argv`, `args[0]` resolved in the container's `PATH`.
    pub args: Vec<String>,
    /// `KEY=value` entries. When no `PATH=` entry is present, [`DEFAULT_PATH_ENV`] is added.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    /// User id of the process.
    pub uid: u32,
    /// Primary group id of the process.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

impl ProcessSpec {
    /// A root process (`uid` 0) running `args` in `/`.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessSpec {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
        }
    }
}

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
    pub capabilities: Option<Vec<String>>,
    /// Seccomp profile. `None` (the default): [`seccomp::default_profile_for`] the
    /// [`runtime`](Self::runtime). A custom profile replaces it entirely.
    pub seccomp: Option<Seccomp>,
    /// The runtime that will run the bundle; only used to work around runtime quirks in the
    /// generated config (see [`seccomp::default_profile_for`]). Default: crun.
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
    pub fn to_spec(&self) -> Result<Spec, SpecError> {
        self.validate()?;
        let p = &self.process;

        let mut env = p.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH_ENV.to_string());
        }

        let caps: Vec<String> = match &self.capabilities {
            Some(c) => c.clone(),
            None if p.uid == 0 => AGENT_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
            None => Vec::new(),
        };
        let capabilities = Capabilities {
            bounding: caps.clone(),
            effective: caps.clone(),
            permitted: caps,
            inheritable: Vec::new(),
            ambient: Vec::new(),
        };

        let process = Process {
            terminal: false,
            user: User { uid: p.uid, gid: p.gid, additional_gids: p.additional_gids.clone() },
            args: p.args.clone(),
            env,
            cwd: p.cwd.clone(),
            capabilities: Some(capabilities),
            rlimits: self
                .nofile
                .map(|n| {
                    let n = n.min(own_nofile_hard_limit());
                    vec![Rlimit { kind: "RLIMIT_NOFILE".into(), hard: n, soft: n }]
                })
                .unwrap_or_default(),
            no_new_privileges: true,
            oom_score_adj: None,
        };

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

        let mut namespaces: Vec<Namespace> =
            ["pid", "mount", "ipc", "uts"].iter().map(|t| Namespace { kind: t.to_string(), path: None }).collect();
        namespaces.push(Namespace {
            kind: "network".into(),
            path: match &self.network {
                NetworkSpec::None => None,
                NetworkSpec::Path(p) => Some(p.to_string_lossy().into_owned()),
            },
        });

        let memory = self.memory_bytes.map(|m| Memory { limit: Some(m as i64), swap: Some(m as i64) });
        let cpu = self.vcpus.map(|v| Cpu {
            quota: Some(((v * CPU_PERIOD_US as f64).round() as i64).max(1000)),
            period: Some(CPU_PERIOD_US),
        });
        let pids = self.pids_limit.map(|limit| Pids { limit });

        let linux = Linux {
            namespaces,
            resources: Some(Resources {
                devices: vec![DeviceRule { allow: false, access: Some("rwm".into()) }],
                memory,
                cpu,
                pids,
            }),
            cgroups_path: self.cgroups_path.clone(),
            masked_paths: MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
            seccomp: Some(self.seccomp.clone().unwrap_or_else(|| seccomp::default_profile_for(self.runtime))),
        };

        Ok(Spec {
            oci_version: OCI_VERSION.into(),
            process,
            root: Root { path: self.rootfs.to_string_lossy().into_owned(), readonly: self.readonly_rootfs },
            hostname: Some(self.hostname.clone()),
            mounts,
            linux: Some(linux),
        })
    }
}

/// This process's hard `RLIMIT_NOFILE` (`u64::MAX` when unlimited or unknown).
fn own_nofile_hard_limit() -> u64 {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 || rl.rlim_max == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    rl.rlim_max
}

/// Writes `<bundle_dir>/config.json` for `spec` (atomically: temp file + rename) and returns its
/// path. `bundle_dir` is created if missing. The rootfs is referenced by absolute path, so it does
/// not have to live inside the bundle.
pub fn write_bundle(bundle_dir: &Path, spec: &BundleSpec) -> Result<PathBuf, SpecError> {
    let oci = spec.to_spec()?;
    std::fs::create_dir_all(bundle_dir)?;
    let path = bundle_dir.join("config.json");
    let tmp = bundle_dir.join(".config.json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, &oci)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
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

// ---------------------------------------------------------------------------------------------
// The serde model of the subset of config.json we emit.
// ---------------------------------------------------------------------------------------------

/// Top level of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

/// Capability sets; we always emit all five (empty ones included) so nothing is left to the
/// runtime's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Memory + swap (cgroup v1 `memsw`); equal to `limit` means no swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

/// `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: String,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of `linux.seccomp.syscalls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SeccompArg>,
}

/// A syscall argument condition (`linux.seccomp.syscalls[].args[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompArg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn spec_json(b: &BundleSpec) -> Value {
        serde_json::to_value(b.to_spec().unwrap()).unwrap()
    }

    fn base() -> BundleSpec {
        let mut p = ProcessSpec::new(["/bin/sh", "-c", "true"]);
        p.uid = 1000;
        p.gid = 1000;
        let mut b = BundleSpec::new("/var/lib/stacyvm/sb-1/rootfs", p);
        b.hostname = "sb-1".into();
        b.memory_bytes = Some(256 * 1024 * 1024);
        b.vcpus = Some(1.5);
        b.pids_limit = Some(128);
        b.cgroups_path = Some("stacyvm/sb-1".into());
        b
    }

    #[test]
    fn namespaces_all_present_and_new_netns_by_default() {
        let j = spec_json(&base());
        let ns: Vec<(String, Option<String>)> = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (n["type"].as_str().unwrap().to_string(), n.get("path").and_then(|p| p.as_str()).map(String::from))
            })
            .collect();
        for t in ["pid", "mount", "ipc", "uts", "network"] {
            assert!(ns.iter().any(|(k, p)| k == t && p.is_none()), "namespace {t} missing in {ns:?}");
        }
        assert!(!ns.iter().any(|(k, _)| k == "user" || k == "cgroup"));
    }

    #[test]
    fn netns_path_is_joined() {
        let mut b = base();
        b.network = NetworkSpec::Path("/run/netns/stacyvm-sb-1".into());
        let j = spec_json(&b);
        let net = j["linux"]["namespaces"].as_array().unwrap().iter().find(|n| n["type"] == "network").unwrap().clone();
        assert_eq!(net["path"], "/run/netns/stacyvm-sb-1");
    }

    #[test]
    fn non_root_process_gets_no_capabilities() {
        let j = spec_json(&base());
        let caps = &j["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
            assert_eq!(caps[set], serde_json::json!([]), "{set}");
        }
        assert_eq!(j["process"]["noNewPrivileges"], true);
        assert_eq!(j["process"]["user"]["uid"], 1000);
        assert_eq!(j["process"]["user"]["gid"], 1000);
        assert_eq!(j["process"]["terminal"], false);
    }

    #[test]
    fn root_process_gets_exactly_the_agent_capabilities() {
        let mut b = base();
        b.process.uid = 0;
        b.process.gid = 0;
        let j = spec_json(&b);
        let caps = &j["process"]["capabilities"];
        let want: Vec<Value> = AGENT_CAPABILITIES.iter().map(|c| Value::from(*c)).collect();
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(caps[set].as_array().unwrap(), &want, "{set}");
        }
        assert_eq!(caps["inheritable"], serde_json::json!([]));
        assert_eq!(caps["ambient"], serde_json::json!([]));
        for dangerous in
            ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_NET_RAW", "CAP_MKNOD"]
        {
            assert!(!want.contains(&Value::from(dangerous)));
        }
        assert_eq!(AGENT_CAPABILITIES.len(), 7);
    }

    #[test]
    fn masked_and_readonly_paths() {
        let j = spec_json(&base());
        let masked: Vec<&str> =
            j["linux"]["maskedPaths"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
            "/proc/acpi",
            "/proc/scsi",
            "/proc/asound",
        ] {
            assert!(masked.contains(&p), "{p} not masked");
        }
        let ro: Vec<&str> =
            j["linux"]["readonlyPaths"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for p in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] {
            assert!(ro.contains(&p), "{p} not read-only");
        }
    }

    #[test]
    fn limits_numbers() {
        let j = spec_json(&base());
        let r = &j["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 268_435_456);
        assert_eq!(r["memory"]["swap"], 268_435_456);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 128);
        assert_eq!(r["devices"], serde_json::json!([{"allow": false, "access": "rwm"}]));
        assert_eq!(j["linux"]["cgroupsPath"], "stacyvm/sb-1");
        assert_eq!(j["hostname"], "sb-1");
    }

    #[test]
    fn no_limits_means_no_resource_entries() {
        let b = BundleSpec::new("/r", ProcessSpec::new(["/bin/true"]));
        let j = spec_json(&b);
        let r = &j["linux"]["resources"];
        assert!(r.get("memory").is_none() && r.get("cpu").is_none() && r.get("pids").is_none());
        assert!(j["linux"].get("cgroupsPath").is_none());
    }

    #[test]
    fn nofile_is_clamped_to_our_hard_limit() {
        let j = spec_json(&base());
        let n = j["process"]["rlimits"][0]["hard"].as_u64().unwrap();
        assert_eq!(n, DEFAULT_NOFILE.min(own_nofile_hard_limit()));
        assert_eq!(j["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        let mut b = base();
        b.nofile = None;
        assert!(spec_json(&b)["process"].get("rlimits").is_none());
    }

    #[test]
    fn tiny_cpu_is_clamped_to_one_percent() {
        let mut b = base();
        b.vcpus = Some(0.001);
        assert_eq!(spec_json(&b)["linux"]["resources"]["cpu"]["quota"], 1000);
    }

    #[test]
    fn mounts_default_set() {
        let j = spec_json(&base());
        let m: Vec<(String, String, Vec<String>)> = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["destination"].as_str().unwrap().to_string(),
                    m["type"].as_str().unwrap().to_string(),
                    m["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect(),
                )
            })
            .collect();
        let find = |d: &str| m.iter().find(|x| x.0 == d).unwrap_or_else(|| panic!("no mount {d}"));
        assert_eq!(find("/proc").1, "proc");
        assert_eq!(find("/dev").1, "tmpfs");
        assert_eq!(find("/dev/pts").1, "devpts");
        assert_eq!(find("/dev/shm").1, "tmpfs");
        assert_eq!(find("/dev/mqueue").1, "mqueue");
        let sys = find("/sys");
        assert_eq!(sys.1, "sysfs");
        for o in ["ro", "nosuid", "noexec", "nodev"] {
            assert!(sys.2.iter().any(|x| x == o), "/sys lacks {o}");
        }
        assert_eq!(find("/sys/fs/cgroup").1, "cgroup");
        assert!(find("/sys/fs/cgroup").2.contains(&"ro".to_string()));
        assert_eq!(find("/tmp").1, "tmpfs");
        assert_eq!(find("/run").1, "tmpfs");
        // rootfs writable: no /workspace tmpfs
        assert!(!m.iter().any(|x| x.0 == "/workspace"));
        assert_eq!(j["root"]["readonly"], false);
        // /proc must come before /sys/fs/cgroup etc.: parents before children
        let pos = |d: &str| m.iter().position(|x| x.0 == d).unwrap();
        assert!(pos("/dev") < pos("/dev/pts") && pos("/sys") < pos("/sys/fs/cgroup"));
    }

    #[test]
    fn readonly_rootfs_gets_writable_workspace_owned_by_the_user() {
        let mut b = base();
        b.readonly_rootfs = true;
        let j = spec_json(&b);
        assert_eq!(j["root"]["readonly"], true);
        let ws = j["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/workspace").unwrap();
        assert_eq!(ws["type"], "tmpfs");
        let opts: Vec<&str> = ws["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
        assert!(opts.contains(&"uid=1000") && opts.contains(&"gid=1000"));
        assert!(!opts.contains(&"ro"));
    }

    #[test]
    fn bind_mounts_and_workspace_override() {
        let mut b = base();
        b.readonly_rootfs = true;
        b.mounts.push(BindMount::new("/srv/ws/sb-1", "/workspace", false));
        b.mounts.push(BindMount::new("/usr/lib/stacyvm/agent", "/.stacyvm/agent", true));
        let j = spec_json(&b);
        let mounts = j["mounts"].as_array().unwrap();
        let ws: Vec<&Value> = mounts.iter().filter(|m| m["destination"] == "/workspace").collect();
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0]["type"], "bind");
        assert_eq!(ws[0]["source"], "/srv/ws/sb-1");
        let agent = mounts.iter().find(|m| m["destination"] == "/.stacyvm/agent").unwrap();
        let opts: Vec<&str> = agent["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
        assert!(opts.contains(&"rbind") && opts.contains(&"ro") && opts.contains(&"nosuid"));
    }

    #[test]
    fn seccomp_present_with_denylist() {
        let j = spec_json(&base());
        let s = &j["linux"]["seccomp"];
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(s["architectures"], serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
        let denied: Vec<&str> = s["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ERRNO" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()))
            .collect();
        for name in [
            "mount",
            "umount2",
            "pivot_root",
            "kexec_load",
            "init_module",
            "bpf",
            "ptrace",
            "unshare",
            "setns",
            "keyctl",
        ] {
            assert!(denied.contains(&name), "{name} not denied");
        }
    }

    #[test]
    fn default_path_env_added_once() {
        let mut b = base();
        b.process.env = vec!["HOME=/home/user".into()];
        let j = spec_json(&b);
        assert_eq!(j["process"]["env"], serde_json::json!([DEFAULT_PATH_ENV, "HOME=/home/user"]));
        b.process.env = vec!["PATH=/bin".into()];
        assert_eq!(spec_json(&b)["process"]["env"], serde_json::json!(["PATH=/bin"]));
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let mut b = base();
        b.process.args.clear();
        assert!(b.to_spec().is_err());
        let mut b = base();
        b.process.cwd = "rel".into();
        assert!(b.to_spec().is_err());
        let mut b = base();
        b.vcpus = Some(0.0);
        assert!(b.to_spec().is_err());
        let mut b = base();
        b.memory_bytes = Some(1024);
        assert!(b.to_spec().is_err());
        let mut b = base();
        b.cgroups_path = Some("../escape".into());
        assert!(b.to_spec().is_err());
        let mut b = base();
        b.mounts.push(BindMount::new("rel", "/x", true));
        assert!(b.to_spec().is_err());
    }

    #[test]
    fn roundtrip_and_write_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bundle(dir.path(), &base()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, base().to_spec().unwrap());
        assert!(!dir.path().join(".config.json.tmp").exists());
    }
}
