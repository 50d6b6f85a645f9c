//! `stacyvm-bench`: latency and throughput of a running StacyVM server over real HTTP, next to
//! the cost of the same work without StacyVM, measured in the same run.
//!
//! Usage: `STACYVM_URL=http://127.0.0.1:7423 stacyvm-bench [--json]`; `scripts/bench.sh` starts
//! a throwaway server on the mock provider and runs this against it.

mod density;
mod files;
mod http;
mod peers;
mod report;
mod stats;

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use stacyvm_client::Client;
use stacyvm_types::sandbox::SpawnRequest;

use crate::http::Load;
use crate::stats::{Kind, Row, Summary};

/// Benchmarks a StacyVM server (spawn+destroy, exec, GET throughput) against peers.
#[derive(Debug, Parser)]
#[command(name = "stacyvm-bench", version)]
struct Args {
    /// Server base URL.
    #[arg(long, env = "STACYVM_URL", default_value = "http://127.0.0.1:7423")]
    url: String,
    /// API key, when the server requires one.
    #[arg(long, env = "STACYVM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Timed iterations of each sequential measurement (spawn+destroy, exec, process peers).
    #[arg(short = 'n', long, default_value_t = 500)]
    iterations: usize,
    /// Untimed iterations before each sequential measurement.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// In-flight GET requests (one keep-alive connection each).
    #[arg(short = 'c', long, default_value_t = 64)]
    concurrency: usize,
    /// Length of each GET load phase, in seconds (also used for wrk).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Stop a GET load phase after this many requests (0 = bounded by --duration only).
    #[arg(long, default_value_t = 0)]
    get_requests: u64,
    /// Untimed GET load before each load phase, in seconds.
    #[arg(long, default_value_t = 1.0)]
    get_warmup: f64,
    /// Tokio worker threads of the benchmark client (the server runs on the same cores).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Timed iterations of the crun peers.
    #[arg(long, default_value_t = 100)]
    crun_iterations: usize,
    /// Timed iterations of the docker peers.
    #[arg(long, default_value_t = 10)]
    docker_iterations: usize,
    /// Image for the docker peers; used only if already present locally.
    #[arg(long, default_value = "busybox")]
    docker_image: String,
    /// wrk threads for the second-opinion GET measurement.
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
    /// Skip the GET measurements (reqwest and wrk); sequential latencies and peers only.
    #[arg(long)]
    skip_get: bool,
    /// Skip the wrk measurement.
    #[arg(long)]
    no_wrk: bool,
    /// Skip the crun peers.
    #[arg(long)]
    no_crun: bool,
    /// Skip the docker peers.
    #[arg(long)]
    no_docker: bool,
    /// Timed 64 MiB file write+read round trips (StacyVM and every file peer).
    #[arg(long, default_value_t = 5)]
    file_iterations: usize,
    /// Untimed file round trips before each file measurement.
    #[arg(long, default_value_t = 1)]
    file_warmup: usize,
    /// Skip the file write+read measurements.
    #[arg(long)]
    no_files: bool,
    /// Print JSON instead of markdown.
    #[arg(long)]
    json: bool,
    /// Also measure density: spawn this many idle sandboxes and the host memory they take (0 = skip).
    #[arg(long, default_value_t = 0)]
    density: usize,
    /// Spawns in flight during the density measurement.
    #[arg(long, default_value_t = 4)]
    density_concurrency: usize,
    /// Idle crun containers for the density peer (default: min(--density, 200); 0 = skip).
    #[arg(long)]
    density_peer: Option<usize>,
    /// Density target: host memory per idle sandbox, KiB.
    #[arg(long, default_value_t = 2048.0)]
    density_target_kib: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let api_key = args.api_key.clone().filter(|k| !k.is_empty());
    let client = Client::new(&args.url, api_key.clone())?;
    let n = args.iterations.max(1);
    let w = args.warmup;
    let mut rows = Vec::new();

