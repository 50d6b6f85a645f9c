//! Markdown and JSON reports: the table, same-run comparisons and the targets.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::stats::{fmt_dur, fmt_rate, Kind, Row, Summary};

/// Run parameters shown with the results.
pub struct Context {
    /// Server URL.
    pub url: String,
    /// The server's default provider (what spawns run on).
    pub provider: String,
    /// Timed sequential iterations.
    pub iterations: usize,
    /// Warmup iterations.
    pub warmup: usize,
    /// GET concurrency.
    pub concurrency: usize,
    /// GET phase length.
    pub duration_s: f64,
    /// Client runtime threads.
    pub client_threads: usize,
}

/// What a comparison looks at.
#[derive(Clone, Copy)]
enum Metric {
    /// Median latency; ratio = StacyVM / peer (> 1 = StacyVM slower).
    P50,
    /// Throughput; ratio = StacyVM / peer (< 1 = StacyVM slower).
    Rate,
    /// Bandwidth in MB/s of rows moving the same bytes; ratio = StacyVM / peer.
    Bandwidth,
}

/// (label, StacyVM row, peer row, metric).
const COMPARISONS: &[(&str, &str, &str, Metric)] = &[
    ("spawn+destroy p50", "spawn_destroy", "crun_run", Metric::P50),
    ("spawn+destroy p50", "spawn_destroy", "docker_run", Metric::P50),
    ("exec argv p50", "exec_argv", "fork_exec", Metric::P50),
    ("exec argv p50", "exec_argv", "crun_exec", Metric::P50),
    ("exec argv p50", "exec_argv", "docker_exec", Metric::P50),
    ("exec shell p50", "exec_shell", "sh_c", Metric::P50),
    ("exec shell p50", "exec_shell", "crun_exec", Metric::P50),
    ("GET /sandboxes/{id}", "get", "health", Metric::Rate),
    ("file write+read 64 MiB", "file_rw", "file_host", Metric::Bandwidth),
    ("file write+read 64 MiB", "file_rw", "file_crun", Metric::Bandwidth),
    ("file write+read 64 MiB", "file_rw", "file_docker", Metric::Bandwidth),
];

/// A target from the brief.
struct Target {
    label: &'static str,
    key: &'static str,
    check: Check,
}

enum Check {
    MaxP50(Duration),
    MinRate(f64),
}

/// The targets for a server whose default provider is `provider`: the spawn target differs
/// (mock: spawn+destroy ≤ 1 ms; a real provider: the cold spawn round trip ≤ 25 ms).
fn targets(provider: &str) -> Vec<Target> {
    let spawn = if provider == "mock" {
        Target {
            label: "mock spawn+destroy p50 ≤ 1 ms",
            key: "spawn_destroy",
            check: Check::MaxP50(Duration::from_millis(1)),
        }
    } else {
        Target {
            label: "cold spawn (POST /sandboxes, image unpacked) p50 ≤ 25 ms",
            key: "spawn",
            check: Check::MaxP50(Duration::from_millis(25)),
        }
    };
    vec![
        spawn,
        Target {
            label: "GET /sandboxes/{id} ≥ 20,000 req/s (reqwest client)",
            key: "get",
            check: Check::MinRate(20_000.0),
        },
        Target { label: "GET /sandboxes/{id} ≥ 20,000 req/s (wrk)", key: "get_wrk", check: Check::MinRate(20_000.0) },
        Target {
            label: "exec round trip p50 ≤ 2 ms (argv)",
            key: "exec_argv",
            check: Check::MaxP50(Duration::from_millis(2)),
        },
        Target {
            label: "exec round trip p50 ≤ 2 ms (shell)",
            key: "exec_shell",
            check: Check::MaxP50(Duration::from_millis(2)),
        },
    ]
}

fn find<'a>(rows: &'a [Row], key: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.key == key)
}

struct Comparison {
    text: String,
    ratio: Option<f64>,
    stacyvm: &'static str,
    peer: &'static str,
}

