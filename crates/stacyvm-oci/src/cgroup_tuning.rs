//! Host tuning that makes container starts fast: the cgroup2 `favordynmods` flag.
//!
//! Every container start moves processes into new cgroups. The kernel guards such moves with a
//! global per-CPU reader/writer semaphore whose writer side waits for an RCU grace period —
//! several milliseconds per start, more on a busy host. With `favordynmods` set on the cgroup2
//! root, the semaphore stays in its writer-friendly mode: moves stop waiting for grace periods,
//! while forks and exits take a slightly slower, still uncontended path. The flag is global
//! (it also speeds the cgroup v1 hierarchies of a hybrid host) and lasts until the next remount
//! or reboot. Measured on the development host: `crun run --detach` of a StacyVM bundle went
//! from ≈ 42 ms to ≈ 21 ms median under load (`docs/benchmarks.md`).
//!
//! Kernels before 6.0 do not know the flag; the remount then fails and nothing changes.

use std::ffi::CString;
use std::io;
use std::path::PathBuf;

use crate::cgroup::mountinfo;

/// What [`favor_dynamic_cgroups`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FavorDynmods {
    /// The flag was already set on the cgroup2 mount.
    AlreadySet(PathBuf),
    /// This call set it (remount of the given mount point).
    Set(PathBuf),
    /// The host has no cgroup2 mount.
    NoCgroup2,
}

/// Sets `favordynmods` on the (first) cgroup2 mount, keeping its other options. Needs root in
/// the host mount namespace.
pub fn favor_dynamic_cgroups() -> io::Result<FavorDynmods> {
    let mounts = mountinfo()?;
    let Some(cg2) = mounts.iter().find(|m| m.fstype == "cgroup2") else { return Ok(FavorDynmods::NoCgroup2) };
    if cg2.super_options.iter().any(|o| o == "favordynmods") {
        return Ok(FavorDynmods::AlreadySet(cg2.mount_point.clone()));
    }
    // A cgroup2 remount replaces the root's flags: pass the ones it has (nsdelegate, …) too.
    let mut options: Vec<&str> =
        cg2.super_options.iter().map(String::as_str).filter(|o| *o != "rw" && *o != "ro").collect();
    options.push("favordynmods");
    let target =
        CString::new(cg2.mount_point.as_os_str().as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let data = CString::new(options.join(",")).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: valid NUL-terminated strings that outlive the call; null source and type are
    // allowed with MS_REMOUNT.
    let rc = unsafe {
        libc::mount(std::ptr::null(), target.as_ptr(), std::ptr::null(), libc::MS_REMOUNT, data.as_ptr().cast())
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("remount {} with favordynmods: {e} (kernel 6.0 or later is needed)", cg2.mount_point.display()),
        ));
    }
    Ok(FavorDynmods::Set(cg2.mount_point.clone()))
}
