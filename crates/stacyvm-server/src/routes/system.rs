//! System routes: health, liveness, readiness, diagnostics, metrics and the SSE event stream.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use stacyvm_core::validate::go;
use stacyvm_core::Manager;
use stacyvm_types::system::{HealthResponse, ReadyResponse};
use tokio_stream::wrappers::BroadcastStream;

use crate::{AppState, VERSION};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/diagnostics", get(diagnostics))
        .route("/metrics", get(metrics))
        .route("/metrics/prometheus", get(prometheus))
        .route("/events", get(events))
}

/// `{"status":"ok",...}`.
#[utoipa::path(get, path = "/api/v1/health", tag = "system", responses((status = 200, body = HealthResponse)))]
pub async fn health(State(s): State<AppState>) -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".into(), version: VERSION.into(), uptime: go(s.manager.uptime()) })
}

/// `{"status":"alive",...}`.
#[utoipa::path(get, path = "/api/v1/live", tag = "system", responses((status = 200, body = HealthResponse)))]
pub async fn live(State(s): State<AppState>) -> Json<HealthResponse> {
    Json(HealthResponse { status: "alive".into(), version: VERSION.into(), uptime: go(s.manager.uptime()) })
}

/// Ready when at least one provider is healthy (503 otherwise, with a remediation hint).
#[utoipa::path(get, path = "/api/v1/ready", tag = "system",
    responses((status = 200, body = ReadyResponse), (status = 503, body = ReadyResponse)))]
pub async fn ready(State(s): State<AppState>) -> Response {
    let providers = s.manager.provider_infos();
    let healthy = providers.iter().filter(|p| p.healthy).count() as u64;
    let ok = healthy > 0;
    let body = ReadyResponse {
        status: if ok { "ready" } else { "not_ready" }.into(),
        version: VERSION.into(),
        uptime: go(s.manager.uptime()),
        total_providers: providers.len() as u64,
        ready_providers: healthy,
        remediation: (!ok).then(|| {
            "no provider is healthy: run `stacyvm doctor`, or check GET /api/v1/providers for each provider's error"
                .into()
        }),
        providers,
    };
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

fn sandbox_counts(m: &Manager) -> Value {
    let records = m.live_records();
    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_provider: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_worker: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        *by_state.entry(r.state.wire().as_str().to_string()).or_default() += 1;
        *by_provider.entry(r.provider.clone()).or_default() += 1;
        *by_worker.entry(r.worker_id.clone()).or_default() += 1;
    }
    let active = by_state.get("running").copied().unwrap_or(0);
    json!({"total": records.len(), "active": active, "by_state": by_state, "by_provider": by_provider, "by_worker": by_worker})
}

fn operations(m: &Manager) -> Vec<Value> {
    m.metrics()
        .snapshot()
        .into_iter()
        .map(|((operation, provider), st)| {
            json!({"operation": operation, "provider": provider, "success": st.success, "failure": st.failure,
                   "latency_ms_sum": st.latency_sum_ms, "latency_ms_max": st.latency_max_ms})
        })
        .collect()
}

fn limits(m: &Manager) -> Value {
    let st = m.settings();
    json!({
        "default_ttl": go(st.default_ttl), "max_ttl": go(st.max_ttl),
        "default_exec_timeout": go(st.default_exec_timeout), "max_exec_timeout": go(st.max_exec_timeout),
        "max_sandboxes": st.max_sandboxes, "max_sandboxes_per_owner": st.max_sandboxes_per_owner,
        "default_memory_mb": st.default_memory_mb, "default_vcpus": st.default_vcpus,
    })
}

fn resident_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn rate_limit_summary(s: &AppState) -> Value {
    s.rate_limiter.as_ref().map_or_else(|| json!({"enabled": false}), |l| l.snapshot())
}

