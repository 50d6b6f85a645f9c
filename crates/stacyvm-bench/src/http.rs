//! Measurements through a StacyVM server over real HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use stacyvm_client::Client;
use stacyvm_types::exec::ExecRequest;
use stacyvm_types::sandbox::SpawnRequest;

use crate::stats::Summary;

/// Sequential `POST /sandboxes` + `DELETE /sandboxes/{id}`: (round trip, spawn, destroy).
pub async fn spawn_destroy(client: &Client, warmup: usize, n: usize) -> Result<(Summary, Summary, Summary)> {
    let req = SpawnRequest::default();
    let mut round = Vec::with_capacity(n);
    let mut spawn = Vec::with_capacity(n);
    let mut destroy = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t0 = Instant::now();
        let sb = client.spawn(&req).await.context("spawn")?;
        let t1 = Instant::now();
        client.destroy(&sb.id).await.with_context(|| format!("destroy {}", sb.id))?;
        let t2 = Instant::now();
        if i >= warmup {
            round.push(t2 - t0);
            spawn.push(t1 - t0);
            destroy.push(t2 - t1);
        }
    }
    Ok((Summary::sequential(round), Summary::sequential(spawn), Summary::sequential(destroy)))
}

/// Sequential synchronous exec of `true` in one sandbox, in `mode` (`argv` or `""` = shell).
pub async fn exec_true(client: &Client, sandbox: &str, mode: &str, warmup: usize, n: usize) -> Result<Summary> {
    let req = ExecRequest { command: "true".into(), mode: mode.into(), ..Default::default() };
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t0 = Instant::now();
        let res = client.exec(sandbox, &req).await.context("exec")?;
        let dt = t0.elapsed();
        if res.exit_code != 0 {
            bail!("exec true exited {} (stderr: {})", res.exit_code, res.stderr.trim());
        }
        if i >= warmup {
            samples.push(dt);
        }
    }
    Ok(Summary::sequential(samples))
}

/// Closed-loop load: how long, how many, how many in flight.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// In-flight requests (each worker owns one keep-alive connection).
    pub concurrency: usize,
    /// Measured phase length.
    pub duration: Duration,
    /// Stop after this many requests (0 = only the duration bounds it).
    pub max_requests: u64,
    /// Unmeasured phase first.
    pub warmup: Duration,
}

/// Result of a load run.
pub struct LoadResult {
    /// Latencies and rate.
    pub summary: Summary,
    /// Requests that failed or were not 200.
    pub errors: u64,
}

/// `GET url` with `load.concurrency` workers sharing one connection pool.
pub async fn get_load(url: &str, api_key: Option<&str>, load: Load) -> Result<LoadResult> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = api_key {
        headers.insert("X-API-Key", key.parse().context("API key is not a valid header value")?);
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(load.concurrency)
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Fail fast with a clear message rather than counting errors for ten seconds.
    let first = http.get(url).send().await.with_context(|| format!("GET {url}"))?;
    if !first.status().is_success() {
        bail!("GET {url}: HTTP {}", first.status());
    }
    first.bytes().await?;
    if !load.warmup.is_zero() {
        run_phase(&http, url, load.concurrency, load.warmup, 0).await;
    }
    let started = Instant::now();
    let (samples, errors) = run_phase(&http, url, load.concurrency, load.duration, load.max_requests).await;
    let wall = started.elapsed();
    Ok(LoadResult { summary: Summary::concurrent(samples, wall), errors })
}

async fn run_phase(
    http: &reqwest::Client,
    url: &str,
    concurrency: usize,
    duration: Duration,
    max_requests: u64,
) -> (Vec<Duration>, u64) {
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, url, issued, errors) = (http.clone(), url.to_string(), issued.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(4096);
            loop {
                if max_requests > 0 && issued.fetch_add(1, Ordering::Relaxed) >= max_requests {
                    break;
                }
                let t0 = Instant::now();
                if t0 >= deadline {
                    break;
                }
                let ok = match http.get(&url).send().await {
                    Ok(resp) => {
                        let status_ok = resp.status().is_success();
                        resp.bytes().await.is_ok() && status_ok
                    }
                    Err(_) => false,
                };
                if ok {
                    samples.push(t0.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for mut s in futures::future::join_all(workers).await.into_iter().flatten() {
        all.append(&mut s);
    }
    (all, errors.load(Ordering::Relaxed))
}
