use super::process::own_nofile_hard_limit;
use super::*;
use serde_json::Value;

fn spec_json(b: &BundleSpec) -> Value {
    serde_json::to_value(b.to_spec().unwrap()).unwrap()
}

fn base() -> BundleSpec {
    let mut p = ProcessSpec::new(["/bin/sh", "-c", "true"]);
    p.uid = 1000;
    p.gid = 1000;
    let mut b = BundleSpec::new("/var/lib/stacyvm/sb-1/rootfs", p);
    b.hostname = "sb-1".into();
    b.memory_bytes = Some(256 * 1024 * 1024);
    b.vcpus = Some(1.5);
    b.pids_limit = Some(128);
    b.cgroups_path = Some("stacyvm/sb-1".into());
    b
}

#[test]
fn namespaces_all_present_and_new_netns_by_default() {
    let j = spec_json(&base());
    let ns: Vec<(String, Option<String>)> = j["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["type"].as_str().unwrap().to_string(), n.get("path").and_then(|p| p.as_str()).map(String::from)))
        .collect();
    for t in ["pid", "mount", "ipc", "uts", "network"] {
        assert!(ns.iter().any(|(k, p)| k == t && p.is_none()), "namespace {t} missing in {ns:?}");
    }
    assert!(!ns.iter().any(|(k, _)| k == "user" || k == "cgroup"));
}

#[test]
fn netns_path_is_joined() {
    let mut b = base();
    b.network = NetworkSpec::Path("/run/netns/stacyvm-sb-1".into());
    let j = spec_json(&b);
    let net = j["linux"]["namespaces"].as_array().unwrap().iter().find(|n| n["type"] == "network").unwrap().clone();
    assert_eq!(net["path"], "/run/netns/stacyvm-sb-1");
}

#[test]
fn non_root_process_gets_no_capabilities() {
    let j = spec_json(&base());
    let caps = &j["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
        assert_eq!(caps[set], serde_json::json!([]), "{set}");
    }
    assert_eq!(j["process"]["noNewPrivileges"], true);
    assert_eq!(j["process"]["user"]["uid"], 1000);
    assert_eq!(j["process"]["user"]["gid"], 1000);
    assert_eq!(j["process"]["terminal"], false);
}

#[test]
fn root_process_gets_exactly_the_agent_capabilities() {
    let mut b = base();
    b.process.uid = 0;
    b.process.gid = 0;
    let j = spec_json(&b);
    let caps = &j["process"]["capabilities"];
    let want: Vec<Value> = AGENT_CAPABILITIES.iter().map(|c| Value::from(*c)).collect();
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(caps[set].as_array().unwrap(), &want, "{set}");
    }
    assert_eq!(caps["inheritable"], serde_json::json!([]));
    assert_eq!(caps["ambient"], serde_json::json!([]));
    for dangerous in ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_NET_RAW", "CAP_MKNOD"]
    {
        assert!(!want.contains(&Value::from(dangerous)));
    }
    assert_eq!(AGENT_CAPABILITIES.len(), 7);
}

