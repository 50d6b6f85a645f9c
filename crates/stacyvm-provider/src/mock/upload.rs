//! Streamed writes of the mock provider: chunks read from the source go through a small bounded
//! channel to a blocking thread that appends them to a [`stacyvm_fs::PendingWrite`] (a temporary
//! file beside the target). Only an explicit commit, after the source ended cleanly, renames it
//! over the target; any failure or a dropped future discards it.

use bytes::Bytes;
use stacyvm_fs::{HostRoot, SandboxPath};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::error::{ProviderError, ProviderResult};
use crate::types::ByteSource;

/// Size of one chunk read from the source.
const CHUNK: usize = 256 * 1024;

/// Chunks queued for the writer thread (so at most about `(QUEUE + 2) * CHUNK` bytes in memory).
const QUEUE: usize = 4;

enum Piece {
    Data(Bytes),
    Commit,
}

/// Writes `source` to `path` under `root`; returns the number of bytes written.
pub(super) async fn write_stream(
    root: HostRoot,
    path: SandboxPath,
    mut source: ByteSource,
    mode: u32,
) -> ProviderResult<u64> {
    let (tx, mut rx) = mpsc::channel::<Piece>(QUEUE);
    let writer = tokio::task::spawn_blocking(move || -> stacyvm_fs::FsResult<Option<u64>> {
        let mut pending = root.begin_write(&path, mode)?;
        while let Some(piece) = rx.blocking_recv() {
            match piece {
                Piece::Data(chunk) => pending.write_chunk(&chunk)?,
                Piece::Commit => {
                    let written = pending.written();
                    pending.commit()?;
                    return Ok(Some(written));
                }
            }
        }
        // The sender went away without a commit: dropping `pending` removes the temporary file.
        Ok(None)
    });
    let feed = async {
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let n = (&mut source)
                .take(CHUNK as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| ProviderError::Failed(format!("reading the upload: {e}")))?;
            let piece = if n == 0 { Piece::Commit } else { Piece::Data(Bytes::from(chunk)) };
            let last = n == 0;
            // A closed channel means the writer failed: its error is the one to report.
            if tx.send(piece).await.is_err() || last {
                return Ok::<(), ProviderError>(());
            }
        }
    };
    let fed = feed.await;
    drop(tx);
    let written = writer.await.map_err(|e| ProviderError::Failed(format!("file task: {e}")))??;
    fed?;
    written.ok_or_else(|| ProviderError::Failed("upload ended without a commit".into()))
}
