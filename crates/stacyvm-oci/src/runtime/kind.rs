//! Which OCI runtime ([`RuntimeKind`]) and runsc's own global flags ([`RunscOptions`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::OciError;

/// Which OCI runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// crun (C, fastest start; the default).
    Crun,
    /// runc (Go, the reference implementation).
    Runc,
    /// runsc (gVisor: a user-space kernel between the sandbox and the host).
    Runsc,
}

impl RuntimeKind {
    /// All kinds, default first.
    pub const ALL: [RuntimeKind; 3] = [RuntimeKind::Crun, RuntimeKind::Runc, RuntimeKind::Runsc];

    /// The binary name looked up on `PATH`.
    pub fn binary_name(self) -> &'static str {
        match self {
            RuntimeKind::Crun => "crun",
            RuntimeKind::Runc => "runc",
            RuntimeKind::Runsc => "runsc",
        }
    }

    /// The Debian package that provides the runtime (for "how to install" hints).
    pub fn debian_package(self) -> &'static str {
        self.binary_name()
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary_name())
    }
}

impl FromStr for RuntimeKind {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "crun" => Ok(RuntimeKind::Crun),
            "runc" => Ok(RuntimeKind::Runc),
            "runsc" | "gvisor" => Ok(RuntimeKind::Runsc),
            other => Err(OciError::UnknownKind(other.to_string())),
        }
    }
}

/// runsc-only global flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunscOptions {
    /// `--platform`; `ptrace` is the only one that works on nested-virtualisation hosts (`kvm`
    /// hangs there).
    pub platform: String,
    /// `--network`; `none` (gVisor's `sandbox` network mode fails on recent kernels).
    pub network: String,
    /// Pass `--oci-seccomp` so runsc enforces `linux.seccomp` inside the sandbox (it ignores the
    /// profile otherwise).
    pub oci_seccomp: bool,
}

impl Default for RunscOptions {
    fn default() -> Self {
        RunscOptions { platform: "ptrace".into(), network: "none".into(), oci_seccomp: true }
    }
}
