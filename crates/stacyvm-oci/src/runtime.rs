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

use std::ffi::OsString;
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::cgroup;

/// Longest runtime error message we keep (the tail is kept).
const MAX_ERROR_LEN: usize = 4096;

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

/// Where the container init's stdout or stderr goes.
#[derive(Debug, Default)]
pub enum IoTarget {
    /// `/dev/null`.
    #[default]
    Null,
    /// A file, created if missing (mode 0640) and opened with `O_APPEND` (runsc overwrites from
    /// offset 0 otherwise).
    File(PathBuf),
    /// A descriptor the caller owns, e.g. the write end of a pipe whose read end the caller drains.
    /// It is only duplicated into the runtime; the caller may drop it after `create`.
    Fd(OwnedFd),
}

/// Stdio of the container's init (stdin is always `/dev/null`).
#[derive(Debug, Default)]
pub struct ContainerIo {
    /// Init's stdout.
    pub stdout: IoTarget,
    /// Init's stderr.
    pub stderr: IoTarget,
}

impl ContainerIo {
    /// Both streams appended to one file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        ContainerIo { stdout: IoTarget::File(p.clone()), stderr: IoTarget::File(p) }
    }
}

/// Container status as reported by `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, init waiting for `start`.
    Created,
    /// Init running.
    Running,
    /// Init exited.
    Stopped,
    /// Frozen.
    Paused,
    /// Anything else the runtime reported.
    Unknown(String),
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "creating" => Status::Creating,
            "created" => Status::Created,
            "running" => Status::Running,
            "stopped" => Status::Stopped,
            "paused" => Status::Paused,
            _ => Status::Unknown(s),
        })
    }
}

/// The output of `state` (the fields every runtime reports).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct State {
    /// Container id.
    pub id: String,
    /// Status.
    pub status: Status,
    /// Host pid of init; `None` once stopped (runtimes report 0).
    #[serde(default, deserialize_with = "pid_opt")]
    pub pid: Option<i32>,
    /// Bundle directory.
    #[serde(default)]
    pub bundle: Option<PathBuf>,
}

fn pid_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let v = Option::<i64>::deserialize(d)?;
    Ok(v.filter(|p| *p > 0).map(|p| p as i32))
}

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

/// Errors from the runtime driver.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// `providers.oci.runtime` names no known runtime.
    #[error("unknown OCI runtime {0:?} (expected crun, runc or runsc)")]
    UnknownKind(String),
    /// The binary is not on `PATH` (nor in /usr/sbin, /sbin, /usr/local/sbin).
    #[error("{kind} not found on PATH; install it with `apt-get install {pkg}` or set its path", pkg = kind.debian_package())]
    BinaryNotFound {
        /// The runtime looked for.
        kind: RuntimeKind,
    },
    /// Container ids are restricted to `[A-Za-z0-9_.-]{1,64}` not starting with `-` or `.`.
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    /// The runtime exited non-zero.
    #[error("{kind} {op} {id}: {message}")]
    Runtime {
        /// Runtime kind.
        kind: RuntimeKind,
        /// Subcommand.
        op: &'static str,
        /// Container id (empty for `list`/`--version`).
        id: String,
        /// Exit code, `None` if killed by a signal.
        code: Option<i32>,
        /// The runtime's error message, trimmed (at most 4 KiB, tail kept).
        message: String,
    },
    /// The runtime did not finish in time and was killed.
    #[error("{kind} {op} {id}: timed out after {timeout:?}")]
    Timeout {
        /// Runtime kind.
        kind: RuntimeKind,
        /// Subcommand.
        op: &'static str,
        /// Container id.
        id: String,
        /// The limit.
        timeout: Duration,
    },
    /// Spawning the runtime or preparing its files failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime's output was not what the contract says.
    #[error("{kind} {op}: unexpected output: {detail}")]
    Parse {
        /// Runtime kind.
        kind: RuntimeKind,
        /// Subcommand.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl OciError {
    /// Whether the error says the container does not exist (any runtime's wording).
    pub fn is_not_found(&self) -> bool {
        match self {
            OciError::Runtime { message, .. } => is_not_found_message(message),
            _ => false,
        }
    }
}

fn is_not_found_message(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("no such file or directory") || m.contains("not found")
}

fn io_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> OciError {
    let op = op.into();
    move |source| OciError::Io { op, source }
}

/// Checks a container id: `[A-Za-z0-9_.-]{1,64}`, not starting with `-` or `.` (so it can never be
/// read as a flag or a relative path component).
pub fn validate_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('-')
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(OciError::InvalidId(id.to_string()))
    }
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

