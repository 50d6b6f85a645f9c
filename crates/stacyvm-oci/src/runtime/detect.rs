//! Finding a runtime binary ([`which`]) and checking that it works here
//! ([`OciRuntime::detect`]).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::process::Command;

use super::error::{io_err, trim_message};
use super::{OciError, OciRuntime, RuntimeKind};
use crate::cgroup;

/// What [`OciRuntime::detect`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeInfo {
    /// Runtime kind.
    pub kind: RuntimeKind,
    /// Binary used.
    pub binary: PathBuf,
    /// Version number (e.g. `1.8.1`, `0.0~20221219.0`), or the first line when not parseable.
    pub version: String,
    /// Host cgroup layout.
    pub cgroup_mode: Option<cgroup::CgroupMode>,
    /// Problems that will make containers fail or behave differently here, one line each.
    pub warnings: Vec<String>,
}

/// Finds an executable named `name` on `PATH`, then in the sbin directories (runc lives in
/// `/usr/sbin` on Debian, which is not on every user's `PATH`).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

impl OciRuntime {
    /// Whether the runtime works here, for `stacyvm doctor` and health checks: runs
    /// `<binary> --version` and inspects the host's cgroup layout. Does not start a container.
    pub async fn detect(&self) -> Result<RuntimeInfo, OciError> {
        let mut c = Command::new(&self.binary);
        c.arg("--version").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let child = c.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OciError::BinaryNotFound { kind: self.kind }
            } else {
                io_err(format!("spawning {}", self.binary.display()))(e)
            }
        })?;
        let out = match tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await {
            Ok(r) => r.map_err(io_err(format!("{} --version", self.kind)))?,
            Err(_) => {
                return Err(OciError::Timeout {
                    kind: self.kind,
                    op: "--version",
                    id: String::new(),
                    timeout: Duration::from_secs(10),
                })
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text.lines().next().unwrap_or("").trim().to_string();
        if !out.status.success() || first.is_empty() {
            return Err(OciError::Runtime {
                kind: self.kind,
                op: "--version",
                id: String::new(),
                code: out.status.code(),
                message: trim_message(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        let version = first
            .split_once("version ")
            .map(|(_, v)| v.split_whitespace().next().unwrap_or(v).to_string())
            .unwrap_or(first);

        let mut warnings = Vec::new();
        let cgroup_mode = cgroup::detect_mode().ok();
        if cgroup_mode == Some(cgroup::CgroupMode::Hybrid) && self.kind == RuntimeKind::Crun {
            if let Ok(ctrls) = cgroup::hybrid_unified_controllers() {
                if !ctrls.is_empty() {
                    warnings.push(format!(
                        "crun refuses cgroup hybrid mode while controllers sit on cgroup2 ({}); mount them as v1 \
                         (stacyvm does this for hugetlb: mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb)",
                        ctrls.join(" ")
                    ));
                }
            }
        }
        if self.kind == RuntimeKind::Runsc {
            warnings.push(format!(
                "runsc runs with --platform={} --network={}; its own threads count against the pids limit (use >= 128) \
                 and `runsc delete` takes ~1.5 s",
                self.runsc.platform, self.runsc.network
            ));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            warnings.push("not running as root: rootful OCI runtimes need root".into());
        }
        Ok(RuntimeInfo { kind: self.kind, binary: self.binary.clone(), version, cgroup_mode, warnings })
    }
}
