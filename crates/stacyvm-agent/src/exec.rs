//! One exec request: start the process, stream its output, deliver input and signals, enforce
//! the timeout, and finish with exactly one `exited` message after all output.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stacyvm_agent_proto::{DataKind, ErrorKind, ExecStart, ExitReason, ExitStatus, Frame, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::process::{self, ProcessSpec};
use crate::reaper::WaitStatus;
use crate::session::{Context, Input, Out};

/// Output is still collected this long after the process exits (background children may hold
/// the pipes open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

/// `PATH` for processes whose environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host path of a sandbox path (identity when the root is `/`).
pub fn host_path(root: &std::path::Path, sandbox_path: &str) -> PathBuf {
    root.join(sandbox_path.trim_start_matches('/'))
}

/// Runs one exec request to completion.
pub async fn run(ctx: &Context, channel: u32, start: ExecStart, mut input: mpsc::Receiver<Input>, out: Out) {
    let started = Instant::now();
    let fail = |kind, message: String| Frame::control(channel, Message::error(kind, message));
    let cwd = host_path(&ctx.opts.root, &start.cwd);
    if !cwd.is_dir() {
        let _ = out.send(fail(ErrorKind::InvalidInput, format!("workdir {} does not exist", start.cwd))).await;
        return;
    }
    if start.pty.is_some() {
        let _ = out.send(fail(ErrorKind::Unsupported, "pty is not supported yet".into())).await;
        return;
    }
    let mut env = start.env.clone();
    env.entry("PATH".into()).or_insert_with(|| DEFAULT_PATH.into());
    env.entry("HOME".into()).or_insert_with(|| start.cwd.clone());
    let spec = ProcessSpec {
        argv: start.argv.clone(),
        env,
        cwd: cwd.display().to_string(),
        uid: start.uid,
        gid: start.gid,
        stdin: start.stdin,
    };
    let oom_before = oom_kills();
    let child = match process::start(&ctx.reaper, &spec) {
        Ok(child) => child,
        Err(e) => {
            let program = start.argv.first().cloned().unwrap_or_default();
            let (kind, message) = match e.kind() {
                std::io::ErrorKind::NotFound => (ErrorKind::InvalidInput, format!("executable not found: {program}")),
                std::io::ErrorKind::PermissionDenied => {
                    (ErrorKind::InvalidInput, format!("permission denied: {program}"))
                }
                std::io::ErrorKind::InvalidInput => (ErrorKind::InvalidInput, e.to_string()),
                _ => (ErrorKind::Failed, format!("start {program}: {e}")),
            };
            let _ = out.send(fail(kind, message)).await;
            return;
        }
    };
    let pid = child.pid;
    let stdout = tokio::spawn(pump(child.stdout, channel, DataKind::Stdout, out.clone()));
    let stderr = tokio::spawn(pump(child.stderr, channel, DataKind::Stderr, out.clone()));
    let mut stdin = child.stdin;
    let mut exit = child.exit;
    let deadline = start.timeout_ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let mut timed_out = false;
    let status = loop {
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = &mut exit => break status.ok(),
            () = timeout, if !timed_out => {
                timed_out = true;
                process::signal_group(pid, libc::SIGKILL);
            }
            () = out.closed() => {
                process::signal_group(pid, libc::SIGKILL);
                return;
            }
            message = input.recv() => match message {
                Some(Input::Data(data)) => {
                    if let Some(pipe) = stdin.as_mut() {
                        if pipe.write_all(&data).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(Input::End) => stdin = None,
                Some(Input::Signal(signal)) => process::signal_group(pid, signal),
                Some(Input::Cancel) | None => process::signal_group(pid, libc::SIGKILL),
            },
        }
    };
    if timed_out {
        process::signal_group(pid, libc::SIGKILL);
    }
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, async {
        let _ = stdout.await;
        let _ = stderr.await;
    })
    .await;
    let (code, signal) = match status {
        Some(WaitStatus::Exited(code)) => (Some(code), None),
        Some(WaitStatus::Signaled(sig)) => (None, Some(sig)),
        None => (None, None),
    };
    let reason = if timed_out {
        ExitReason::TimedOut
    } else if signal == Some(libc::SIGKILL) && oom_kills() > oom_before {
        ExitReason::OomKilled
    } else if signal.is_some() {
        ExitReason::Signaled
    } else {
        ExitReason::Exited
    };
    let status = ExitStatus { code, signal, reason, duration_ms: started.elapsed().as_millis() as u64 };
    // The console log (the agent's stderr) records each command and how it ended.
    eprintln!("exec {:?}: {:?} code={:?} signal={:?}", start.argv, reason, code, signal);
    let _ = out.send(Frame::control(channel, Message::Exited(status))).await;
}

async fn pump<R: AsyncRead + Unpin>(mut reader: R, channel: u32, kind: DataKind, out: Out) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.send(Frame::data(channel, kind, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// OOM kills recorded for this sandbox's memory cgroup (v2 `memory.events`, v1
/// `memory.oom_control`); 0 when unknown.
fn oom_kills() -> u64 {
    for (file, key) in
        [("/sys/fs/cgroup/memory.events", "oom_kill"), ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")]
    {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Some(n) = text.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok()) {
                return n;
            }
        }
    }
    0
}
