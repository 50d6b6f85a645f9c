//! Real containers from a busybox rootfs with our generated `config.json`, on every runtime that
//! is installed: crun (the default), runc and runsc.
//!
//! Skipped with a printed reason when not root or when the runtime or a static busybox is
//! missing — unless `STACYVM_REQUIRE_RUNTIMES=1`, in which case a missing piece fails the test.
//! Tests run one at a time (a global lock), each bounded by a timeout, and every container is
//! deleted by a `Drop` guard even when an assertion fails.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stacyvm_oci::cgroup;
use stacyvm_oci::spec::Seccomp;
use stacyvm_oci::{
    write_bundle, BundleSpec, ContainerIo, IoTarget, OciError, OciRuntime, ProcessSpec, RuntimeKind, Status,
};

/// One test at a time: timings stay meaningful and limits tests do not disturb each other.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

fn required() -> bool {
    std::env::var("STACYVM_REQUIRE_RUNTIMES").map(|v| v == "1").unwrap_or(false)
}

/// Skips (prints and returns `None`) or, with `STACYVM_REQUIRE_RUNTIMES=1`, fails.
fn skip<T>(why: String) -> Option<T> {
    if required() {
        panic!("STACYVM_REQUIRE_RUNTIMES=1 but {why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// Whether an ELF file has no program interpreter (i.e. is statically linked).
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else { return false };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false; // only 64-bit little-endian handled (x86_64)
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
        // PT_INTERP
    })
}

struct Env {
    rt: OciRuntime,
    dir: tempfile::TempDir,
    rootfs: PathBuf,
    kind: RuntimeKind,
}

fn setup(kind: RuntimeKind) -> Option<Env> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip(format!("{kind} tests need root"));
    }
    let Some(busybox) = stacyvm_oci::which("busybox") else {
        return skip("busybox not found (apt-get install busybox-static)".into());
    };
    if !is_static_elf(&busybox) {
        return skip(format!("{} is not statically linked (apt-get install busybox-static)", busybox.display()));
    }
    let mut dir = tempfile::Builder::new().prefix("stacyvm-oci-test-").tempdir().unwrap();
    if std::env::var_os("STACYVM_KEEP_TEST_DIR").is_some() {
        // Debugging: keep bundles, rootfs and logs.
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    let rt = match OciRuntime::new(kind, dir.path().join("state")) {
        Ok(rt) => rt,
        Err(e) => return skip(format!("{e}")),
    };
    if kind == RuntimeKind::Crun {
        match cgroup::ensure_hugetlb_v1_mount() {
            Ok(r) => eprintln!("hugetlb workaround: {r:?}"),
            Err(e) => eprintln!("hugetlb workaround failed: {e}"),
        }
    }
    let rootfs = dir.path().join("rootfs");
    build_rootfs(&busybox, &rootfs);
    Some(Env { rt, dir, rootfs, kind })
}

/// A minimal rootfs: the static busybox, one symlink per applet, mount points, passwd/group.
fn build_rootfs(busybox: &Path, rootfs: &Path) {
    for d in
        ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "etc", "workspace", "mnt", "root"]
    {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    // As in real images. (runc gives a tmpfs the mode of the directory it covers, ignoring
    // `mode=`; crun and runsc honour `mode=1777`.)
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let out = std::process::Command::new(busybox).arg("--list-full").output().unwrap();
    assert!(out.status.success(), "busybox --list-full failed");
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = rootfs.join(applet);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let _ = symlink("/bin/busybox", &link);
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/workspace:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

impl Drop for Env {
    fn drop(&mut self) {
        // The containers are gone (their guards ran first); remove the empty test parent cgroup
        // (`/stacyvm-test`) if nothing else uses it. Errors (busy, concurrent use) are ignored.
        let _ = cgroup::remove_leftover_cgroup_dirs("/stacyvm-test");
    }
}

/// Deletes the container (force) when dropped, whatever happened.
struct Guard {
    rt: OciRuntime,
    id: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.rt.delete_blocking(&self.id) {
            eprintln!("cleanup of {} failed: {e}", self.id);
        }
    }
}

impl Env {
    fn id(&self, name: &str) -> String {
        format!("t-{}-{name}-{}", self.kind, std::process::id())
    }

