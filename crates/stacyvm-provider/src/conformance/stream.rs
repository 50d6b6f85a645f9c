//! Conformance of streamed writes ([`Provider::write_file_stream`]): byte-exact round trips of
//! content larger than any single chunk, the mode, replacement of an existing file, and that a
//! source failing half-way writes nothing (no partial file, no temporary file, the old content
//! intact).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::{path, read_all, spawn};
use crate::error::ProviderError;
use crate::Provider;

/// A deterministic pseudo-random byte source of `len` bytes that optionally fails (like a client
/// disconnecting) after `fail_after` bytes. The same `seed` always gives the same bytes.
pub struct Pattern {
    state: u64,
    left: u64,
    fail_after: Option<u64>,
    produced: u64,
}

impl Pattern {
    /// `len` bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Pattern {
        Pattern { state: seed | 1, left: len, fail_after: None, produced: 0 }
    }

    /// The same source, failing with `ConnectionReset` once `n` bytes were produced.
    pub fn failing_after(mut self, n: u64) -> Pattern {
        self.fail_after = Some(n);
        self
    }

    /// Fills `out` with the next bytes of the sequence (xorshift64*).
    pub fn fill(&mut self, out: &mut [u8]) {
        for piece in out.chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let word = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            piece.copy_from_slice(&word[..piece.len()]);
        }
    }
}

impl AsyncRead for Pattern {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.fail_after.is_some_and(|n| this.produced >= n) {
            return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "source went away")));
        }
        // Whole 8-byte words only (except at the very end), so the sequence does not depend on
        // how the reader splits it.
        let mut n = (buf.remaining() as u64).min(this.left).min(64 * 1024) as usize;
        if let Some(limit) = this.fail_after {
            n = n.min((limit - this.produced) as usize);
        }
        if n as u64 != this.left {
            n -= n % 8;
        }
        if n == 0 && this.left > 0 {
            return Poll::Ready(Err(std::io::Error::other("read buffer smaller than 8 bytes")));
        }
        let start = buf.filled().len();
        buf.initialize_unfilled_to(n);
        buf.advance(n);
        this.fill(&mut buf.filled_mut()[start..start + n]);
        this.left -= n as u64;
        this.produced += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// The bytes of `Pattern::new(seed, len)`, in memory (for small checks).
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let whole = len - len % 8;
    let mut p = Pattern::new(seed, len as u64);
    p.fill(&mut out[..whole]);
    p.fill(&mut out[whole..]);
    out
}

pub(super) async fn files_stream(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "stream").await;
    let len = 5 * 1024 * 1024 + 3;
    let target = path("/workspace/streamed/big.bin");
    let n = p.write_file_stream(&h, &target, Box::pin(Pattern::new(7, len as u64)), 0o640).await.unwrap();
    assert_eq!(n, len as u64, "[stream] size reported");
    assert!(read_all(p, &h, "/workspace/streamed/big.bin").await.unwrap() == pattern_bytes(7, len), "[stream] bytes");
    let st = p.stat(&h, &target).await.unwrap();
    assert_eq!((st.size, st.mode & 0o7777), (len as u64, 0o640), "[stream] stat");

    // Replacing with a short file, and an empty one.
    p.write_file_stream(&h, &target, Box::pin(Pattern::new(8, 10)), 0o644).await.unwrap();
    assert_eq!(read_all(p, &h, "/workspace/streamed/big.bin").await.unwrap(), pattern_bytes(8, 10));
    p.write_file_stream(&h, &path("/workspace/streamed/empty"), Box::pin(Pattern::new(1, 0)), 0o644).await.unwrap();
    assert_eq!(read_all(p, &h, "/workspace/streamed/empty").await.unwrap(), b"", "[stream] empty");

    // A source failing half-way: an error, and nothing changes.
    let failing = Pattern::new(9, 4 << 20).failing_after(2 << 20);
    let err = p.write_file_stream(&h, &target, Box::pin(failing), 0o644).await;
    assert!(matches!(err, Err(ProviderError::Failed(_))), "[stream] failing source: {err:?}");
    assert_eq!(read_all(p, &h, "/workspace/streamed/big.bin").await.unwrap(), pattern_bytes(8, 10), "[stream] intact");
    // The agent discards the temporary file asynchronously: give it a moment.
    let mut names = Vec::new();
    for _ in 0..100 {
        let listed = p.list_dir(&h, &path("/workspace/streamed")).await.unwrap();
        names = listed.into_iter().map(|e| e.path).collect::<Vec<_>>();
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(names, ["/workspace/streamed/big.bin", "/workspace/streamed/empty"], "[stream] no leftovers");
    p.destroy(&h).await.unwrap();
}
