//! Operation counters and latencies for `/metrics` and `/metrics/prometheus`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one (operation, provider) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OperationStats {
    /// Successful calls.
    pub success: u64,
    /// Failed calls.
    pub failure: u64,
    /// Sum of latencies in milliseconds.
    pub latency_sum_ms: f64,
    /// Largest latency in milliseconds.
    pub latency_max_ms: f64,
}

/// Thread-safe registry of operation stats.
#[derive(Debug, Default)]
pub struct Metrics {
    ops: Mutex<BTreeMap<(String, String), OperationStats>>,
}

impl Metrics {
    /// Records one call.
    pub fn record(&self, operation: &str, provider: &str, ok: bool, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let stats = ops.entry((operation.to_string(), provider.to_string())).or_default();
        if ok {
            stats.success += 1;
        } else {
            stats.failure += 1;
        }
        stats.latency_sum_ms += ms;
        stats.latency_max_ms = stats.latency_max_ms.max(ms);
    }

    /// A copy of every counter, sorted by (operation, provider).
    pub fn snapshot(&self) -> Vec<((String, String), OperationStats)> {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}