    fn spec(&self, id: &str, script: &str) -> BundleSpec {
        let mut p = ProcessSpec::new(["/bin/sh", "-c", script]);
        p.uid = 1000;
        p.gid = 1000;
        p.cwd = "/".into();
        let mut b = BundleSpec::new(&self.rootfs, p);
        b.hostname = format!("sb-{}", self.kind);
        b.runtime = self.kind;
        b.cgroups_path = Some(format!("/stacyvm-test/{id}"));
        b
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.dir.path().join("bundles").join(id)
    }

    /// Writes the bundle, creates and starts the container; output (stdout+stderr) goes to
    /// `<bundle>/out.log`.
    async fn launch(&self, id: &str, spec: &BundleSpec) -> Guard {
        let bundle = self.bundle(id);
        write_bundle(&bundle, spec).unwrap();
        let guard = Guard { rt: self.rt.clone(), id: id.to_string() };
        let io = ContainerIo {
            stdout: IoTarget::File(bundle.join("out.log")),
            stderr: IoTarget::File(bundle.join("out.log")),
        };
        self.rt.create(id, &bundle, io).await.unwrap_or_else(|e| panic!("create {id}: {e}"));
        self.rt.start(id).await.unwrap_or_else(|e| panic!("start {id}: {e}"));
        guard
    }

    /// The runtime's log for `id` (diagnostics).
    fn runtime_log(&self, id: &str) -> String {
        let text = std::fs::read_to_string(self.bundle(id).join("runtime.log")).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text[text.floor_char_boundary_compat(start)..].to_string()
    }

    fn output(&self, id: &str) -> String {
        std::fs::read_to_string(self.bundle(id).join("out.log")).unwrap_or_default()
    }

    /// Runs `spec` to completion and returns its output.
    async fn run(&self, id: &str, spec: &BundleSpec) -> String {
        let _guard = self.launch(id, spec).await;
        let st = self.rt.wait_stopped(id, Duration::from_secs(30)).await.unwrap_or_else(|e| {
            panic!("{id} did not stop: {e}; output so far:\n{}", self.output(id));
        });
        assert!(st.is_some(), "{id} vanished before stopping");
        self.rt.delete(id, false).await.unwrap();
        self.output(id)
    }
}

/// `key=value` pairs from the output, one per line (later ones win); `Key:\tvalue` lines from
/// /proc/self/status too.
fn kv(out: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once('=') {
            m.insert(k.trim().to_string(), v.trim().to_string());
        } else if let Some((k, v)) = line.split_once(':') {
            m.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    m
}

/// The container's directory in the hierarchy holding `controller` (v1) or the v2 directory.
fn controller_dir(cgroups_path: &str, controller: &str) -> Option<PathBuf> {
    let hs = cgroup::hierarchies().ok()?;
    let h = hs
        .iter()
        .find(|h| h.version == 1 && h.controllers.iter().any(|c| c == controller))
        .or_else(|| hs.iter().find(|h| h.version == 2 && h.mount_point == Path::new(cgroup::CGROUP_ROOT)))?;
    let base = if cgroups_path.starts_with('/') {
        h.mount_point.clone()
    } else {
        h.mount_point.join(h.own_path.trim_start_matches('/'))
    };
    Some(base.join(cgroups_path.trim_start_matches('/')))
}

/// Host processes whose cgroup membership mentions `needle`, described as
/// `pid state cmdline`.
fn processes_in_cgroup(needle: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) {
            if cg.lines().any(|l| l.ends_with(needle) || l.contains(&format!("{needle}/"))) {
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next().unwrap_or('?')).unwrap_or('?');
                let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default().replace('\0', " ");
                v.push(format!("{pid} {state} {cmd}"));
            }
        }
    }
    v
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    let _lock = LOCK.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

// ---------------------------------------------------------------------------------------------

