//! Console log of a mock sandbox: a plain text file of timestamped lines.

use std::path::Path;

use tokio::io::AsyncWriteExt;

/// Most bytes read back when tailing.
const TAIL_WINDOW: u64 = 256 * 1024;

/// Appends one line; failures are ignored (the console is best effort).
pub(super) async fn append(path: &Path, line: &str) {
    let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let text = format!("{stamp} {}\n", line.replace('\n', " "));
    if let Ok(mut file) = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await {
        let _ = file.write_all(text.as_bytes()).await;
    }
}

/// The last `lines` lines.
pub(super) async fn tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(bytes) = tokio::fs::read(path).await else {
        return Vec::new();
    };
    let start = bytes.len().saturating_sub(TAIL_WINDOW as usize);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].iter().map(|s| s.to_string()).collect()
}
