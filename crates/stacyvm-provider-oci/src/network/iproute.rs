//! Links and addresses through iproute2.
//!
//! We drive `ip -batch -` (one process per namespace and operation, all lines in one go, stopping
//! at the first error) rather than speaking rtnetlink ourselves: creating a veth whose peer lands
//! in another namespace, enslaving it to a bridge and configuring the peer from inside its
//! namespace is a few well-known lines here, and iproute2's error messages name the failing
//! step. The cost is about 2 ms per spawn for two `ip` processes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `ip` binary.
#[derive(Debug, Clone)]
pub struct Ip {
    binary: PathBuf,
}

impl Ip {
    /// Finds `ip` on PATH (or in /usr/sbin, /sbin).
    pub fn find() -> io::Result<Self> {
        super::find_binary("ip", "iproute2").map(|binary| Ip { binary })
    }

    /// Runs `lines` as one `ip -batch -` in the current thread's network namespace.
    pub fn batch(&self, lines: &[String]) -> io::Result<()> {
        let mut child = Command::new(&self.binary)
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("run {}: {e}", self.binary.display())))?;
        let script = lines.join("\n") + "\n";
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "ip -batch failed ({}): {}; script:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            script.trim_end()
        )))
    }

    /// Deletes a link if it exists.
    pub fn delete_link(&self, name: &str) -> io::Result<()> {
        if !link_exists(name) {
            return Ok(());
        }
        match self.batch(&[format!("link del {name}")]) {
            Err(_) if !link_exists(name) => Ok(()),
            other => other,
        }
    }
}

/// Whether a link of that name exists in the server's network namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The ports of a bridge (the server's network namespace).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .map(|entries| entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}
