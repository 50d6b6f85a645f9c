//! Host cgroup checks: which cgroup layout the host uses, where a container's cgroup directories
//! live, and the crun-on-hybrid-host workaround.
//!
//! This module only reads `/proc/self/mountinfo`, `/proc/self/cgroup` and cgroupfs, except
//! [`ensure_hugetlb_v1_mount`], which may `mkdir` + `mount` one directory. It never removes
//! anything under `/sys/fs/cgroup` (doing that from inside another mount namespace detaches the
//! host's controller mounts).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// Default cgroup root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Layout of the host's cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Only v1 controller hierarchies under a tmpfs `/sys/fs/cgroup`.
    V1,
    /// v1 controller hierarchies plus a cgroup2 mount at `/sys/fs/cgroup/unified` (systemd's
    /// "hybrid" layout; this machine).
    Hybrid,
    /// cgroup2 mounted at `/sys/fs/cgroup` ("unified").
    V2,
}

impl std::fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupMode::V1 => "v1",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::V2 => "v2",
        })
    }
}

fn fs_magic(path: &Path) -> io::Result<i64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// Detects the cgroup layout of the host from `/sys/fs/cgroup`.
pub fn detect_mode() -> io::Result<CgroupMode> {
    detect_mode_at(Path::new(CGROUP_ROOT))
}

/// [`detect_mode`] for another cgroup root (tests).
pub fn detect_mode_at(root: &Path) -> io::Result<CgroupMode> {
    match fs_magic(root)? {
        CGROUP2_SUPER_MAGIC => Ok(CgroupMode::V2),
        TMPFS_MAGIC => match fs_magic(&root.join("unified")) {
            Ok(CGROUP2_SUPER_MAGIC) => Ok(CgroupMode::Hybrid),
            _ => Ok(CgroupMode::V1),
        },
        other => Err(io::Error::other(format!("{} is neither tmpfs nor cgroup2 (f_type {other:#x})", root.display()))),
    }
}

/// Controllers currently attached to the cgroup2 hierarchy of a hybrid host
/// (`/sys/fs/cgroup/unified/cgroup.controllers`). crun refuses to run in hybrid mode unless this
/// is empty ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2").
pub fn hybrid_unified_controllers() -> io::Result<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(CGROUP_ROOT).join("unified/cgroup.controllers"))?;
    Ok(text.split_whitespace().map(String::from).collect())
}

/// One mounted cgroup hierarchy, as seen by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point, e.g. `/sys/fs/cgroup/memory` or `/sys/fs/cgroup` (v2).
    pub mount_point: PathBuf,
    /// 1 or 2.
    pub version: u8,
    /// v1: controllers (and `name=...` for named hierarchies); v2: empty.
    pub controllers: Vec<String>,
    /// This process's cgroup in the hierarchy, relative to `mount_point` (`/` when at the root).
    pub own_path: String,
}

/// Unescapes the octal escapes (`\040` etc.) used in `/proc/*/mountinfo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed `/proc/self/mountinfo` line (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Root of the mount within its filesystem.
    pub root: String,
    /// Mount point.
    pub mount_point: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// Mount source.
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

/// Parses `/proc/self/mountinfo`.
pub fn mountinfo() -> io::Result<Vec<MountInfo>> {
    Ok(parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        v.push(MountInfo {
            root: unescape_mountinfo(l[3]),
            mount_point: PathBuf::from(unescape_mountinfo(l[4])),
            fstype: r[0].to_string(),
            source: unescape_mountinfo(r[1]),
            super_options: r[2].split(',').map(String::from).collect(),
        });
    }
    v
}

/// Whether `path` is a mount point (exact match in `/proc/self/mountinfo`).
pub fn is_mountpoint(path: &Path) -> io::Result<bool> {
    Ok(mountinfo()?.iter().any(|m| m.mount_point == path))
}

/// The cgroup hierarchies mounted in this mount namespace, with this process's place in each.
pub fn hierarchies() -> io::Result<Vec<Hierarchy>> {
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    Ok(build_hierarchies(&mountinfo()?, &own))
}

