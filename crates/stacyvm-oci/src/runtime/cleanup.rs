//! Removing a container and everything the runtime left behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::error::{io_err, is_not_found_message, log_errors, trim_message};
use super::{validate_id, OciError, OciRuntime, RuntimeKind, Status};
use crate::cgroup;

impl OciRuntime {
    /// Removes every trace the runtime is responsible for: `delete --force` (idempotent), then
    /// the container's leftover cgroup directories for `cgroups_path` (the value given in
    /// [`BundleSpec::cgroups_path`](crate::BundleSpec::cgroups_path)), after killing any process
    /// still in them. The second step matters
    /// after a failed `create`: runsc (and runc in some failure paths) create the cgroups before
    /// recording any state, so `delete` knows nothing about them. Returns the cgroup directories
    /// that had to be removed by hand.
    ///
    /// With runc and runsc a live container is first sent `SIGKILL` (all processes) and polled
    /// until stopped, which is faster than their `delete --force` alone (runc's polls at 100 ms).
    /// crun's forced delete kills and reaps the whole cgroup itself, quickly: one call.
    pub async fn destroy(&self, id: &str, cgroups_path: Option<&str>) -> Result<Vec<PathBuf>, OciError> {
        validate_id(id)?;
        let state = match self.kind {
            RuntimeKind::Crun => None,
            _ => Some(self.state(id).await),
        };
        match state {
            Some(Ok(st)) if st.status != Status::Stopped => {
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
}