    progress(&format!("server {}", args.url));
    rt.block_on(client.health()).with_context(|| format!("server at {} does not answer /health", args.url))?;

    let providers: Vec<serde_json::Value> = rt.block_on(client.get_json("/providers")).context("list providers")?;
    let provider = providers
        .iter()
        .find(|p| p["default"] == true)
        .and_then(|p| p["name"].as_str())
        .unwrap_or("unknown")
        .to_string();
    progress("spawn+destroy");
    let (round, spawn, destroy) = rt.block_on(http::spawn_destroy(&client, w, n))?;
    let label = format!("StacyVM spawn+destroy ({provider}, sequential)");
    rows.push(Row::measured("spawn_destroy", &label, Kind::Stacyvm, round));
    rows.push(Row::measured("spawn", "  of which POST /sandboxes", Kind::Stacyvm, spawn));
    rows.push(Row::measured("destroy", "  of which DELETE /sandboxes/{id}", Kind::Stacyvm, destroy));

    let data = if args.no_files { bytes::Bytes::new() } else { files::random_data(files::FILE_SIZE) };
    let file_job = peers::FileJob { data: &data, warmup: args.file_warmup, n: args.file_iterations.max(1) };
    let sandbox = rt.block_on(client.spawn(&SpawnRequest::default())).context("spawn the benchmark sandbox")?;
    let result = measure_files(&rt, &args, api_key.clone(), &sandbox.id, &file_job, &mut rows)
        .and_then(|()| measure_with_sandbox(&rt, &client, &args, api_key.as_deref(), &sandbox.id, &mut rows));
    let cleanup = rt.block_on(client.destroy(&sandbox.id));
    result?;
    cleanup.with_context(|| format!("destroy {}", sandbox.id))?;

    progress("peers: fork+exec, sh -c");
    rows.push(peer_row("fork_exec", "fork+exec /bin/true (std::process::Command)", peers::fork_exec_true(w, n)));
    rows.push(peer_row("sh_c", "sh -c true (std::process::Command)", peers::sh_c_true(w, n)));
    const HOST_FILE: &str = "host fs write+read 64 MiB (std::fs, no fsync)";
    const CRUN_FILE: &str = "crun exec sh -c 'cat > f' / cat f, 64 MiB (bind-mounted host dir)";
    const DOCKER_FILE: &str = "docker cp in and out, 64 MiB";
    if args.no_files {
        rows.push(Row::skipped("file_host", HOST_FILE, Kind::Peer, "--no-files"));
    } else {
        progress("peers: host fs 64 MiB write+read");
        let host = peers::TempDir::new("stacyvm-bench-fs-")
            .and_then(|tmp| files::host_fs(&tmp.0, &data, file_job.warmup, file_job.n));
        rows.push(peer_row("file_host", HOST_FILE, host).with_bytes(files::ROUND_TRIP_BYTES));
    }

    if args.no_crun {
        rows.push(Row::skipped("crun_run", "crun run /bin/true (busybox bundle)", Kind::Peer, "--no-crun"));
        rows.push(Row::skipped("crun_exec", "crun exec /bin/true", Kind::Peer, "--no-crun"));
        rows.push(Row::skipped("file_crun", CRUN_FILE, Kind::Peer, "--no-crun"));
    } else {
        progress("peers: crun");
        let cw = (args.crun_iterations / 10).max(1);
        match peers::crun(cw, args.crun_iterations.max(1), &file_job) {
            Ok(f) => {
                rows.push(
                    fig_row("crun_run", "crun run /bin/true (busybox bundle)", f.run).with_note(f.version.clone()),
                );
                rows.push(
                    fig_row("crun_exec", "crun exec /bin/true (running container)", f.exec)
                        .with_note(f.version.clone()),
                );
                let file = if args.no_files { Err("--no-files".to_string()) } else { f.file };
                rows.push(
                    fig_row("file_crun", CRUN_FILE, file).with_note(f.version).with_bytes(files::ROUND_TRIP_BYTES),
                );
            }
            Err(why) => {
                rows.push(Row::skipped("crun_run", "crun run /bin/true (busybox bundle)", Kind::Peer, why.clone()));
                rows.push(Row::skipped("crun_exec", "crun exec /bin/true", Kind::Peer, why.clone()));
                rows.push(Row::skipped("file_crun", CRUN_FILE, Kind::Peer, why));
            }
        }
    }

