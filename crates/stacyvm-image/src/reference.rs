//! Image references (`[registry/]repository[:tag][@digest]`), parsed and normalised the way
//! Docker users expect: `alpine` is `docker.io/library/alpine:latest`.

use std::fmt;

use crate::digest::Digest;
use crate::ImageError;

/// The registry that references without a registry part name.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (with port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// Pinned manifest digest.
    pub digest: Option<Digest>,
}

fn invalid(raw: &str, why: &str) -> ImageError {
    ImageError::InvalidReference(format!("{raw:?}: {why}"))
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ joined by `.`, `_`, `__` or runs of `-`.
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_registry(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, _)) if !n.ends_with(']') && n.contains(':') => (host, None), // bare IPv6: refused below
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
    } else {
        name.len() <= 253 && name.split('.').all(label_ok)
    };
    port_ok && name_ok
}

impl Reference {
    /// Parses and normalises a reference.
    pub fn parse(raw: &str) -> Result<Self, ImageError> {
        if raw.is_empty() || raw.len() > 512 || raw.trim() != raw {
            return Err(invalid(raw, "must be 1-512 characters without surrounding spaces"));
        }
        let (name_and_tag, digest) = match raw.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(|_| invalid(raw, "digest must be sha256:<64 hex>"))?)),
            None => (raw, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => (&name_and_tag[..last_slash + i], Some(&name_and_tag[last_slash + i + 1..])),
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(invalid(raw, "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                if !valid_registry(first) {
                    return Err(invalid(raw, "registry host is not valid"));
                }
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.len() > 255 || !repository.split('/').all(valid_path_component) {
            return Err(invalid(raw, "repository must be lowercase letters, digits and separators (. _ __ -)"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// Host to send registry API requests to (`docker.io`'s API lives elsewhere).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What to ask the registry's manifest endpoint for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> String {
        Reference::parse(raw).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(canon("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(canon("alpine:3.19"), "docker.io/library/alpine:3.19");
        assert_eq!(canon("user/app"), "docker.io/user/app:latest");
        assert_eq!(canon("ghcr.io/org/app:v1"), "ghcr.io/org/app:v1");
        assert_eq!(canon("127.0.0.1:5000/busybox"), "127.0.0.1:5000/busybox:latest");
        assert_eq!(canon("localhost/x/y:1"), "localhost/x/y:1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(canon(&format!("alpine@{d}")), format!("docker.io/library/alpine@{d}"));
        assert_eq!(canon(&format!("alpine:3@{d}")), format!("docker.io/library/alpine:3@{d}"));
        assert_eq!(Reference::parse(&format!("a@{d}")).unwrap().manifest_ref(), d);
        assert_eq!(Reference::parse("alpine").unwrap().api_host(), "registry-1.docker.io");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            " alpine",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "a//b",
            "alpine@sha256:xyz",
            "alpine@md5:abc",
            "../etc/passwd",
            "a/../b",
            "reg.io/",
            "x:y:z",
            "-bad.io/a",
            "a..b.io/x",
            "r.io:99999999/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