const ISOLATION_SCRIPT: &str = r#"
echo uid=$(id -u)
echo gid=$(id -g)
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
echo host=$(hostname)
echo procs=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')
echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max 2>/dev/null || echo none)
echo pidsmax=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null || echo none)
(echo x > /probe) 2>/dev/null && echo rootfs=rw || echo rootfs=ro
ls -ld /tmp /workspace; grep -E ' /(tmp|workspace|run) ' /proc/self/mountinfo
(echo x > /tmp/probe) && echo tmp=rw || echo tmp=ro
(echo x > /workspace/probe) 2>/dev/null && echo workspace=rw || echo workspace=ro
echo keys_masked=$(grep -c ' /proc/keys ' /proc/self/mountinfo)
echo firmware_entries=$(ls /sys/firmware | wc -l)
(echo 1 > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=rw || echo sysrq=ro
mount -t tmpfs none /mnt 2>/dev/null && echo mount=ok || echo mount=denied
unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied
echo net=$(ls /sys/class/net | tr '\n' ' ')
echo done=yes
"#;

async fn isolation_defaults(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("iso");
    let mut spec = env.spec(&id, ISOLATION_SCRIPT);
    spec.readonly_rootfs = true;
    spec.memory_bytes = Some(64 << 20);
    spec.pids_limit = Some(256);
    spec.vcpus = Some(0.5);
    let out = env.run(&id, &spec).await;
    eprintln!("--- {kind} isolation output ---\n{out}");
    let m = kv(&out);
    assert_eq!(m.get("done").map(String::as_str), Some("yes"), "script did not finish:\n{out}");
    assert_eq!(m["uid"], "1000");
    assert_eq!(m["gid"], "1000");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        // gVisor's status file has no CapAmb line (it has no ambient capabilities).
        if kind == RuntimeKind::Runsc && !m.contains_key(set) && set == "CapAmb" {
            continue;
        }
        assert_eq!(m[set], "0000000000000000", "{set}");
    }
    if kind != RuntimeKind::Runsc {
        // gVisor's /proc/<pid>/status has no NoNewPrivs line; the flag is still applied.
        assert_eq!(m["NoNewPrivs"], "1");
    }
    assert_eq!(m["Seccomp"], "2", "seccomp filter mode");
    assert_eq!(m["host"], format!("sb-{kind}"));
    let pids: Vec<u32> = m["procs"].split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(pids.contains(&1), "init is pid 1 in its own pid namespace: {pids:?}");
    assert!(pids.len() <= 8, "only the container's processes are visible: {pids:?}");
    assert!(pids.iter().all(|p| *p < 100), "host pids visible: {pids:?}");
    if kind != RuntimeKind::Runsc {
        // gVisor's emulated cgroupfs does not report the host limits the same way.
        assert_eq!(m["mem"], (64u64 << 20).to_string(), "memory limit visible inside");
        assert_eq!(m["pidsmax"], "256");
    }
    assert_eq!(m["rootfs"], "ro");
    assert_eq!(m["tmp"], "rw");
    assert_eq!(m["workspace"], "rw");
    if kind != RuntimeKind::Runsc {
        // gVisor's own /proc has no /proc/keys to mask.
        assert_eq!(m["keys_masked"], "1", "/proc/keys masked");
    }
    assert_eq!(m["firmware_entries"], "0", "/sys/firmware masked");
    assert_eq!(m["sysrq"], "ro");
    assert_eq!(m["mount"], "denied");
    assert_eq!(m["unshare"], "denied");
    assert_eq!(m["net"], "lo", "new network namespace with loopback only");
}

const ROOT_SCRIPT: &str = r#"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
(echo x > /rootprobe) 2>/dev/null && echo rootfs=rw || echo rootfs=ro
echo x > /tmp/f && chown 1000:1000 /tmp/f && echo chown=ok || echo chown=denied
mount -t tmpfs none /mnt 2>/dev/null && echo mount=ok || echo mount=denied
unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied
mknod /tmp/sda b 8 0 2>/dev/null && echo mknod=ok || echo mknod=denied
echo done=yes
"#;

async fn root_init_keeps_only_agent_caps(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("root");
    let mut spec = env.spec(&id, ROOT_SCRIPT);
    spec.process.uid = 0;
    spec.process.gid = 0;
    let out = env.run(&id, &spec).await;
    eprintln!("--- {kind} root output ---\n{out}");
    let m = kv(&out);
    assert_eq!(m.get("done").map(String::as_str), Some("yes"), "script did not finish:\n{out}");
    // CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) KILL(5) SETGID(6) SETUID(7) SETPCAP(8)
    let want = format!("{:016x}", 1u64 | 1 << 1 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8);
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(m[set], want, "{set}");
    }
    assert_eq!(m["CapInh"], "0000000000000000");
    if kind != RuntimeKind::Runsc || m.contains_key("CapAmb") {
        assert_eq!(m["CapAmb"], "0000000000000000");
    }
    assert_eq!(m["Seccomp"], "2");
    assert_eq!(m["rootfs"], "rw");
    assert_eq!(m["chown"], "ok");
    assert_eq!(m["mount"], "denied");
    assert_eq!(m["unshare"], "denied");
    if kind != RuntimeKind::Runsc {
        assert_eq!(m["NoNewPrivs"], "1");
        assert_eq!(m["mknod"], "denied", "no CAP_MKNOD, and the devices cgroup denies block devices");
    } else {
        // gVisor lets root create device nodes in its own, emulated file system; they do not
        // reach host devices.
        eprintln!("runsc: mknod inside the sandbox: {}", m["mknod"]);
    }
}