    if args.no_docker {
        rows.push(Row::skipped("docker_run", "docker run --rm", Kind::Peer, "--no-docker"));
        rows.push(Row::skipped("docker_exec", "docker exec", Kind::Peer, "--no-docker"));
        rows.push(Row::skipped("file_docker", DOCKER_FILE, Kind::Peer, "--no-docker"));
    } else {
        progress("peers: docker");
        let image = &args.docker_image;
        let dw = (args.docker_iterations / 5).max(1);
        match peers::docker(image, dw, args.docker_iterations.max(1), &file_job) {
            Ok(f) => {
                let v = format!("docker {}", f.version);
                rows.push(fig_row("docker_run", format!("docker run --rm {image} true"), f.run).with_note(v.clone()));
                rows.push(fig_row("docker_exec", format!("docker exec ({image}) true"), f.exec).with_note(v.clone()));
                let file = if args.no_files { Err("--no-files".to_string()) } else { f.file };
                rows.push(fig_row("file_docker", DOCKER_FILE, file).with_note(v).with_bytes(files::ROUND_TRIP_BYTES));
            }
            Err(why) => {
                rows.push(Row::skipped("docker_run", "docker run --rm", Kind::Peer, why.clone()));
                rows.push(Row::skipped("docker_exec", "docker exec", Kind::Peer, why.clone()));
                rows.push(Row::skipped("file_docker", DOCKER_FILE, Kind::Peer, why));
            }
        }
    }

