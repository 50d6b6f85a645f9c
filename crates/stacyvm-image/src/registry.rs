//! A client for the OCI distribution API: manifests and blobs, with anonymous, bearer-token
//! and basic authentication.
//!
//! Every registry is spoken to over HTTPS, except registries listed as insecure, which get
//! plain HTTP. A `401` with a `Bearer` challenge is answered by fetching a token from the
//! challenge's realm (with the configured credentials, if any) and retrying once; tokens are
//! cached per registry and repository. Credentials come from a Docker-style `config.json`
//! (`{"auths": {"host": {"auth": "base64(user:password)"}}}`) and are never logged.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::digest::{Digest, Hashing};
use crate::manifest::{Descriptor, MAX_DOCUMENT_BYTES};
use crate::reference::Reference;
use crate::{ImageError, ImageResult};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Docker-style credentials file; `None` = anonymous only.
    pub auth_file: Option<PathBuf>,
    /// Connect and per-read timeout; zero = 30 s.
    pub timeout: Duration,
}

/// The client. Shared by all pulls.
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Vec<String>,
    credentials: HashMap<String, String>,
    tokens: Mutex<HashMap<String, String>>,
}

/// Reads `{"auths": {host: {"auth": b64} | {"username", "password"}}}` into host → `user:password`.
fn read_credentials(path: &Path) -> ImageResult<HashMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::io(&format!("read {}", path.display()), e))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::Unsupported(format!("{} is not valid JSON: {e}", path.display())))?;
    let mut out = HashMap::new();
    for (host, entry) in doc.get("auths").and_then(|a| a.as_object()).into_iter().flatten() {
        let host = host.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        let pair = if let Some(b64) = entry.get("auth").and_then(|v| v.as_str()) {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|s| s.contains(':'))
        } else {
            match (entry.get("username").and_then(|v| v.as_str()), entry.get("password").and_then(|v| v.as_str())) {
                (Some(u), Some(p)) => Some(format!("{u}:{p}")),
                _ => None,
            }
        };
        let pair = pair.ok_or_else(|| {
            ImageError::Unsupported(format!("credentials for {host} in {} are malformed", path.display()))
        })?;
        let host = if host == "index.docker.io/v1" || host == "index.docker.io" { "docker.io" } else { host };
        out.insert(host.to_string(), pair);
    }
    Ok(out)
}

/// Parses `Bearer realm="…",service="…",scope="…"` into its parameters.
fn parse_challenge(header: &str) -> Option<(String, HashMap<String, String>)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').map_or((after, ""), |(v, t)| (v, t))
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = tail.trim_start_matches([',', ' ']);
    }
    Some((scheme.to_ascii_lowercase(), params))
}

fn unreachable(host: &str, e: reqwest::Error) -> ImageError {
    ImageError::Unavailable(format!("registry {host} is unreachable: {e}"))
}

