//! Large files through the agent stay out of memory: a 256 MiB streamed write and read, with the
//! test process's peak resident set (VmHWM, reset through `/proc/self/clear_refs`) measured
//! around each, and a stalled reader that must not make the host buffer the file.
//!
//! One test only: memory is per process, and parallel tests would disturb the measurement.

mod common;

use std::time::Duration;

use common::provider;
use stacyvm_provider::conformance::Pattern;
use stacyvm_provider::{Provider, SandboxPath, SandboxSpec};
use tokio::io::AsyncReadExt;

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 256 * MIB;

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} missing"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets the peak resident set to the current one; returns the current one in bytes.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM (Linux >= 4.0)");
    status_kib("VmRSS:") * 1024
}

fn peak() -> u64 {
    status_kib("VmHWM:") * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_file_streams_through_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(dir.path());
    let spec = SandboxSpec { id: "sb-stream256".into(), image: "none".into(), memory_mb: 256, vcpus: 1 };
    let h = p.create(&spec).await.unwrap();
    let target = SandboxPath::parse("/workspace/big.bin").unwrap();

    // Write.
    let base = reset_peak();
    let started = std::time::Instant::now();
    let n = p.write_file_stream(&h, &target, Box::pin(Pattern::new(42, SIZE)), 0o644).await.unwrap();
    let write_growth = peak().saturating_sub(base);
    eprintln!("write: {} MiB in {:?}, peak RSS +{} MiB", n / MIB, started.elapsed(), write_growth / MIB);
    assert_eq!(n, SIZE);
    assert_eq!(std::fs::metadata(dir.path().join("sb-stream256/workspace/big.bin")).unwrap().len(), SIZE);
    assert!(write_growth < 64 * MIB, "a streamed write grew the peak RSS by {} MiB", write_growth / MIB);

    // Read back and compare with the regenerated sequence, chunk by chunk.
    let base = reset_peak();
    let started = std::time::Instant::now();
    let mut file = p.read_file(&h, &target).await.unwrap();
    let mut expected = Pattern::new(42, SIZE);
    let (mut got, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut total = 0u64;
    loop {
        let n = read_full(&mut file.reader, &mut got).await;
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n]).await.unwrap();
        assert!(got[..n] == want[..n], "content differs in the MiB at {total}");
        total += n as u64;
    }
    let read_growth = peak().saturating_sub(base);
    eprintln!("read: {} MiB in {:?}, peak RSS +{} MiB", total / MIB, started.elapsed(), read_growth / MIB);
    assert_eq!(total, SIZE);
    assert!(read_growth < 64 * MIB, "a streamed read grew the peak RSS by {} MiB", read_growth / MIB);

    // A consumer that stalls: the agent waits for acknowledgements instead of flooding the host.
    let base = reset_peak();
    let mut file = p.read_file(&h, &target).await.unwrap();
    let mut first = vec![0u8; 4096];
    file.reader.read_exact(&mut first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stalled_growth = peak().saturating_sub(base);
    eprintln!("stalled read: peak RSS +{} MiB", stalled_growth / MIB);
    assert!(stalled_growth < 32 * MIB, "a stalled read buffered {} MiB", stalled_growth / MIB);
    drop(file);

    // Still usable after the abandoned read.
    assert_eq!(p.stat(&h, &target).await.unwrap().size, SIZE);
    p.destroy(&h).await.unwrap();
}

/// Reads until `buf` is full or the stream ends.
async fn read_full(reader: &mut (impl tokio::io::AsyncRead + Unpin), buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await.unwrap();
        if n == 0 {
            break;
        }
        filled += n;
    }
    filled
}