fn build_hierarchies(mounts: &[MountInfo], proc_self_cgroup: &str) -> Vec<Hierarchy> {
    // (controllers set, path) for v1 lines; path for the "0::" line.
    let mut v1_own: Vec<(BTreeSet<String>, String)> = Vec::new();
    let mut v2_own: Option<String> = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if id == "0" && ctrls.is_empty() {
            v2_own = Some(path.to_string());
        } else {
            v1_own.push((ctrls.split(',').map(String::from).collect(), path.to_string()));
        }
    }
    let relative = |own: &str, root: &str| -> String {
        let rel = if root == "/" { own } else { own.strip_prefix(root).unwrap_or(own) };
        if rel.is_empty() {
            "/".to_string()
        } else {
            rel.to_string()
        }
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for m in mounts {
        if !seen.insert(m.mount_point.clone()) {
            continue;
        }
        match m.fstype.as_str() {
            "cgroup2" => {
                let own = v2_own.clone().unwrap_or_else(|| "/".into());
                out.push(Hierarchy {
                    mount_point: m.mount_point.clone(),
                    version: 2,
                    controllers: Vec::new(),
                    own_path: relative(&own, &m.root),
                });
            }
            "cgroup" => {
                let ctrls: BTreeSet<String> = m
                    .super_options
                    .iter()
                    .filter(|o| {
                        !matches!(o.as_str(), "rw" | "ro")
                            && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "noprefix"
                            && *o != "xattr"
                            && *o != "cpuset_v2_mode"
                    })
                    .cloned()
                    .collect();
                let own =
                    v1_own.iter().find(|(c, _)| *c == ctrls).map(|(_, p)| p.clone()).unwrap_or_else(|| "/".into());
                out.push(Hierarchy {
                    mount_point: m.mount_point.clone(),
                    version: 1,
                    controllers: ctrls.into_iter().collect(),
                    own_path: relative(&own, &m.root),
                });
            }
            _ => {}
        }
    }
    out
}

/// The directories a runtime using the cgroupfs driver may create for `linux.cgroupsPath =
/// cgroups_path`, in every mounted hierarchy (the controller-less cgroup2 tree of a hybrid host
/// included). Whether they exist is not checked: use it to find a container's cgroups and to check
/// for leaks.
///
/// An absolute path is taken from each hierarchy's root by every runtime. A relative path is
/// ambiguous: runc resolves it below the cgroup of the runtime process (the caller's), crun 1.8
/// below the hierarchy root; both candidates are returned. Prefer absolute paths
/// (`/stacyvm/<id>`).
pub fn container_cgroup_dirs(cgroups_path: &str) -> io::Result<Vec<PathBuf>> {
    let rel = cgroups_path.trim_start_matches('/');
    let mut out: Vec<PathBuf> = Vec::new();
    for h in hierarchies()? {
        let mut candidates = vec![h.mount_point.join(rel)];
        if !cgroups_path.starts_with('/') {
            candidates.push(h.mount_point.join(h.own_path.trim_start_matches('/')).join(rel));
        }
        for c in candidates {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Removes the leaf cgroup directories of a container that a runtime left behind (e.g. after a
/// failed `create`, which does not record state and so cannot be `delete`d): every existing
/// directory of [`container_cgroup_dirs`] without child cgroups is emptied (processes still in
/// it are SIGKILLed and waited for, up to 2 s) and removed. Returns the directories removed.
/// Parents (e.g. `/stacyvm`) are kept.
///
/// Refuses to run when this process is not in the host's (PID 1's) mount namespace: `rmdir` under
/// `/sys/fs/cgroup` from another mount namespace can detach the host's controller mounts. Only
/// directories strictly below a hierarchy's mount point are ever removed.
pub fn remove_leftover_cgroup_dirs(cgroups_path: &str) -> io::Result<Vec<PathBuf>> {
    if cgroups_path.trim_matches('/').is_empty() || cgroups_path.split('/').any(|c| c == "..") {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid cgroups path {cgroups_path:?}")));
    }
    // PID 1's namespace link may be unreadable (PID 1 holding capabilities we lack); then we can
    // only rely on the caller running in the host namespace, as the server does.
    if let (Ok(ours), Ok(host)) = (std::fs::read_link("/proc/self/ns/mnt"), std::fs::read_link("/proc/1/ns/mnt")) {
        if ours != host {
            return Err(io::Error::other(
                "refusing to rmdir cgroups from a mount namespace other than the host's (it can detach the host's cgroup mounts)",
            ));
        }
    }
    let mut removed = Vec::new();
    for dir in container_cgroup_dirs(cgroups_path)? {
        if !dir.is_dir() {
            continue;
        }
        let has_children =
            std::fs::read_dir(&dir)?.flatten().any(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false));
        if has_children || !kill_until_empty(&dir, std::time::Duration::from_secs(2)) {
            continue;
        }
        match std::fs::remove_dir(&dir) {
            Ok(()) => removed.push(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("rmdir {}: {e}", dir.display()))),
        }
    }
    Ok(removed)
}

/// SIGKILLs every process still in the cgroup `dir` and waits (up to `limit`) until the kernel
/// has taken them all out, i.e. they have exited. True when the cgroup is empty. The container's
/// runtime has already killed what it knew; this catches processes that were still exiting (or
/// escaped its view), so that a destroyed sandbox never leaves a process behind.
fn kill_until_empty(dir: &Path, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs.split_whitespace().filter_map(|p| p.parse().ok()).filter(|p| *p > 1).collect();
        if pids.is_empty() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!(cgroup = %dir.display(), remaining = pids.len(), "processes survive SIGKILL in a destroyed sandbox's cgroup");
            return false;
        }
        for pid in pids {
            // SAFETY: plain kill(2); the pid was just read from this sandbox's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// How many processes the kernel OOM killer has killed in the container's memory cgroup
/// (`oom_kill` in v1 `memory.oom_control`, or v2 `memory.events`). `None` when the cgroup does
/// not exist (any more) or the kernel does not report it. Read it before `delete`, which removes
/// the cgroup: a non-zero count turns "exit 137" into "OOM kill" (and, with runsc, explains why
/// the whole sandbox stopped).
pub fn oom_kill_count(cgroups_path: &str) -> Option<u64> {
    let rel = cgroups_path.trim_start_matches('/');
    let hs = hierarchies().ok()?;
    let mut dirs: Vec<(PathBuf, &str)> = Vec::new();
    for h in &hs {
        let file = if h.version == 1 && h.controllers.iter().any(|c| c == "memory") {
            "memory.oom_control"
        } else if h.version == 2 {
            "memory.events"
        } else {
            continue;
        };
        dirs.push((h.mount_point.join(rel), file));
        if !cgroups_path.starts_with('/') {
            dirs.push((h.mount_point.join(h.own_path.trim_start_matches('/')).join(rel), file));
        }
    }
    dirs.into_iter().find_map(|(dir, file)| {
        let text = std::fs::read_to_string(dir.join(file)).ok()?;
        parse_flat_keyed(&text, "oom_kill")
    })
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn parse_flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok()).flatten()
    })
}

