//! Runs a process on the host with streamed output, a timeout, and a guaranteed kill.
//!
//! The child leads its own process group; when the exec ends early (timeout, the output
//! receiver went away, or the future was dropped) the whole group gets `SIGKILL`. Used by the
//! `mock` provider; isolating providers run processes through their in-sandbox agent instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stacyvm_types::exec::StreamName;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::error::{ProviderError, ProviderResult};
use crate::types::{ExecOutcome, ExitReason, OutputChunk};

/// How long output is still drained after the main process exits (background children may
/// keep the pipes open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

/// Kills a process group when dropped, unless disarmed.
struct GroupKiller {
    pgid: Option<i32>,
}

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: plain syscall on a process group we created; errors (already gone) are fine.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What to run on the host.
pub struct HostCommand<'a> {
    /// Program and arguments.
    pub argv: &'a [String],
    /// Complete environment (the host environment is not inherited).
    pub env: &'a BTreeMap<String, String>,
    /// Host working directory.
    pub cwd: &'a Path,
    /// Kill after this long.
    pub timeout: Option<Duration>,
}

/// Runs `cmd`, sending output to `output`. Returns when the process has exited (or was killed).
pub async fn run(cmd: HostCommand<'_>, output: mpsc::Sender<OutputChunk>) -> ProviderResult<ExecOutcome> {
    let (program, args) =
        cmd.argv.split_first().ok_or_else(|| ProviderError::InvalidInput("command is required".into()))?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(cmd.env)
        .current_dir(cmd.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ProviderError::InvalidInput(format!("executable not found: {program}")),
            _ => ProviderError::Failed(format!("start {program}: {e}")),
        })?;
    let mut killer = GroupKiller { pgid: child.id().map(|p| p as i32) };
    let stdout = child.stdout.take().map(|s| pump(s, StreamName::Stdout, output.clone()));
    let stderr = child.stderr.take().map(|s| pump(s, StreamName::Stderr, output.clone()));
    let readers = async {
        if let Some(h) = stdout {
            let _ = h.await;
        }
        if let Some(h) = stderr {
            let _ = h.await;
        }
    };
    tokio::pin!(readers);

    let wait = async {
        tokio::select! {
            status = child.wait() => Some(status),
            _ = output.closed() => None,
        }
    };
    let waited = match cmd.timeout {
        Some(limit) => tokio::time::timeout(limit, wait).await.ok(),
        None => Some(wait.await),
    };
    let reason = match waited {
        None => {
            killer.kill();
            let _ = child.wait().await;
            ExitReason::TimedOut
        }
        Some(None) => {
            killer.kill();
            let _ = child.wait().await;
            return Err(ProviderError::Failed("output receiver closed; process killed".into()));
        }
        Some(Some(status)) => {
            let status = status.map_err(|e| ProviderError::Failed(format!("wait: {e}")))?;
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => ExitReason::Exited(code),
                (None, Some(sig)) => ExitReason::Signaled(sig),
                (None, None) => ExitReason::Exited(-1),
            }
        }
    };
    // Background children stay alive (e.g. a server started with `&`), but we stop waiting
    // for their output shortly after the main process ended.
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, &mut readers).await;
    if matches!(reason, ExitReason::Exited(_) | ExitReason::Signaled(_)) {
        killer.pgid = None;
    }
    Ok(ExecOutcome { reason, duration: started.elapsed() })
}

fn pump<R>(mut reader: R, stream: StreamName, output: mpsc::Sender<OutputChunk>) -> tokio::task::JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = OutputChunk { stream, data: Bytes::copy_from_slice(&buf[..n]) };
                    if output.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
}
