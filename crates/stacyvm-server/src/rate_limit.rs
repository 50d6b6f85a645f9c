//! Rate limiting (`rate_limit.*`): one token bucket per client, refilled at
//! `requests_per_minute` and holding at most `burst` tokens.
//!
//! The client is named by `rate_limit.key_by`: `owner` = `X-User-ID`, else `X-API-Key`, else the
//! client IP; `api_key` = `X-API-Key`, else the IP; `ip` = the first `X-Forwarded-For` entry,
//! else `X-Real-IP`, else the peer address (only trust those headers behind a proxy that sets
//! them). Keys are kept hashed with a per-process random key, never as sent. A request over the
//! limit gets `429 RESOURCE_LIMIT` `rate limit exceeded; retry after Ns` with `Retry-After`;
//! every limited response carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
//! Health probes (`/health`, `/live`, `/ready`) are never limited. Buckets idle for
//! `bucket_ttl` are dropped, checked every `cleanup_interval` as requests arrive.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stacyvm_config::{KeyBy, RateLimitConfig};
use stacyvm_types::ErrorCode;

use crate::error::ApiError;

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Buckets {
    map: HashMap<u64, Bucket>,
    last_cleanup: Instant,
}

/// The limiter and its counters.
pub struct RateLimiter {
    config: RateLimitConfig,
    hasher: RandomState,
    buckets: Mutex<Buckets>,
    allowed: AtomicU64,
    blocked: AtomicU64,
    evicted: AtomicU64,
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Allowed; tokens left.
    Allowed { remaining: u32 },
    /// Refused; seconds until a token is available.
    Limited { retry_after: u64 },
}

impl RateLimiter {
    /// A limiter for `config` (used only when `config.enabled`).
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            config,
            hasher: RandomState::new(),
            buckets: Mutex::new(Buckets { map: HashMap::new(), last_cleanup: Instant::now() }),
            allowed: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.config.burst.max(1))
    }

    fn per_second(&self) -> f64 {
        f64::from(self.config.requests_per_minute) / 60.0
    }

    /// Takes a token from `key`'s bucket at time `now`.
    pub fn check_at(&self, key: &str, now: Instant) -> Decision {
        let hashed = self.hasher.hash_one(key);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(buckets.last_cleanup) >= self.config.cleanup_interval {
            let ttl = self.config.bucket_ttl;
            let before = buckets.map.len();
            buckets.map.retain(|_, b| now.duration_since(b.last) < ttl);
            self.evicted.fetch_add((before - buckets.map.len()) as u64, Ordering::Relaxed);
            buckets.last_cleanup = now;
        }
        let (capacity, rate) = (self.capacity(), self.per_second());
        let bucket = buckets.map.entry(hashed).or_insert(Bucket { tokens: capacity, last: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            self.allowed.fetch_add(1, Ordering::Relaxed);
            Decision::Allowed { remaining: bucket.tokens as u32 }
        } else {
            self.blocked.fetch_add(1, Ordering::Relaxed);
            let wait = if rate > 0.0 { (1.0 - bucket.tokens) / rate } else { 60.0 };
            Decision::Limited { retry_after: wait.ceil().max(1.0) as u64 }
        }
    }

    /// The key naming the client of a request.
    pub fn key(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
        let header = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
        };
        let ip = || {
            header("x-forwarded-for")
                .and_then(|v| v.split(',').next().map(|s| s.trim().to_string()))
                .filter(|v| !v.is_empty())
                .or_else(|| header("x-real-ip"))
                .or_else(|| peer.map(|p| p.ip().to_string()))
                .unwrap_or_default()
        };
        match self.config.key_by {
            KeyBy::Owner => header("x-user-id")
                .map(|u| format!("owner:{u}"))
                .or_else(|| header("x-api-key").map(|k| format!("key:{k}")))
                .unwrap_or_else(|| format!("ip:{}", ip())),
            KeyBy::ApiKey => header("x-api-key").map(|k| format!("key:{k}")).unwrap_or_else(|| format!("ip:{}", ip())),
            KeyBy::Ip => format!("ip:{}", ip()),
        }
    }

    /// Counters for `/metrics`.
    pub fn snapshot(&self) -> serde_json::Value {
        let active = self.buckets.lock().unwrap_or_else(|e| e.into_inner()).map.len();
        serde_json::json!({
            "enabled": true,
            "requests_per_minute": self.config.requests_per_minute,
            "burst": self.config.burst,
            "key_by": self.config.key_by.as_str(),
            "active_buckets": active,
            "allowed_total": self.allowed.load(Ordering::Relaxed),
            "blocked_total": self.blocked.load(Ordering::Relaxed),
            "evicted_buckets_total": self.evicted.load(Ordering::Relaxed),
        })
    }
}

