//! Starting user processes with the sandbox user's identity and no privileges.
//!
//! The child gets its own process group (so a timeout or cancel kills everything it started),
//! `setgroups([])`, `setgid`, `setuid` (which clears every capability when leaving uid 0), and
//! `no_new_privs` (so setuid binaries cannot regain any). Output goes through pipes that the
//! caller reads asynchronously; the exit status comes from the [`Reaper`].
//!
//! With a PTY the child instead becomes the leader of a new session (`setsid`, which also makes
//! it a process group leader) with the terminal's slave as stdin, stdout, stderr and controlling
//! terminal (`TIOCSCTTY`); identity, capabilities and `no_new_privs` are the same.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use stacyvm_agent_proto::PtySize;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use crate::pty::{self, PtyMaster};
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
    /// Give it a writable stdin pipe (otherwise /dev/null). Ignored with a PTY.
    pub stdin: bool,
    /// Run it on a new terminal of this size.
    pub pty: Option<PtySize>,
}

/// How the agent talks to a started process.
pub enum ProcessIo {
    /// Separate pipes.
    Pipes {
        /// Standard input, when requested.
        stdin: Option<pipe::Sender>,
        /// Standard output.
        stdout: pipe::Receiver,
        /// Standard error.
        stderr: pipe::Receiver,
    },
    /// The master side of its terminal (input and merged output).
    Pty(Arc<PtyMaster>),
}

/// A started process.
pub struct Started {
    /// Its pid (also its process group, and with a PTY its session).
    pub pid: i32,
    /// Its standard streams.
    pub io: ProcessIo,
    /// Resolves when the reaper collects it.
    pub exit: oneshot::Receiver<WaitStatus>,
}

/// Starts `spec` and registers it with the reaper.
pub fn start(reaper: &Reaper, spec: &ProcessSpec) -> io::Result<Started> {
    let (program, args) =
        spec.argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "command is required"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(&spec.env).current_dir(&spec.cwd);
    let master = match spec.pty {
        Some(size) => {
            let pair = pty::open(size)?;
            cmd.stdin(Stdio::from(pair.slave.try_clone()?))
                .stdout(Stdio::from(pair.slave.try_clone()?))
                .stderr(Stdio::from(pair.slave));
            Some(pair.master)
        }
        None => {
            cmd.stdin(if spec.stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0);
            None
        }
    };
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
    let with_terminal = master.is_some();
    // SAFETY: the closure runs between fork and exec (after std's setgid/setuid) and only makes
    // async-signal-safe syscalls: setsid, ioctl and prctl.
    unsafe {
        cmd.pre_exec(move || {
            if with_terminal {
                // New session, then stdin (the slave) becomes its controlling terminal.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let guard = reaper.lock();
    let spawned = cmd.spawn();
    // Our copies of the slave must close now: the master reports EOF only once the child's do.
    drop(cmd);
    let mut child = spawned?;
    let pid = child.id() as i32;
    let exit = guard.register(pid);
    let io = streams(master, &mut child).inspect_err(|_| signal_group(pid, libc::SIGKILL))?;
    Ok(Started { pid, io, exit })
}

/// The agent's ends of a started child's streams.
fn streams(master: Option<std::os::fd::OwnedFd>, child: &mut std::process::Child) -> io::Result<ProcessIo> {
    Ok(match master {
        Some(master) => ProcessIo::Pty(Arc::new(PtyMaster::new(master)?)),
        None => ProcessIo::Pipes {
            stdout: pipe::Receiver::from_owned_fd(child.stdout.take().expect("piped stdout").into())?,
            stderr: pipe::Receiver::from_owned_fd(child.stderr.take().expect("piped stderr").into())?,
            stdin: match child.stdin.take() {
                Some(s) => Some(pipe::Sender::from_owned_fd(s.into())?),
                None => None,
            },
        },
    })
}

/// Sends `signal` to every process of session `sid` (found through `/proc`): with a PTY, job
/// control may have moved processes into other groups of the session.
pub fn signal_session(sid: i32, signal: i32) {
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for pid in entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the parenthesised command: state ppid pgrp session ...
        let session = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(3)?.parse::<i32>().ok());
        if session == Some(sid) {
            // SAFETY: plain syscall; a vanished process is fine.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

/// Sends `signal` to the whole process group of `pid`.
pub fn signal_group(pid: i32, signal: i32) {
    // SAFETY: plain syscall; a vanished group is fine.
    unsafe {
        libc::kill(-pid, signal);
    }
}
