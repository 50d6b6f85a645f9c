//! Isolation defaults seen from inside a real container (uid, capabilities, `no_new_privs`,
//! seccomp, namespaces, masked and read-only paths, read-only rootfs) and joining a prepared
//! network namespace, on every installed runtime; see `support/mod.rs`.

mod support;

use std::path::PathBuf;

use stacyvm_oci::spec::Seccomp;
use stacyvm_oci::RuntimeKind;
use support::{kv, setup, skip};

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

support::runtime_tests!(
    isolation_defaults,
    root_init_keeps_only_agent_caps,
    seccomp_is_what_blocks_unshare,
    joins_a_prepared_netns
);