impl RegistryClient {
    /// Builds the client; reads the credentials file now so a broken one fails at start.
    pub fn new(settings: RegistrySettings) -> ImageResult<Self> {
        let timeout = if settings.timeout.is_zero() { Duration::from_secs(30) } else { settings.timeout };
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("stacyvm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ImageError::Unavailable(format!("HTTP client: {e}")))?;
        let credentials = match &settings.auth_file {
            Some(path) => read_credentials(path)?,
            None => HashMap::new(),
        };
        Ok(RegistryClient { http, insecure: settings.insecure, credentials, tokens: Mutex::default() })
    }

    fn base_url(&self, r: &Reference) -> String {
        let scheme = if self.insecure.iter().any(|h| h == &r.registry) { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", r.api_host(), r.repository)
    }

    fn token_key(r: &Reference) -> String {
        format!("{}/{}", r.registry, r.repository)
    }

    /// GET `<base>/<path>`, answering an auth challenge once.
    async fn get(&self, r: &Reference, path: &str, accept: Option<&str>) -> ImageResult<Response> {
        let url = format!("{}/{path}", self.base_url(r));
        let mut retried = false;
        loop {
            let mut req = self.http.get(&url);
            if let Some(accept) = accept {
                req = req.header(ACCEPT, accept);
            }
            let cached = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(&Self::token_key(r)).cloned();
            if let Some(auth) = cached {
                req = req.header(AUTHORIZATION, auth);
            }
            let resp = req.send().await.map_err(|e| unreachable(r.api_host(), e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let auth = self.authenticate(r, challenge.as_deref()).await?;
            self.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(Self::token_key(r), auth);
            retried = true;
        }
    }

    /// The `Authorization` value that answers `challenge`.
    async fn authenticate(&self, r: &Reference, challenge: Option<&str>) -> ImageResult<String> {
        let denied =
            || ImageError::Unauthorized(format!("registry {} requires credentials for {}", r.registry, r.repository));
        let (scheme, params) = challenge.and_then(parse_challenge).ok_or_else(denied)?;
        let basic = self
            .credentials
            .get(&r.registry)
            .map(|pair| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())));
        match scheme.as_str() {
            "basic" => basic.ok_or_else(denied),
            "bearer" => {
                let realm = params.get("realm").ok_or_else(denied)?;
                let mut req = self.http.get(realm).query(&[("scope", format!("repository:{}:pull", r.repository))]);
                if let Some(service) = params.get("service") {
                    req = req.query(&[("service", service)]);
                }
                if let Some(basic) = &basic {
                    req = req.header(AUTHORIZATION, basic);
                }
                let resp = req.send().await.map_err(|e| unreachable(realm, e))?;
                if !resp.status().is_success() {
                    return Err(ImageError::Unauthorized(format!(
                        "token service of {} refused access to {} ({})",
                        r.registry,
                        r.repository,
                        resp.status()
                    )));
                }
                let body: serde_json::Value =
                    resp.json().await.map_err(|e| ImageError::Unauthorized(format!("token response: {e}")))?;
                let token = body
                    .get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| ImageError::Unauthorized("token response has no token".into()))?;
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map(|_| format!("Bearer {token}"))
                    .map_err(|_| ImageError::Unauthorized("token has invalid characters".into()))
            }
            _ => Err(denied()),
        }
    }

    fn status_error(r: &Reference, what: &str, status: StatusCode) -> ImageError {
        match status {
            StatusCode::NOT_FOUND => {
                ImageError::NotFound(format!("{what} of {r} not found in registry {}", r.registry))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                ImageError::Unauthorized(format!("registry {} denied access to {what} of {r} ({status})", r.registry))
            }
            s => ImageError::Unavailable(format!("registry {} answered {s} for {what} of {r}", r.registry)),
        }
    }

    /// Fetches a manifest (by tag or digest): its bytes and digest. When asked by digest, the
    /// bytes are verified against it.
    pub async fn manifest(&self, r: &Reference, reference: &str) -> ImageResult<(Vec<u8>, Digest)> {
        let resp = self.get(r, &format!("manifests/{reference}"), Some(crate::manifest::ACCEPT_MANIFESTS)).await?;
        if !resp.status().is_success() {
            return Err(Self::status_error(r, "manifest", resp.status()));
        }
        let bytes = read_limited(resp, r).await?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = Digest::parse(reference) {
            if expected != digest {
                return Err(ImageError::Corrupt(format!("manifest of {r} has digest {digest}, expected {expected}")));
            }
        }
        Ok((bytes, digest))
    }

    /// Fetches a small blob (an image config) into memory, verified.
    pub async fn small_blob(&self, r: &Reference, desc: &Descriptor) -> ImageResult<Vec<u8>> {
        let resp = self.get(r, &format!("blobs/{}", desc.digest), None).await?;
        if !resp.status().is_success() {
            return Err(Self::status_error(r, "config blob", resp.status()));
        }
        let bytes = read_limited(resp, r).await?;
        let digest = Digest::of(&bytes);
        if digest != desc.digest {
            return Err(ImageError::Corrupt(format!("blob of {r} has digest {digest}, expected {}", desc.digest)));
        }
        Ok(bytes)
    }

    /// Streams a blob into `file`, checking size and digest; `progress` gets the bytes so far.
    pub async fn blob_to_file(
        &self,
        r: &Reference,
        desc: &Descriptor,
        file: std::fs::File,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> ImageResult<()> {
        let resp = self.get(r, &format!("blobs/{}", desc.digest), None).await?;
        if !resp.status().is_success() {
            return Err(Self::status_error(r, &format!("layer {}", desc.digest), resp.status()));
        }
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        let mut hash = Hashing::new(std::io::sink());
        let mut body = resp.bytes_stream();
        let mut last_report = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| unreachable(r.api_host(), e))?;
            if desc.size > 0 && hash.byte_count() + chunk.len() as u64 > desc.size {
                return Err(ImageError::Corrupt(format!(
                    "layer {} is larger than its declared {} bytes",
                    desc.digest, desc.size
                )));
            }
            hash.write_all(&chunk).map_err(|e| ImageError::io("hash layer", e))?;
            file.write_all(&chunk).await.map_err(|e| ImageError::io("write layer", e))?;
            if hash.byte_count() - last_report >= 1 << 20 {
                last_report = hash.byte_count();
                progress(last_report);
            }
        }
        file.flush().await.map_err(|e| ImageError::io("write layer", e))?;
        progress(hash.byte_count());
        let digest = hash.finish().0;
        if digest != desc.digest {
            return Err(ImageError::Corrupt(format!("layer has digest {digest}, expected {}", desc.digest)));
        }
        Ok(())
    }
}

async fn read_limited(resp: Response, r: &Reference) -> ImageResult<Vec<u8>> {
    let mut body = resp.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(|e| unreachable(r.api_host(), e))?);
        if out.len() > MAX_DOCUMENT_BYTES {
            return Err(ImageError::Corrupt(format!("a document of {r} exceeds {MAX_DOCUMENT_BYTES} bytes")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(scheme, "bearer");
        assert_eq!(p["realm"], "https://auth.io/token");
        assert_eq!(p["service"], "registry.io");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let (scheme, p) = parse_challenge("Basic realm=x").unwrap();
        assert_eq!((scheme.as_str(), p["realm"].as_str()), ("basic", "x"));
        assert!(parse_challenge("garbage").is_none());
    }

    #[test]
    fn reads_docker_credentials_and_rejects_malformed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{b64}"}},"r.io":{{"username":"u","password":"p"}}}}}}"#),
        )
        .unwrap();
        let creds = read_credentials(&path).unwrap();
        assert_eq!(creds["docker.io"], "alice:s3cret");
        assert_eq!(creds["r.io"], "u:p");
        std::fs::write(&path, r#"{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}"#).unwrap();
        assert!(read_credentials(&path).is_err(), "an auth without ':' must be refused");
    }
}