/// Outcome of [`ensure_hugetlb_v1_mount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HugetlbFix {
    /// Nothing to do; the reason says why (not hybrid, no hugetlb controller, hugetlb not on v2).
    NotNeeded(String),
    /// `/sys/fs/cgroup/hugetlb` is already a mount point.
    AlreadyMounted,
    /// We mounted the hugetlb v1 hierarchy at `/sys/fs/cgroup/hugetlb`.
    Mounted,
}

/// Applies the crun 1.8 hybrid-host workaround, idempotently.
///
/// On a systemd *hybrid* host, controllers that no v1 hierarchy claims (typically `hugetlb` when
/// systemd does not mount it) end up attached to the cgroup2 mount at `/sys/fs/cgroup/unified`,
/// and crun 1.8 then refuses every container with `cgroups in hybrid mode not supported, drop
/// all controllers from cgroupv2`. Mounting `hugetlb` as a v1 hierarchy moves it off cgroup2:
///
/// ```sh
/// mountpoint -q /sys/fs/cgroup/hugetlb || { mkdir -p /sys/fs/cgroup/hugetlb;
///   mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; }
/// ```
///
/// This function does exactly that, and only when the host is hybrid, the kernel has a hugetlb
/// controller and `/sys/fs/cgroup/hugetlb` is not already mounted. runc and runsc do not need it
/// (but are not harmed). Needs root (CAP_SYS_ADMIN in the host mount namespace). If other
/// controllers remain on cgroup2 afterwards, crun will still refuse; see
/// [`hybrid_unified_controllers`].
pub fn ensure_hugetlb_v1_mount() -> io::Result<HugetlbFix> {
    let mode = detect_mode()?;
    if mode != CgroupMode::Hybrid {
        return Ok(HugetlbFix::NotNeeded(format!("cgroup layout is {mode}, not hybrid")));
    }
    let target = Path::new(CGROUP_ROOT).join("hugetlb");
    if is_mountpoint(&target)? {
        return Ok(HugetlbFix::AlreadyMounted);
    }
    let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let has_hugetlb = cgroups
        .lines()
        .any(|l| l.split_whitespace().next() == Some("hugetlb") && l.split_whitespace().nth(3) != Some("0"));
    if !has_hugetlb {
        return Ok(HugetlbFix::NotNeeded("kernel has no (enabled) hugetlb controller".into()));
    }
    // Already mounted as v1 somewhere else (e.g. a combined hierarchy)?
    if mountinfo()?.iter().any(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == "hugetlb")) {
        return Ok(HugetlbFix::NotNeeded("hugetlb is already mounted as a v1 hierarchy elsewhere".into()));
    }
    match std::fs::create_dir(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "mkdir {}: {e} (if {CGROUP_ROOT} is a read-only tmpfs, remount it rw first: mount -o remount,rw {CGROUP_ROOT})",
                    target.display()
                ),
            ))
        }
    }
    let src = CString::new("cgroup").expect("static");
    let fstype = CString::new("cgroup").expect("static");
    let data = CString::new("hugetlb").expect("static");
    let tgt = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        // Lost a race with another caller: fine.
        if is_mountpoint(&target).unwrap_or(false) {
            return Ok(HugetlbFix::AlreadyMounted);
        }
        return Err(io::Error::new(e.kind(), format!("mount -t cgroup -o hugetlb cgroup {}: {e}", target.display())));
    }
    tracing::info!(target = %target.display(), "mounted the hugetlb cgroup v1 hierarchy (crun hybrid-mode workaround)");
    Ok(HugetlbFix::Mounted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:6 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid shared:7 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:8 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 /docker/abc /sys/fs/cgroup/pids rw,nosuid shared:9 - cgroup cgroup rw,pids
40 23 0:40 / /mnt/with\\040space rw - ext4 /dev/sda1 rw
";
    const SELF_CGROUP: &str = "\
5:pids:/docker/abc/inner
4:cpu,cpuacct:/
3:memory:/user.slice/session-1.scope
2:name=systemd:/user.slice
0::/user.slice/session-1.scope
";

    #[test]
    fn parses_mountinfo_with_escapes() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 7);
        assert_eq!(m[6].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[1].fstype, "cgroup2");
        assert_eq!(m[3].super_options, ["rw", "memory"]);
    }

    #[test]
    fn hierarchies_and_container_dirs() {
        let h = build_hierarchies(&parse_mountinfo(MOUNTINFO), SELF_CGROUP);
        assert_eq!(h.len(), 5);
        let mem = h.iter().find(|h| h.controllers == ["memory"]).unwrap();
        assert_eq!(mem.own_path, "/user.slice/session-1.scope");
        let cpu = h.iter().find(|h| h.controllers == ["cpu", "cpuacct"]).unwrap();
        assert_eq!(cpu.own_path, "/");
        let pids = h.iter().find(|h| h.controllers == ["pids"]).unwrap();
        assert_eq!(pids.own_path, "/inner", "mount root is stripped");
        let sd = h.iter().find(|h| h.controllers == ["name=systemd"]).unwrap();
        assert_eq!(sd.own_path, "/user.slice");
        let v2 = h.iter().find(|h| h.version == 2).unwrap();
        assert_eq!(v2.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v2.own_path, "/user.slice/session-1.scope");
    }

    #[test]
    fn flat_keyed_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_flat_keyed(v1, "oom_kill"), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_flat_keyed(v2, "oom_kill"), Some(1));
        assert_eq!(parse_flat_keyed("oom_kill_disable 0\n", "oom_kill"), None);
        assert_eq!(oom_kill_count("/stacyvm-no-such-cgroup/x"), None);
    }

    #[test]
    fn detects_this_host() {
        // Whatever the host is, detection must succeed on Linux with cgroups mounted.
        if Path::new(CGROUP_ROOT).exists() {
            let mode = detect_mode().unwrap();
            eprintln!("cgroup mode: {mode}");
            let dirs = container_cgroup_dirs("stacyvm/x").unwrap();
            assert!(!dirs.is_empty());
            assert!(dirs.iter().all(|d| d.ends_with("stacyvm/x")));
        }
    }
}
