//! One exec request: start the process, stream its output, deliver input, signals and window
//! size changes, enforce the timeout, and finish with exactly one `exited` message after all
//! output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stacyvm_agent_proto::{DataKind, ErrorKind, ExecStart, ExitReason, ExitStatus, Frame, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::process::{self, ProcessIo, ProcessSpec};
use crate::pty::PtyMaster;
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
    if let Some(Err(message)) = start.pty.map(|size| size.validate()) {
        let _ = out.send(fail(ErrorKind::InvalidInput, message)).await;
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
        pty: start.pty,
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
    let (mut stdin, pumps) = match child.io {
        ProcessIo::Pipes { stdin, stdout, stderr } => (
            Stdin::Pipe(stdin),
            vec![
                tokio::spawn(pump(stdout, channel, DataKind::Stdout, out.clone())),
                tokio::spawn(pump(stderr, channel, DataKind::Stderr, out.clone())),
            ],
        ),
        ProcessIo::Pty(master) => {
            (Stdin::Pty(Arc::clone(&master)), vec![tokio::spawn(pump_pty(master, channel, out.clone()))])
        }
    };
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
                stdin.kill_all(pid);
            }
            () = out.closed() => {
                stdin.kill_all(pid);
                return;
            }
            message = input.recv() => match message {
                Some(Input::Data(data)) => stdin.write(&data).await,
                Some(Input::End) => stdin.close().await,
                Some(Input::Signal(signal)) => stdin.signal(pid, signal),
                Some(Input::Resize(size)) => stdin.resize(size),
                Some(Input::Cancel) | None => stdin.kill_all(pid),
            },
        }
    };
    if timed_out {
        stdin.kill_all(pid);
    }
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, async {
        for pump in pumps {
            let _ = pump.await;
        }
    })
    .await;
    let (code, signal) = match status {
        Some(WaitStatus::Exited(code)) => (Some(code), None),
        Some(WaitStatus::Signaled(sig)) => (None, Some(sig)),
        None => {
            // Only if the reaper thread is gone: never report an exit without its status.
            eprintln!("exec {:?}: exit status of pid {pid} lost", start.argv);
            let _ = out.send(fail(ErrorKind::Failed, format!("exit status of pid {pid} was lost"))).await;
            return;
        }
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

/// Where input for the process goes, and how signals reach it.
enum Stdin {
    /// A pipe (`None` once closed, or when stdin is `/dev/null`).
    Pipe(Option<pipe::Sender>),
    /// The terminal.
    Pty(Arc<PtyMaster>),
}

impl Stdin {
    async fn write(&mut self, data: &[u8]) {
        match self {
            Stdin::Pipe(pipe) => {
                if let Some(p) = pipe.as_mut() {
                    if p.write_all(data).await.is_err() {
                        *pipe = None;
                    }
                }
            }
            Stdin::Pty(master) => {
                let _ = master.write_all(data).await;
            }
        }
    }

    /// End of input: closes the pipe, or types the terminal's EOF character.
    async fn close(&mut self) {
        match self {
            Stdin::Pipe(pipe) => *pipe = None,
            Stdin::Pty(master) => {
                let _ = master.write_all(&[master.eof_char()]).await;
            }
        }
    }

    /// A `signal` request: the process group, or the terminal's foreground group.
    fn signal(&self, pid: i32, signal: i32) {
        match self {
            Stdin::Pty(master) => process::signal_group(master.foreground_group().unwrap_or(pid), signal),
            Stdin::Pipe(_) => process::signal_group(pid, signal),
        }
    }

    fn resize(&self, size: stacyvm_agent_proto::PtySize) {
        if let Stdin::Pty(master) = self {
            if let Err(e) = size.validate().map_err(std::io::Error::other).and_then(|()| master.resize(size)) {
                eprintln!("exec: resize to {}x{} refused: {e}", size.rows, size.cols);
            }
        }
    }

    /// Timeout, cancel, host gone: everything the process started.
    fn kill_all(&self, pid: i32) {
        process::signal_group(pid, libc::SIGKILL);
        if let Stdin::Pty(_) = self {
            process::signal_session(pid, libc::SIGKILL);
        }
    }
}

async fn pump_pty(master: Arc<PtyMaster>, channel: u32, out: Out) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = master.read(&mut buf).await {
        if out.send(Frame::data(channel, DataKind::Stdout, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
            return;
        }
    }
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
