//! Instance-scoped cgroups: at start the provider removes the stale cgroups of its own instance
//! (killing what runs in them), keeps those of live sandboxes, and never touches another
//! instance's. Needs root and a writable cgroupfs; skipped otherwise unless
//! `STACYVM_REQUIRE_RUNTIMES=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stacyvm_oci::RuntimeKind;
use stacyvm_provider_oci::{instance, OciProvider, OciSettings};

fn dirs_for(parent: &str, name: &str) -> Vec<PathBuf> {
    let rel = parent.trim_start_matches('/');
    stacyvm_oci::cgroup::hierarchies().unwrap().iter().map(|h| h.mount_point.join(rel).join(name)).collect()
}

/// Removes test-made cgroup directories bottom-up (host mount namespace, empty directories only).
fn rmdir_all(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
        if let Some(parent) = d.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn settings(data_dir: &Path) -> OciSettings {
    OciSettings {
        runtime: RuntimeKind::Crun,
        runtime_path: Some(PathBuf::from("/bin/true")),
        data_dir: data_dir.to_path_buf(),
        images: std::sync::Arc::new(
            stacyvm_image::ImageStore::open(&data_dir.join("images"), Default::default()).unwrap(),
        ),
        pull_policy: stacyvm_provider_oci::PullPolicy::Never,
        agent_binary: data_dir.join("agent"),
        pids_limit: 64,
        network: Default::default(),
        readonly_rootfs: false,
    }
}

#[test]
fn startup_sweeps_this_instances_stale_cgroups_only() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !stacyvm_oci::cgroup_sweep::in_host_mount_namespace() {
        assert!(std::env::var("STACYVM_REQUIRE_RUNTIMES").as_deref() != Ok("1"), "needs root in the host namespace");
        eprintln!("SKIPPED: needs root in the host mount namespace");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("sandboxes/sb-11fe0001")).unwrap();
    let ours = instance::cgroup_parent(&instance::instance_id(&data).unwrap());
    let theirs = instance::cgroup_parent(&format!("{:012x}", 0xfeed_0000_0000u64 + u64::from(std::process::id())));
    assert_ne!(ours, theirs);

    let stale = dirs_for(&ours, "sb-57a1e001");
    let live = dirs_for(&ours, "sb-11fe0001");
    let other = dirs_for(&theirs, "sb-57a1e001");
    for d in stale.iter().chain(&live).chain(&other) {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
    }
    // A process left in the stale cgroup (as a crashed sandbox would leave its init).
    let mut orphan = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
    let hierarchies = stacyvm_oci::cgroup::hierarchies().unwrap();
    let pids = hierarchies
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "pids") || h.version == 2)
        .expect("a pids or v2 hierarchy");
    let stale_pids = pids.mount_point.join(ours.trim_start_matches('/')).join("sb-57a1e001");
    std::fs::write(stale_pids.join("cgroup.procs"), orphan.id().to_string()).unwrap();
    // The same in the other instance's cgroup: it must survive.
    let mut neighbour = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
    let other_pids = pids.mount_point.join(theirs.trim_start_matches('/')).join("sb-57a1e001");
    std::fs::write(other_pids.join("cgroup.procs"), neighbour.id().to_string()).unwrap();

    let provider = OciProvider::new(settings(&data)).unwrap();
    assert_eq!(provider.cgroup_parent(), ours);

    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = orphan.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let neighbour_alive = neighbour.try_wait().unwrap().is_none();
    let _ = neighbour.kill();
    let _ = neighbour.wait();
    let _ = orphan.kill();
    let _ = orphan.wait();
    let stale_left: Vec<_> = stale.iter().filter(|d| d.exists()).collect();
    let live_kept = live.iter().all(|d| d.exists());
    let other_kept = other.iter().all(|d| d.exists());
    // Clean up before asserting, so a failure leaves nothing behind.
    std::thread::sleep(Duration::from_millis(100));
    rmdir_all(&other);
    rmdir_all(&live);
    rmdir_all(&stale);
    drop(provider);

    assert!(status.is_some_and(|s| std::os::unix::process::ExitStatusExt::signal(&s) == Some(9)), "{status:?}");
    assert!(stale_left.is_empty(), "stale cgroups left: {stale_left:?}");
    assert!(live_kept, "a live sandbox's cgroups were removed");
    assert!(other_kept, "another instance's cgroups were touched");
    assert!(neighbour_alive, "another instance's process was killed");
}

#[test]
fn abandoned_empty_parents_of_other_instances_are_removed_busy_ones_kept() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !stacyvm_oci::cgroup_sweep::in_host_mount_namespace() {
        assert!(std::env::var("STACYVM_REQUIRE_RUNTIMES").as_deref() != Ok("1"), "needs root in the host namespace");
        eprintln!("SKIPPED: needs root in the host mount namespace");
        return;
    }
    let tag = u64::from(std::process::id());
    let own = instance::cgroup_parent(&format!("{:012x}", 0xa0a0_0000_0000u64 + tag));
    let empty = instance::cgroup_parent(&format!("{:012x}", 0xb0b0_0000_0000u64 + tag));
    let busy = instance::cgroup_parent(&format!("{:012x}", 0xc0c0_0000_0000u64 + tag));
    let (own_dirs, empty_dirs) = (dirs_for(&own, ""), dirs_for(&empty, ""));
    let (busy_parent, busy_child) = (dirs_for(&busy, ""), dirs_for(&busy, "sb-b0570001"));
    for d in own_dirs.iter().chain(&empty_dirs).chain(&busy_child) {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
    }
    // Too recent to count as abandoned: nothing of ours is removed.
    instance::remove_abandoned_parents(&own, Duration::from_secs(3600));
    let recent_kept = empty_dirs.iter().all(|d| d.exists());
    instance::remove_abandoned_parents(&own, Duration::ZERO);
    let empty_left: Vec<_> = empty_dirs.iter().filter(|d| d.exists()).collect();
    let busy_kept = busy_child.iter().all(|d| d.exists());
    let own_kept = own_dirs.iter().all(|d| d.exists());
    rmdir_all(&busy_child);
    rmdir_all(&busy_parent);
    rmdir_all(&own_dirs);
    rmdir_all(&empty_dirs);
    assert!(recent_kept, "a recently used empty parent was removed");
    assert!(empty_left.is_empty(), "abandoned empty parents left: {empty_left:?}");
    assert!(busy_kept, "a parent with sandbox cgroups was touched");
    assert!(own_kept, "the caller's own parent was removed");
}
