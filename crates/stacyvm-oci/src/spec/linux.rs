//! The `linux` section of `config.json`: namespaces ([`NetworkSpec`]), masked and read-only
//! paths, cgroup resources and the seccomp profile.

use std::path::PathBuf;

use super::{BundleSpec, Cpu, DeviceRule, Linux, Memory, Namespace, Pids, Resources};
use crate::seccomp;

/// CFS period used to turn a vCPU count into a quota (100 ms, the kernel default).
pub const CPU_PERIOD_US: u64 = 100_000;

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

impl BundleSpec {
    /// `linux`: pid, mount, ipc, uts and network namespaces; device access denied except the
    /// runtime's default device nodes, memory limit with swap = limit, CFS quota/period, pids
    /// limit; the cgroups path; masked and read-only paths; the seccomp profile.
    pub(super) fn oci_linux(&self) -> Linux {
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

        Linux {
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
        }
    }
}
