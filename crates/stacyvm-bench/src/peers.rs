//! The same work without StacyVM: plain processes, crun, docker; and wrk as a second opinion
//! on HTTP throughput.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::files;
use crate::stats::Summary;

/// The file round trip each peer runs next to its other measurements (see [`crate::files`]).
pub struct FileJob<'a> {
    /// Content to write and read back.
    pub data: &'a [u8],
    /// Untimed round trips.
    pub warmup: usize,
    /// Timed round trips.
    pub n: usize,
}

/// Runs `make()` `warmup + n` times, timing each run; every run must succeed.
fn time_command(warmup: usize, n: usize, mut make: impl FnMut(usize) -> Command) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let mut cmd = make(i);
        let t0 = Instant::now();
        let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("start {cmd:?}"))?;
        let dt = t0.elapsed();
        check(&cmd, &out)?;
        if i >= warmup {
            samples.push(dt);
        }
    }
    Ok(Summary::sequential(samples))
}

fn check(cmd: &Command, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    bail!("{:?} failed ({}): {first}", cmd.get_program(), out.status)
}

/// `fork+exec /bin/true` with captured output (what the mock provider does per exec).
pub fn fork_exec_true(warmup: usize, n: usize) -> Result<Summary> {
    time_command(warmup, n, |_| Command::new("/bin/true"))
}

/// `sh -c true` with captured output (what shell-mode exec runs).
pub fn sh_c_true(warmup: usize, n: usize) -> Result<Summary> {
    time_command(warmup, n, |_| {
        let mut c = Command::new("sh");
        c.args(["-c", "true"]);
        c
    })
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Runs a command to completion, killing it after `limit`.
fn run_with_limit(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{:?} did not finish within {limit:?}", cmd.get_program());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temporary directory.
    pub fn new(prefix: &str) -> Result<TempDir> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
            let dir = base.join(format!("{prefix}{}-{nanos:x}{attempt}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
            }
        }
        bail!("could not create a temporary directory")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Results of the crun peers.
pub struct CrunFigures {
    /// `crun run` of `/bin/true` (create + start + wait + delete).
    pub run: Result<Summary, String>,
    /// `crun exec <id> /bin/true` in a running container.
    pub exec: Result<Summary, String>,
    /// `crun exec <id> sh -c 'cat > f'` then `crun exec <id> cat f` (a bind-mounted host
    /// directory, as StacyVM's `/workspace`).
    pub file: Result<Summary, String>,
    /// crun version line.
    pub version: String,
}

/// Measures `crun run`, `crun exec` and the file round trip on a busybox bundle built in a temp
/// dir.
pub fn crun(warmup: usize, n: usize, file: &FileJob<'_>) -> Result<CrunFigures, String> {
    let crun = which("crun").ok_or("crun not on PATH (apt-get install -y crun)")?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or("busybox not found (apt-get install -y busybox-static)")?;
    let version = Command::new(&crun)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_default();
    let tmp = TempDir::new("stacyvm-bench-crun-").map_err(|e| e.to_string())?;
    let bundles = build_bundles(&crun, &busybox, &tmp.0).map_err(|e| format!("bundle setup: {e:#}"))?;
    let tag = format!("svb{}", std::process::id());

    let run = time_command(warmup, n, |i| {
        let mut c = Command::new(&crun);
        c.arg("run").arg("--bundle").arg(&bundles.run).arg(format!("{tag}-run{i}"));
        c
    });
    // `crun run` deletes the container when it exits; a failed run may leave one behind.
    if run.is_err() {
        let listed = Command::new(&crun).args(["list", "-q"]).output().map(|o| o.stdout).unwrap_or_default();
        for id in String::from_utf8_lossy(&listed).lines().filter(|l| l.starts_with(&format!("{tag}-run"))) {
            let _ = Command::new(&crun).args(["delete", "-f", id.trim()]).output();
        }
    }
    let run = run.map_err(|e| format!("{e:#}"));

    let id = format!("{tag}-exec");
    let exec = (|| -> Result<Summary> {
        // The detached container inherits crun's stdio: a pipe would never reach EOF.
        let err_path = tmp.0.join("detach.err");
        let status = Command::new(&crun)
            .arg("run")
            .arg("--detach")
            .arg("--bundle")
            .arg(&bundles.exec)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path)?)
            .status()?;
        if !status.success() {
            bail!("crun run --detach: {}", std::fs::read_to_string(&err_path).unwrap_or_default().trim());
        }
        time_command(warmup, n, |_| {
            let mut c = Command::new(&crun);
            c.args(["exec", &id, "/bin/true"]);
            c
        })
    })();
    let file = if exec.is_ok() {
        let command = |script: &str| {
            let mut c = Command::new(&crun);
            c.args(["exec", &id, "/bin/sh", "-c", script]);
            c
        };
        files::piped(file.data, file.warmup, file.n, || command("cat > /data/f"), || command("cat /data/f"))
            .map_err(|e| format!("{e:#}"))
    } else {
        Err("the running container did not start".to_string())
    };
    let _ = Command::new(&crun).args(["delete", "-f", &id]).output();
    let exec = exec.map_err(|e| format!("{e:#}"));
    Ok(CrunFigures { run, exec, file, version })
}