/// Keeps the last `MAX_ERROR_LEN` bytes of a trimmed message.
fn trim_message(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_ERROR_LEN {
        return s.to_string();
    }
    let mut start = s.len() - MAX_ERROR_LEN;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

/// Extracts error messages from a runtime log: JSON objects (crun/runc/runsc with
/// `--log-format=json`, possibly concatenated without newlines) with `level` and `msg`; plain text
/// lines are kept as they are.
fn log_errors(text: &str) -> String {
    let mut msgs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('{') {
            let mut it = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
            if let Some(Ok(v)) = it.next() {
                let level = v.get("level").and_then(|l| l.as_str()).unwrap_or("error");
                if matches!(level, "error" | "fatal" | "panic") {
                    if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                        msgs.push(m.trim().to_string());
                    }
                }
                rest = rest[it.byte_offset()..].trim_start();
                continue;
            }
        }
        let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
        if !line.trim().is_empty() {
            msgs.push(line.trim().to_string());
        }
        rest = tail.trim_start();
    }
    msgs.dedup();
    msgs.join("; ")
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

    /// Runs a subcommand with piped stdout/stderr; error if it exits non-zero.
    async fn run(&self, op: &'static str, id: &str, args: &[&str]) -> Result<Vec<u8>, OciError> {
        let started = Instant::now();
        let mut c = self.command();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = c.spawn().map_err(io_err(format!("spawning {}", self.binary.display())))?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(io_err(format!("{} {op}", self.kind)))?,
            Err(_) => return Err(OciError::Timeout { kind: self.kind, op, id: id.into(), timeout: self.timeout }),
        };
        tracing::debug!(runtime = %self.kind, op, id, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, code = ?out.status.code(), "oci runtime call");
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut message = log_errors(&stderr);
            if message.is_empty() {
                message = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            if message.is_empty() {
                message = format!("exit status {}", out.status);
            }
            Err(OciError::Runtime {
                kind: self.kind,
                op,
                id: id.into(),
                code: out.status.code(),
                message: trim_message(&message),
            })
        }
    }

    fn open_target(t: IoTarget, what: &str) -> Result<Stdio, OciError> {
        Ok(match t {
            IoTarget::Null => Stdio::null(),
            IoTarget::File(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .open(&p)
                    .map_err(io_err(format!("opening {what} file {}", p.display())))?;
                Stdio::from(f)
            }
            IoTarget::Fd(fd) => Stdio::from(fd),
        })
    }

    /// `create --bundle <bundle_dir> <id>`: sets up the container; init waits for [`start`].
    ///
    /// The runtime's error messages go to `<bundle_dir>/runtime.log` (truncated first) and are
    /// returned in the error. On error or timeout nothing is cleaned up here: call
    /// [`delete`](Self::delete) with `force` (it is idempotent).
    ///
    /// [`start`]: Self::start
    pub async fn create(&self, id: &str, bundle_dir: &Path, io: ContainerIo) -> Result<(), OciError> {
        validate_id(id)?;
        std::fs::create_dir_all(&self.root).map_err(io_err(format!("creating {}", self.root.display())))?;
        let _ = std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700));
        let log = bundle_dir.join("runtime.log");
        std::fs::write(&log, b"").map_err(io_err(format!("creating {}", log.display())))?;

        let mut c = self.command();
        match self.kind {
            RuntimeKind::Crun => {
                c.arg(format!("--log=file:{}", log.display())).arg("--log-format=json");
            }
            RuntimeKind::Runc => {
                c.arg("--log").arg(&log).arg("--log-format").arg("json");
            }
            RuntimeKind::Runsc => {
                c.arg(format!("--log={}", log.display())).arg("--log-format=json");
            }
        }
        c.arg("create").arg("--bundle").arg(bundle_dir).arg(id);
        c.stdout(Self::open_target(io.stdout, "stdout")?).stderr(Self::open_target(io.stderr, "stderr")?);

        let started = Instant::now();
        let mut child = c.spawn().map_err(io_err(format!("spawning {}", self.binary.display())))?;
        // Drop our copies of the container's stdio now (the Fd variant may be a pipe).
        drop(c);
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(r) => r.map_err(io_err(format!("{} create", self.kind)))?,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(OciError::Timeout { kind: self.kind, op: "create", id: id.into(), timeout: self.timeout });
            }
        };
        tracing::debug!(runtime = %self.kind, op = "create", id, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, code = ?status.code(), "oci runtime call");
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut message = log_errors(&text);
        if message.is_empty() {
            message = format!("exit status {status} (see {})", log.display());
        }
        Err(OciError::Runtime {
            kind: self.kind,
            op: "create",
            id: id.into(),
            code: status.code(),
            message: trim_message(&message),
        })
    }

    /// `start <id>`: runs the user-specified process of a created container.
    pub async fn start(&self, id: &str) -> Result<(), OciError> {
        validate_id(id)?;
        self.run("start", id, &["start", id]).await.map(drop)
    }

    /// `state <id>`.
    pub async fn state(&self, id: &str) -> Result<State, OciError> {
        validate_id(id)?;
        let out = self.run("state", id, &["state", id]).await?;
        serde_json::from_slice(&out).map_err(|e| OciError::Parse {
            kind: self.kind,
            op: "state",
            detail: format!("{e}: {}", trim_message(&String::from_utf8_lossy(&out))),
        })
    }

    /// `kill [--all] <id> <signal>`. `all` signals every process of the container, not just init.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), OciError> {
        validate_id(id)?;
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.run("kill", id, &args).await.map(drop)
    }

    /// `delete [--force] <id>`. Idempotent: a container that does not exist is `Ok`.
    pub async fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        validate_id(id)?;
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        match self.run("delete", id, &args).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e @ OciError::Runtime { .. }) => match self.list().await {
                Ok(ids) if !ids.iter().any(|i| i == id) => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Removes every trace the runtime is responsible for: `delete --force` (idempotent), then
    /// the container's leftover empty cgroup directories for `cgroups_path` (the value given in
    /// [`BundleSpec::cgroups_path`](crate::BundleSpec::cgroups_path)). The second step matters
    /// after a failed `create`: runsc (and runc in some failure paths) create the cgroups before
    /// recording any state, so `delete` knows nothing about them. Returns the cgroup directories
    /// that had to be removed by hand.
    ///
    /// A live container is first sent `SIGKILL` (all processes) and polled until stopped, which is
    /// faster than `delete --force` alone with runc (its forced delete polls at 100 ms).
    pub async fn destroy(&self, id: &str, cgroups_path: Option<&str>) -> Result<Vec<PathBuf>, OciError> {
        validate_id(id)?;
        match self.state(id).await {
            Ok(st) if st.status != Status::Stopped => {
                if let Err(e) = self.kill(id, libc::SIGKILL, true).await {
                    tracing::debug!(id, error = %e, "kill before delete failed");
                }
                if let Err(e) = self.wait_stopped(id, Duration::from_secs(5)).await {
                    tracing::debug!(id, error = %e, "container did not stop after SIGKILL");
                }
            }
            _ => {}
        }
        self.delete(id, true).await?;
        match cgroups_path {
            None => Ok(Vec::new()),
            Some(cg) => {
                let cg = cg.to_string();
                tokio::task::spawn_blocking(move || cgroup::remove_leftover_cgroup_dirs(&cg))
                    .await
                    .map_err(|e| OciError::Io { op: "removing cgroups".into(), source: std::io::Error::other(e) })?
                    .map_err(io_err("removing leftover cgroup directories"))
            }
        }
    }

    /// Blocking `delete --force`, for `Drop` guards and crash recovery outside an async context.
    /// Bounded by [`timeout`](Self::timeout); idempotent like [`delete`](Self::delete).
    pub fn delete_blocking(&self, id: &str) -> Result<(), OciError> {
        validate_id(id)?;
        let mut child = std::process::Command::new(&self.binary)
            .args(self.global_args())
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err(format!("spawning {}", self.binary.display())))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait().map_err(io_err("waiting for delete"))? {
                Some(status) => {
                    if status.success() {
                        return Ok(());
                    }
                    let mut err = String::new();
                    if let Some(mut s) = child.stderr.take() {
                        use std::io::Read;
                        let _ = s.read_to_string(&mut err);
                    }
                    if is_not_found_message(&err) || !self.root.join(id).exists() {
                        return Ok(());
                    }
                    return Err(OciError::Runtime {
                        kind: self.kind,
                        op: "delete",
                        id: id.into(),
                        code: status.code(),
                        message: trim_message(&log_errors(&err)),
                    });
                }
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(OciError::Timeout {
                        kind: self.kind,
                        op: "delete",
                        id: id.into(),
                        timeout: self.timeout,
                    });
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// `list --quiet`: ids of the containers in [`root`](Self::root).
    pub async fn list(&self) -> Result<Vec<String>, OciError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let out = self.run("list", "", &["list", "--quiet"]).await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "ID")
            .map(String::from)
            .collect())
    }

    /// Polls [`state`](Self::state) until the container is stopped (or gone), up to `timeout`.
    /// Returns the last state seen, `None` if the container does not exist.
    pub async fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<Option<State>, OciError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.state(id).await {
                Ok(s) if s.status == Status::Stopped => return Ok(Some(s)),
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(OciError::Timeout { kind: self.kind, op: "wait", id: id.into(), timeout });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "sb-1", "A_b.c-9", &"x".repeat(64)] {
            validate_id(ok).unwrap();
        }
        for bad in ["", "-rf", ".hidden", "a/b", "a b", "ä", &"x".repeat(65), "..", "a\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!("crun".parse::<RuntimeKind>().unwrap(), RuntimeKind::Crun);
        assert_eq!("RUNC".parse::<RuntimeKind>().unwrap(), RuntimeKind::Runc);
        assert_eq!("gvisor".parse::<RuntimeKind>().unwrap(), RuntimeKind::Runsc);
        assert!("docker".parse::<RuntimeKind>().is_err());
        assert_eq!(serde_json::to_string(&RuntimeKind::Runsc).unwrap(), "\"runsc\"");
    }

    #[test]
    fn global_args_per_kind() {
        let r = OciRuntime::with_binary(RuntimeKind::Runsc, "/usr/bin/runsc", "/run/stacyvm/runsc");
        let a: Vec<String> = r.global_args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(a, ["--root", "/run/stacyvm/runsc", "--platform=ptrace", "--network=none", "--oci-seccomp"]);
        let mut r = OciRuntime::with_binary(RuntimeKind::Crun, "/usr/bin/crun", "/run/stacyvm/crun");
        r.extra_args.push("--debug".into());
        let a: Vec<String> = r.global_args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(a, ["--root", "/run/stacyvm/crun", "--debug"]);
    }

    #[test]
    fn parses_state_of_every_runtime() {
        let runc = r#"{"ociVersion":"1.0.2-dev","id":"x","pid":4242,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z","owner":""}"#;
        let s: State = serde_json::from_str(runc).unwrap();
        assert_eq!((s.status, s.pid), (Status::Running, Some(4242)));
        let stopped = r#"{"ociVersion":"1.0.0","id":"x","pid":0,"status":"stopped","bundle":"/b"}"#;
        let s: State = serde_json::from_str(stopped).unwrap();
        assert_eq!((s.status, s.pid), (Status::Stopped, None));
        let odd: State = serde_json::from_str(r#"{"id":"x","status":"weird"}"#).unwrap();
        assert_eq!(odd.status, Status::Unknown("weird".into()));
    }

    #[test]
    fn extracts_log_errors() {
        let runsc = r#"{"msg":"Error setting up root FS","level":"error","time":"t"}{"msg":"just info","level":"info"}{"msg":"creating container: EOF","level":"error","time":"t"}"#;
        assert_eq!(log_errors(runsc), "Error setting up root FS; creating container: EOF");
        let runc = "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"t\"}\n";
        assert_eq!(log_errors(runc), "container does not exist");
        assert_eq!(log_errors("plain text\n\nline two\n"), "plain text; line two");
        let text = "time=\"x\" level=error msg=\"container does not exist\"";
        assert_eq!(log_errors(&format!("{text}\n")), text);
        assert!(is_not_found_message("loading container \"nope\": file does not exist"));
        assert!(is_not_found_message("error opening file `root/nope/status`: No such file or directory"));
    }

    #[test]
    fn trims_long_messages_at_char_boundary() {
        let long = "é".repeat(5000);
        let t = trim_message(&long);
        assert!(t.len() <= MAX_ERROR_LEN + "…".len());
        assert!(t.starts_with('…'));
    }

    #[test]
    fn which_finds_sh() {
        assert!(which("sh").is_some());
        assert!(which("definitely-not-a-binary-stacyvm").is_none());
    }

    #[tokio::test]
    async fn missing_binary_is_reported() {
        let r = OciRuntime::with_binary(RuntimeKind::Crun, "/nonexistent/crun", "/tmp/x");
        assert!(matches!(r.detect().await, Err(OciError::BinaryNotFound { .. })));
        assert!(matches!(r.start("a").await, Err(OciError::Io { .. })));
        assert!(matches!(r.start("-a").await, Err(OciError::InvalidId(_))));
    }
}
