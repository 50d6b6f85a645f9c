//! The container lifecycle on real runtimes: init's stdout through a pipe, `delete` leaving
//! nothing behind, runtime error messages, `destroy` after a failed `create`, and create/start/
//! delete timings, on every installed runtime; see `support/mod.rs`.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stacyvm_oci::{cgroup, write_bundle, ContainerIo, IoTarget, OciError, RuntimeKind, Status};
use support::{processes_in_cgroup, setup, Guard};

async fn delete_leaves_nothing(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("gone");
    let mut spec = env.spec(&id, "trap '' TERM; echo started=yes; sleep 1000");
    spec.memory_bytes = Some(64 << 20);
    spec.pids_limit = Some(256);
    let cg = spec.cgroups_path.clone().unwrap();
    let guard = env.launch(&id, &spec).await;
    let st = env.rt.state(&id).await.unwrap();
    assert_eq!(st.status, Status::Running);
    let pid = st.pid.expect("running container has a pid");
    let dirs = cgroup::container_cgroup_dirs(&cg).unwrap();
    let existing: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
    eprintln!("{kind}: init pid {pid}, cgroup dirs while running: {existing:?}");
    assert!(!existing.is_empty(), "no cgroup directory found for {cg} in {dirs:?}");
    assert!(!processes_in_cgroup(&cg).is_empty());
    assert!(env.rt.list().await.unwrap().contains(&id));
    // SIGTERM is ignored by init (trap): a forced delete must still remove everything.
    env.rt.kill(&id, libc::SIGTERM, false).await.unwrap();
    let t = Instant::now();
    env.rt.delete(&id, true).await.unwrap();
    eprintln!("{kind}: forced delete took {:?}", t.elapsed());
    drop(guard);

    let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroup directories left: {left:?}");
    let procs = processes_in_cgroup(&cg);
    assert!(procs.is_empty(), "processes left in {cg}: {procs:?}");
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || !is_same_process_alive(pid), "init {pid} still alive");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = env.dir.path().to_string_lossy().into_owned();
    assert!(!mounts.contains(&root), "host mounts reference the test dir:\n{mounts}");
    assert!(!env.rt.list().await.unwrap().contains(&id));
    assert!(!env.rt.root.join(&id).exists(), "runtime state dir left");
    // Idempotent delete, and state of a deleted container says not found.
    env.rt.delete(&id, true).await.unwrap();
    env.rt.delete(&id, false).await.unwrap();
    let err = env.rt.state(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// A pid that still exists after delete must at least not be ours (pid reuse).
fn is_same_process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).map(|c| c.contains("sleep")).unwrap_or(false)
}

async fn errors_carry_the_runtime_message(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("bad");
    let mut spec = env.spec(&id, "true");
    spec.rootfs = env.dir.path().join("no-such-rootfs");
    let bundle = env.bundle(&id);
    write_bundle(&bundle, &spec).unwrap();
    let _guard = Guard { rt: env.rt.clone(), id: id.clone() };
    let err = env.rt.create(&id, &bundle, ContainerIo::default()).await.unwrap_err();
    eprintln!("{kind}: create with a missing rootfs: {err}");
    match &err {
        OciError::Runtime { op, message, .. } => {
            assert_eq!(*op, "create");
            assert!(!message.is_empty());
        }
        other => panic!("unexpected error {other:?}"),
    }
    let cg = spec.cgroups_path.clone().unwrap();
    let removed = env.rt.destroy(&id, Some(&cg)).await.unwrap();
    eprintln!("{kind}: cgroup directories left by the failed create and removed by destroy: {}", removed.len());
    let left: Vec<PathBuf> = cgroup::container_cgroup_dirs(&cg).unwrap().into_iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left after destroy: {left:?}");
    let err = env.rt.state("never-created").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    env.rt.delete("never-created", false).await.unwrap();
    assert!(matches!(env.rt.kill("never-created", 9, true).await, Err(e) if e.is_not_found()));
    let info = env.rt.detect().await.unwrap();
    eprintln!("{kind}: {info:?}");
    assert!(!info.version.is_empty());
}