pub(crate) struct Bundles {
    pub(crate) run: PathBuf,
    pub(crate) exec: PathBuf,
}

/// rootfs with a static busybox, and two bundles sharing it: one running `/bin/true`, one
/// sleeping (for exec) with a host directory bind-mounted read-write at `/data`.
pub(crate) fn build_bundles(crun: &Path, busybox: &Path, dir: &Path) -> Result<Bundles> {
    let rootfs = dir.join("rootfs");
    for sub in ["bin", "proc", "dev", "sys", "tmp", "etc", "data"] {
        std::fs::create_dir_all(rootfs.join(sub))?;
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).context("copy busybox")?;
    for applet in ["true", "sh", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    let spec_dir = dir.join("spec");
    std::fs::create_dir(&spec_dir)?;
    let out = Command::new(crun).arg("spec").current_dir(&spec_dir).output().context("crun spec")?;
    if !out.status.success() {
        bail!("crun spec: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let base: Value = serde_json::from_slice(&std::fs::read(spec_dir.join("config.json"))?)?;
    if !base["process"].is_object() || !base["root"].is_object() {
        return Err(anyhow!("crun spec produced no process/root section"));
    }
    let data = dir.join("data");
    std::fs::create_dir(&data)?;
    let make = |name: &str, args: &[&str]| -> Result<PathBuf> {
        let mut cfg = base.clone();
        if name == "exec" {
            let mount = serde_json::json!({
                "destination": "/data", "type": "bind", "source": data.display().to_string(),
                "options": ["rbind", "rw"],
            });
            match cfg["mounts"].as_array_mut() {
                Some(mounts) => mounts.push(mount),
                None => cfg["mounts"] = Value::from(vec![mount]),
            }
        }
        cfg["process"]["args"] = Value::from(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        cfg["process"]["terminal"] = Value::Bool(false);
        cfg["root"]["path"] = Value::from(rootfs.display().to_string());
        cfg["root"]["readonly"] = Value::Bool(true);
        let bundle = dir.join(name);
        std::fs::create_dir(&bundle)?;
        std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&cfg)?)?;
        Ok(bundle)
    };
    Ok(Bundles { run: make("run", &["/bin/true"])?, exec: make("exec", &["/bin/sleep", "3600"])? })
}

/// Results of the docker peers.
pub struct DockerFigures {
    /// `docker run --rm IMAGE true`.
    pub run: Result<Summary, String>,
    /// `docker exec <id> true`.
    pub exec: Result<Summary, String>,
    /// `docker cp` into and out of a running container.
    pub file: Result<Summary, String>,
    /// Server version.
    pub version: String,
}

/// Measures `docker run --rm`, `docker exec` and `docker cp` round trips if a daemon answers and
/// `image` is local.
pub fn docker(image: &str, warmup: usize, n: usize, file: &FileJob<'_>) -> Result<DockerFigures, String> {
    // HOST-NOTES: /usr/local/bin/docker may be newer than the daemon; prefer the distro client.
    let docker = [PathBuf::from("/usr/bin/docker")]
        .into_iter()
        .find(|p| p.is_file())
        .or_else(|| which("docker"))
        .ok_or("docker CLI not installed")?;
    let out = run_with_limit(
        Command::new(&docker).args(["version", "--format", "{{.Server.Version}}"]),
        Duration::from_secs(10),
    )
    .map_err(|e| format!("docker daemon not reachable: {e:#}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        return Err(format!("no docker daemon reachable ({line})"));
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let inspect = Command::new(&docker).args(["image", "inspect", image]).output().map_err(|e| e.to_string())?;
    if !inspect.status.success() {
        return Err(format!("docker {version}: image {image} not present locally (not pulling)"));
    }
    let run = time_command(warmup, n, |_| {
        let mut c = Command::new(&docker);
        c.args(["run", "--rm", "--network", "none", image, "true"]);
        c
    })
    .map_err(|e| format!("{e:#}"));
    let exec = (|| -> Result<(Summary, Result<Summary, String>)> {
        let out = Command::new(&docker)
            .args(["run", "-d", "--network", "none", image, "sleep", "3600"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("docker run -d: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let res = time_command(warmup, n, |_| {
            let mut c = Command::new(&docker);
            c.args(["exec", &id, "true"]);
            c
        });
        let cp = TempDir::new("stacyvm-bench-docker-")
            .and_then(|tmp| files::docker_cp(&docker, &id, &tmp.0, file.data, file.warmup, file.n))
            .map_err(|e| format!("{e:#}"));
        let _ = Command::new(&docker).args(["rm", "-f", &id]).output();
        res.map(|s| (s, cp))
    })()
    .map_err(|e| format!("{e:#}"));
    let (exec, file) = match exec {
        Ok((s, cp)) => (Ok(s), cp),
        Err(e) => (Err(e.clone()), Err(e)),
    };
    Ok(DockerFigures { run, exec, file, version })
}

/// What wrk reported.
pub struct WrkFigures {
    /// p50/p90/p99/mean and req/s (n = total requests).
    pub summary: Summary,
    /// Non-2xx/3xx responses and socket errors, as wrk printed them.
    pub errors: String,
    /// Command line used.
    pub command: String,
}

/// Runs `wrk --latency` against `url`.
pub fn wrk(
    url: &str,
    api_key: Option<&str>,
    threads: usize,
    connections: usize,
    duration: Duration,
) -> Result<WrkFigures, String> {
    let wrk = which("wrk").ok_or("wrk not on PATH (apt-get install -y wrk)")?;
    let secs = duration.as_secs().max(1);
    let mut cmd = Command::new(&wrk);
    cmd.arg(format!("-t{threads}")).arg(format!("-c{connections}")).arg(format!("-d{secs}s")).arg("--latency");
    if let Some(key) = api_key {
        cmd.arg("-H").arg(format!("X-API-Key: {key}"));
    }
    cmd.arg(url);
    let shown = format!("wrk -t{threads} -c{connections} -d{secs}s --latency {url}");
    let out = run_with_limit(&mut cmd, duration + Duration::from_secs(30)).map_err(|e| format!("{e:#}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("wrk failed: {} {}", text.trim(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    parse_wrk(&text).map(|(summary, errors)| WrkFigures { summary, errors, command: shown })
}

fn parse_wrk(text: &str) -> Result<(Summary, String), String> {
    let mut p = [None; 3];
    let (mut mean, mut rate, mut total) = (None, None, None);
    let mut errors = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", avg, _, ..] => mean = parse_wrk_duration(avg).or(mean),
            ["50%", v] => p[0] = parse_wrk_duration(v),
            ["90%", v] => p[1] = parse_wrk_duration(v),
            ["99%", v] => p[2] = parse_wrk_duration(v),
            ["Requests/sec:", v] => rate = v.parse::<f64>().ok(),
            [n, "requests", "in", ..] => total = n.parse::<usize>().ok(),
            ["Non-2xx", ..] | ["Socket", "errors:", ..] => errors.push(line.trim().to_string()),
            _ => {}
        }
    }
    match (p, mean, rate, total) {
        ([Some(p50), Some(p90), Some(p99)], Some(mean), Some(ops_per_sec), Some(n)) => {
            Ok((Summary { n, p50, p90, p99, mean, ops_per_sec }, errors.join("; ")))
        }
        _ => Err(format!("could not parse wrk output: {}", text.trim())),
    }
}

fn parse_wrk_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/api/v1/sandboxes/sb-1\n  1 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.50ms  400.00us  12.00ms   90.00%\n    Req/Sec    25.00k     1.00k   27.00k    80.00%\n  Latency Distribution\n     50%    2.40ms\n     75%    2.60ms\n     90%    2.90ms\n     99%    4.10ms\n  250000 requests in 10.00s, 100.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  24999.50\nTransfer/sec:     10.00MB\n";
        let (s, errors) = parse_wrk(text).unwrap();
        assert_eq!(s.n, 250_000);
        assert_eq!(s.p50, Duration::from_micros(2400));
        assert_eq!(s.p99, Duration::from_micros(4100));
        assert_eq!(s.mean, Duration::from_micros(2500));
        assert!((s.ops_per_sec - 24999.5).abs() < 1e-9);
        assert_eq!(errors, "Non-2xx or 3xx responses: 3");
        assert_eq!(parse_wrk_duration("812.00us"), Some(Duration::from_micros(812)));
        assert!(parse_wrk("garbage").is_err());
    }
}
