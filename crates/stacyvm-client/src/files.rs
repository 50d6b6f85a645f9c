//! File transfer: the raw streamed upload (`PUT /sandboxes/{id}/files`, an extension) and the
//! streamed download (`GET /sandboxes/{id}/files`). Neither holds the file in memory.
//!
//! The client's request timeout covers a whole transfer: build it with
//! [`Client::with_timeout`] for large files.

use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::Method;
use stacyvm_types::files::FileUploadResponse;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Client, ClientError, ClientResult};

/// Size of the pieces an upload source is read in.
const UPLOAD_CHUNK: usize = 256 * 1024;

impl Client {
    /// `PUT /sandboxes/{id}/files?path=…&mode=…`: uploads everything `source` yields, streamed.
    /// `length`, when known, is sent as `Content-Length` (the server then refuses an upload over
    /// its limit before reading it). `mode` is octal (`"0644"`), `None` for the default.
    pub async fn upload_file<R>(
        &self,
        id: &str,
        path: &str,
        source: R,
        length: Option<u64>,
        mode: Option<&str>,
    ) -> ClientResult<FileUploadResponse>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let chunks = futures::stream::unfold(Some(source), |source| async move {
            let mut source = source?;
            let mut buf = Vec::with_capacity(UPLOAD_CHUNK);
            match (&mut source).take(UPLOAD_CHUNK as u64).read_to_end(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(Bytes::from(buf)), Some(source))),
                Err(e) => Some((Err(e), None)),
            }
        });
        let mut req = self
            .request(Method::PUT, &format!("/sandboxes/{id}/files"))
            .header("content-type", "application/octet-stream")
            .query(&[("path", path)]);
        if let Some(mode) = mode {
            req = req.query(&[("mode", mode)]);
        }
        if let Some(length) = length {
            req = req.header("content-length", length);
        }
        self.send_json(req.body(reqwest::Body::wrap_stream(chunks))).await
    }

    /// Uploads the local file `local` to `path` in the sandbox (see [`Client::upload_file`]).
    pub async fn upload_path(
        &self,
        id: &str,
        path: &str,
        local: &Path,
        mode: Option<&str>,
    ) -> ClientResult<FileUploadResponse> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| ClientError::Decode(format!("cannot open {}: {e}", local.display())))?;
        let length = file.metadata().await.ok().map(|m| m.len());
        self.upload_file(id, path, file, length, mode).await
    }

    /// `GET /sandboxes/{id}/files?path=…`: the file's bytes as they arrive.
    pub async fn download_file(&self, id: &str, path: &str) -> ClientResult<impl Stream<Item = ClientResult<Bytes>>> {
        let req = self.request(Method::GET, &format!("/sandboxes/{id}/files")).query(&[("path", path)]);
        let resp = Self::check(req.send().await?).await?;
        Ok(resp.bytes_stream().map(|chunk| chunk.map_err(ClientError::Transport)))
    }

    /// `DELETE /sandboxes/{id}/files?path=…` (a file, or an empty directory).
    pub async fn delete_file(&self, id: &str, path: &str) -> ClientResult<()> {
        let req = self.request(Method::DELETE, &format!("/sandboxes/{id}/files")).query(&[("path", path)]);
        Self::check(req.send().await?).await?;
        Ok(())
    }

    /// Downloads `path` into `out`; returns the number of bytes written.
    pub async fn download_to<W>(&self, id: &str, path: &str, out: &mut W) -> ClientResult<u64>
    where
        W: AsyncWrite + Unpin,
    {
        let mut stream = std::pin::pin!(self.download_file(id, path).await?);
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            out.write_all(&chunk).await.map_err(|e| ClientError::Decode(format!("writing the download: {e}")))?;
            total += chunk.len() as u64;
        }
        out.flush().await.map_err(|e| ClientError::Decode(format!("writing the download: {e}")))?;
        Ok(total)
    }
}
