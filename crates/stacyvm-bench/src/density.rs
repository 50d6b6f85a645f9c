//! How many idle sandboxes fit: spawn N sandboxes through the server and measure the host
//! memory they take, next to N idle `crun` containers of a busybox bundle (the same runtime
//! without StacyVM) measured in the same run.
//!
//! "Host memory used" is `MemTotal - MemAvailable` from `/proc/meminfo`, read after
//! `sync` + `drop_caches` (when root) and a short settle, so page cache that would be reclaimed
//! anyway does not count. The per-sandbox figure is the growth divided by N: it includes
//! everything the host pays for a sandbox (runtime state, cgroups, mounts, the agent process,
//! the server's bookkeeping and connection), not just the agent's RSS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use stacyvm_client::Client;
use stacyvm_types::sandbox::SpawnRequest;

/// What one density measurement found.
#[derive(Debug, Clone)]
pub struct Density {
    /// Sandboxes (or containers) started.
    pub count: usize,
    /// Host memory growth, KiB.
    pub growth_kib: u64,
    /// Time to start them all.
    pub elapsed: Duration,
}

impl Density {
    /// KiB per sandbox.
    pub fn per_item_kib(&self) -> f64 {
        self.growth_kib as f64 / self.count.max(1) as f64
    }
}

/// `MemTotal - MemAvailable`, KiB, after dropping reclaimable caches (root only).
pub fn host_memory_used_kib() -> Result<u64> {
    if unsafe { libc::geteuid() } == 0 {
        let _ = Command::new("sync").status();
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    }
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string("/proc/meminfo").context("read /proc/meminfo")?;
    let field = |name: &str| -> Option<u64> {
        text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(total), Some(available)) => Ok(total.saturating_sub(available)),
        _ => bail!("/proc/meminfo lacks MemTotal or MemAvailable"),
    }
}

/// Spawns `count` idle sandboxes (`concurrency` at a time), measures, destroys them all.
pub async fn stacyvm(client: &Client, count: usize, concurrency: usize) -> Result<Density> {
    let before = tokio::task::spawn_blocking(host_memory_used_kib).await??;
    let started = Instant::now();
    let mut ids: Vec<String> = Vec::with_capacity(count);
    let mut failure = None;
    let request = SpawnRequest { ttl: Some("1h".into()), ..Default::default() };
    for chunk in (0..count).collect::<Vec<_>>().chunks(concurrency.max(1)) {
        let spawns = chunk.iter().map(|_| client.spawn(&request));
        for result in futures::future::join_all(spawns).await {
            match result {
                Ok(sb) => ids.push(sb.id),
                Err(e) => failure = Some(format!("spawn {} failed: {e}", ids.len() + 1)),
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let elapsed = started.elapsed();
    let after = tokio::task::spawn_blocking(host_memory_used_kib).await??;
    for chunk in ids.chunks(concurrency.max(1)) {
        futures::future::join_all(chunk.iter().map(|id| client.destroy(id))).await;
    }
    if let Some(why) = failure {
        bail!("{why} (after {} sandboxes)", ids.len());
    }
    Ok(Density { count: ids.len(), growth_kib: after.saturating_sub(before), elapsed })
}

/// Starts `count` detached `crun` containers sleeping in a busybox bundle, measures, deletes.
pub fn crun(count: usize) -> Result<Density, String> {
    let crun = crate::peers::which("crun").ok_or("crun not on PATH")?;
    let tmp = tempfile_dir().map_err(|e| e.to_string())?;
    let busybox = std::path::Path::new("/bin/busybox");
    let bundles = crate::peers::build_bundles(&crun, busybox, &tmp).map_err(|e| format!("bundle setup: {e:#}"))?;
    let tag = format!("svd{}", std::process::id());
    let before = host_memory_used_kib().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut made = Vec::new();
    let mut failure = None;
    for i in 0..count {
        let id = format!("{tag}-{i}");
        let status = Command::new(&crun)
            .args(["run", "--detach", "--bundle"])
            .arg(&bundles.exec)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => made.push(id),
            other => {
                failure = Some(format!("crun run --detach {id}: {other:?}"));
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let after = host_memory_used_kib();
    for id in &made {
        let _ = Command::new(&crun).args(["delete", "-f", id]).output();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if let Some(why) = failure {
        return Err(why);
    }
    let after = after.map_err(|e| e.to_string())?;
    Ok(Density { count: made.len(), growth_kib: after.saturating_sub(before), elapsed })
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("stacyvm-bench-density-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The markdown section.
pub fn markdown(ours: &Result<Density>, peer: &Result<Density, String>, target_kib: f64) -> String {
    let mut out = String::from("\n### Density (idle sandboxes)\n\n| Measurement | count | host memory growth | per item | started in |\n|---|---:|---:|---:|---:|\n");
    let line = |name: &str, d: &Density| {
        format!(
            "| {name} | {} | {:.1} MiB | {:.0} KiB | {:.1} s ({:.0}/s) |\n",
            d.count,
            d.growth_kib as f64 / 1024.0,
            d.per_item_kib(),
            d.elapsed.as_secs_f64(),
            d.count as f64 / d.elapsed.as_secs_f64().max(1e-9)
        )
    };
    match ours {
        Ok(d) => out.push_str(&line("StacyVM idle sandboxes (spawned over HTTP)", d)),
        Err(e) => out.push_str(&format!("| StacyVM idle sandboxes | — | — | — | failed: {e:#} |\n")),
    }
    match peer {
        Ok(d) => out.push_str(&line("peer: idle `crun run --detach` busybox containers (sleep)", d)),
        Err(e) => out.push_str(&format!("| peer: idle crun containers | — | — | — | skipped: {e} |\n")),
    }
    if let (Ok(a), Ok(b)) = (ours, peer) {
        out.push_str(&format!("\nPer item, StacyVM / crun = {:.2}x.\n", a.per_item_kib() / b.per_item_kib().max(1.0)));
    }
    if let Ok(d) = ours {
        let verdict = if d.per_item_kib() <= target_kib { "met" } else { "MISSED" };
        out.push_str(&format!(
            "Target ≤ {:.0} KiB host memory per idle sandbox at {} sandboxes: {:.0} KiB — {verdict}.\n",
            target_kib,
            d.count,
            d.per_item_kib()
        ));
    }
    out
}

/// The JSON form.
pub fn json(ours: &Result<Density>, peer: &Result<Density, String>) -> Value {
    let item = |d: &Density| json!({"count": d.count, "growth_kib": d.growth_kib, "per_item_kib": d.per_item_kib(), "elapsed_s": d.elapsed.as_secs_f64()});
    json!({
        "stacyvm": ours.as_ref().map(item).unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
        "crun": peer.as_ref().map(item).unwrap_or_else(|e| json!({"skipped": e})),
    })
}
