//! Router tests for providers, snapshots, pool status, system routes (health, readiness,
//! diagnostics, metrics, SSE events, OpenAPI), fallbacks, request IDs, CORS and auth.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method};
use serde_json::{json, Value};
use stacyvm_server::AuthSettings;
use support::{keys, read_until, Behaviour, Harness, REMOTE};

// --- providers ----------------------------------------------------------------------------------

#[tokio::test]
async fn providers_list_sorted_with_health() {
    let h =
        Harness::builder().provider("zeta", Behaviour::Normal).provider("alpha", Behaviour::Unhealthy).build().await;
    let list = h.get("/api/v1/providers").await.ok_json(200);
    let list = list.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "mock", "zeta"]);
    let mock = &list[1];
    assert_eq!(mock["default"], true);
    assert_eq!(mock["healthy"], true);
    assert!(mock.get("error").is_none(), "{mock}");
    assert!(mock["latency_ms"].is_number());
    support::utc(&mock["last_checked"]);
    let caps: Vec<&str> = mock["capabilities"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for cap in ["spawn", "exec", "exec_stream", "files", "console", "health", "test_provider"] {
        assert!(caps.contains(&cap), "{cap} missing from {caps:?}");
    }
    assert_eq!(mock["runtime_count"], 0);
    assert_eq!(list[0]["healthy"], false);
    assert_eq!(list[0]["default"], false);
    assert!(list[0]["error"].as_str().unwrap().contains("simulated outage"), "{}", list[0]);
    assert_eq!(list[2]["default"], false);

    h.spawn().await;
    let list = h.get("/api/v1/providers").await.ok_json(200);
    assert_eq!(list[1]["runtime_count"], 1);
}

#[tokio::test]
async fn provider_detail() {
    let h = Harness::new().await;
    h.spawn().await;
    let d = h.get("/api/v1/providers/mock").await.ok_json(200);
    assert_eq!(keys(&d), ["config", "default", "health", "healthy", "name", "sandbox_count"]);
    assert_eq!(d["name"], "mock");
    assert_eq!(d["healthy"], true);
    assert_eq!(d["default"], true);
    assert_eq!(d["sandbox_count"], 1);
    assert_eq!(d["config"]["type"], "mock");
    assert!(d["config"].as_object().unwrap().values().all(Value::is_string));
    assert_eq!(d["health"]["name"], "mock");
    assert_eq!(d["health"]["healthy"], true);
    let msg = h.get("/api/v1/providers/nope").await.err(404, "NOT_FOUND");
    assert_eq!(msg, "provider not found: nope");
}

#[tokio::test]
async fn providers_test_runs_health_checks() {
    let h = Harness::new().await;
    let res = h.call(Method::POST, "/api/v1/providers/test", &[], None).await;
    assert_eq!(res.ok_json(200), json!({"mock": true}));
    let h = Harness::builder().provider("down", Behaviour::Unhealthy).build().await;
    let res = h.call(Method::POST, "/api/v1/providers/test", &[], Some(json!({}))).await;
    assert_eq!(res.ok_json(200), json!({"down": false, "mock": true}));
}

#[tokio::test]
async fn snapshots_and_pool_status() {
    let h = Harness::new().await;
    assert_eq!(h.get("/api/v1/snapshots").await.ok_json(200), json!([]));
    assert_eq!(h.get("/api/v1/pool/status").await.ok_json(200), json!({"enabled": false}));
}

// --- health -------------------------------------------------------------------------------------

