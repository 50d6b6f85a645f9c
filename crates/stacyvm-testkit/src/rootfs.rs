//! A busybox root filesystem from the host's static busybox (Debian `busybox-static`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Where the static busybox is expected on the host.
pub const BUSYBOX: &str = "/bin/busybox";

/// `/etc/passwd` of the busybox root filesystem: `root` and `user` (uid 1000, home /workspace).
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/workspace:/bin/sh\n";

/// `/etc/group` of the busybox root filesystem.
pub const GROUP: &str = "root:x:0:\nuser:x:1000:\n";

/// Fills `dir` (created if missing) with a busybox root filesystem: directories bin, etc, proc,
/// sys, dev, tmp (mode 1777), root and workspace; `/bin/busybox` and a symlink in /bin for every
/// applet of `busybox --list`; `/etc/passwd` and `/etc/group` with root and `user` (uid 1000).
///
/// Panics (naming the path) if the host has no `/bin/busybox` or a write fails.
#[track_caller]
pub fn busybox_rootfs(dir: &Path) {
    for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "workspace"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    }
    let busybox = dir.join("bin/busybox");
    std::fs::copy(BUSYBOX, &busybox).unwrap_or_else(|e| panic!("copy {BUSYBOX} to {}: {e}", busybox.display()));
    let applets = crate::cmd::run(BUSYBOX, ["--list"]);
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox") {
        let link = dir.join("bin").join(applet);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink("busybox", &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
    write(&dir.join("etc/passwd"), PASSWD);
    write(&dir.join("etc/group"), GROUP);
    let tmp = dir.join("tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .unwrap_or_else(|e| panic!("chmod 1777 {}: {e}", tmp.display()));
}

#[track_caller]
fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
