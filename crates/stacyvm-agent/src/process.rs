//! Starting user processes with the sandbox user's identity and no privileges.
//!
//! The child gets its own process group (so a timeout or cancel kills everything it started),
//! `setgroups([])`, `setgid`, `setuid` (which clears every capability when leaving uid 0), and
//! `no_new_privs` (so setuid binaries cannot regain any). Output goes through pipes that the
//! caller reads asynchronously; the exit status comes from the [`Reaper`].

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use crate::reaper::{Reaper, WaitStatus};

/// What to start.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Complete environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: String,
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Give it a writable stdin pipe (otherwise /dev/null).
    pub stdin: bool,
}

/// A started process.
pub struct Started {
    /// Its pid (also its process group).
    pub pid: i32,
    /// Standard input, when requested.
    pub stdin: Option<pipe::Sender>,
    /// Standard output.
    pub stdout: pipe::Receiver,
    /// Standard error.
    pub stderr: pipe::Receiver,
    /// Resolves when the reaper collects it.
    pub exit: oneshot::Receiver<WaitStatus>,
}

/// Starts `spec` and registers it with the reaper.
pub fn start(reaper: &Reaper, spec: &ProcessSpec) -> io::Result<Started> {
    let (program, args) =
        spec.argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "command is required"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(if spec.stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Only change identity when it differs (the agent may itself run unprivileged in tests).
    // SAFETY: getuid/getgid are always safe.
    let (my_uid, my_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if spec.gid != my_gid {
        cmd.gid(spec.gid);
    }
    if spec.uid != my_uid {
        // std also calls setgroups(0) before setuid when running as root.
        cmd.uid(spec.uid);
    }
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe prctl.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let guard = reaper.lock();
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let exit = guard.register(pid);
    let stdout = pipe::Receiver::from_owned_fd(child.stdout.take().expect("piped stdout").into())?;
    let stderr = pipe::Receiver::from_owned_fd(child.stderr.take().expect("piped stderr").into())?;
    let stdin = match child.stdin.take() {
        Some(s) => Some(pipe::Sender::from_owned_fd(s.into())?),
        None => None,
    };
    Ok(Started { pid, stdin, stdout, stderr, exit })
}

/// Sends `signal` to the whole process group of `pid`.
pub fn signal_group(pid: i32, signal: i32) {
    // SAFETY: plain syscall; a vanished group is fine.
    unsafe {
        libc::kill(-pid, signal);
    }
}