fn is_health_probe(path: &str) -> bool {
    matches!(path.trim_end_matches('/'), "/api/v1/health" | "/api/v1/live" | "/api/v1/ready")
}

/// The middleware.
pub async fn limit(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let path = req.extensions().get::<axum::extract::OriginalUri>().map_or_else(|| req.uri().path(), |u| u.path());
    if is_health_probe(path) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let key = limiter.key(req.headers(), peer);
    let decision = limiter.check_at(&key, Instant::now());
    let limit = HeaderValue::from(limiter.config.requests_per_minute);
    match decision {
        Decision::Allowed { remaining } => {
            let mut response = next.run(req).await;
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", limit);
            headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
            response
        }
        Decision::Limited { retry_after } => {
            let message = format!("rate limit exceeded; retry after {retry_after}s");
            let mut response = ApiError::new(ErrorCode::ResourceLimit, message).into_response();
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from(retry_after));
            headers.insert("x-ratelimit-limit", limit);
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(rpm: u32, burst: u32, key_by: KeyBy) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            enabled: true,
            requests_per_minute: rpm,
            burst,
            key_by,
            bucket_ttl: Duration::from_secs(60),
            cleanup_interval: Duration::from_secs(10),
        })
    }

    #[test]
    fn burst_then_refill_at_the_configured_rate() {
        let l = limiter(60, 3, KeyBy::Owner);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            assert_eq!(l.check_at("a", t0), Decision::Allowed { remaining: left });
        }
        assert_eq!(l.check_at("a", t0), Decision::Limited { retry_after: 1 });
        assert_eq!(l.check_at("b", t0), Decision::Allowed { remaining: 2 }, "buckets are per client");
        // 60/min = one token a second.
        assert_eq!(l.check_at("a", t0 + Duration::from_millis(1000)), Decision::Allowed { remaining: 0 });
        assert_eq!(l.check_at("a", t0 + Duration::from_millis(1500)), Decision::Limited { retry_after: 1 });
        // Never more than the burst.
        assert_eq!(l.check_at("a", t0 + Duration::from_secs(3600)), Decision::Allowed { remaining: 2 });
        let slow = limiter(6, 1, KeyBy::Owner);
        slow.check_at("x", t0);
        assert_eq!(slow.check_at("x", t0), Decision::Limited { retry_after: 10 });
    }

    #[test]
    fn idle_buckets_are_evicted() {
        let l = limiter(60, 2, KeyBy::Owner);
        let t0 = Instant::now();
        l.check_at("a", t0);
        l.check_at("b", t0);
        assert_eq!(l.snapshot()["active_buckets"], 2);
        l.check_at("c", t0 + Duration::from_secs(61));
        let s = l.snapshot();
        assert_eq!((s["active_buckets"].as_u64(), s["evicted_buckets_total"].as_u64()), (Some(1), Some(2)));
        assert_eq!((s["allowed_total"].as_u64(), s["blocked_total"].as_u64()), (Some(3), Some(0)));
    }

    #[test]
    fn keys_follow_key_by() {
        let peer: SocketAddr = "10.1.2.3:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        let owner = limiter(1, 1, KeyBy::Owner);
        let ip = limiter(1, 1, KeyBy::Ip);
        let api = limiter(1, 1, KeyBy::ApiKey);
        assert_eq!(owner.key(&h, Some(peer)), "ip:10.1.2.3");
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(owner.key(&h, Some(peer)), "key:k1");
        h.insert("x-user-id", "alice".parse().unwrap());
        assert_eq!(owner.key(&h, Some(peer)), "owner:alice");
        assert_eq!(api.key(&h, Some(peer)), "key:k1");
        assert_eq!(ip.key(&h, Some(peer)), "ip:10.1.2.3");
        h.insert("x-real-ip", "192.0.2.9".parse().unwrap());
        assert_eq!(ip.key(&h, Some(peer)), "ip:192.0.2.9");
        h.insert("x-forwarded-for", "198.51.100.7, 10.0.0.1".parse().unwrap());
        assert_eq!(ip.key(&h, Some(peer)), "ip:198.51.100.7");
    }
}
