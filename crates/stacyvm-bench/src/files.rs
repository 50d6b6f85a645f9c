//! File write+read throughput: 64 MiB of random data uploaded and downloaded again, with the
//! content verified, through StacyVM (`PUT /files` raw, `GET /files`) and through the peers (the
//! host filesystem, `crun exec` piping through `cat`, `docker cp`).
//!
//! One timed operation is one round trip: write the whole file, then read it back and compare
//! it with what was written (the comparison is inside the timed section everywhere). No side
//! calls `fsync`: StacyVM's atomic replace does not, so the host peer does not either. MB/s is
//! `2 × size / time` in 10^6 bytes (both directions move the file).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use stacyvm_client::Client;

use crate::stats::Summary;

/// Size of the benchmark file.
pub const FILE_SIZE: usize = 64 << 20;

/// Bytes moved by one round trip (up and down).
pub const ROUND_TRIP_BYTES: u64 = 2 * FILE_SIZE as u64;

/// `len` pseudo-random bytes (xorshift64*, fixed seed: incompressible, reproducible).
pub fn random_data(len: usize) -> Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = vec![0u8; len];
    for piece in out.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        piece.copy_from_slice(&word[..piece.len()]);
    }
    Bytes::from(out)
}

/// Runs `round` `warmup + n` times, timing each.
fn time_rounds(warmup: usize, n: usize, mut round: impl FnMut() -> Result<()>) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t0 = Instant::now();
        round()?;
        if i >= warmup {
            samples.push(t0.elapsed());
        }
    }
    Ok(Summary::sequential(samples))
}

fn verify(got: &[u8], want: &[u8], what: &str) -> Result<()> {
    if got.len() != want.len() {
        bail!("{what}: read {} bytes back, wrote {}", got.len(), want.len());
    }
    if got != want {
        bail!("{what}: content read back differs from what was written");
    }
    Ok(())
}

/// StacyVM: `PUT /files` (raw, streamed) then `GET /files`, compared while it arrives.
pub async fn stacyvm(client: &Client, id: &str, data: &Bytes, warmup: usize, n: usize) -> Result<Summary> {
    let path = "/workspace/stacyvm-bench-64m.bin";
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t0 = Instant::now();
        let source = std::io::Cursor::new(data.clone());
        let written = client.upload_file(id, path, source, Some(data.len() as u64), None).await.context("upload")?;
        if written.size != data.len() as u64 {
            bail!("upload: server wrote {} bytes, sent {}", written.size, data.len());
        }
        let mut stream = std::pin::pin!(client.download_file(id, path).await.context("download")?);
        let mut offset = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context("download")?;
            let end = offset + chunk.len();
            if end > data.len() || data[offset..end] != chunk[..] {
                bail!("download: content differs from the upload at byte {offset}");
            }
            offset = end;
        }
        if offset != data.len() {
            bail!("download: {offset} bytes, uploaded {}", data.len());
        }
        if i >= warmup {
            samples.push(t0.elapsed());
        }
    }
    let _ = client.delete_file(id, path).await;
    Ok(Summary::sequential(samples))
}

/// Host filesystem: `std::fs::write` then `std::fs::read` in a temporary directory (no fsync).
pub fn host_fs(dir: &Path, data: &[u8], warmup: usize, n: usize) -> Result<Summary> {
    let file = dir.join("host-64m.bin");
    let s = time_rounds(warmup, n, || {
        std::fs::write(&file, data).with_context(|| format!("write {}", file.display()))?;
        let back = std::fs::read(&file).with_context(|| format!("read {}", file.display()))?;
        verify(&back, data, "host fs")
    });
    let _ = std::fs::remove_file(&file);
    s
}

/// Runs `cmd` with `data` on its stdin (fed from a thread); fails unless it exits 0.
pub fn pipe_in(mut cmd: Command, data: &[u8]) -> Result<()> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    std::thread::scope(|scope| {
        let feeder = scope.spawn(move || stdin.write_all(data));
        let out = child.wait_with_output()?;
        let fed = feeder.join().map_err(|_| anyhow::anyhow!("stdin feeder panicked"))?;
        if !out.status.success() {
            bail!("{:?} failed ({}): {}", cmd.get_program(), out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        fed.context("write stdin")
    })
}

/// Runs `cmd` and returns its stdout; fails unless it exits 0.
pub fn pipe_out(mut cmd: Command) -> Result<Vec<u8>> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut out = Vec::with_capacity(FILE_SIZE);
    child.stdout.take().context("stdout")?.read_to_end(&mut out)?;
    let done = child.wait_with_output()?;
    if !done.status.success() {
        bail!("{:?} failed ({}): {}", cmd.get_program(), done.status, String::from_utf8_lossy(&done.stderr).trim());
    }
    Ok(out)
}

/// Round trips through commands: `write()` gets the data on stdin, `read()` prints it back.
pub fn piped(
    data: &[u8],
    warmup: usize,
    n: usize,
    mut write: impl FnMut() -> Command,
    mut read: impl FnMut() -> Command,
) -> Result<Summary> {
    time_rounds(warmup, n, || {
        pipe_in(write(), data)?;
        verify(&pipe_out(read())?, data, "read back")
    })
}

/// Round trips through `docker cp` (in and out of a running container), via host files.
pub fn docker_cp(docker: &Path, id: &str, dir: &Path, data: &[u8], warmup: usize, n: usize) -> Result<Summary> {
    let src = dir.join("docker-in.bin");
    let dst = dir.join("docker-out.bin");
    std::fs::write(&src, data)?;
    let run = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let out = Command::new(docker).args(args).stdin(Stdio::null()).output()?;
        if !out.status.success() {
            bail!("docker cp failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    };
    let target = format!("{id}:/tmp/stacyvm-bench-64m.bin");
    time_rounds(warmup, n, || {
        let _ = std::fs::remove_file(&dst);
        run(&["cp".as_ref(), src.as_os_str(), target.as_ref()])?;
        run(&["cp".as_ref(), target.as_ref(), dst.as_os_str()])?;
        verify(&std::fs::read(&dst)?, data, "docker cp")
    })
}