/// Prometheus lines of the rate limiter (none when it is off).
fn rate_limit_prometheus(s: &AppState) -> String {
    let Some(limiter) = &s.rate_limiter else { return String::new() };
    let snap = limiter.snapshot();
    let mut out = String::new();
    for (name, kind, help) in [
        ("active_buckets", "gauge", "Clients with a live rate-limit bucket"),
        ("allowed_total", "counter", "Requests the rate limiter let through"),
        ("blocked_total", "counter", "Requests refused with 429 by the rate limiter"),
        ("evicted_buckets_total", "counter", "Idle rate-limit buckets dropped"),
    ] {
        let value = snap[name].as_u64().unwrap_or(0);
        let _ = writeln!(out, "# HELP stacyvm_rate_limit_{name} {help}\n# TYPE stacyvm_rate_limit_{name} {kind}");
        let _ = writeln!(out, "stacyvm_rate_limit_{name} {value}");
    }
    out
}

fn events_summary(m: &Manager) -> Value {
    json!({"subscribers": m.events().subscribers(), "history_size": 0, "events_total": m.events().total()})
}

/// Redacted operational snapshot.
#[utoipa::path(get, path = "/api/v1/diagnostics", tag = "system", responses((status = 200, body = Object)))]
pub async fn diagnostics(State(s): State<AppState>) -> Json<Value> {
    let m = &s.manager;
    let store = match m.store().ping().await {
        Ok(latency) => json!({"healthy": true, "latency_ms": latency.as_secs_f64() * 1000.0}),
        Err(e) => json!({"healthy": false, "latency_ms": 0, "error": e.to_string()}),
    };
    let providers = m.provider_infos();
    let remediation: Vec<String> = providers
        .iter()
        .filter(|p| !p.healthy)
        .map(|p| format!("provider {} is unhealthy: {}", p.name, p.error.clone().unwrap_or_default()))
        .collect();
    Json(json!({
        "generated_at": stacyvm_types::time::rfc3339_millis(&chrono::Utc::now()),
        "build": {"version": VERSION, "os": std::env::consts::OS, "arch": std::env::consts::ARCH},
        "process": {"uptime": go(m.uptime()), "pid": std::process::id(), "memory": {"rss_bytes": resident_memory_bytes()}},
        "store": store,
        "limits": limits(m),
        "scheduler": {"mode": "local", "spawn_overflow": "reject"},
        "quotas": {"total": 0},
        "rate_limit": rate_limit_summary(&s),
        "providers": providers,
        "workers": {"total": 1, "online": 1, "stale": 0, "unhealthy": 0, "items": [{"id": m.settings().worker_id, "status": "online"}]},
        "leases": {"total": 0, "active": 0, "expired": 0, "by_holder": {}},
        "sandboxes": sandbox_counts(m),
        "events": events_summary(m),
        "operations": operations(m),
        "remediation": remediation,
        "redactions": ["auth.api_key", "auth.admin_api_key"],
    }))
}

/// JSON metrics snapshot.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "system", responses((status = 200, body = Object)))]
pub async fn metrics(State(s): State<AppState>) -> Json<Value> {
    let m = &s.manager;
    let providers = m.provider_infos();
    let healthy = providers.iter().filter(|p| p.healthy).count();
    Json(json!({
        "uptime": go(m.uptime()),
        "memory": {"rss_bytes": resident_memory_bytes()},
        "sandboxes": sandbox_counts(m),
        "providers": {"total": providers.len(), "healthy": healthy, "items": providers},
        "workers": {"total": 1, "online": 1},
        "leases": {"total": 0, "active": 0},
        "events": events_summary(m),
        "operations": operations(m),
        "scheduler": {"mode": "local"},
        "quotas": {"total": 0},
        "rate_limit": rate_limit_summary(&s),
    }))
}

