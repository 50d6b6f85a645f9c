//! Finds and kills host processes belonging to a mock sandbox: those whose working directory
//! lies inside the sandbox directory. This also catches processes left behind by a crashed
//! server, without keeping any process table.

use std::path::Path;

/// Sends `SIGKILL` to every process whose cwd is `dir` or below it.
pub(super) fn kill_all_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(dir) {
            // SAFETY: plain syscall; the pid may already be gone, which is fine.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}
