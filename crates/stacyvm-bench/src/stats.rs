//! Latency samples, percentiles and the rows of the report.

use std::time::Duration;

use serde_json::{json, Value};

/// Which group a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Work done through a StacyVM server over HTTP.
    Stacyvm,
    /// The same work without StacyVM.
    Peer,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Stacyvm => "stacyvm",
            Kind::Peer => "peer",
        }
    }
}

/// Summary of one measurement.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Number of timed operations.
    pub n: usize,
    /// Median latency.
    pub p50: Duration,
    /// 90th percentile latency.
    pub p90: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Mean latency.
    pub mean: Duration,
    /// Operations per second.
    pub ops_per_sec: f64,
}

impl Summary {
    /// Summarises sequential samples: ops/s is `n / sum(samples)`.
    pub fn sequential(samples: Vec<Duration>) -> Summary {
        let total: Duration = samples.iter().sum();
        let ops = if total.is_zero() { 0.0 } else { samples.len() as f64 / total.as_secs_f64() };
        Summary::with_rate(samples, ops)
    }

    /// Summarises samples taken concurrently over `wall`: ops/s is `n / wall`.
    pub fn concurrent(samples: Vec<Duration>, wall: Duration) -> Summary {
        let ops = if wall.is_zero() { 0.0 } else { samples.len() as f64 / wall.as_secs_f64() };
        Summary::with_rate(samples, ops)
    }

    fn with_rate(mut samples: Vec<Duration>, ops_per_sec: f64) -> Summary {
        samples.sort_unstable();
        let n = samples.len();
        let mean = if n == 0 { Duration::ZERO } else { samples.iter().sum::<Duration>() / n as u32 };
        Summary {
            n,
            p50: percentile(&samples, 50.0),
            p90: percentile(&samples, 90.0),
            p99: percentile(&samples, 99.0),
            mean,
            ops_per_sec,
        }
    }
}

/// Nearest-rank percentile of sorted samples (zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of the report: measured, or skipped with the reason.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable key used by comparisons and JSON.
    pub key: &'static str,
    /// Human description.
    pub name: String,
    /// StacyVM or peer.
    pub kind: Kind,
    /// The figures, or why there are none.
    pub result: Result<Summary, String>,
    /// Free-form remark (errors seen, tool used, ...).
    pub note: String,
    /// Bytes moved by one operation, for rows whose throughput is a bandwidth (MB/s).
    pub bytes_per_op: Option<u64>,
}

impl Row {
    /// A measured row.
    pub fn measured(key: &'static str, name: impl Into<String>, kind: Kind, summary: Summary) -> Row {
        Row { key, name: name.into(), kind, result: Ok(summary), note: String::new(), bytes_per_op: None }
    }

    /// A skipped row.
    pub fn skipped(key: &'static str, name: impl Into<String>, kind: Kind, why: impl Into<String>) -> Row {
        Row { key, name: name.into(), kind, result: Err(why.into()), note: String::new(), bytes_per_op: None }
    }

    /// Adds a remark.
    pub fn with_note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// Marks the row as moving `bytes` per operation (reported in MB/s too).
    pub fn with_bytes(mut self, bytes: u64) -> Row {
        self.bytes_per_op = Some(bytes);
        self
    }

    /// Throughput in MB/s (10^6 bytes), for rows that move bytes.
    pub fn mb_per_sec(&self) -> Option<f64> {
        let s = self.result.as_ref().ok()?;
        Some(s.ops_per_sec * self.bytes_per_op? as f64 / 1e6)
    }

    /// JSON form.
    pub fn to_json(&self) -> Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        match &self.result {
            Ok(s) => json!({
                "key": self.key,
                "name": self.name,
                "kind": self.kind.label(),
                "n": s.n,
                "p50_ms": ms(s.p50),
                "p90_ms": ms(s.p90),
                "p99_ms": ms(s.p99),
                "mean_ms": ms(s.mean),
                "ops_per_sec": (s.ops_per_sec * 10.0).round() / 10.0,
                "mb_per_sec": self.mb_per_sec().map(|r| (r * 10.0).round() / 10.0),
                "bytes_per_op": self.bytes_per_op,
                "note": self.note,
            }),
            Err(why) => json!({
                "key": self.key,
                "name": self.name,
                "kind": self.kind.label(),
                "skipped": why,
                "note": self.note,
            }),
        }
    }
}

/// Formats a latency with a unit that keeps 2–3 significant digits.
pub fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Formats a rate with thousands separators.
pub fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        group_thousands(r.round() as u64)
    } else {
        format!("{r:.1}")
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[Duration::from_millis(7)], 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_dur(Duration::from_micros(850)), "850 µs");
        assert_eq!(fmt_dur(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(fmt_dur(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(fmt_rate(23456.4), "23,456");
        assert_eq!(fmt_rate(1234567.0), "1,234,567");
        assert_eq!(fmt_rate(12.34), "12.3");
    }
}