/// create + start + delete --force of a container whose init sleeps; prints medians.
async fn timing_create_start_delete(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let n = if kind == RuntimeKind::Runsc { 5 } else { 20 };
    let (mut create, mut start, mut delete, mut total) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let id = env.id(&format!("time{i}"));
        let mut spec = env.spec(&id, "exec sleep 1000");
        spec.memory_bytes = Some(64 << 20);
        spec.pids_limit = Some(256);
        let bundle = env.bundle(&id);
        write_bundle(&bundle, &spec).unwrap();
        let _guard = Guard { rt: env.rt.clone(), id: id.clone() };
        let t0 = Instant::now();
        env.rt.create(&id, &bundle, ContainerIo::default()).await.unwrap();
        let t1 = Instant::now();
        env.rt.start(&id).await.unwrap();
        let t2 = Instant::now();
        env.rt.delete(&id, true).await.unwrap();
        let t3 = Instant::now();
        create.push(t1 - t0);
        start.push(t2 - t1);
        delete.push(t3 - t2);
        total.push(t3 - t0);
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    eprintln!(
        "TIMING {kind} (n={n}, median ms): create {:.1}, start {:.1}, delete --force {:.1}, total {:.1}",
        med(&mut create),
        med(&mut start),
        med(&mut delete),
        med(&mut total)
    );
    // The same with destroy() (SIGKILL to all, poll, delete, cgroup check) instead of delete.
    let (mut destroy, mut total) = (vec![], vec![]);
    for i in 0..n {
        let id = env.id(&format!("destroy{i}"));
        let mut spec = env.spec(&id, "exec sleep 1000");
        spec.memory_bytes = Some(64 << 20);
        spec.pids_limit = Some(256);
        let cg = spec.cgroups_path.clone().unwrap();
        let bundle = env.bundle(&id);
        write_bundle(&bundle, &spec).unwrap();
        let _guard = Guard { rt: env.rt.clone(), id: id.clone() };
        let t0 = Instant::now();
        env.rt.create(&id, &bundle, ContainerIo::default()).await.unwrap();
        env.rt.start(&id).await.unwrap();
        let t1 = Instant::now();
        let removed = env.rt.destroy(&id, Some(&cg)).await.unwrap();
        let t2 = Instant::now();
        assert!(removed.is_empty(), "the runtime left cgroups behind: {removed:?}");
        destroy.push(t2 - t1);
        total.push(t2 - t0);
    }
    eprintln!(
        "TIMING {kind} (n={n}, median ms): destroy {:.1}, create+start+destroy {:.1}",
        med(&mut destroy),
        med(&mut total)
    );
    assert!(env.rt.list().await.unwrap().is_empty());
}

/// The container's stdout can be a pipe the caller drains: `create` returns at once (it does not
/// wait for the pipe to close) and the output arrives in order, ending with EOF when the container
/// is gone.
async fn stdout_through_a_pipe(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("pipe");
    let spec = env.spec(&id, "for i in 1 2 3; do echo line$i; done; sleep 1; echo last");
    let bundle = env.bundle(&id);
    write_bundle(&bundle, &spec).unwrap();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these descriptors and nothing else owns them.
    let (read_end, write_end) = unsafe {
        use std::os::fd::FromRawFd;
        (std::fs::File::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    };
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        let mut r = read_end;
        let _ = r.read_to_string(&mut s);
        s
    });
    let guard = Guard { rt: env.rt.clone(), id: id.clone() };
    let t = Instant::now();
    let io = ContainerIo { stdout: IoTarget::Fd(write_end), stderr: IoTarget::Null };
    env.rt.create(&id, &bundle, io).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "create blocked on the pipe");
    env.rt.start(&id).await.unwrap();
    env.rt.wait_stopped(&id, Duration::from_secs(30)).await.unwrap();
    env.rt.delete(&id, false).await.unwrap();
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "the pipe never reached EOF: something still holds its write end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = reader.join().unwrap();
    assert_eq!(out, "line1\nline2\nline3\nlast\n");
}

support::runtime_tests!(
    stdout_through_a_pipe,
    delete_leaves_nothing,
    errors_carry_the_runtime_message,
    timing_create_start_delete
);
