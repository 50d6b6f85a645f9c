//! Driving an OCI runtime (crun, runc, runsc) through the standard runtime CLI contract:
//! `create`, `start`, `state`, `kill`, `delete`, plus `list` and `--version`.
//!
//! Every call spawns the runtime binary once with `--root <state dir>` (and, for runsc, its
//! platform/network flags), bounded by [`OciRuntime::timeout`]; failures carry the runtime's own
//! error message, trimmed.
//!
//! The container's init inherits the stdio of the runtime's `create` process, so `create` never
//! uses pipes it would wait on: init's stdout/stderr go to `/dev/null`, a file (opened with
//! `O_APPEND`) or a descriptor the caller owns ([`IoTarget`]); the runtime's own error messages
//! are taken from a log file (`<bundle>/runtime.log`, via the runtime's `--log` flag).

// Layout, by responsibility (this file: `OciRuntime` and its global arguments):
// - `kind.rs`: `RuntimeKind`, `RunscOptions`;
// - `cli.rs`: the subcommands (`create`, `start`, `state`, `kill`, `delete`, `list`),
//   `wait_stopped`, `validate_id`;
// - `cleanup.rs`: `destroy`, `delete_blocking`;
// - `detect.rs`: `which`, `detect`, `RuntimeInfo`;
// - `io.rs`: the init's stdio (`ContainerIo`, `IoTarget`);
// - `state.rs`: `state` output (`State`, `Status`);
// - `error.rs`: `OciError` and extracting the runtime's messages from its output and logs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

mod cleanup;
mod cli;
mod detect;
mod error;
mod io;
mod kind;
mod state;

pub use cli::validate_id;
pub use detect::{which, RuntimeInfo};
pub use error::OciError;
pub use io::{ContainerIo, IoTarget};
pub use kind::{RunscOptions, RuntimeKind};
pub use state::{State, Status};

/// An OCI runtime binary plus its state directory.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// Which runtime (decides flag spelling).
    pub kind: RuntimeKind,
    /// Path of the binary.
    pub binary: PathBuf,
    /// State directory (`--root`); created on first `create` (mode 0700). Use one per server so
    /// `list` shows only our containers.
    pub root: PathBuf,
    /// Extra global arguments, placed after ours (e.g. `--debug`, `--systemd-cgroup`).
    pub extra_args: Vec<String>,
    /// runsc flags (ignored for crun/runc).
    pub runsc: RunscOptions,
    /// Upper bound for one runtime invocation; the runtime process is killed when it is exceeded.
    pub timeout: Duration,
}

impl OciRuntime {
    /// Default per-invocation timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A runtime of `kind` found on `PATH`, with state in `root`.
    pub fn new(kind: RuntimeKind, root: impl Into<PathBuf>) -> Result<Self, OciError> {
        let binary = which(kind.binary_name()).ok_or(OciError::BinaryNotFound { kind })?;
        Ok(Self::with_binary(kind, binary, root))
    }

    /// A runtime of `kind` at an explicit path (`providers.oci.runtime_path`).
    pub fn with_binary(kind: RuntimeKind, binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        OciRuntime {
            kind,
            binary: binary.into(),
            root: root.into(),
            extra_args: Vec::new(),
            runsc: RunscOptions::default(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Global arguments placed before every subcommand.
    pub fn global_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        if self.kind == RuntimeKind::Runsc {
            a.push(format!("--platform={}", self.runsc.platform).into());
            a.push(format!("--network={}", self.runsc.network).into());
            if self.runsc.oci_seccomp {
                a.push("--oci-seccomp".into());
            }
        }
        a.extend(self.extra_args.iter().map(OsString::from));
        a
    }

    /// A command for the runtime with the global arguments set, stdin `/dev/null` and
    /// `kill_on_drop`; for subcommands this crate does not wrap (`exec`, `pause`, ...).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(self.global_args()).stdin(Stdio::null()).kill_on_drop(true);
        c
    }
}

#[cfg(test)]
mod tests;
