//! Lexically normalised paths inside a sandbox.
//!
//! A [`SandboxPath`] is absolute, has no `.`/`..`/empty components and no NUL bytes. `..` that
//! would climb above `/` is rejected rather than clamped, so the caller hears about the escape
//! attempt. Symlinks are the file layer's job ([`crate::hostfs`] resolves them beneath the root).

use std::fmt;

use crate::FsError;

/// Default directory for relative paths and execs.
pub const WORKSPACE: &str = "/workspace";

/// A normalised absolute path inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SandboxPath {
    components: Vec<String>,
}

impl SandboxPath {
    /// The sandbox root `/`.
    pub fn root() -> Self {
        SandboxPath { components: Vec::new() }
    }

    /// Parses user input. Relative paths are taken relative to `/workspace`.
    pub fn parse(raw: &str) -> Result<Self, FsError> {
        if raw.trim().is_empty() {
            return Err(FsError::InvalidInput("path is required".into()));
        }
        if raw.contains('\0') {
            return Err(FsError::InvalidInput("path contains a NUL byte".into()));
        }
        let joined;
        let absolute = if raw.starts_with('/') {
            raw
        } else {
            joined = format!("{WORKSPACE}/{raw}");
            &joined
        };
        let mut components: Vec<String> = Vec::new();
        for part in absolute.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if components.pop().is_none() {
                        return Err(FsError::PathEscape(raw.to_string()));
                    }
                }
                name => components.push(name.to_string()),
            }
        }
        Ok(SandboxPath { components })
    }

    /// Components below the root.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// Last component, or `/` for the root.
    pub fn file_name(&self) -> &str {
        self.components.last().map_or("/", String::as_str)
    }

    /// The parent (the root's parent is the root).
    pub fn parent(&self) -> SandboxPath {
        let mut components = self.components.clone();
        components.pop();
        SandboxPath { components }
    }

    /// Appends one plain component (no separators).
    pub fn join(&self, name: &str) -> SandboxPath {
        let mut components = self.components.clone();
        components.push(name.to_string());
        SandboxPath { components }
    }

    /// The path relative to the root, `.` for the root itself (for `*at` syscalls).
    pub fn relative(&self) -> String {
        if self.components.is_empty() {
            ".".to_string()
        } else {
            self.components.join("/")
        }
    }
}

impl fmt::Display for SandboxPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.components.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_rejects_escapes() {
        let ok = [
            ("/workspace/a.txt", "/workspace/a.txt"),
            ("/", "/"),
            ("//workspace//./b/../c", "/workspace/c"),
            ("a.txt", "/workspace/a.txt"),
            ("../etc", "/etc"),
            ("/workspace/..", "/"),
        ];
        for (raw, want) in ok {
            assert_eq!(SandboxPath::parse(raw).unwrap().to_string(), want, "{raw}");
        }
        for bad in ["/..", "/workspace/../../etc/passwd", "../../x", "/a/../../b"] {
            assert!(matches!(SandboxPath::parse(bad), Err(FsError::PathEscape(_))), "{bad}");
        }
        for bad in ["", "   ", "/a\0b"] {
            assert!(matches!(SandboxPath::parse(bad), Err(FsError::InvalidInput(_))), "{bad:?}");
        }
        assert_eq!(SandboxPath::parse("/").unwrap().relative(), ".");
        assert_eq!(SandboxPath::parse("/x/y").unwrap().parent().to_string(), "/x");
    }
}