/// The same `unshare -U` succeeds without our seccomp profile: it is the profile that blocks it.
async fn seccomp_is_what_blocks_unshare(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let script = "unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied";
    let id = env.id("noseccomp");
    let mut spec = env.spec(&id, script);
    spec.seccomp = Some(Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        architectures: vec!["SCMP_ARCH_X86_64".into()],
        syscalls: Vec::new(),
    });
    let without = kv(&env.run(&id, &spec).await);
    let id = env.id("seccomp");
    let with = kv(&env.run(&id, &env.spec(&id, script)).await);
    eprintln!("{kind}: without profile {without:?}, with profile {with:?}");
    assert_eq!(with["unshare"], "denied");
    if without["unshare"] != "ok" {
        // Unprivileged user namespaces may be disabled on this host; then this proves nothing.
        eprintln!("NOTE: unshare -U fails even without seccomp here (user namespaces disabled?)");
    }
}

const PIDS_SCRIPT: &str = r#"
(for i in $(seq 200); do sleep 5 & done) 2>/dev/null
echo loop_rc=$?
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
echo procs=$n
echo done=yes
"#;

async fn pids_limit_holds(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("pids");
    let limit: i64 = if kind == RuntimeKind::Runsc { 128 } else { 32 };
    let mut spec = env.spec(&id, PIDS_SCRIPT);
    spec.pids_limit = Some(limit);
    let cg = spec.cgroups_path.clone().unwrap();
    let guard = env.launch(&id, &spec).await;
    let st = env.rt.wait_stopped(&id, Duration::from_secs(30)).await.unwrap();
    assert!(st.is_some());
    let out = env.output(&id);
    eprintln!("--- {kind} pids output ---\n{out}\n--- runtime log ---\n{}", env.runtime_log(&id));
    let m = kv(&out);
    if kind == RuntimeKind::Runsc && !m.contains_key("done") {
        // With --platform=ptrace every sandbox address space is a host stub process: when the
        // pids limit refuses one, the Sentry panics and the whole sandbox stops. The limit holds
        // (the host never sees more tasks), at the price of the sandbox.
        eprintln!("runsc: the fork bomb stopped the whole sandbox (expected with the ptrace platform)");
        drop(guard);
        let left = processes_in_cgroup(&cg);
        assert!(left.is_empty(), "processes left after delete: {left:?}");
        return;
    }
    assert_eq!(m.get("done").map(String::as_str), Some("yes"), "script did not finish:\n{out}");
    assert_ne!(m["loop_rc"], "0", "the fork loop must hit the limit");
    let procs: i64 = m["procs"].parse().unwrap();
    assert!(procs <= limit, "{procs} processes with pids.max {limit}");
    if kind != RuntimeKind::Runsc {
        if let Some(dir) = controller_dir(&cg, "pids") {
            let events = std::fs::read_to_string(dir.join("pids.events")).unwrap_or_default();
            eprintln!("pids.events: {events:?}");
            let max_hits: u64 = events.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            assert!(max_hits > 0, "pids.events shows no refused fork: {events:?}");
        }
    }
    drop(guard);
    let left = processes_in_cgroup(&cg);
    assert!(left.is_empty(), "processes left after delete: {left:?}");
}

