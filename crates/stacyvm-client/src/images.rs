//! The `/images` routes: the server's image store.

use std::path::Path;

use futures::Stream;
use reqwest::Method;
use stacyvm_types::image::{ImageInfo, ImagePullRequest, ImageRemoval};

use crate::{ndjson_values, Client, ClientError, ClientResult};

impl Client {
    /// `GET /images`.
    pub async fn images(&self) -> ClientResult<Vec<ImageInfo>> {
        self.get_json("/images").await
    }

    /// `POST /images/pull` with NDJSON progress: each line as a JSON value; the last one has
    /// `status` `done` (with `image`) or `error` (with `code` and `message`).
    pub async fn pull_image_stream(
        &self,
        reference: &str,
    ) -> ClientResult<impl Stream<Item = ClientResult<serde_json::Value>>> {
        let body = ImagePullRequest { reference: reference.to_string() };
        let req = self.request(Method::POST, "/images/pull").header("accept", "application/x-ndjson").json(&body);
        Ok(ndjson_values(Self::check(req.send().await?).await?))
    }

    /// `POST /images/import`: streams the archive at `archive` to the server.
    pub async fn import_image(&self, archive: &Path, reference: Option<&str>) -> ClientResult<Vec<ImageInfo>> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(|e| ClientError::Decode(format!("cannot open {}: {e}", archive.display())))?;
        let mut req = self.request(Method::POST, "/images/import").header("content-type", "application/x-tar");
        if let Some(reference) = reference {
            req = req.query(&[("reference", reference)]);
        }
        self.send_json(req.body(reqwest::Body::from(file))).await
    }

    /// `DELETE /images?reference=…`.
    pub async fn remove_image(&self, reference: &str) -> ClientResult<ImageRemoval> {
        self.send_json(self.request(Method::DELETE, "/images").query(&[("reference", reference)])).await
    }

    /// `POST /images/prune`.
    pub async fn prune_images(&self) -> ClientResult<ImageRemoval> {
        self.send_json(self.request(Method::POST, "/images/prune")).await
    }
}
