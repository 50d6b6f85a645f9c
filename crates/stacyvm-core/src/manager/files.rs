//! File operations, console logs and stats of a sandbox.

use bytes::Bytes;
use stacyvm_provider::{ByteSource, FileEntry, FileReader, RuntimeHandle, SandboxPath};
use stacyvm_types::files::{format_octal_mode, parse_octal_mode, FileInfo, FileWriteRequest};
use stacyvm_types::sandbox::SandboxStats;

use super::Manager;
use crate::error::{CoreError, CoreResult};

/// Default mode of written files.
const DEFAULT_FILE_MODE: u32 = 0o644;

/// Converts a provider entry to the wire shape.
pub fn file_info(entry: &FileEntry) -> FileInfo {
    let name = entry.path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("/").to_string();
    let mod_time = chrono::DateTime::from_timestamp(entry.mtime, 0)
        .map(|t| stacyvm_types::time::rfc3339_secs(&t))
        .unwrap_or_default();
    FileInfo {
        path: entry.path.clone(),
        name,
        size: entry.size,
        mode: format_octal_mode(entry.mode),
        is_dir: entry.is_dir,
        mod_time,
    }
}

fn parse_mode(raw: &str) -> CoreResult<u32> {
    parse_octal_mode(raw).ok_or_else(|| CoreError::invalid(format!("invalid file mode {raw:?} (use octal, e.g. 0644)")))
}

impl Manager {
    async fn running_handle(
        &self,
        id: &str,
    ) -> CoreResult<(std::sync::Arc<dyn stacyvm_provider::Provider>, RuntimeHandle)> {
        let record = self.live_entry(id).await?.snapshot();
        let handle = Self::require_running(&record)?;
        Ok((self.provider(&record.provider)?, handle))
    }

    /// Writes a file (text, or base64 with `encoding: base64`).
    pub async fn write_file(&self, id: &str, req: &FileWriteRequest) -> CoreResult<()> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(&req.path)?;
        let mode = if req.mode.trim().is_empty() { DEFAULT_FILE_MODE } else { parse_mode(&req.mode)? };
        let content = match req.encoding.trim() {
            "" | "utf-8" | "utf8" | "text" => Bytes::from(req.content.clone().into_bytes()),
            "base64" => Bytes::from(
                base64_decode(&req.content).ok_or_else(|| CoreError::invalid("content is not valid base64"))?,
            ),
            other => return Err(CoreError::invalid(format!("unsupported encoding {other:?} (use base64)"))),
        };
        let size = content.len();
        provider.write_file(&handle, &path, content, mode).await?;
        self.events.publish(
            "file.written",
            Some(id),
            Some(serde_json::json!({"path": path.to_string(), "size": size})),
        );
        Ok(())
    }

    /// Writes a file streamed from `source` (raw bytes; `mode` octal, empty for 0644) and returns
    /// its normalized path and size. The path and mode are checked before any byte is read; the
    /// file replaces the target only when `source` ended cleanly.
    pub async fn write_file_stream(
        &self,
        id: &str,
        path: &str,
        mode: &str,
        source: ByteSource,
    ) -> CoreResult<(String, u64)> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(path)?;
        let mode = if mode.trim().is_empty() { DEFAULT_FILE_MODE } else { parse_mode(mode)? };
        let size = provider.write_file_stream(&handle, &path, source, mode).await?;
        self.events.publish(
            "file.written",
            Some(id),
            Some(serde_json::json!({"path": path.to_string(), "size": size})),
        );
        Ok((path.to_string(), size))
    }

    /// Opens a file for streaming.
    pub async fn read_file(&self, id: &str, path: &str) -> CoreResult<FileReader> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(path)?;
        let reader = provider.read_file(&handle, &path).await?;
        self.events.publish("file.read", Some(id), Some(serde_json::json!({"path": path.to_string()})));
        Ok(reader)
    }

    /// Direct children of a directory.
    pub async fn list_files(&self, id: &str, path: &str) -> CoreResult<Vec<FileInfo>> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(if path.trim().is_empty() { "/" } else { path })?;
        let entry = provider.stat(&handle, &path).await?;
        if !entry.is_dir {
            return Err(CoreError::invalid(format!("{path} is not a directory")));
        }
        Ok(provider.list_dir(&handle, &path).await?.iter().map(file_info).collect())
    }

    /// Metadata of one path.
    pub async fn stat_file(&self, id: &str, path: &str) -> CoreResult<FileInfo> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(path)?;
        Ok(file_info(&provider.stat(&handle, &path).await?))
    }

    /// Paths matching a glob (always an array).
    pub async fn glob_files(&self, id: &str, pattern: &str) -> CoreResult<Vec<String>> {
        let (provider, handle) = self.running_handle(id).await?;
        if pattern.trim().is_empty() {
            return Err(CoreError::BadRequest("pattern query parameter required".into()));
        }
        Ok(provider.glob(&handle, pattern).await?)
    }

    /// Renames a path.
    pub async fn move_file(&self, id: &str, from: &str, to: &str) -> CoreResult<()> {
        let (provider, handle) = self.running_handle(id).await?;
        let (from, to) = (SandboxPath::parse(from)?, SandboxPath::parse(to)?);
        provider.rename(&handle, &from, &to).await?;
        Ok(())
    }

    /// Changes permission bits.
    pub async fn chmod_file(&self, id: &str, path: &str, mode: &str) -> CoreResult<()> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(path)?;
        provider.chmod(&handle, &path, parse_mode(mode)?).await?;
        Ok(())
    }

    /// Deletes a path.
    pub async fn delete_file(&self, id: &str, path: &str, recursive: bool) -> CoreResult<()> {
        let (provider, handle) = self.running_handle(id).await?;
        let path = SandboxPath::parse(path)?;
        provider.remove(&handle, &path, recursive).await?;
        Ok(())
    }

    /// Last `lines` console lines.
    pub async fn logs(&self, id: &str, lines: usize) -> CoreResult<Vec<String>> {
        let record = self.live_entry(id).await?.snapshot();
        let Some(handle) = Self::handle_of(&record) else {
            return Ok(Vec::new());
        };
        Ok(self.provider(&record.provider)?.logs(&handle, lines).await?)
    }

    /// Resource usage (not reported by providers without resource limits).
    pub async fn stats(&self, id: &str) -> CoreResult<SandboxStats> {
        let record = self.live_entry(id).await?.snapshot();
        let _ = self.provider(&record.provider)?;
        Ok(SandboxStats { supported: false, cpu_pct: None, mem_bytes: None, mem_limit_bytes: None })
    }
}

/// Standard base64 (with or without padding, whitespace ignored).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut padding = 0;
    for b in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (padding <= 2 && bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        for (enc, dec) in
            [("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYmFy", "foobar"), ("Zm9vYg", "foob")]
        {
            assert_eq!(base64_decode(enc).unwrap(), dec.as_bytes(), "{enc}");
        }
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Zg==Zg").is_none());
    }

    #[test]
    fn file_info_shape() {
        let info =
            file_info(&FileEntry { path: "/workspace/a.txt".into(), size: 11, mode: 0o644, is_dir: false, mtime: 0 });
        assert_eq!(info.name, "a.txt");
        assert_eq!(info.mode, "0644");
        assert_eq!(info.mod_time, "1970-01-01T00:00:00Z");
    }
}