fn comparisons(rows: &[Row]) -> Vec<Comparison> {
    let mut out = Vec::new();
    for &(label, sk, pk, metric) in COMPARISONS {
        let (Some(s), Some(p)) = (find(rows, sk), find(rows, pk)) else { continue };
        let (ratio, text) = match (&s.result, &p.result) {
            (Ok(a), Ok(b)) => match metric {
                Metric::P50 => {
                    let r = a.p50.as_secs_f64() / b.p50.as_secs_f64().max(1e-9);
                    (Some(r), format!("{label} {} vs {} {} = {}", fmt_dur(a.p50), p.name, fmt_dur(b.p50), fmt_ratio(r)))
                }
                Metric::Rate => {
                    let r = a.ops_per_sec / b.ops_per_sec.max(1e-9);
                    let text = format!(
                        "{label} {} req/s vs {} {} req/s = {} the throughput",
                        fmt_rate(a.ops_per_sec),
                        p.name,
                        fmt_rate(b.ops_per_sec),
                        fmt_ratio(r)
                    );
                    (Some(r), text)
                }
                Metric::Bandwidth => {
                    let (x, y) = (s.mb_per_sec().unwrap_or(0.0), p.mb_per_sec().unwrap_or(0.0));
                    let r = x / y.max(1e-9);
                    let text = format!(
                        "{label} {x:.0} MB/s (p50 {}) vs {} {y:.0} MB/s (p50 {}) = {} the throughput",
                        fmt_dur(a.p50),
                        p.name,
                        fmt_dur(b.p50),
                        fmt_ratio(r)
                    );
                    (Some(r), text)
                }
            },
            (Err(why), _) => (None, format!("{label} vs {}: skipped — StacyVM side not measured: {why}", p.name)),
            (_, Err(why)) => (None, format!("{label} vs {}: peer skipped — {why}", p.name)),
        };
        out.push(Comparison { text, ratio, stacyvm: sk, peer: pk });
    }
    out
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        format!("{r:.3}x")
    }
}

struct Verdict {
    label: &'static str,
    measured: String,
    met: Option<bool>,
    detail: String,
}

fn verdicts(rows: &[Row], provider: &str) -> Vec<Verdict> {
    targets(provider)
        .into_iter()
        .filter_map(|t| {
            let row = find(rows, t.key)?;
            Some(match &row.result {
                Err(why) => {
                    Verdict { label: t.label, measured: "—".into(), met: None, detail: format!("skipped: {why}") }
                }
                Ok(s) => verdict(&t, s),
            })
        })
        .collect()
}

fn verdict(t: &Target, s: &Summary) -> Verdict {
    match t.check {
        Check::MaxP50(limit) => {
            let met = s.p50 <= limit;
            let detail = if met {
                format!("met ({:.0} % of budget)", 100.0 * s.p50.as_secs_f64() / limit.as_secs_f64())
            } else {
                let over = s.p50 - limit;
                format!("MISSED by {} ({:.0} % over)", fmt_dur(over), 100.0 * over.as_secs_f64() / limit.as_secs_f64())
            };
            Verdict { label: t.label, measured: format!("p50 {}", fmt_dur(s.p50)), met: Some(met), detail }
        }
        Check::MinRate(min) => {
            let met = s.ops_per_sec >= min;
            let detail = if met {
                format!("met ({:.0} % of target)", 100.0 * s.ops_per_sec / min)
            } else {
                let short = min - s.ops_per_sec;
                format!("MISSED by {} req/s ({:.0} % short)", fmt_rate(short), 100.0 * short / min)
            };
            Verdict { label: t.label, measured: format!("{} req/s", fmt_rate(s.ops_per_sec)), met: Some(met), detail }
        }
    }
}

/// Facts about the machine, read the way `nproc` and `uname -r` would.
pub fn machine() -> Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().into())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_default();
    json!({ "cores": cores, "kernel": kernel, "cpu": cpu, "os": os })
}

