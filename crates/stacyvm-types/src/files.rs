//! File API shapes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Metadata of one file or directory inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    /// Absolute path inside the sandbox.
    pub path: String,
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits as 4-digit octal, e.g. `0644`.
    pub mode: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Modification time, second precision, UTC.
    pub mod_time: String,
}

/// Body of `POST /files`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct FileWriteRequest {
    /// Absolute path inside the sandbox.
    pub path: String,
    /// Content: UTF-8 text, or base64 when `encoding` is `base64`.
    pub content: String,
    /// Octal mode (`644` or `0644`); default `0644`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// `""` (text) or `base64` (extension, for binary content).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub encoding: String,
}

/// Body of `POST /files/move`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct FileMoveRequest {
    /// Existing path.
    pub old_path: String,
    /// Destination path; its parent is created.
    pub new_path: String,
}

/// Body of `POST /files/chmod`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct FileChmodRequest {
    /// Path to change.
    pub path: String,
    /// Octal mode, `755` or `0755`.
    pub mode: String,
}

/// Parses an octal permission string (`755`, `0755`); `None` when invalid or above `07777`.
pub fn parse_octal_mode(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() || t.len() > 5 || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|m| *m <= 0o7777)
}

/// Renders permission bits as 4-digit octal (`0644`).
pub fn format_octal_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes() {
        assert_eq!(parse_octal_mode("755"), Some(0o755));
        assert_eq!(parse_octal_mode("0755"), Some(0o755));
        assert_eq!(parse_octal_mode("4755"), Some(0o4755));
        for bad in ["", "8", "rwx", "-1", "77777", "0o755"] {
            assert_eq!(parse_octal_mode(bad), None, "{bad}");
        }
        assert_eq!(format_octal_mode(0o100644), "0644");
    }
}

/// Answer of `PUT /files` (raw upload, an extension).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileUploadResponse {
    /// Always `written`.
    pub status: String,
    /// Absolute path of the written file.
    pub path: String,
    /// Bytes written.
    pub size: u64,
}
