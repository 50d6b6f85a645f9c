//! The OCI runtime CLI contract: `create`, `start`, `state`, `kill`, `delete`, `list`, and
//! polling `state` until a container stops.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::error::{io_err, log_errors, trim_message};
use super::io::open_target;
use super::{ContainerIo, OciError, OciRuntime, RuntimeKind, State, Status};

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

impl OciRuntime {
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

    /// `create --bundle <bundle_dir> <id>`: sets up the container; init waits for [`start`].
    ///
    /// The runtime's error messages go to `<bundle_dir>/runtime.log` (truncated first) and are
    /// returned in the error. On error or timeout nothing is cleaned up here: call
    /// [`delete`](Self::delete) with `force` (it is idempotent).
    ///
    /// [`start`]: Self::start
    pub async fn create(&self, id: &str, bundle_dir: &Path, io: ContainerIo) -> Result<(), OciError> {
        self.launch("create", &["create"], id, bundle_dir, io).await
    }

    /// `run --detach --bundle <bundle_dir> <id>`: [`create`](Self::create) and
    /// [`start`](Self::start) in one runtime invocation (one process less on every spawn).
    /// Same logging, errors and clean-up contract as `create`.
    pub async fn run_detached(&self, id: &str, bundle_dir: &Path, io: ContainerIo) -> Result<(), OciError> {
        self.launch("run", &["run", "--detach"], id, bundle_dir, io).await
    }

    async fn launch(
        &self,
        op: &'static str,
        subcommand: &[&str],
        id: &str,
        bundle_dir: &Path,
        io: ContainerIo,
    ) -> Result<(), OciError> {
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
        c.args(subcommand).arg("--bundle").arg(bundle_dir).arg(id);
        c.stdout(open_target(io.stdout, "stdout")?).stderr(open_target(io.stderr, "stderr")?);

        let started = Instant::now();
        let mut child = c.spawn().map_err(io_err(format!("spawning {}", self.binary.display())))?;
        // Drop our copies of the container's stdio now (the Fd variant may be a pipe).
        drop(c);
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(r) => r.map_err(io_err(format!("{} {op}", self.kind)))?,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(OciError::Timeout { kind: self.kind, op, id: id.into(), timeout: self.timeout });
            }
        };
        tracing::debug!(runtime = %self.kind, op, id, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, code = ?status.code(), "oci runtime call");
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
            op,
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
}
