//! A Rust client for the StacyVM REST API (used by the CLI, tests and benchmarks).

mod files;
mod images;

use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stacyvm_types::exec::{ExecRequest, ExecResult};
use stacyvm_types::sandbox::{Sandbox, SpawnRequest};
use stacyvm_types::system::HealthResponse;
use stacyvm_types::ErrorBody;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// Status code.
        status: u16,
        /// Parsed error body, when it was one.
        error: Option<ErrorBody>,
        /// Raw body text.
        body: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl ClientError {
    /// The stable error code, when the server sent one.
    pub fn code(&self) -> Option<stacyvm_types::ErrorCode> {
        match self {
            ClientError::Http { error: Some(e), .. } => Some(e.code),
            _ => None,
        }
    }
}

/// Result alias.
pub type ClientResult<T> = Result<T, ClientError>;

/// A connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    api_key: Option<String>,
}

impl Client {
    /// Connects to `base` (e.g. `http://localhost:7423`) with a 30 s request timeout.
    pub fn new(base: &str, api_key: Option<String>) -> ClientResult<Self> {
        Self::with_timeout(base, api_key, Duration::from_secs(30))
    }

    /// Like [`Client::new`] with an explicit timeout.
    pub fn with_timeout(base: &str, api_key: Option<String>, timeout: Duration) -> ClientResult<Self> {
        let http = reqwest::Client::builder().timeout(timeout).pool_max_idle_per_host(64).build()?;
        Ok(Client { base: base.trim_end_matches('/').to_string(), http, api_key: api_key.filter(|k| !k.is_empty()) })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut req = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some(key) = &self.api_key {
            req = req.header("X-API-Key", key);
        }
        req
    }

    async fn check(resp: Response) -> ClientResult<Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let error = serde_json::from_str(&body).ok();
        Err(ClientError::Http { status, error, body })
    }

    async fn send_json<T: DeserializeOwned>(&self, req: RequestBuilder) -> ClientResult<T> {
        let resp = Self::check(req.send().await?).await?;
        resp.json().await.map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET path` decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.send_json(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body, decoded as `T`.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> ClientResult<T> {
        self.send_json(self.request(Method::POST, path).json(body)).await
    }

    /// `GET /health`.
    pub async fn health(&self) -> ClientResult<HealthResponse> {
        self.get_json("/health").await
    }

    /// `POST /sandboxes`.
    pub async fn spawn(&self, req: &SpawnRequest) -> ClientResult<Sandbox> {
        self.post_json("/sandboxes", req).await
    }

    /// `GET /sandboxes`.
    pub async fn list(&self) -> ClientResult<Vec<Sandbox>> {
        self.get_json("/sandboxes").await
    }

    /// `GET /sandboxes/{id}`.
    pub async fn get(&self, id: &str) -> ClientResult<Sandbox> {
        self.get_json(&format!("/sandboxes/{id}")).await
    }

    /// `DELETE /sandboxes/{id}`.
    pub async fn destroy(&self, id: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &format!("/sandboxes/{id}")).send().await?).await?;
        Ok(())
    }

    /// `POST /sandboxes/{id}/exec` (synchronous).
    pub async fn exec(&self, id: &str, req: &ExecRequest) -> ClientResult<ExecResult> {
        self.post_json(&format!("/sandboxes/{id}/exec"), req).await
    }

    /// `POST /sandboxes/{id}/exec` with `stream: true`: each NDJSON line as a JSON value.
    pub async fn exec_stream(
        &self,
        id: &str,
        req: &ExecRequest,
    ) -> ClientResult<impl Stream<Item = ClientResult<serde_json::Value>>> {
        let mut req = req.clone();
        req.stream = true;
        let resp =
            Self::check(self.request(Method::POST, &format!("/sandboxes/{id}/exec")).json(&req).send().await?).await?;
        Ok(ndjson_values(resp))
    }

    /// `GET /sandboxes/{id}/logs?lines=N`.
    pub async fn logs(&self, id: &str, lines: u32) -> ClientResult<Vec<String>> {
        self.get_json(&format!("/sandboxes/{id}/logs?lines={lines}")).await
    }
}

/// The lines of an NDJSON response, each parsed as a JSON value.
fn ndjson_values(resp: Response) -> impl Stream<Item = ClientResult<serde_json::Value>> {
    let mut buffer = Vec::new();
    resp.bytes_stream()
        .map(move |chunk| -> Vec<ClientResult<serde_json::Value>> {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return vec![Err(ClientError::Transport(e))],
            };
            buffer.extend_from_slice(&chunk);
            let mut lines = Vec::new();
            while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                lines.push(serde_json::from_slice(&line).map_err(|e| ClientError::Decode(e.to_string())));
            }
            lines
        })
        .flat_map(futures::stream::iter)
}
