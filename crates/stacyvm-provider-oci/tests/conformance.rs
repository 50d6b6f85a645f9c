//! The `oci` provider passes the conformance suite on every installed runtime (crun, runc,
//! runsc), with a busybox image built here from Debian's `busybox-static`, pushed to a local
//! `docker-registry` and pulled at first spawn through the image store, and its sandboxes are
//! really isolated (checked from inside).
//!
//! Needs root, the runtime, `/bin/busybox` (static) and the static agent
//! (`STACYVM_AGENT_BIN`, else built with `scripts/build-agent.sh`). Missing pieces skip the test
//! with a message, or fail it when `STACYVM_REQUIRE_RUNTIMES=1` (CI).

use std::path::Path;
use std::sync::Arc;

use stacyvm_image::{ImageStore, RegistrySettings};
use stacyvm_oci::RuntimeKind;
use stacyvm_provider::conformance;
use stacyvm_provider::{Provider, SandboxSpec};
use stacyvm_provider_oci::{OciProvider, OciSettings, PullPolicy};
use stacyvm_testkit::{skip, TestRegistry};

struct Setup {
    _dir: tempfile::TempDir,
    _registry: TestRegistry,
    /// `127.0.0.1:<port>/busybox:latest`, pulled at first spawn.
    image: String,
    images: Arc<ImageStore>,
    provider: Arc<OciProvider>,
}

fn setup(kind: RuntimeKind) -> Option<Setup> {
    setup_with(kind, false)
}

fn setup_with(kind: RuntimeKind, readonly_rootfs: bool) -> Option<Setup> {
    if stacyvm_oci::which(kind.binary_name()).is_none() {
        skip(&format!("{} is not installed (apt-get install {})", kind.binary_name(), kind.debian_package()))?;
    }
    let agent_binary = stacyvm_testkit::oci_prerequisites(kind.binary_name())?;
    if kind == RuntimeKind::Crun {
        let _ = stacyvm_oci::ensure_hugetlb_v1_mount();
    }
    let registry = TestRegistry::start()?;
    let dir = tempfile::tempdir().unwrap();
    stacyvm_testkit::busybox_rootfs(&dir.path().join("rootfs"));
    stacyvm_testkit::push_rootfs(&registry, &dir.path().join("rootfs"), "busybox:latest", Default::default());
    let registries = RegistrySettings { insecure: vec![registry.host()], ..Default::default() };
    let images = Arc::new(ImageStore::open(&dir.path().join("images"), registries).unwrap());
    let settings = OciSettings {
        runtime: kind,
        runtime_path: None,
        data_dir: dir.path().join("data"),
        images: images.clone(),
        pull_policy: PullPolicy::IfMissing,
        agent_binary,
        pids_limit: 256,
        network: Default::default(),
        readonly_rootfs,
    };
    Some(Setup {
        provider: Arc::new(OciProvider::new(settings).unwrap()),
        image: format!("{}/busybox:latest", registry.host()),
        images,
        _registry: registry,
        _dir: dir,
    })
}

