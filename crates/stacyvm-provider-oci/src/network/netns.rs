//! Persistent network namespaces: a namespace kept alive by a bind mount of its nsfs file onto
//! a regular file (as `ip netns add` does), and running code inside one.
//!
//! Namespaces are per thread for these calls: a short-lived thread `unshare`s or `setns`es, so
//! the server's own threads never change namespace. A child process started from such a thread
//! (e.g. `ip`) runs in that namespace.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rustix::mount::{mount_bind, unmount, UnmountFlags};

/// Creates a new, empty network namespace bound at `path` (which must not exist yet; its parent
/// is created). On failure nothing is left behind.
pub fn create(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    let target = path.to_path_buf();
    let bound = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare only affects this thread, which exits right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        mount_bind("/proc/thread-self/ns/net", &target).map_err(io::Error::from)
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?;
    if let Err(e) = bound {
        let _ = std::fs::remove_file(path);
        return Err(io::Error::new(e.kind(), format!("create network namespace {}: {e}", path.display())));
    }
    Ok(())
}

/// Unmounts and deletes a namespace made by [`create`]. Idempotent. The namespace itself goes
/// away once no process and no other mount holds it.
pub fn remove(path: &Path) -> io::Result<()> {
    match unmount(path, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(io::Error::new(io::Error::from(e).kind(), format!("unmount {}: {e}", path.display()))),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread that has joined the network namespace at `path`.
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let ns =
        std::fs::File::open(path).map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    let path: PathBuf = path.to_path_buf();
    std::thread::spawn(move || -> io::Result<T> {
        // SAFETY: setns on this short-lived thread only; the fd is valid for the call.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("enter network namespace {}: {e}", path.display())));
        }
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?
}
