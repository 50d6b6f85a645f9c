//! `rate_limit.*`: per-client token buckets, 429 with `Retry-After` and the rate-limit headers,
//! health probes exempt, nothing sent when the limiter is off, counters in the metrics.

mod support;

use std::time::Duration;

use axum::http::Method;
use stacyvm_config::{KeyBy, RateLimitConfig};
use support::Harness;

fn limited(rpm: u32, burst: u32, key_by: KeyBy) -> RateLimitConfig {
    RateLimitConfig {
        enabled: true,
        requests_per_minute: rpm,
        burst,
        key_by,
        bucket_ttl: Duration::from_secs(900),
        cleanup_interval: Duration::from_secs(60),
    }
}

async fn harness(config: RateLimitConfig) -> Harness {
    Harness::builder().http(move |h| h.rate_limit = Some(config)).build().await
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_with_retry_after_and_others_are_not_affected() {
    let h = harness(limited(6, 3, KeyBy::Owner)).await;
    let alice = [("X-User-ID", "alice")];
    for left in ["2", "1", "0"] {
        let r = h.call(Method::GET, "/api/v1/sandboxes", &alice, None).await;
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("6"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(left));
    }
    let r = h.call(Method::GET, "/api/v1/sandboxes", &alice, None).await;
    let message = r.err(429, "RESOURCE_LIMIT");
    assert_eq!(message, "rate limit exceeded; retry after 10s");
    assert_eq!(r.header("retry-after"), Some("10"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    // Another owner has a bucket of its own; a spawn is limited like any other route.
    let bob = [("X-User-ID", "bob")];
    assert_eq!(h.call(Method::GET, "/api/v1/sandboxes", &bob, None).await.status.as_u16(), 200);
    // Health probes are never limited.
    for _ in 0..5 {
        let r = h.call(Method::GET, "/api/v1/health", &alice, None).await;
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(r.header("x-ratelimit-limit"), None);
    }
    let metrics = h.get("/api/v1/metrics").await.ok_json(200);
    let rl = &metrics["rate_limit"];
    assert_eq!(rl["enabled"], true);
    // alice, bob, and this anonymous metrics caller (keyed by address).
    assert_eq!((rl["blocked_total"].as_u64(), rl["active_buckets"].as_u64()), (Some(1), Some(3)), "{rl}");
    let text = h.get("/api/v1/metrics/prometheus").await.text();
    assert!(text.contains("stacyvm_rate_limit_blocked_total 1"), "{text}");
    assert!(text.contains("stacyvm_rate_limit_active_buckets 3"), "{text}");
}

#[tokio::test]
async fn key_by_ip_uses_the_first_forwarded_address() {
    let h = harness(limited(60, 1, KeyBy::Ip)).await;
    let first = [("X-Forwarded-For", "198.51.100.7, 10.0.0.1"), ("X-User-ID", "alice")];
    assert_eq!(h.call(Method::GET, "/api/v1/sandboxes", &first, None).await.status.as_u16(), 200);
    // Same address, another user: the same bucket.
    let same = [("X-Forwarded-For", "198.51.100.7"), ("X-User-ID", "bob")];
    h.call(Method::GET, "/api/v1/sandboxes", &same, None).await.err(429, "RESOURCE_LIMIT");
    let other = [("X-Forwarded-For", "198.51.100.8")];
    assert_eq!(h.call(Method::GET, "/api/v1/sandboxes", &other, None).await.status.as_u16(), 200);
}

#[tokio::test]
async fn nothing_is_limited_or_announced_when_the_limiter_is_off() {
    let mut config = limited(1, 1, KeyBy::Owner);
    config.enabled = false;
    let h = harness(config).await;
    for _ in 0..5 {
        let r = h.get("/api/v1/sandboxes").await;
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(r.header("x-ratelimit-limit"), None);
    }
    assert_eq!(h.get("/api/v1/metrics").await.ok_json(200)["rate_limit"], serde_json::json!({"enabled": false}));
}