/// Prometheus text exposition of the same figures.
pub fn prometheus_text(m: &Manager) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP stacyvm_{name} {help}\n# TYPE stacyvm_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "stacyvm_{name}{labels} {value}");
        }
    };
    let label = |pairs: &[(&str, &str)]| -> String {
        let inner: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
        format!("{{{}}}", inner.join(","))
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        vec![(String::new(), m.uptime().as_secs_f64())],
    );
    let providers = m.provider_infos();
    metric(
        "provider_healthy",
        "gauge",
        "1 when the provider's last health check passed.",
        providers
            .iter()
            .map(|p| {
                (
                    label(&[("provider", &p.name), ("default", if p.default { "true" } else { "false" })]),
                    if p.healthy { 1.0 } else { 0.0 },
                )
            })
            .collect(),
    );
    metric(
        "provider_health_latency_milliseconds",
        "gauge",
        "Latency of the last health check.",
        providers.iter().map(|p| (label(&[("provider", &p.name)]), p.latency_ms)).collect(),
    );
    metric(
        "provider_runtime_sandboxes",
        "gauge",
        "Live sandboxes per provider.",
        providers.iter().map(|p| (label(&[("provider", &p.name)]), p.runtime_count.unwrap_or(0) as f64)).collect(),
    );
    let records = m.live_records();
    metric("sandboxes_total", "gauge", "Live sandboxes.", vec![(String::new(), records.len() as f64)]);
    let mut by_provider: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_worker: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &records {
        *by_provider.entry(&r.provider).or_default() += 1;
        *by_worker.entry(&r.worker_id).or_default() += 1;
    }
    metric(
        "sandboxes_by_provider_total",
        "gauge",
        "Live sandboxes per provider.",
        by_provider.iter().map(|(p, n)| (label(&[("provider", p)]), *n as f64)).collect(),
    );
    metric(
        "sandboxes_by_worker_total",
        "gauge",
        "Live sandboxes per worker.",
        by_worker.iter().map(|(w, n)| (label(&[("worker", w)]), *n as f64)).collect(),
    );
    metric("spawn_queue_depth", "gauge", "Spawns waiting in the queue.", vec![(String::new(), 0.0)]);
    metric("events_total", "counter", "Events published.", vec![(String::new(), m.events().total() as f64)]);
    metric(
        "event_subscribers",
        "gauge",
        "Live SSE subscribers.",
        vec![(String::new(), m.events().subscribers() as f64)],
    );
    metric("event_history_size", "gauge", "Events kept for replay (none).", vec![(String::new(), 0.0)]);
    let ops = m.metrics().snapshot();
    let op_label = |op: &str, provider: &str| label(&[("operation", op), ("provider", provider)]);
    metric(
        "operation_success_total",
        "counter",
        "Successful operations.",
        ops.iter().map(|((o, p), st)| (op_label(o, p), st.success as f64)).collect(),
    );
    metric(
        "operation_failure_total",
        "counter",
        "Failed operations.",
        ops.iter().map(|((o, p), st)| (op_label(o, p), st.failure as f64)).collect(),
    );
    metric(
        "operation_latency_milliseconds_count",
        "counter",
        "Operations timed.",
        ops.iter().map(|((o, p), st)| (op_label(o, p), (st.success + st.failure) as f64)).collect(),
    );
    metric(
        "operation_latency_milliseconds_sum",
        "counter",
        "Total operation latency.",
        ops.iter().map(|((o, p), st)| (op_label(o, p), st.latency_sum_ms)).collect(),
    );
    metric(
        "operation_latency_milliseconds_max",
        "gauge",
        "Slowest operation.",
        ops.iter().map(|((o, p), st)| (op_label(o, p), st.latency_max_ms)).collect(),
    );
    out
}

/// Prometheus text format.
#[utoipa::path(get, path = "/api/v1/metrics/prometheus", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn prometheus(State(s): State<AppState>) -> Response {
    let text = prometheus_text(&s.manager) + &rate_limit_prometheus(&s);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Server-sent events: one `data: <Event JSON>` frame per event, no replay.
#[utoipa::path(get, path = "/api/v1/events", tag = "system",
    responses((status = 200, description = "text/event-stream of Event JSON", content_type = "text/event-stream")))]
pub async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = BroadcastStream::new(s.manager.events().subscribe()).filter_map(|item| async move {
        // A lagging subscriber skips what it missed (no replay).
        let event = item.ok()?;
        Some(Ok(SseEvent::default().id(event.id.clone()).data(serde_json::to_string(&event).ok()?)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