#[tokio::test]
async fn health_live_ready() {
    let h = Harness::new().await;
    let health = h.get("/api/v1/health").await.ok_json(200);
    assert_eq!(keys(&health), ["status", "uptime", "version"]);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], stacyvm_server::VERSION);
    let uptime = health["uptime"].as_str().unwrap();
    assert!(uptime.ends_with('s'), "Go duration: {uptime}");
    let live = h.get("/api/v1/live").await.ok_json(200);
    assert_eq!(live["status"], "alive");
    assert!(live["uptime"].is_string() && live["version"].is_string());
    let ready = h.get("/api/v1/ready").await.ok_json(200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["ready_providers"], 1);
    assert_eq!(ready["total_providers"], 1);
    assert_eq!(ready["providers"][0]["name"], "mock");
    assert!(ready.get("remediation").is_none());
    // Deployment smoke checks look for these substrings.
    assert!(h.get("/api/v1/live").await.text().contains(r#""status":"alive""#));
    assert!(h.get("/api/v1/health").await.text().contains(r#""status":"ok""#));
    assert!(h.get("/api/v1/ready").await.text().contains(r#""status":"ready""#));
}

#[tokio::test]
async fn ready_is_503_without_a_healthy_provider() {
    let h = Harness::builder().provider("down", Behaviour::Unhealthy).build().await;
    // One healthy provider is enough.
    assert_eq!(h.get("/api/v1/ready").await.ok_json(200)["ready_providers"], 1);

    let root = tempfile::tempdir().unwrap();
    let mut registry = stacyvm_provider::ProviderRegistry::new("down");
    registry.register(std::sync::Arc::new(support::NamedMock::new(
        "down",
        root.path().join("d"),
        Behaviour::Unhealthy,
    )));
    let store = std::sync::Arc::new(stacyvm_store::sqlite::SqliteStore::in_memory().unwrap());
    let manager = stacyvm_core::Manager::new(store, registry, stacyvm_core::Settings::default());
    manager.reconcile().await.unwrap();
    manager.refresh_health().await;
    let h2 = Harness { app: stacyvm_server::router(manager.clone(), &Default::default()), manager, ..h };
    let res = h2.get("/api/v1/ready").await;
    assert_eq!(res.status.as_u16(), 503);
    let body = res.json();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["ready_providers"], 0);
    assert_eq!(body["total_providers"], 1);
    assert!(body["remediation"].as_str().is_some_and(|r| !r.is_empty()));
    // Liveness is unaffected.
    assert_eq!(h2.get("/api/v1/live").await.ok_json(200)["status"], "alive");
    assert_eq!(h2.get("/api/v1/health").await.ok_json(200)["status"], "ok");
}

#[tokio::test]
async fn diagnostics_top_level_keys() {
    let h = Harness::new().await;
    h.spawn().await;
    for url in ["/api/v1/diagnostics", "/api/v1/admin/diagnostics"] {
        let d = h.get(url).await.ok_json(200);
        for key in [
            "generated_at",
            "build",
            "process",
            "store",
            "limits",
            "scheduler",
            "quotas",
            "rate_limit",
            "providers",
            "workers",
            "leases",
            "sandboxes",
            "events",
            "operations",
            "remediation",
            "redactions",
        ] {
            assert!(d.get(key).is_some(), "{url}: {key} missing");
        }
        assert_eq!(d["store"]["healthy"], true);
        assert_eq!(d["sandboxes"]["total"], 1);
        assert_eq!(d["sandboxes"]["by_state"]["running"], 1);
        assert_eq!(d["limits"]["max_ttl"], "24h0m0s");
        assert!(d["operations"].is_array() && d["redactions"].is_array());
        for wkey in ["total", "online", "stale", "unhealthy", "items"] {
            assert!(d["workers"].get(wkey).is_some(), "workers.{wkey}");
        }
        support::utc(&d["generated_at"]);
    }
}

#[tokio::test]
async fn diagnostics_never_leak_keys() {
    let auth =
        AuthSettings { api_key: "sekret-api".into(), admin_api_key: "sekret-admin".into(), ..Default::default() };
    let h = Harness::builder().auth(auth).build().await;
    let res = h.call(Method::GET, "/api/v1/diagnostics", &[("x-api-key", "sekret-api")], None).await;
    let text = res.text();
    assert_eq!(res.status.as_u16(), 200, "{text}");
    assert!(!text.contains("sekret"), "{text}");
}

#[tokio::test]
async fn metrics_json() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.run(&id, "true").await;
    for url in ["/api/v1/metrics", "/api/v1/admin/metrics"] {
        let m = h.get(url).await.ok_json(200);
        for key in [
            "uptime",
            "sandboxes",
            "providers",
            "workers",
            "leases",
            "events",
            "operations",
            "scheduler",
            "quotas",
            "rate_limit",
        ] {
            assert!(m.get(key).is_some(), "{url}: {key} missing");
        }
        assert_eq!(m["providers"]["total"], 1);
        assert_eq!(m["providers"]["healthy"], 1);
        assert_eq!(m["sandboxes"]["total"], 1);
        let ops = m["operations"].as_array().unwrap();
        assert!(ops.iter().any(|o| o["operation"] == "spawn" && o["success"] == 1), "{ops:?}");
        assert!(ops.iter().any(|o| o["operation"] == "exec"), "{ops:?}");
    }
}

#[tokio::test]
async fn metrics_prometheus_text() {
    let h = Harness::new().await;
    h.spawn().await;
    for url in ["/api/v1/metrics/prometheus", "/api/v1/admin/metrics/prometheus"] {
        let res = h.get(url).await;
        assert_eq!(res.status.as_u16(), 200);
        assert!(res.content_type().starts_with("text/plain"), "{}", res.content_type());
        assert!(res.content_type().contains("version=0.0.4"));
        let text = res.text();
        assert!(text.contains("stacyvm_uptime_seconds"), "{text}");
        assert!(text.contains("stacyvm_sandboxes_total 1"), "{text}");
        assert!(text.contains(r#"stacyvm_provider_healthy{provider="mock",default="true"} 1"#), "{text}");
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            assert!(line.starts_with("stacyvm_"), "unprefixed metric line {line:?}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        }
    }
}

// --- SSE ----------------------------------------------------------------------------------------

#[tokio::test]
async fn events_stream_sandbox_created() {
    let h = Harness::new().await;
    let req = h.request(Method::GET, "/api/v1/events").body(Body::empty()).unwrap();
    let res = h.send_streaming(req).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let mut body = res.into_body();
    let id = h.spawn().await;
    let text = read_until(&mut body, "sandbox.running", Duration::from_secs(10)).await;
    assert!(!text.contains("event:"), "named events never reach onmessage: {text}");
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap_or_else(|e| panic!("data {d:?}: {e}")))
        .collect();
    let created = events.iter().find(|e| e["type"] == "sandbox.created").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(created["sandbox_id"], id.as_str());
    assert!(created["id"].as_str().unwrap().starts_with("evt-"), "{created}");
    assert!(created["timestamp"].is_string());
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let (c, r) = (
        kinds.iter().position(|k| *k == "sandbox.created").unwrap(),
        kinds.iter().position(|k| *k == "sandbox.running").unwrap(),
    );
    assert!(c < r, "created before running: {kinds:?}");
    // Frames are `data: ...` blocks separated by a blank line.
    assert!(text.contains("data: {"), "{text}");
    assert!(text.contains("\n\n"), "{text:?}");

    h.delete(&format!("/api/v1/sandboxes/{id}")).await.ok_json(200);
    let text = read_until(&mut body, "sandbox.destroyed", Duration::from_secs(10)).await;
    assert!(text.contains("sandbox.destroyed"), "{text}");
}

// --- OpenAPI, fallbacks, request IDs ------------------------------------------------------------

#[tokio::test]
async fn openapi_documents() {
    let h = Harness::new().await;
    for url in ["/api/v1/openapi.json", "/swagger/doc.json"] {
        let doc = h.get(url).await.ok_json(200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{url}");
        assert_eq!(doc["info"]["version"], stacyvm_server::VERSION);
        let paths = doc["paths"].as_object().unwrap();
        for p in
            ["/api/v1/sandboxes", "/api/v1/sandboxes/{id}/exec", "/api/v1/templates/{name}/spawn", "/api/v1/events"]
        {
            assert!(paths.contains_key(p), "{url}: {p} missing");
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let h = Harness::new().await;
    for url in ["/api/v1/nope", "/nope", "/api/v2/sandboxes", "/api/v1/sandboxes/sb-1/nope", "/api/v1/sandboxes/"] {
        h.get(url).await.err(404, "NOT_FOUND");
    }
    // No redirects for trailing slashes.
    let res = h.get("/api/v1/templates/").await;
    assert!(!res.status.is_redirection(), "{}", res.status);
}

#[tokio::test]
async fn wrong_method_is_json_405() {
    let h = Harness::new().await;
    for (method, url) in [
        (Method::PUT, "/api/v1/sandboxes"),
        (Method::PATCH, "/api/v1/sandboxes/sb-1"),
        (Method::GET, "/api/v1/sandboxes/admission"),
        (Method::DELETE, "/api/v1/health"),
        (Method::POST, "/api/v1/templates/x"),
        (Method::GET, "/api/v1/providers/test"),
    ] {
        let res = h.call(method.clone(), url, &[], None).await;
        res.err(405, "BAD_REQUEST");
        let _ = (method, url);
    }
}

#[tokio::test]
async fn request_id_echoed_or_generated() {
    let h = Harness::new().await;
    let res = h.call(Method::GET, "/api/v1/health", &[("x-request-id", "req-123")], None).await;
    assert_eq!(res.header("x-request-id"), Some("req-123"));
    let res = h.get("/api/v1/health").await;
    let generated = res.header("x-request-id").expect("generated");
    assert_eq!(generated.len(), 36, "UUID: {generated}");
    assert_eq!(generated.matches('-').count(), 4);
    let other = h.get("/api/v1/health").await.header("x-request-id").unwrap().to_string();
    assert_ne!(generated, other);
    // Absurdly long IDs are replaced.
    let long = "r".repeat(200);
    let res = h.call(Method::GET, "/api/v1/health", &[("x-request-id", long.as_str())], None).await;
    assert_eq!(res.header("x-request-id").map(str::len), Some(36));
    // Errors carry it too.
    let res = h.call(Method::GET, "/api/v1/sandboxes/sb-x", &[("x-request-id", "e-1")], None).await;
    assert_eq!(res.header("x-request-id"), Some("e-1"));
    assert_eq!(h.get("/api/v1/nope").await.header("x-request-id").map(str::len), Some(36));
}

// --- CORS ---------------------------------------------------------------------------------------

fn preflight(h: &Harness, url: &str, origin: &str) -> axum::http::Request<Body> {
    h.request(Method::OPTIONS, url)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,x-api-key")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_preflight_is_answered_before_auth() {
    let auth = AuthSettings { api_key: "k".into(), admin_api_key: "adm".into(), ..Default::default() };
    let h = Harness::builder().auth(auth).peer(REMOTE).build().await;
    for url in ["/api/v1/sandboxes", "/api/v1/admin/diagnostics", "/api/v1/sandboxes/sb-1/exec"] {
        let res = h.send(preflight(&h, url, "https://app.example")).await;
        assert_eq!(res.status.as_u16(), 200, "{url}: {}", res.text());
        assert_eq!(res.header("access-control-allow-origin"), Some("*"));
        let methods = res.header("access-control-allow-methods").unwrap().to_ascii_uppercase();
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            assert!(methods.contains(m), "{m} missing in {methods}");
        }
        let allowed = res.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
        for hname in ["content-type", "x-api-key", "x-admin-api-key", "x-request-id", "x-user-id", "authorization"] {
            assert!(allowed.contains(hname), "{hname} missing in {allowed}");
        }
        assert!(res.body.is_empty());
    }
    // Simple requests still need the key but carry CORS headers.
    let req = h
        .request(Method::GET, "/api/v1/sandboxes")
        .header(header::ORIGIN, "https://app.example")
        .body(Body::empty())
        .unwrap();
    let res = h.send(req).await;
    res.err(401, "UNAUTHORIZED");
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn cors_explicit_origin_list() {
    let h = Harness::builder().http(|s| s.cors_allowed_origins = vec!["https://ok.example".into()]).build().await;
    let res = h.send(preflight(&h, "/api/v1/sandboxes", "https://ok.example")).await;
    assert_eq!(res.status.as_u16(), 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("https://ok.example"));
    assert!(res.headers.get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin")));
    let res = h.send(preflight(&h, "/api/v1/sandboxes", "https://evil.example")).await;
    assert!(res.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_preflight_from_unlisted_origin_is_403() {
    let h = Harness::builder().http(|s| s.cors_allowed_origins = vec!["https://ok.example".into()]).build().await;
    let res = h.send(preflight(&h, "/api/v1/sandboxes", "https://evil.example")).await;
    res.err(403, "FORBIDDEN");
}

// --- auth ---------------------------------------------------------------------------------------

#[tokio::test]
async fn closed_by_default_for_remote_peers() {
    let h = Harness::builder().peer(REMOTE).build().await;
    for url in ["/api/v1/sandboxes", "/api/v1/providers", "/api/v1/admin/diagnostics", "/api/v1/events"] {
        let msg = h.get(url).await.err(401, "UNAUTHORIZED");
        assert!(msg.contains("auth.api_key"), "{msg}");
    }
    let res = h.post("/api/v1/sandboxes", json!({})).await;
    res.err(401, "UNAUTHORIZED");
    assert!(h.live_rows().await.is_empty(), "nothing was spawned");
    // Public probes stay open.
    assert_eq!(h.get("/api/v1/health").await.ok_json(200)["status"], "ok");
    assert_eq!(h.get("/api/v1/live").await.ok_json(200)["status"], "alive");
    assert_eq!(h.get("/api/v1/ready").await.ok_json(200)["status"], "ready");
    // The OpenAPI document is public like the reference's /swagger.
    assert!(h.get("/swagger/doc.json").await.ok_json(200)["openapi"].is_string());
    // Loopback is served.
    let local = h
        .send(
            h.request(Method::GET, "/api/v1/sandboxes")
                .extension(axum::extract::ConnectInfo::<std::net::SocketAddr>("[::1]:5000".parse().unwrap()))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(local.ok_json(200), json!([]));
}

#[tokio::test]
async fn missing_peer_is_not_loopback() {
    let h = Harness::new().await;
    let req = axum::http::Request::builder().uri("/api/v1/sandboxes").body(Body::empty()).unwrap();
    h.send(req).await.err(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn allow_unauthenticated_opens_remote_access() {
    let auth = AuthSettings { allow_unauthenticated: true, ..Default::default() };
    let h = Harness::builder().auth(auth).peer(REMOTE).build().await;
    assert_eq!(h.get("/api/v1/sandboxes").await.ok_json(200), json!([]));
    h.get("/api/v1/admin/diagnostics").await.ok_json(200);
}

#[tokio::test]
async fn api_key_required_when_configured() {
    let auth = AuthSettings { api_key: "k-api".into(), ..Default::default() };
    let h = Harness::builder().auth(auth).build().await;
    // Missing, wrong, empty: 401 even from loopback.
    for headers in [vec![], vec![("x-api-key", "wrong")], vec![("x-api-key", "")], vec![("x-api-key", "k-api ")]] {
        let msg = h.call(Method::GET, "/api/v1/sandboxes", &headers, None).await.err(401, "UNAUTHORIZED");
        assert_eq!(msg, "invalid or missing API key", "{headers:?}");
    }
    let msg = h.call(Method::POST, "/api/v1/sandboxes", &[("x-api-key", "nope")], Some(json!({}))).await;
    msg.err(401, "UNAUTHORIZED");
    assert!(h.live_rows().await.is_empty());
    // Right key.
    let res = h.call(Method::GET, "/api/v1/sandboxes", &[("x-api-key", "k-api")], None).await;
    assert_eq!(res.ok_json(200), json!([]));
    let res = h.call(Method::POST, "/api/v1/sandboxes", &[("x-api-key", "k-api")], Some(json!({}))).await;
    res.ok_json(201);
    // Public probes need no key.
    h.get("/api/v1/health").await.ok_json(200);
    // Unknown routes behind auth do not reveal themselves without a key.
    assert!(matches!(h.get("/api/v1/nope").await.status.as_u16(), 401 | 404));
}

#[tokio::test]
async fn admin_routes_need_the_admin_key() {
    let auth = AuthSettings {
        api_key: "k-api".into(),
        admin_api_key: "k-admin".into(),
        admin_fallback_enabled: true,
        ..Default::default()
    };
    let h = Harness::builder().auth(auth).build().await;
    let admin_urls = [
        "/api/v1/admin/diagnostics",
        "/api/v1/admin/metrics",
        "/api/v1/admin/metrics/prometheus",
        "/api/v1/admin/providers",
        "/api/v1/admin/providers/mock",
    ];
    for url in admin_urls {
        let msg = h.call(Method::GET, url, &[("x-api-key", "k-api")], None).await.err(403, "FORBIDDEN");
        assert_eq!(msg, "admin API key required", "{url}");
        h.call(Method::GET, url, &[], None).await.err(401, "UNAUTHORIZED");
        let res = h.call(Method::GET, url, &[("x-api-key", "k-admin")], None).await;
        assert_eq!(res.status.as_u16(), 200, "{url}: {}", res.text());
        let res = h.call(Method::GET, url, &[("x-admin-api-key", "k-admin")], None).await;
        assert_eq!(res.status.as_u16(), 200, "{url}: {}", res.text());
    }
    let res = h.call(Method::POST, "/api/v1/admin/providers/test", &[("x-api-key", "k-api")], None).await;
    res.err(403, "FORBIDDEN");
    let res = h.call(Method::POST, "/api/v1/admin/providers/test", &[("x-admin-api-key", "k-admin")], None).await;
    assert_eq!(res.ok_json(200), json!({"mock": true}));
    // X-Admin-API-Key is checked first and accepted on regular routes.
    let res =
        h.call(Method::GET, "/api/v1/sandboxes", &[("x-admin-api-key", "k-admin"), ("x-api-key", "bad")], None).await;
    res.ok_json(200);
    // Admin detail is the same shape as the regular route.
    let d = h.call(Method::GET, "/api/v1/admin/providers/mock", &[("x-api-key", "k-admin")], None).await.ok_json(200);
    assert_eq!(d["config"]["type"], "mock");
    h.call(Method::GET, "/api/v1/admin/providers/nope", &[("x-api-key", "k-admin")], None).await.err(404, "NOT_FOUND");
    let list = h.call(Method::GET, "/api/v1/admin/providers", &[("x-api-key", "k-admin")], None).await.ok_json(200);
    assert_eq!(list[0]["name"], "mock");
}

#[tokio::test]
async fn admin_fallback_to_api_key() {
    let with = AuthSettings { api_key: "k".into(), admin_fallback_enabled: true, ..Default::default() };
    let h = Harness::builder().auth(with).build().await;
    h.call(Method::GET, "/api/v1/admin/diagnostics", &[("x-api-key", "k")], None).await.ok_json(200);
    let without = AuthSettings { api_key: "k".into(), admin_fallback_enabled: false, ..Default::default() };
    let h = Harness::builder().auth(without).build().await;
    let msg = h.call(Method::GET, "/api/v1/admin/diagnostics", &[("x-api-key", "k")], None).await.err(403, "FORBIDDEN");
    assert_eq!(msg, "admin API key required");
    h.call(Method::GET, "/api/v1/diagnostics", &[("x-api-key", "k")], None).await.ok_json(200);
}