async fn memory_limit_oom_kills(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("oom");
    let mut spec = env.spec(&id, "tail /dev/zero; echo exit=$?");
    spec.memory_bytes = Some(32 << 20);
    let cg = spec.cgroups_path.clone().unwrap();
    let guard = env.launch(&id, &spec).await;
    let st = env.rt.wait_stopped(&id, Duration::from_secs(60)).await.unwrap();
    assert!(st.is_some());
    let out = env.output(&id);
    eprintln!("--- {kind} oom output ---\n{out}\n--- runtime log ---\n{}", env.runtime_log(&id));
    // Read before delete: delete removes the cgroup.
    let kills = cgroup::oom_kill_count(&cg);
    eprintln!("{kind}: oom_kill count {kills:?}");
    if kind == RuntimeKind::Runsc {
        // The host OOM killer picks the Sentry (the sandbox's kernel) as the biggest task in the
        // cgroup: the whole sandbox stops, nothing inside gets to print an exit status.
        match kv(&out).get("exit") {
            Some(code) => assert_eq!(code, "137"),
            None => eprintln!("runsc: OOM killed the whole sandbox (expected: the Sentry is the biggest task)"),
        }
        if let Some(k) = kills {
            assert!(k >= 1, "runsc sandbox stopped without an OOM kill");
        }
        drop(guard);
        return;
    }
    assert_eq!(kv(&out).get("exit").map(String::as_str), Some("137"), "tail must be SIGKILLed:\n{out}");
    assert!(kills.unwrap_or(0) >= 1, "the kernel's OOM counter did not move: {kills:?}");
    drop(guard);
    assert_eq!(cgroup::oom_kill_count(&cg), None, "cgroup gone after delete");
}

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

/// `NetworkSpec::Path` joins a network namespace prepared by the caller (here one with a veth
/// pair, as the provider's networking will prepare). runsc runs with `--network=none` and
/// ignores it.
async fn joins_a_prepared_netns(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    if kind == RuntimeKind::Runsc {
        eprintln!("runsc: --network=none, a netns path is not used");
        return;
    }
    let Some(ip) = stacyvm_oci::which("ip") else {
        let _: Option<()> = skip("iproute2 (`ip`) not installed".into());
        return;
    };
    let ns = format!("stv-test-{}", std::process::id());
    struct NetnsGuard(PathBuf, String);
    impl Drop for NetnsGuard {
        fn drop(&mut self) {
            let _ = std::process::Command::new(&self.0).args(["netns", "del", &self.1]).status();
        }
    }
    let ok = std::process::Command::new(&ip).args(["netns", "add", &ns]).status().map(|s| s.success()).unwrap_or(false);
    let _ns_guard = NetnsGuard(ip.clone(), ns.clone());
    assert!(ok, "ip netns add {ns} failed");
    let ok = std::process::Command::new(&ip)
        .args(["-n", &ns, "link", "add", "stv0", "type", "veth", "peer", "name", "stv1"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "creating a veth pair in {ns} failed");
    let id = env.id("netns");
    let mut spec = env.spec(&id, "echo net=$(ls /sys/class/net | tr '\\n' ' ')");
    spec.network = stacyvm_oci::NetworkSpec::Path(PathBuf::from(format!("/run/netns/{ns}")));
    let out = env.run(&id, &spec).await;
    let m = kv(&out);
    assert_eq!(m.get("net").map(String::as_str), Some("lo stv0 stv1"), "{out}");
}

macro_rules! runtime_tests {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[tokio::test]
            async fn isolation_defaults() { bounded(super::isolation_defaults($kind)).await }
            #[tokio::test]
            async fn root_init_keeps_only_agent_caps() { bounded(super::root_init_keeps_only_agent_caps($kind)).await }
            #[tokio::test]
            async fn seccomp_is_what_blocks_unshare() { bounded(super::seccomp_is_what_blocks_unshare($kind)).await }
            #[tokio::test]
            async fn clone_namespace_flags_are_filtered() { bounded(super::clone_namespace_flags_are_filtered($kind)).await }
            #[tokio::test]
            async fn stdout_through_a_pipe() { bounded(super::stdout_through_a_pipe($kind)).await }
            #[tokio::test]
            async fn joins_a_prepared_netns() { bounded(super::joins_a_prepared_netns($kind)).await }
            #[tokio::test]
            async fn pids_limit_holds() { bounded(super::pids_limit_holds($kind)).await }
            #[tokio::test]
            async fn memory_limit_oom_kills() { bounded(super::memory_limit_oom_kills($kind)).await }
            #[tokio::test]
            async fn delete_leaves_nothing() { bounded(super::delete_leaves_nothing($kind)).await }
            #[tokio::test]
            async fn errors_carry_the_runtime_message() { bounded(super::errors_carry_the_runtime_message($kind)).await }
            #[tokio::test]
            async fn timing_create_start_delete() { bounded(super::timing_create_start_delete($kind)).await }
        }
    )*};
}

runtime_tests!(crun => RuntimeKind::Crun, runc => RuntimeKind::Runc, runsc => RuntimeKind::Runsc);

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}
