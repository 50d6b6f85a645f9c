//! Shared by the real-runtime integration tests (`isolation.rs`, `clone_filter.rs`, `limits.rs`,
//! `lifecycle.rs`): real containers from a busybox rootfs with our generated `config.json`, on
//! every runtime that is installed: crun (the default), runc and runsc.
//!
//! Skipped with a printed reason when not root or when the runtime or a static busybox is
//! missing — unless `STACYVM_REQUIRE_RUNTIMES=1`, in which case a missing piece fails the test.
//! Tests run one at a time (a global lock per test binary; `cargo test` runs the binaries one
//! after the other), each bounded by a timeout, and every container is deleted by a `Drop` guard
//! even when an assertion fails.

// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stacyvm_oci::cgroup;
use stacyvm_oci::{write_bundle, BundleSpec, ContainerIo, IoTarget, OciRuntime, ProcessSpec, RuntimeKind};

/// One test at a time: timings stay meaningful and limits tests do not disturb each other.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

fn required() -> bool {
    std::env::var("STACYVM_REQUIRE_RUNTIMES").map(|v| v == "1").unwrap_or(false)
}

/// Skips (prints and returns `None`) or, with `STACYVM_REQUIRE_RUNTIMES=1`, fails.
pub fn skip<T>(why: String) -> Option<T> {
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

pub struct Env {
    pub rt: OciRuntime,
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub kind: RuntimeKind,
}

pub fn setup(kind: RuntimeKind) -> Option<Env> {
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
pub struct Guard {
    pub rt: OciRuntime,
    pub id: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.rt.delete_blocking(&self.id) {
            eprintln!("cleanup of {} failed: {e}", self.id);
        }
    }
}

impl Env {
    pub fn id(&self, name: &str) -> String {
        format!("t-{}-{name}-{}", self.kind, std::process::id())
    }

    pub fn spec(&self, id: &str, script: &str) -> BundleSpec {
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

    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.path().join("bundles").join(id)
    }

    /// Writes the bundle, creates and starts the container; output (stdout+stderr) goes to
    /// `<bundle>/out.log`.
    pub async fn launch(&self, id: &str, spec: &BundleSpec) -> Guard {
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
    pub fn runtime_log(&self, id: &str) -> String {
        let text = std::fs::read_to_string(self.bundle(id).join("runtime.log")).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text[text.floor_char_boundary_compat(start)..].to_string()
    }

    pub fn output(&self, id: &str) -> String {
        std::fs::read_to_string(self.bundle(id).join("out.log")).unwrap_or_default()
    }

    /// Runs `spec` to completion and returns its output.
    pub async fn run(&self, id: &str, spec: &BundleSpec) -> String {
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
pub fn kv(out: &str) -> BTreeMap<String, String> {
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
pub fn controller_dir(cgroups_path: &str, controller: &str) -> Option<PathBuf> {
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
pub fn processes_in_cgroup(needle: &str) -> Vec<String> {
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

pub async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    let _lock = LOCK.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

/// Defines `crun::<test>`, `runc::<test>` and `runsc::<test>` for each `async fn <test>(kind:
/// RuntimeKind)` named, each run under [`bounded`].
macro_rules! runtime_tests {
    ($($test:ident),+ $(,)?) => {
        $crate::support::runtime_tests!(@kinds [$($test),+] crun => Crun, runc => Runc, runsc => Runsc);
    };
    (@kinds $tests:tt $($module:ident => $kind:ident),+) => {
        $($crate::support::runtime_tests!(@module $module $kind $tests);)+
    };
    (@module $module:ident $kind:ident [$($test:ident),+]) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    $crate::support::bounded(super::$test(::stacyvm_oci::RuntimeKind::$kind)).await
                }
            )+
        }
    };
}
pub(crate) use runtime_tests;

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