/// Current UTC time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The markdown report.
pub fn markdown(ctx: &Context, rows: &[Row]) -> String {
    let m = machine();
    let mut out = String::new();
    let _ = writeln!(out, "### stacyvm-bench — {}", now_utc());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Machine: {} cores (`nproc`), kernel {} (`uname -r`), {}, {}. Server {} ({} provider); \
         client and server share the cores; client runtime {} thread(s). Sequential: {} timed \
         iterations after {} warmup. GET load: {} in flight for {} s.",
        m["cores"],
        m["kernel"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or(""),
        m["os"].as_str().unwrap_or(""),
        ctx.url,
        ctx.provider,
        ctx.client_threads,
        ctx.iterations,
        ctx.warmup,
        ctx.concurrency,
        ctx.duration_s
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| Measurement | n | p50 | p90 | p99 | mean | ops/s | notes |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for kind in [Kind::Stacyvm, Kind::Peer] {
        for r in rows.iter().filter(|r| r.kind == kind) {
            let name = match kind {
                Kind::Stacyvm => r.name.clone(),
                Kind::Peer => format!("peer: {}", r.name),
            };
            let name = name.replace('|', "\\|");
            let note = match r.mb_per_sec() {
                Some(mbps) if r.note.is_empty() => format!("{mbps:.0} MB/s"),
                Some(mbps) => format!("{mbps:.0} MB/s; {}", r.note),
                None => r.note.clone(),
            };
            let note = note.replace('|', "\\|");
            match &r.result {
                Ok(s) => {
                    let _ = writeln!(
                        out,
                        "| {name} | {} | {} | {} | {} | {} | {} | {note} |",
                        s.n,
                        fmt_dur(s.p50),
                        fmt_dur(s.p90),
                        fmt_dur(s.p99),
                        fmt_dur(s.mean),
                        fmt_rate(s.ops_per_sec)
                    );
                }
                Err(why) => {
                    let why = why.replace('|', "\\|");
                    let sep = if note.is_empty() { "" } else { "; " };
                    let _ = writeln!(out, "| {name} | — | — | — | — | — | — | skipped: {why}{sep}{note} |");
                }
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Same run, StacyVM vs peer (ratio = StacyVM / peer):");
    let _ = writeln!(out);
    for c in comparisons(rows) {
        let _ = writeln!(out, "- {}", c.text);
    }
    if let (Some(a), Some(b)) = (find(rows, "get"), find(rows, "get_wrk")) {
        if let (Ok(a), Ok(b)) = (&a.result, &b.result) {
            let _ = writeln!(
                out,
                "- second opinion: GET /sandboxes/{{id}} {} req/s with wrk vs {} req/s with the reqwest client = {}",
                fmt_rate(b.ops_per_sec),
                fmt_rate(a.ops_per_sec),
                fmt_ratio(b.ops_per_sec / a.ops_per_sec.max(1e-9))
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "| Target | Measured | Result |");
    let _ = writeln!(out, "|---|---:|---|");
    for v in verdicts(rows, &ctx.provider) {
        let _ = writeln!(out, "| {} | {} | {} |", v.label, v.measured, v.detail);
    }
    out
}

/// The JSON report.
pub fn json(ctx: &Context, rows: &[Row]) -> Value {
    json!({
        "date": now_utc(),
        "machine": machine(),
        "config": {
            "url": ctx.url,
            "iterations": ctx.iterations,
            "warmup": ctx.warmup,
            "concurrency": ctx.concurrency,
            "duration_s": ctx.duration_s,
            "client_threads": ctx.client_threads,
        },
        "results": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "comparisons": comparisons(rows).into_iter().map(|c| json!({
            "stacyvm": c.stacyvm,
            "peer": c.peer,
            "ratio": c.ratio.map(|r| (r * 1000.0).round() / 1000.0),
            "text": c.text,
        })).collect::<Vec<_>>(),
        "targets": verdicts(rows, &ctx.provider).into_iter().map(|v| json!({
            "target": v.label,
            "measured": v.measured,
            "met": v.met,
            "detail": v.detail,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50_us: u64, rate: f64) -> Summary {
        let d = Duration::from_micros(p50_us);
        Summary { n: 10, p50: d, p90: d, p99: d, mean: d, ops_per_sec: rate }
    }

    #[test]
    fn ratios_and_targets() {
        let rows = vec![
            Row::measured("exec_argv", "exec", Kind::Stacyvm, summary(1100, 900.0)),
            Row::measured("fork_exec", "fork+exec /bin/true", Kind::Peer, summary(1000, 1000.0)),
            Row::skipped("crun_exec", "crun exec", Kind::Peer, "crun not on PATH"),
            Row::measured("get", "get", Kind::Stacyvm, summary(3000, 15_000.0)),
            Row::measured("health", "GET /health", Kind::Peer, summary(2000, 30_000.0)),
        ];
        let cs = comparisons(&rows);
        assert_eq!(cs[0].text, "exec argv p50 1.10 ms vs fork+exec /bin/true 1.00 ms = 1.10x");
        assert!(cs[1].text.contains("peer skipped — crun not on PATH"));
        assert!(cs[2].text.contains("= 0.50x the throughput"));
        let v = verdicts(&rows, "mock");
        assert_eq!(v[0].detail, "MISSED by 5,000 req/s (25 % short)");
        assert_eq!(v[1].detail, "met (55 % of budget)");
        let md = markdown(
            &Context {
                url: "http://x".into(),
                provider: "mock".into(),
                iterations: 1,
                warmup: 0,
                concurrency: 1,
                duration_s: 1.0,
                client_threads: 1,
            },
            &rows,
        );
        assert!(md.contains("| peer: crun exec | — |"));
        let files = vec![
            Row::measured("file_rw", "file", Kind::Stacyvm, summary(500_000, 2.0)).with_bytes(64 << 20),
            Row::measured("file_host", "host fs", Kind::Peer, summary(100_000, 8.0)).with_bytes(64 << 20),
        ];
        let cs = comparisons(&files);
        assert_eq!(
            cs[0].text,
            "file write+read 64 MiB 134 MB/s (p50 500.0 ms) vs host fs 537 MB/s (p50 100.0 ms) = 0.25x the throughput"
        );
    }

    #[test]
    fn civil_date_is_plausible() {
        let s = now_utc();
        assert!(s.starts_with("20") && s.ends_with(" UTC") && s.len() == 23, "{s}");
    }
}
