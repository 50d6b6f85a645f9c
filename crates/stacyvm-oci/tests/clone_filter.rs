//! The seccomp profile's `clone`/`clone3`/`unshare` namespace filtering, probed from inside a
//! real container by this very test binary (`clone_probe`), on every installed runtime; see
//! `support/mod.rs`.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;

use stacyvm_oci::RuntimeKind;
use support::{kv, setup};

/// Not a test by itself: with `STACYVM_CLONE_PROBE=1` (set only inside the container by
/// `clone_namespace_flags_are_filtered`) it tries the namespace-creating syscalls and prints one
/// `name=result` line each. Runs inside the container as this very test binary.
#[test]
fn clone_probe() {
    if std::env::var_os("STACYVM_CLONE_PROBE").is_none() {
        return;
    }
    println!(); // libtest printed "test clone_probe ... " without a newline
    fn errno_name(r: libc::c_long) -> String {
        if r >= 0 {
            return "ok".into();
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM) => "EPERM".into(),
            Some(libc::ENOSYS) => "ENOSYS".into(),
            Some(libc::EINVAL) => "EINVAL".into(),
            Some(e) => format!("errno{e}"),
            None => "err".into(),
        }
    }
    /// fork-like raw clone: the child exits at once; the parent reaps it.
    fn try_clone(flags: libc::c_int) -> String {
        // SAFETY: with a NULL stack clone behaves like fork; the child only calls _exit.
        let r = unsafe {
            libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
        };
        if r == 0 {
            // SAFETY: child of a fork-like clone: _exit is async-signal-safe.
            unsafe { libc::_exit(0) };
        }
        if r > 0 {
            let mut st = 0;
            // SAFETY: r is our child's pid.
            unsafe { libc::waitpid(r as libc::pid_t, &mut st, 0) };
        }
        errno_name(r)
    }
    println!("clone_plain={}", try_clone(0));
    for (name, flag) in [
        ("clone_newuser", libc::CLONE_NEWUSER),
        ("clone_newns", libc::CLONE_NEWNS),
        ("clone_newpid", libc::CLONE_NEWPID),
        ("clone_newnet", libc::CLONE_NEWNET),
        ("clone_newuts", libc::CLONE_NEWUTS),
        ("clone_newipc", libc::CLONE_NEWIPC),
        ("clone_newcgroup", libc::CLONE_NEWCGROUP),
    ] {
        println!("{name}={}", try_clone(flag));
    }
    // clone3 with a zeroed (invalid-size) struct: ENOSYS from the filter, EINVAL/EFAULT without.
    // SAFETY: clone3 with size 0 and a null pointer never creates a process.
    let r = unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) };
    println!("clone3={}", errno_name(r));
    // SAFETY: plain unshare call; failure is the expected outcome.
    let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) } as libc::c_long;
    println!("unshare_newuser={}", errno_name(r));
    // Threads still work (glibc falls back from clone3 to clone).
    let t = std::thread::spawn(|| 42).join().unwrap_or(0);
    println!("thread={}", if t == 42 { "ok" } else { "failed" });
    println!("probe_done=yes");
}

async fn clone_namespace_flags_are_filtered(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let exe = std::env::current_exe().unwrap();
    let id = env.id("clone");
    // This test binary is dynamically linked against the host's glibc: lend it the host's libs.
    let _ = symlink("usr/lib", env.rootfs.join("lib"));
    let _ = symlink("usr/lib64", env.rootfs.join("lib64"));
    let mut spec = env.spec(&id, "");
    spec.process.args = vec![
        "/probe/test-bin".into(),
        "--exact".into(),
        "clone_probe".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    spec.process.env = vec!["STACYVM_CLONE_PROBE=1".into()];
    spec.mounts.push(stacyvm_oci::BindMount::new(&exe, "/probe/test-bin", true));
    for d in ["/usr/lib", "/usr/lib64"] {
        if Path::new(d).is_dir() {
            spec.mounts.push(stacyvm_oci::BindMount::new(d, d, true));
        }
    }
    spec.pids_limit = Some(256);
    let out = env.run(&id, &spec).await;
    eprintln!("--- {kind} clone probe ---\n{out}");
    let m = kv(&out);
    assert_eq!(m.get("probe_done").map(String::as_str), Some("yes"), "probe did not finish:\n{out}");
    assert_eq!(m["clone_plain"], "ok", "fork-like clone must work");
    assert_eq!(m["thread"], "ok", "threads must work");
    assert_eq!(m["unshare_newuser"], "EPERM");
    assert_eq!(m["clone3"], "ENOSYS", "denied (gVisor: not implemented) with ENOSYS so that libc falls back to clone");
    for flag in ["newuser", "newns", "newpid", "newnet", "newuts", "newipc", "newcgroup"] {
        assert_eq!(m[&format!("clone_{flag}")], "EPERM", "clone(CLONE_{})", flag.to_uppercase());
    }
}

support::runtime_tests!(clone_namespace_flags_are_filtered);