#[test]
fn masked_and_readonly_paths() {
    let j = spec_json(&base());
    let masked: Vec<&str> = j["linux"]["maskedPaths"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for p in
        ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/acpi", "/proc/scsi", "/proc/asound"]
    {
        assert!(masked.contains(&p), "{p} not masked");
    }
    let ro: Vec<&str> = j["linux"]["readonlyPaths"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for p in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] {
        assert!(ro.contains(&p), "{p} not read-only");
    }
}

#[test]
fn limits_numbers() {
    let j = spec_json(&base());
    let r = &j["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 268_435_456);
    assert_eq!(r["memory"]["swap"], 268_435_456);
    assert_eq!(r["cpu"]["quota"], 150_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["pids"]["limit"], 128);
    assert_eq!(r["devices"], serde_json::json!([{"allow": false, "access": "rwm"}]));
    assert_eq!(j["linux"]["cgroupsPath"], "stacyvm/sb-1");
    assert_eq!(j["hostname"], "sb-1");
}

#[test]
fn no_limits_means_no_resource_entries() {
    let b = BundleSpec::new("/r", ProcessSpec::new(["/bin/true"]));
    let j = spec_json(&b);
    let r = &j["linux"]["resources"];
    assert!(r.get("memory").is_none() && r.get("cpu").is_none() && r.get("pids").is_none());
    assert!(j["linux"].get("cgroupsPath").is_none());
}

#[test]
fn nofile_is_clamped_to_our_hard_limit() {
    let j = spec_json(&base());
    let n = j["process"]["rlimits"][0]["hard"].as_u64().unwrap();
    assert_eq!(n, DEFAULT_NOFILE.min(own_nofile_hard_limit()));
    assert_eq!(j["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
    let mut b = base();
    b.nofile = None;
    assert!(spec_json(&b)["process"].get("rlimits").is_none());
}

#[test]
fn tiny_cpu_is_clamped_to_one_percent() {
    let mut b = base();
    b.vcpus = Some(0.001);
    assert_eq!(spec_json(&b)["linux"]["resources"]["cpu"]["quota"], 1000);
}

#[test]
fn mounts_default_set() {
    let j = spec_json(&base());
    let m: Vec<(String, String, Vec<String>)> = j["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["destination"].as_str().unwrap().to_string(),
                m["type"].as_str().unwrap().to_string(),
                m["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    let find = |d: &str| m.iter().find(|x| x.0 == d).unwrap_or_else(|| panic!("no mount {d}"));
    assert_eq!(find("/proc").1, "proc");
    assert_eq!(find("/dev").1, "tmpfs");
    assert_eq!(find("/dev/pts").1, "devpts");
    assert_eq!(find("/dev/shm").1, "tmpfs");
    assert_eq!(find("/dev/mqueue").1, "mqueue");
    let sys = find("/sys");
    assert_eq!(sys.1, "sysfs");
    for o in ["ro", "nosuid", "noexec", "nodev"] {
        assert!(sys.2.iter().any(|x| x == o), "/sys lacks {o}");
    }
    assert_eq!(find("/sys/fs/cgroup").1, "cgroup");
    assert!(find("/sys/fs/cgroup").2.contains(&"ro".to_string()));
    assert_eq!(find("/tmp").1, "tmpfs");
    assert_eq!(find("/run").1, "tmpfs");
    // rootfs writable: no /workspace tmpfs
    assert!(!m.iter().any(|x| x.0 == "/workspace"));
    assert_eq!(j["root"]["readonly"], false);
    // /proc must come before /sys/fs/cgroup etc.: parents before children
    let pos = |d: &str| m.iter().position(|x| x.0 == d).unwrap();
    assert!(pos("/dev") < pos("/dev/pts") && pos("/sys") < pos("/sys/fs/cgroup"));
}

#[test]
fn readonly_rootfs_gets_writable_workspace_owned_by_the_user() {
    let mut b = base();
    b.readonly_rootfs = true;
    let j = spec_json(&b);
    assert_eq!(j["root"]["readonly"], true);
    let ws = j["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/workspace").unwrap();
    assert_eq!(ws["type"], "tmpfs");
    let opts: Vec<&str> = ws["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    assert!(opts.contains(&"uid=1000") && opts.contains(&"gid=1000"));
    assert!(!opts.contains(&"ro"));
}

#[test]
fn bind_mounts_and_workspace_override() {
    let mut b = base();
    b.readonly_rootfs = true;
    b.mounts.push(BindMount::new("/srv/ws/sb-1", "/workspace", false));
    b.mounts.push(BindMount::new("/usr/lib/stacyvm/agent", "/.stacyvm/agent", true));
    let j = spec_json(&b);
    let mounts = j["mounts"].as_array().unwrap();
    let ws: Vec<&Value> = mounts.iter().filter(|m| m["destination"] == "/workspace").collect();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["type"], "bind");
    assert_eq!(ws[0]["source"], "/srv/ws/sb-1");
    let agent = mounts.iter().find(|m| m["destination"] == "/.stacyvm/agent").unwrap();
    let opts: Vec<&str> = agent["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    assert!(opts.contains(&"rbind") && opts.contains(&"ro") && opts.contains(&"nosuid"));
}

#[test]
fn seccomp_present_with_denylist() {
    let j = spec_json(&base());
    let s = &j["linux"]["seccomp"];
    assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(s["architectures"], serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
    let denied: Vec<&str> = s["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ERRNO" && r.get("args").is_none())
        .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()))
        .collect();
    for name in
        ["mount", "umount2", "pivot_root", "kexec_load", "init_module", "bpf", "ptrace", "unshare", "setns", "keyctl"]
    {
        assert!(denied.contains(&name), "{name} not denied");
    }
}

#[test]
fn default_path_env_added_once() {
    let mut b = base();
    b.process.env = vec!["HOME=/home/user".into()];
    let j = spec_json(&b);
    assert_eq!(j["process"]["env"], serde_json::json!([DEFAULT_PATH_ENV, "HOME=/home/user"]));
    b.process.env = vec!["PATH=/bin".into()];
    assert_eq!(spec_json(&b)["process"]["env"], serde_json::json!(["PATH=/bin"]));
}

#[test]
fn invalid_specs_are_rejected() {
    let mut b = base();
    b.process.args.clear();
    assert!(b.to_spec().is_err());
    let mut b = base();
    b.process.cwd = "rel".into();
    assert!(b.to_spec().is_err());
    let mut b = base();
    b.vcpus = Some(0.0);
    assert!(b.to_spec().is_err());
    let mut b = base();
    b.memory_bytes = Some(1024);
    assert!(b.to_spec().is_err());
    let mut b = base();
    b.cgroups_path = Some("../escape".into());
    assert!(b.to_spec().is_err());
    let mut b = base();
    b.mounts.push(BindMount::new("rel", "/x", true));
    assert!(b.to_spec().is_err());
}

#[test]
fn roundtrip_and_write_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_bundle(dir.path(), &base()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let back: Spec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, base().to_spec().unwrap());
    assert!(!dir.path().join(".config.json.tmp").exists());
}
