//! Where the container init's stdout and stderr go ([`ContainerIo`], [`IoTarget`]).

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use super::error::io_err;
use super::OciError;

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

/// The [`Stdio`] for one of the init's streams (`what`: `stdout` or `stderr`, for errors).
pub(super) fn open_target(t: IoTarget, what: &str) -> Result<Stdio, OciError> {
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