async fn conformance_on(kind: RuntimeKind) {
    let Some(s) = setup(kind) else { return };
    s.provider.health().await.expect("healthy");
    conformance::run_with_image(s.provider.clone(), &s.image).await;
    assert!(s.provider.list_owned().await.unwrap().is_empty(), "every sandbox was destroyed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_crun() {
    conformance_on(RuntimeKind::Crun).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_runc() {
    conformance_on(RuntimeKind::Runc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_are_isolated_as_seen_from_inside() {
    let Some(s) = setup(RuntimeKind::Crun) else { return };
    let p = s.provider.as_ref();
    let spec = SandboxSpec { id: "sb-1501a7ed".into(), image: s.image.clone(), memory_mb: 64, vcpus: 1 };
    let h = p.create(&spec).await.unwrap();
    let script = "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ls /proc | grep -cE '^[0-9]+$'; \
                  hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
                  ip link 2>/dev/null | grep -c '^[0-9]'; mount -t tmpfs x /tmp 2>&1 >/dev/null && echo MOUNTED || echo mount-denied";
    let out = conformance::capture(p, &h, conformance::shell(script)).await.unwrap();
    let text = out.text(stacyvm_types::exec::StreamName::Stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1000", "non-root user:\n{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "no capabilities:\n{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "no_new_privs:\n{text}");
    assert!(text.contains("Seccomp:\t2"), "seccomp filter:\n{text}");
    let procs: usize = lines[4].trim().parse().unwrap_or(usize::MAX);
    assert!(procs < 10, "only the sandbox's own processes are visible ({procs}):\n{text}");
    assert_eq!(lines[5], spec.id, "own hostname:\n{text}");
    assert_eq!(lines[6], (64u64 << 20).to_string(), "memory limit in effect:\n{text}");
    assert!(text.contains("mount-denied"), "mount is refused:\n{text}");
    p.destroy(&h).await.unwrap();
    assert!(!s._dir.path().join("data/sandboxes").join(&spec.id).exists(), "no files left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_runsc() {
    conformance_on(RuntimeKind::Runsc).await;
}

/// Everything on the host that could betray a leaked sandbox (cgroups: below this instance's
/// parent, `/stacyvm/<instance>`).
fn leftovers(data_dir: &Path, cgroup_parent: &str) -> Vec<String> {
    let mut found = Vec::new();
    let data = data_dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    found.extend(mounts.lines().filter(|l| l.contains(&data)).map(|l| format!("mount: {l}")));
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            if let Ok(groups) = std::fs::read_dir(h.path().join(cgroup_parent.trim_start_matches('/'))) {
                let children = groups.flatten().filter(|g| g.file_type().is_ok_and(|t| t.is_dir()));
                found.extend(children.map(|g| format!("cgroup: {}", g.path().display())));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(data_dir.join("sandboxes")) {
        found.extend(entries.flatten().map(|e| format!("dir: {}", e.path().display())));
    }
    for proc_entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(proc_entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("/.stacyvm/run/agent.sock") {
            found.push(format!("process: {}", proc_entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_of_500_cycles_leaves_nothing_behind() {
    let Some(s) = setup(RuntimeKind::Crun) else { return };
    let p = s.provider.as_ref();
    let data_dir = s._dir.path().join("data");
    let before = leftovers(&data_dir, p.cgroup_parent());
    // The detector sees a live sandbox's mount, cgroups, directory and agent process.
    let probe = SandboxSpec { id: "sb-9b0be000".into(), image: s.image.clone(), memory_mb: 64, vcpus: 1 };
    let h = p.create(&probe).await.unwrap();
    let live = leftovers(&data_dir, p.cgroup_parent());
    for kind in ["mount: ", "cgroup: ", "dir: ", "process: "] {
        assert!(live.iter().any(|l| l.starts_with(kind)), "detector misses {kind}: {live:?}");
    }
    p.destroy(&h).await.unwrap();
    let started = std::time::Instant::now();
    for i in 0..500u32 {
        let spec = SandboxSpec { id: format!("sb-c{i:07x}"), image: s.image.clone(), memory_mb: 64, vcpus: 1 };
        let h = p.create(&spec).await.unwrap_or_else(|e| panic!("cycle {i}: create: {e}"));
        let out = conformance::capture(p, &h, conformance::argv(&["true"])).await.unwrap();
        assert_eq!(out.reason, stacyvm_provider::ExitReason::Exited(0), "cycle {i}");
        p.destroy(&h).await.unwrap_or_else(|e| panic!("cycle {i}: destroy: {e}"));
    }
    eprintln!("500 spawn/exec/destroy cycles in {:?}", started.elapsed());
    assert_eq!(leftovers(&data_dir, p.cgroup_parent()), before, "mounts, cgroups, directories or agents leaked");
    assert!(s.images.lease_holders().unwrap().is_empty(), "every image lease was released");
    assert!(p.list_owned().await.unwrap().is_empty(), "the runtime lists no container");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_exec_in_a_container_is_a_terminal_and_unprivileged() {
    use stacyvm_provider::conformance::{on_pty, shell, Interactive};
    use stacyvm_provider::{ExecInput, ExitReason, PtySize};
    let Some(s) = setup(RuntimeKind::Crun) else { return };
    let provider: Arc<dyn Provider> = s.provider.clone();
    let spec = SandboxSpec { id: "sb-0000a7e1".into(), image: s.image.clone(), memory_mb: 64, vcpus: 1 };
    let h = provider.create(&spec).await.unwrap();
    let script = "tty; stty size; id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                  echo READY; read line; echo \"got:$line\"; stty size; exit 5";
    let mut run = Interactive::start(provider.clone(), h.clone(), on_pty(shell(script), 20, 60));
    run.expect("READY").await;
    let lines: Vec<&str> = run.seen.lines().map(str::trim_end).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "a terminal inside the container: {:?}", run.seen);
    assert_eq!(&lines[1..3], ["20 60", "1000"], "{:?}", run.seen);
    assert!(run.seen.contains("CapEff:\t0000000000000000"), "{:?}", run.seen);
    assert!(run.seen.contains("NoNewPrivs:\t1"), "{:?}", run.seen);
    assert!(run.seen.contains("Seccomp:\t2"), "{:?}", run.seen);
    run.send(ExecInput::Resize(PtySize { rows: 40, cols: 120 })).await;
    run.type_text("from the host\n").await;
    run.expect("got:from the host").await;
    run.expect("40 120").await;
    assert_eq!(run.finish().await.unwrap().reason, ExitReason::Exited(5));
    provider.destroy(&h).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_crun_and_a_readonly_rootfs() {
    let Some(s) = setup_with(RuntimeKind::Crun, true) else { return };
    assert_eq!(s.provider.describe()["readonly_rootfs"], "true");
    conformance::run_with_image(s.provider.clone(), &s.image).await;
    assert!(s.provider.list_owned().await.unwrap().is_empty(), "every sandbox was destroyed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readonly_rootfs_refuses_writes_outside_tmp_and_workspace() {
    use bytes::Bytes;
    use stacyvm_provider::{ExitReason, ProviderError, SandboxPath};
    use stacyvm_types::exec::StreamName;
    let Some(s) = setup_with(RuntimeKind::Crun, true) else { return };
    let p = s.provider.as_ref();
    let spec = SandboxSpec { id: "sb-00000e40".into(), image: s.image.clone(), memory_mb: 64, vcpus: 1 };
    let h = p.create(&spec).await.unwrap();
    let script = "for f in /etc/new /bin/new /new /tmp/new /workspace/new; do \
                    if echo x 2>/tmp/err > $f; then echo \"$f ok\"; else echo \"$f $(cat /tmp/err)\"; fi; done";
    let out = conformance::capture(p, &h, conformance::shell(script)).await.unwrap();
    let text = out.text(StreamName::Stdout);
    for denied in ["/etc/new", "/bin/new", "/new"] {
        let line = text.lines().find(|l| l.starts_with(denied)).unwrap_or_default();
        assert!(line.contains("Read-only file system"), "{denied} must fail with EROFS:\n{text}");
    }
    assert!(text.contains("/tmp/new ok") && text.contains("/workspace/new ok"), "{text}");

    // The file API writes into the same writable /workspace ...
    let file = SandboxPath::parse("/workspace/api/hello.txt").unwrap();
    p.write_file(&h, &file, Bytes::from_static(b"from the api"), 0o644).await.unwrap();
    let out = conformance::capture(
        p,
        &h,
        conformance::shell("cat /workspace/api/hello.txt; stat -c %u /workspace/api/hello.txt"),
    )
    .await
    .unwrap();
    assert_eq!(out.text(StreamName::Stdout), "from the api1000\n");
    // ... and is refused on the read-only root.
    let etc = SandboxPath::parse("/etc/api.txt").unwrap();
    match p.write_file(&h, &etc, Bytes::from_static(b"x"), 0o644).await {
        Err(ProviderError::Failed(m) | ProviderError::InvalidInput(m)) => {
            assert!(m.to_lowercase().contains("read-only"), "{m}")
        }
        other => panic!("writing /etc must fail, got {other:?}"),
    }
    // The sandbox user cannot remount it writable.
    let out = conformance::capture(p, &h, conformance::shell("mount -o remount,rw / 2>&1; echo $?")).await.unwrap();
    assert_ne!(out.text(StreamName::Stdout).lines().last(), Some("0"), "{}", out.text(StreamName::Stdout));
    assert_eq!(out.reason, ExitReason::Exited(0));
    p.destroy(&h).await.unwrap();
    assert!(!s._dir.path().join("data/sandboxes").join(&spec.id).exists(), "workspace removed with the sandbox");
    assert!(s.images.lease_holders().unwrap().is_empty(), "every image lease was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_images_fail_the_spawn_cleanly_and_used_images_cannot_be_removed() {
    let Some(s) = setup(RuntimeKind::Crun) else { return };
    let p = s.provider.as_ref();
    let host = s.image.split('/').next().unwrap().to_string();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for (n, (image, expected)) in [
        (format!("{host}/does-not-exist:1"), "not found"),
        (format!("{closed}/busybox:1"), "unreachable"),
        ("UPPER/case".to_string(), "invalid image reference"),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = SandboxSpec { id: format!("sb-ba{n:06x}"), image, memory_mb: 64, vcpus: 1 };
        let err = p.create(&spec).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{}: {err}", spec.image);
    }
    assert!(p.list_owned().await.unwrap().is_empty(), "a failed spawn leaves nothing");
    assert!(s.images.lease_holders().unwrap().is_empty(), "a failed spawn holds no image");

    let spec = SandboxSpec { id: "sb-5eed0001".into(), image: s.image.clone(), memory_mb: 64, vcpus: 1 };
    let h = p.create(&spec).await.unwrap();
    let err = s.images.remove(&s.image).await.unwrap_err();
    assert!(matches!(err, stacyvm_image::ImageError::InUse(_)), "{err}");
    p.destroy(&h).await.unwrap();
    assert!(s.images.lease_holders().unwrap().is_empty());
    let (_, report) = s.images.remove(&s.image).await.unwrap();
    assert_eq!(report.layers_removed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_environment_is_the_base_of_every_exec() {
    let Some(s) = setup(RuntimeKind::Crun) else { return };
    let p = s.provider.as_ref();
    // The same rootfs under another tag whose config sets an environment.
    let registry_host = s.image.split('/').next().unwrap().to_string();
    let config = stacyvm_testkit::ImageConfig {
        env: vec!["PATH=/opt/tools:/bin".into(), "GREETING=from the image".into(), "EMPTY=".into()],
        ..Default::default()
    };
    stacyvm_testkit::push_rootfs(&s._registry, &s._dir.path().join("rootfs"), "busybox:env", config);
    let image = format!("{registry_host}/busybox:env");
    let spec = SandboxSpec { id: "sb-e0e0e0e1".into(), image, memory_mb: 64, vcpus: 1 };
    let h = p.create(&spec).await.unwrap();
    let mut script = conformance::shell("echo \"$PATH|$GREETING|${EMPTY-unset}|$OWN\"");
    let out = conformance::capture(p, &h, script.clone()).await.unwrap();
    assert_eq!(out.text(stacyvm_types::exec::StreamName::Stdout), "/opt/tools:/bin|from the image||\n");
    // The request's own variables win over the image's.
    script.env.insert("GREETING".into(), "from the request".into());
    script.env.insert("OWN".into(), "mine".into());
    let out = conformance::capture(p, &h, script).await.unwrap();
    assert_eq!(out.text(stacyvm_types::exec::StreamName::Stdout), "/opt/tools:/bin|from the request||mine\n");
    p.destroy(&h).await.unwrap();
}
