//! Streamed file transfers through a real crun container: a 256 MiB write and read-back with
//! the host process's peak memory measured (VmHWM, reset through `/proc/self/clear_refs`), a
//! source that fails half-way (a client disconnect) writing nothing, and escapes through a
//! symlink staying inside the container. Same prerequisites as `faults.rs`
//! (`stacyvm_testkit::oci_prerequisites`); one test, as memory is measured per process.

mod common;

use std::time::Instant;

use stacyvm_provider::conformance::{capture, shell, Pattern};
use stacyvm_provider::{ExitReason, Provider, ProviderError, SandboxPath, SandboxSpec};
use stacyvm_provider_oci::OciProvider;
use tokio::io::AsyncReadExt;

use common::IMAGE;
const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 256 * MIB;

async fn provider() -> Option<(tempfile::TempDir, OciProvider)> {
    common::offline_busybox_provider().await
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets the peak resident set; returns the current one in bytes.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    status_kib("VmRSS:") * 1024
}

fn peak() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn path(p: &str) -> SandboxPath {
    SandboxPath::parse(p).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_files_through_crun_stay_out_of_memory() {
    let Some((_dir, p)) = provider().await else { return };
    let id = format!("sb-{:08x}", (std::process::id() << 8) ^ 0x5f);
    let h = p.create(&SandboxSpec { id, image: IMAGE.into(), memory_mb: 512, vcpus: 1 }).await.unwrap();
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let target = path("/workspace/big.bin");
        let base = reset_peak();
        let started = Instant::now();
        let n = p.write_file_stream(&h, &target, Box::pin(Pattern::new(3, SIZE)), 0o600).await.unwrap();
        let grew = peak().saturating_sub(base);
        eprintln!("oci write: {} MiB in {:?}, peak RSS +{} MiB", n / MIB, started.elapsed(), grew / MIB);
        assert_eq!(n, SIZE);
        assert!(grew < 64 * MIB, "write grew the peak RSS by {} MiB", grew / MIB);
        // Seen from inside: size, mode and owner of a sandbox user's file.
        let out = capture(&p, &h, shell("stat -c '%s %a' /workspace/big.bin")).await.unwrap();
        assert_eq!(out.text(stacyvm_types::exec::StreamName::Stdout).trim(), format!("{SIZE} 600"));

        let base = reset_peak();
        let started = Instant::now();
        let mut file = p.read_file(&h, &target).await.unwrap();
        let mut expected = Pattern::new(3, SIZE);
        let (mut got, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut total = 0u64;
        loop {
            let mut filled = 0;
            while filled < got.len() {
                let n = file.reader.read(&mut got[filled..]).await.unwrap();
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            expected.read_exact(&mut want[..filled]).await.unwrap();
            assert!(got[..filled] == want[..filled], "content differs in the MiB at {total}");
            total += filled as u64;
        }
        let grew = peak().saturating_sub(base);
        eprintln!("oci read: {} MiB in {:?}, peak RSS +{} MiB", total / MIB, started.elapsed(), grew / MIB);
        assert_eq!(total, SIZE);
        assert!(grew < 64 * MIB, "read grew the peak RSS by {} MiB", grew / MIB);

        // A disconnect half-way: an error, the old file intact, no temporary file left.
        let failing = Pattern::new(4, SIZE).failing_after(32 * MIB);
        let err = p.write_file_stream(&h, &target, Box::pin(failing), 0o644).await;
        assert!(matches!(err, Err(ProviderError::Failed(_))), "{err:?}");
        let mut leftovers = String::new();
        for _ in 0..100 {
            let out = capture(&p, &h, shell("ls -A /workspace")).await.unwrap();
            leftovers = out.text(stacyvm_types::exec::StreamName::Stdout);
            if leftovers.trim() == "big.bin" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(leftovers.trim(), "big.bin", "temporary file left behind");
        assert_eq!(p.stat(&h, &target).await.unwrap().size, SIZE, "old file intact");
        let out = capture(&p, &h, shell("head -c 16 /workspace/big.bin | od -An -tx1")).await.unwrap();
        let mut first = vec![0u8; 16];
        Pattern::new(3, SIZE).read_exact(&mut first).await.unwrap();
        let hex: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out.text(stacyvm_types::exec::StreamName::Stdout).split_whitespace().collect::<Vec<_>>(), hex);

        // Through a symlink pointing far above the root: lands inside the container, or fails.
        let out = capture(&p, &h, shell("ln -s ../../../../../.. /workspace/up")).await.unwrap();
        assert_eq!(out.reason, ExitReason::Exited(0));
        let marker = format!("stacyvm-stream-escape-{}", std::process::id());
        let _ = p
            .write_file_stream(&h, &path(&format!("/workspace/up/tmp/{marker}")), Box::pin(Pattern::new(5, 10)), 0o644)
            .await;
        assert!(!std::path::Path::new("/tmp").join(&marker).exists(), "an upload escaped to the host");
        let _ = p.remove(&h, &target, false).await;
    }))
    .await;
    let _ = p.destroy(&h).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