    let ctx = report::Context {
        url: args.url.clone(),
        provider,
        iterations: n,
        warmup: w,
        concurrency: args.concurrency,
        duration_s: args.duration,
        client_threads: args.client_threads.max(1),
    };
    let density = (args.density > 0).then(|| {
        progress(&format!("density: {} idle sandboxes", args.density));
        let ours = rt.block_on(density::stacyvm(&client, args.density, args.density_concurrency));
        let peer_count = args.density_peer.unwrap_or(args.density.min(200));
        progress(&format!("density peer: {peer_count} idle crun containers"));
        let peer = if peer_count == 0 { Err("--density-peer 0".to_string()) } else { density::crun(peer_count) };
        (ours, peer)
    });
    if args.json {
        let mut doc = report::json(&ctx, &rows);
        if let Some((ours, peer)) = &density {
            doc["density"] = density::json(ours, peer);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", report::markdown(&ctx, &rows));
        if let Some((ours, peer)) = &density {
            print!("{}", density::markdown(ours, peer, args.density_target_kib));
        }
    }
    Ok(())
}

/// The StacyVM file round trip: `PUT /files` raw then `GET /files` of 64 MiB, verified.
fn measure_files(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    api_key: Option<String>,
    id: &str,
    job: &peers::FileJob<'_>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    const NAME: &str = "StacyVM file write+read 64 MiB (PUT raw, GET)";
    if args.no_files {
        rows.push(Row::skipped("file_rw", NAME, Kind::Stacyvm, "--no-files"));
        return Ok(());
    }
    progress("file write+read 64 MiB");
    // A transfer is one request: the default 30 s timeout is too short for slow disks.
    let client = Client::with_timeout(&args.url, api_key, Duration::from_secs(600))?;
    let data = bytes::Bytes::copy_from_slice(job.data);
    let s = rt.block_on(files::stacyvm(&client, id, &data, job.warmup, job.n))?;
    rows.push(Row::measured("file_rw", NAME, Kind::Stacyvm, s).with_bytes(files::ROUND_TRIP_BYTES));
    Ok(())
}

/// Exec and GET measurements that need a live sandbox.
fn measure_with_sandbox(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    args: &Args,
    api_key: Option<&str>,
    id: &str,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let (n, w) = (args.iterations.max(1), args.warmup);
    progress("exec argv");
    let s = rt.block_on(http::exec_true(client, id, "argv", w, n))?;
    rows.push(Row::measured("exec_argv", "StacyVM exec `true` (argv mode, sync)", Kind::Stacyvm, s));
    progress("exec shell");
    let s = rt.block_on(http::exec_true(client, id, "", w, n))?;
    rows.push(Row::measured("exec_shell", "StacyVM exec `true` (shell mode, sync)", Kind::Stacyvm, s));

    if args.skip_get {
        return Ok(());
    }
    let base = args.url.trim_end_matches('/');
    let get_url = format!("{base}/api/v1/sandboxes/{id}");
    let health_url = format!("{base}/api/v1/health");
    let secs = Duration::from_secs_f64(args.duration.max(0.1));
    let load = Load {
        concurrency: args.concurrency.max(1),
        duration: secs,
        max_requests: args.get_requests,
        warmup: Duration::from_secs_f64(args.get_warmup.max(0.0)),
    };

    progress("GET sequential");
    let seq =
        Load { concurrency: 1, duration: Duration::from_secs(3600), max_requests: n as u64, warmup: Duration::ZERO };
    let r = rt.block_on(http::get_load(&get_url, api_key, seq))?;
    rows.push(load_row("get_seq", "StacyVM GET /sandboxes/{id} (1 in flight)", Kind::Stacyvm, r));

    progress(&format!("GET x{} for {:?}", load.concurrency, secs));
    let r = rt.block_on(http::get_load(&get_url, api_key, load))?;
    let name = format!("StacyVM GET /sandboxes/{{id}} ({} in flight, reqwest)", load.concurrency);
    rows.push(load_row("get", name, Kind::Stacyvm, r));

    progress(&format!("GET /health x{} for {:?}", load.concurrency, secs));
    let r = rt.block_on(http::get_load(&health_url, api_key, load))?;
    let name = format!("GET /health, same server ({} in flight, reqwest)", load.concurrency);
    rows.push(load_row("health", name, Kind::Peer, r).with_note("HTTP stack floor: no sandbox lookup"));

    let wrk_name = format!("StacyVM GET /sandboxes/{{id}} ({} conns, wrk)", load.concurrency);
    if args.no_wrk {
        rows.push(Row::skipped("get_wrk", wrk_name, Kind::Stacyvm, "--no-wrk"));
    } else {
        progress("GET with wrk");
        rows.push(match peers::wrk(&get_url, api_key, args.wrk_threads.max(1), load.concurrency, secs) {
            Ok(f) => {
                let note = if f.errors.is_empty() { f.command } else { format!("{} — {}", f.command, f.errors) };
                Row::measured("get_wrk", wrk_name, Kind::Stacyvm, f.summary).with_note(note)
            }
            Err(why) => Row::skipped("get_wrk", wrk_name, Kind::Stacyvm, why),
        });
    }
    Ok(())
}

fn load_row(key: &'static str, name: impl Into<String>, kind: Kind, r: http::LoadResult) -> Row {
    let row = Row::measured(key, name, kind, r.summary);
    if r.errors > 0 {
        row.with_note(format!("{} failed requests", r.errors))
    } else {
        row
    }
}

fn peer_row(key: &'static str, name: &str, r: Result<Summary>) -> Row {
    match r {
        Ok(s) => Row::measured(key, name, Kind::Peer, s),
        Err(e) => Row::skipped(key, name, Kind::Peer, format!("{e:#}")),
    }
}

fn fig_row(key: &'static str, name: impl Into<String>, r: Result<Summary, String>) -> Row {
    match r {
        Ok(s) => Row::measured(key, name, Kind::Peer, s),
        Err(e) => Row::skipped(key, name, Kind::Peer, e),
    }
}

fn progress(what: &str) {
    eprintln!("stacyvm-bench: {what}");
}
