//! Pseudo-terminals for exec with `pty`: allocation, the master side as async I/O, the window
//! size and the terminal's foreground process group.
//!
//! The agent keeps the master; the child gets the slave as stdin, stdout, stderr and controlling
//! terminal (see [`crate::process`]). Once every slave descriptor is closed, reading the master
//! fails with `EIO`, which [`PtyMaster::read`] reports as end of file.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use stacyvm_agent_proto::PtySize;
use tokio::io::unix::AsyncFd;

/// A freshly allocated terminal pair (both ends close-on-exec).
pub struct PtyPair {
    /// The agent's side.
    pub master: OwnedFd,
    /// The child's side.
    pub slave: OwnedFd,
}

fn winsize(size: PtySize) -> libc::winsize {
    libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Allocates a terminal of `size` (`openpty`; both descriptors opened with `O_NOCTTY`).
pub fn open(size: PtySize) -> io::Result<PtyPair> {
    let (mut master, mut slave) = (-1, -1);
    let ws = winsize(size);
    // SAFETY: valid out-pointers; a null name and termios are allowed; `ws` outlives the call.
    check(unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) })?;
    // SAFETY: openpty succeeded, so both are open descriptors that nothing else owns.
    let pair = unsafe { PtyPair { master: OwnedFd::from_raw_fd(master), slave: OwnedFd::from_raw_fd(slave) } };
    for fd in [&pair.master, &pair.slave] {
        // The agent's runtime is single-threaded, so no other spawn can inherit them before this.
        // SAFETY: plain fcntl on an owned descriptor.
        check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    }
    Ok(pair)
}

/// The master side of a terminal, readable and writable without blocking the runtime.
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

impl PtyMaster {
    /// Wraps the master (switching it to non-blocking mode).
    pub fn new(master: OwnedFd) -> io::Result<Self> {
        let raw = master.as_raw_fd();
        // SAFETY: plain fcntl calls on an owned descriptor.
        unsafe {
            let flags = check(libc::fcntl(raw, libc::F_GETFL))?;
            check(libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
        }
        // SAFETY: the `OwnedFd` is open and owned by the `AsyncFd` for its whole lifetime, and
        // always returns the same descriptor.
        let fd = unsafe { AsyncFd::register(master) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(PtyMaster { fd })
    }

    /// Reads the terminal's output; `Ok(0)` once no process holds the slave any more.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            let result = ready.try_io(|fd| {
                // SAFETY: `buf` is valid for `buf.len()` bytes.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match result {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` as terminal input.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut ready = self.fd.writable().await?;
            let result = ready.try_io(|fd| {
                // SAFETY: `data` is valid for `data.len()` bytes.
                let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match result {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the window size (`TIOCSWINSZ`); the kernel sends `SIGWINCH` to the foreground group.
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        let ws = winsize(size);
        // SAFETY: TIOCSWINSZ reads one `winsize` from a valid pointer.
        check(unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(|_| ())
    }

    /// The terminal's foreground process group (`TIOCGPGRP`), if it has one.
    pub fn foreground_group(&self) -> Option<i32> {
        let mut pgrp: libc::pid_t = 0;
        // SAFETY: TIOCGPGRP writes one `pid_t` to a valid pointer.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCGPGRP, &mut pgrp) };
        (rc == 0 && pgrp > 0).then_some(pgrp)
    }

    /// The terminal's end-of-file character (`VEOF`, normally `^D`).
    pub fn eof_char(&self) -> u8 {
        // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
        let mut tio: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor and out-pointer.
        if unsafe { libc::tcgetattr(self.fd.as_raw_fd(), &mut tio) } == 0 && tio.c_cc[libc::VEOF] != 0 {
            tio.c_cc[libc::VEOF]
        } else {
            0x04
        }
    }
}
