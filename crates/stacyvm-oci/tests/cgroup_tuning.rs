//! `favordynmods` on the cgroup2 root: set when missing, other flags kept, idempotent.
//! Needs root in the host mount namespace and a kernel ≥ 6.0; skipped otherwise unless
//! `STACYVM_REQUIRE_RUNTIMES=1`. Leaves the flag set (the server's default state).

use std::ffi::CString;

use stacyvm_oci::cgroup::mountinfo;
use stacyvm_oci::cgroup_tuning::{favor_dynamic_cgroups, FavorDynmods};

fn cgroup2_options() -> Option<(std::path::PathBuf, Vec<String>)> {
    let m = mountinfo().unwrap().into_iter().find(|m| m.fstype == "cgroup2")?;
    Some((m.mount_point, m.super_options))
}

fn remount(target: &std::path::Path, options: &[&str]) {
    let t = CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
    let d = CString::new(options.join(",")).unwrap();
    let rc =
        unsafe { libc::mount(std::ptr::null(), t.as_ptr(), std::ptr::null(), libc::MS_REMOUNT, d.as_ptr().cast()) };
    assert_eq!(rc, 0, "remount {}: {}", target.display(), std::io::Error::last_os_error());
}

#[test]
fn favordynmods_is_set_keeping_the_other_flags() {
    let root = unsafe { libc::geteuid() } == 0;
    let Some((target, before)) = cgroup2_options().filter(|_| root) else {
        assert!(std::env::var("STACYVM_REQUIRE_RUNTIMES").as_deref() != Ok("1"), "needs root and a cgroup2 mount");
        return eprintln!("SKIPPED: needs root and a cgroup2 mount");
    };
    let kept: Vec<&str> =
        before.iter().map(String::as_str).filter(|o| !matches!(*o, "rw" | "ro" | "favordynmods")).collect();
    // Start from "not set" (this kernel accepts the flag if the server's start could set it).
    remount(&target, &kept);
    assert!(!cgroup2_options().unwrap().1.iter().any(|o| o == "favordynmods"));
    match favor_dynamic_cgroups() {
        Ok(FavorDynmods::Set(at)) => assert_eq!(at, target),
        Err(e)
            if e.to_string().contains("kernel 6.0")
                && std::env::var("STACYVM_REQUIRE_RUNTIMES").as_deref() != Ok("1") =>
        {
            return eprintln!("SKIPPED: {e}");
        }
        other => panic!("expected Set, got {other:?}"),
    }
    let after = cgroup2_options().unwrap().1;
    assert!(after.iter().any(|o| o == "favordynmods"), "{after:?}");
    for flag in kept {
        assert!(after.iter().any(|o| o == flag), "flag {flag} was dropped: {after:?}");
    }
    assert_eq!(favor_dynamic_cgroups().unwrap(), FavorDynmods::AlreadySet(target));
}
