//! Router tests for `/api/v1/sandboxes` (spawn, list, get, destroy, extend, prune, admission,
//! logs, stats), driven with `oneshot` against the mock provider.

mod support;

use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};
use stacyvm_types::lifecycle::LifecycleState;
use support::{keys, utc, Behaviour, Harness};

fn is_sandbox_id(id: &str) -> bool {
    id.len() == 11 && id.starts_with("sb-") && id[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn spawn_defaults() {
    let h = Harness::new().await;
    let before = chrono::Utc::now();
    let sb = h.spawn_with(json!({})).await;
    let id = sb["id"].as_str().unwrap();
    assert!(is_sandbox_id(id), "id {id}");
    assert_eq!(sb["state"], "running");
    assert_eq!(sb["provider"], "mock");
    assert_eq!(sb["image"], "alpine:latest");
    assert_eq!(sb["memory_mb"], 1024);
    assert_eq!(sb["vcpus"], 1);
    assert_eq!(sb["worker_id"], "local");
    assert_eq!(sb["preview_domain"], "localhost");
    assert!(sb.get("owner_id").is_none(), "empty owner is omitted: {sb}");
    assert!(sb.get("metadata").is_none(), "empty metadata is omitted: {sb}");
    assert!(sb.get("tenant_id").is_none());
    let created = utc(&sb["created_at"]);
    let expires = utc(&sb["expires_at"]);
    assert!(created >= before - chrono::Duration::seconds(1));
    let ttl = (expires - created).num_seconds();
    assert!((1795..=1805).contains(&ttl), "default ttl ≈ 30m, got {ttl}s");
    // Persisted as running, runtime present.
    assert_eq!(h.row(id).await.unwrap().state, LifecycleState::Running);
    assert_eq!(h.runtime_dirs(), vec![id.to_string()]);
    // GET returns the same resource.
    let got = h.get(&format!("/api/v1/sandboxes/{id}")).await.ok_json(200);
    assert_eq!(got, sb);
}

#[tokio::test]
async fn spawn_explicit_fields_and_metadata() {
    let h = Harness::new().await;
    let sb = h
        .spawn_with(json!({
            "image": "python:3.12", "provider": "mock", "memory_mb": 2048, "vcpus": 2, "ttl": "1h",
            "owner_id": "alice", "metadata": {"k": "v"}, "tenant_id": "ignored", "unknown_field": 1
        }))
        .await;
    assert_eq!(sb["image"], "python:3.12");
    assert_eq!(sb["memory_mb"], 2048);
    assert_eq!(sb["vcpus"], 2);
    assert_eq!(sb["owner_id"], "alice");
    assert_eq!(sb["metadata"], json!({"k": "v"}));
    assert!(sb.get("tenant_id").is_none(), "tenant_id is not taken from the body: {sb}");
    let ttl = (utc(&sb["expires_at"]) - utc(&sb["created_at"])).num_seconds();
    assert!((3595..=3605).contains(&ttl), "ttl 1h, got {ttl}s");
    // memory 0 / vcpus 0 mean "default".
    let sb = h.spawn_with(json!({"memory_mb": 0, "vcpus": 0})).await;
    assert_eq!((sb["memory_mb"].as_u64(), sb["vcpus"].as_u64()), (Some(1024), Some(1)));
}

#[tokio::test]
async fn x_user_id_sets_owner_and_overrides_body() {
    let h = Harness::new().await;
    let res = h.call(Method::POST, "/api/v1/sandboxes", &[("x-user-id", "bob")], Some(json!({}))).await;
    assert_eq!(res.ok_json(201)["owner_id"], "bob");
    let res = h
        .call(Method::POST, "/api/v1/sandboxes", &[("x-user-id", "  carol ")], Some(json!({"owner_id": "alice"})))
        .await;
    assert_eq!(res.ok_json(201)["owner_id"], "carol", "header wins over body, trimmed");
    // An empty header falls back to the body.
    let res = h.call(Method::POST, "/api/v1/sandboxes", &[("x-user-id", "")], Some(json!({"owner_id": "dave"}))).await;
    assert_eq!(res.ok_json(201)["owner_id"], "dave");
}

#[tokio::test]
async fn bad_owner_ids_are_rejected_without_side_effects() {
    let h = Harness::new().await;
    h.spawn().await;
    let long = "a".repeat(129);
    let multibyte = "é".repeat(65); // 130 bytes, 65 chars
    let cases: Vec<(Vec<(&str, &str)>, Value)> = vec![
        (vec![("x-user-id", "a/b")], json!({})),
        (vec![("x-user-id", "a\\b")], json!({})),
        (vec![("x-user-id", "a b")], json!({})),
        (vec![("x-user-id", long.as_str())], json!({})),
        (vec![], json!({"owner_id": "a/b"})),
        (vec![], json!({"owner_id": "a b"})),
        (vec![], json!({"owner_id": "tab\there"})),
        (vec![], json!({"owner_id": long})),
        (vec![], json!({"owner_id": multibyte})),
        // The header is validated even when the body is fine.
        (vec![("x-user-id", "x/y")], json!({"owner_id": "fine"})),
    ];
    for (headers, body) in cases {
        let res = h.call(Method::POST, "/api/v1/sandboxes", &headers, Some(body.clone())).await;
        let msg = res.err(400, "BAD_REQUEST");
        assert!(msg.starts_with("invalid input: owner_id"), "{headers:?} {body}: {msg}");
    }
    // A header that is not UTF-8.
    let req = h
        .request(Method::POST, "/api/v1/sandboxes")
        .header("content-type", "application/json")
        .header("x-user-id", axum::http::HeaderValue::from_bytes(b"\xffab").unwrap())
        .body(axum::body::Body::from("{}"))
        .unwrap();
    h.send(req).await.err(400, "BAD_REQUEST");
    let msg = h
        .call(Method::POST, "/api/v1/sandboxes", &[("x-user-id", "a/b")], Some(json!({})))
        .await
        .err(400, "BAD_REQUEST");
    assert_eq!(msg, "invalid input: owner_id cannot contain path separators");
    // 128 bytes exactly is fine; non-ASCII is fine.
    let ok = "a".repeat(128);
    h.call(Method::POST, "/api/v1/sandboxes", &[("x-user-id", ok.as_str())], Some(json!({}))).await.ok_json(201);
    h.spawn_with(json!({"owner_id": "名前"})).await;
    assert_eq!(h.list_ids().await.len(), 3);
    assert_eq!(h.live_rows().await.len(), 3);
    assert_eq!(h.runtime_dirs().len(), 3);
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let h = Harness::new().await;
    let cases: Vec<(Option<&str>, &str)> = vec![
        (Some("application/json"), "{"),
        (Some("application/json"), "not json"),
        (Some("application/json"), "[1,2]"),
        (Some("application/json"), r#"{"memory_mb":"x"}"#),
        (Some("application/json"), r#"{"vcpus":1.5}"#),
        (Some("application/json"), r#"{"metadata":{"k":1}}"#),
        (Some("application/json"), ""),
        (None, "{}"),
        (Some("text/plain"), "{}"),
    ];
    for (ct, body) in cases {
        let res = h.post_raw("/api/v1/sandboxes", ct, body.to_string()).await;
        let msg = res.err(400, "BAD_REQUEST");
        assert!(msg.starts_with("invalid request body"), "{ct:?} {body:?}: {msg}");
    }
    assert_eq!(h.list_ids().await, Vec::<String>::new());
    assert!(h.live_rows().await.is_empty());
    assert!(h.runtime_dirs().is_empty());
}

#[tokio::test]
async fn invalid_resource_values_are_400() {
    let h = Harness::new().await;
    for body in [json!({"memory_mb": -1}), json!({"vcpus": -2}), json!({"memory_mb": 1i64 << 40})] {
        let msg = h.post("/api/v1/sandboxes", body.clone()).await.err(400, "BAD_REQUEST");
        assert!(msg.starts_with("invalid input:"), "{body}: {msg}");
    }
    assert!(h.list_ids().await.is_empty());
    assert!(h.live_rows().await.is_empty());
}

#[tokio::test]
async fn ttl_validation() {
    let h = Harness::new().await;
    for ttl in ["abc", "0s", "0", "-5m", "1d", "10 m"] {
        let msg = h.post("/api/v1/sandboxes", json!({"ttl": ttl})).await.err(400, "BAD_REQUEST");
        assert!(msg.contains("ttl"), "{ttl}: {msg}");
    }
    let msg = h.post("/api/v1/sandboxes", json!({"ttl": "48h"})).await.err(429, "RESOURCE_LIMIT");
    assert_eq!(msg, "resource limit exceeded: ttl exceeds max ttl 24h0m0s");
    // Exactly the max is fine; an empty string means "not set".
    h.spawn_with(json!({"ttl": "24h"})).await;
    let sb = h.spawn_with(json!({"ttl": ""})).await;
    let ttl = (utc(&sb["expires_at"]) - utc(&sb["created_at"])).num_seconds();
    assert!((1795..=1805).contains(&ttl));
    assert_eq!(h.list_ids().await.len(), 2);
    assert_eq!(h.live_rows().await.len(), 2);
}

#[tokio::test]
async fn unknown_provider_is_404() {
    let h = Harness::new().await;
    let msg = h.post("/api/v1/sandboxes", json!({"provider": "nope"})).await.err(404, "NOT_FOUND");
    assert_eq!(msg, "provider not found: nope");
    assert!(h.list_ids().await.is_empty());
    assert!(h.live_rows().await.is_empty());
}

#[tokio::test]
async fn unhealthy_provider_spawn_is_503() {
    let h = Harness::builder().provider("broken", Behaviour::Unhealthy).build().await;
    let msg = h.post("/api/v1/sandboxes", json!({"provider": "broken"})).await.err(503, "UNAVAILABLE");
    assert!(msg.contains("broken"), "{msg}");
    assert!(h.list_ids().await.is_empty());
    assert!(h.live_rows().await.is_empty());
}

#[tokio::test]
async fn list_is_newest_first_and_never_null() {
    let h = Harness::new().await;
    let res = h.get("/api/v1/sandboxes").await;
    assert_eq!(res.ok_json(200), json!([]));
    assert_eq!(res.text(), "[]");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(h.spawn().await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    ids.reverse();
    assert_eq!(h.list_ids().await, ids);
    let list = h.get("/api/v1/sandboxes").await.ok_json(200);
    for sb in list.as_array().unwrap() {
        for key in ["id", "state", "provider", "image", "memory_mb", "vcpus", "created_at", "expires_at"] {
            assert!(sb.get(key).is_some(), "{key} missing in {sb}");
        }
    }
}

#[tokio::test]
async fn get_unknown_is_404_whatever_the_shape() {
    let h = Harness::new().await;
    let msg = h.get("/api/v1/sandboxes/sb-nonexistent").await.err(404, "NOT_FOUND");
    assert_eq!(msg, "sandbox not found: sb-nonexistent");
    for id in ["sb-00000000", "xyz", "SB-ABCDEF12", "sb-1234567890abcdef", "%2E%2E", ".console", "sb-%2F..%2Fx"] {
        h.get(&format!("/api/v1/sandboxes/{id}")).await.err(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn destroy_is_idempotent_for_known_ids() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let keep = h.spawn().await;
    let res = h.delete(&format!("/api/v1/sandboxes/{id}")).await;
    assert_eq!(res.ok_json(200), json!({"status": "destroyed"}));
    let res = h.delete(&format!("/api/v1/sandboxes/{id}")).await;
    assert_eq!(res.ok_json(200), json!({"status": "destroyed"}), "second destroy stays 200");
    let msg = h.get(&format!("/api/v1/sandboxes/{id}")).await.err(404, "NOT_FOUND");
    assert_eq!(msg, format!("sandbox destroyed: {id}"));
    assert_eq!(h.list_ids().await, vec![keep.clone()]);
    assert_eq!(h.row(&id).await.unwrap().state, LifecycleState::Destroyed);
    assert_eq!(h.runtime_dirs(), vec![keep]);
    // Never existed: 404, nothing else touched.
    let msg = h.delete("/api/v1/sandboxes/sb-nonexistent").await.err(404, "NOT_FOUND");
    assert_eq!(msg, "sandbox not found: sb-nonexistent");
    assert_eq!(h.list_ids().await.len(), 1);
    // Operations on a destroyed sandbox are 404 too.
    h.exec(&id, json!({"command": "true"})).await.err(404, "NOT_FOUND");
    h.post(&format!("/api/v1/sandboxes/{id}/extend"), json!({"ttl": "1h"})).await.err(404, "NOT_FOUND");
    h.get(&format!("/api/v1/sandboxes/{id}/logs")).await.err(404, "NOT_FOUND");
    h.get(&format!("/api/v1/sandboxes/{id}/stats")).await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn extend_returns_full_sandbox() {
    let h = Harness::new().await;
    let sb = h.spawn_with(json!({"ttl": "10m"})).await;
    let id = sb["id"].as_str().unwrap();
    let url = format!("/api/v1/sandboxes/{id}/extend");
    let before = chrono::Utc::now();
    let ext = h.post(&url, json!({"ttl": "2h"})).await.ok_json(200);
    assert_eq!(keys(&ext), keys(&sb), "extend returns the full Sandbox");
    assert_eq!(ext["id"], sb["id"]);
    assert_eq!(ext["state"], "running");
    assert_eq!(ext["created_at"], sb["created_at"]);
    let new_ttl = (utc(&ext["expires_at"]) - before).num_seconds();
    assert!((7195..=7205).contains(&new_ttl), "expires = now + 2h, got {new_ttl}s");
    assert_eq!(h.get(&format!("/api/v1/sandboxes/{id}")).await.ok_json(200)["expires_at"], ext["expires_at"]);
    assert_eq!(
        h.row(id).await.unwrap().expires_at.timestamp(),
        utc(&ext["expires_at"]).timestamp(),
        "persisted to the store"
    );
    // Shorter TTLs are allowed: it is not additive.
    let shorter = h.post(&url, json!({"ttl": "5m"})).await.ok_json(200);
    assert!(utc(&shorter["expires_at"]) < utc(&ext["expires_at"]));

    // Failures leave expires_at unchanged.
    let msg = h.post(&url, json!({})).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "ttl is required");
    h.post(&url, json!({"ttl": ""})).await.err(400, "BAD_REQUEST");
    h.post(&url, json!({"ttl": "abc"})).await.err(400, "BAD_REQUEST");
    h.post(&url, json!({"ttl": "-1h"})).await.err(400, "BAD_REQUEST");
    h.post(&url, json!({"ttl": "0s"})).await.err(400, "BAD_REQUEST");
    h.post_raw(&url, Some("application/json"), "{").await.err(400, "BAD_REQUEST");
    let msg = h.post(&url, json!({"ttl": "25h"})).await.err(429, "RESOURCE_LIMIT");
    assert_eq!(msg, "resource limit exceeded: ttl exceeds max ttl 24h0m0s");
    let now = h.get(&format!("/api/v1/sandboxes/{id}")).await.ok_json(200);
    assert_eq!(now["expires_at"], shorter["expires_at"]);
    // Unknown sandbox.
    h.post("/api/v1/sandboxes/sb-nonexistent/extend", json!({"ttl": "1h"})).await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn prune_destroys_only_expired() {
    let h = Harness::new().await;
    let res = h.delete("/api/v1/sandboxes").await;
    assert_eq!(res.ok_json(200), json!({"pruned": 0}));
    let short = h.spawn_with(json!({"ttl": "50ms"})).await["id"].as_str().unwrap().to_string();
    let long = h.spawn().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let res = h.delete("/api/v1/sandboxes").await;
    assert_eq!(res.ok_json(200), json!({"pruned": 1}));
    assert_eq!(h.list_ids().await, vec![long.clone()]);
    h.get(&format!("/api/v1/sandboxes/{short}")).await.err(404, "NOT_FOUND");
    assert_eq!(h.row(&short).await.unwrap().state, LifecycleState::Destroyed);
    assert_eq!(h.runtime_dirs(), vec![long]);
    assert_eq!(h.delete("/api/v1/sandboxes").await.ok_json(200), json!({"pruned": 0}));
}

const ADMISSION_KEYS: [&str; 8] = [
    "active_owner_sandboxes",
    "active_sandboxes",
    "allowed",
    "max_owner_sandboxes",
    "max_sandboxes",
    "max_ttl",
    "queueable",
    "reason",
];

#[track_caller]
fn assert_admission_keys(v: &Value) {
    for k in keys(v) {
        assert!(ADMISSION_KEYS.contains(&k.as_str()), "unexpected admission key {k:?} in {v}");
    }
    assert!(v["allowed"].is_boolean() && v["queueable"].is_boolean(), "{v}");
}

#[tokio::test]
async fn admission_default_allows() {
    let h = Harness::new().await;
    let d = h.post("/api/v1/sandboxes/admission", json!({})).await.ok_json(200);
    assert_admission_keys(&d);
    assert_eq!(
        d,
        json!({"allowed": true, "queueable": false, "active_sandboxes": 0, "max_sandboxes": 0, "max_ttl": "24h0m0s"})
    );
    h.spawn().await;
    let d = h.post("/api/v1/sandboxes/admission", json!({"ttl": "48h"})).await.ok_json(200);
    assert_admission_keys(&d);
    assert_eq!(d["allowed"], false);
    assert_eq!(d["queueable"], false, "ttl denials are never queueable");
    assert_eq!(d["reason"], "max_ttl");
    assert_eq!(d["active_sandboxes"], 1);
    // Admission never reserves anything.
    assert_eq!(h.list_ids().await.len(), 1);
    assert_eq!(h.live_rows().await.len(), 1);
    // Bad input.
    h.post("/api/v1/sandboxes/admission", json!({"ttl": "abc"})).await.err(400, "BAD_REQUEST");
    h.post("/api/v1/sandboxes/admission", json!({"owner_id": "a/b"})).await.err(400, "BAD_REQUEST");
    h.call(Method::POST, "/api/v1/sandboxes/admission", &[("x-user-id", "a b")], Some(json!({})))
        .await
        .err(400, "BAD_REQUEST");
    h.post_raw("/api/v1/sandboxes/admission", Some("application/json"), "{").await.err(400, "BAD_REQUEST");
    assert!(h.post("/api/v1/sandboxes/admission?placement=true", json!({})).await.status.is_success());
}

#[tokio::test]
async fn admission_and_spawn_respect_max_sandboxes() {
    let h = Harness::builder().settings(|s| s.max_sandboxes = 1).build().await;
    let d = h.post("/api/v1/sandboxes/admission", json!({})).await.ok_json(200);
    assert_eq!(d["allowed"], true);
    assert_eq!(d["max_sandboxes"], 1);
    let first = h.spawn().await;
    let d = h.post("/api/v1/sandboxes/admission", json!({})).await.ok_json(200);
    assert_admission_keys(&d);
    assert_eq!(d["allowed"], false);
    assert_eq!(d["reason"], "max_sandboxes");
    assert_eq!(d["active_sandboxes"], 1);
    assert_eq!(d["max_sandboxes"], 1);
    assert_eq!(d["queueable"], false);
    let msg = h.post("/api/v1/sandboxes", json!({})).await.err(429, "RESOURCE_LIMIT");
    assert_eq!(msg, "max sandboxes reached (1)");
    assert_eq!(h.list_ids().await, vec![first.clone()]);
    assert_eq!(h.live_rows().await.len(), 1);
    assert_eq!(h.runtime_dirs().len(), 1);
    // Destroying frees the slot.
    h.delete(&format!("/api/v1/sandboxes/{first}")).await.ok_json(200);
    assert_eq!(h.post("/api/v1/sandboxes/admission", json!({})).await.ok_json(200)["allowed"], true);
    h.spawn().await;
}

#[tokio::test]
async fn admission_and_spawn_respect_max_per_owner() {
    let h = Harness::builder().settings(|s| s.max_sandboxes_per_owner = 1).build().await;
    let alice = [("x-user-id", "alice")];
    h.call(Method::POST, "/api/v1/sandboxes", &alice, Some(json!({}))).await.ok_json(201);
    let d = h.call(Method::POST, "/api/v1/sandboxes/admission", &alice, Some(json!({}))).await.ok_json(200);
    assert_admission_keys(&d);
    assert_eq!(d["allowed"], false);
    assert_eq!(d["reason"], "max_sandboxes_per_owner");
    assert_eq!(d["active_owner_sandboxes"], 1);
    assert_eq!(d["max_owner_sandboxes"], 1);
    let msg = h.call(Method::POST, "/api/v1/sandboxes", &alice, Some(json!({}))).await.err(429, "RESOURCE_LIMIT");
    assert_eq!(msg, "max sandboxes per owner reached (1)");
    // Body owner counts the same as the header.
    h.post("/api/v1/sandboxes", json!({"owner_id": "alice"})).await.err(429, "RESOURCE_LIMIT");
    // Other owners, and anonymous spawns, are unaffected.
    let d = h.post("/api/v1/sandboxes/admission", json!({"owner_id": "bob"})).await.ok_json(200);
    assert_eq!(d["allowed"], true);
    assert!(d.get("active_owner_sandboxes").is_none(), "zero owner counters are omitted: {d}");
    h.call(Method::POST, "/api/v1/sandboxes", &[("x-user-id", "bob")], Some(json!({}))).await.ok_json(201);
    h.spawn().await;
    assert_eq!(h.list_ids().await.len(), 3);
}

#[tokio::test]
async fn logs_lines_and_fallbacks() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    for i in 0..3 {
        h.run(&id, &format!("echo {i}")).await;
    }
    let url = format!("/api/v1/sandboxes/{id}/logs");
    let all = h.get(&url).await.ok_json(200);
    let all = all.as_array().expect("logs are an array");
    assert!(all.len() >= 4, "create + execs: {all:?}");
    assert!(all.iter().all(Value::is_string));
    assert!(all.iter().any(|l| l.as_str().unwrap().contains("echo 2")), "{all:?}");
    let one = h.get(&format!("{url}?lines=1")).await.ok_json(200);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(&one[0], all.last().unwrap(), "the last line");
    let two = h.get(&format!("{url}?lines=2")).await.ok_json(200);
    assert_eq!(two.as_array().unwrap().as_slice(), &all[all.len() - 2..]);
    for bad in ["abc", "0", "-5", "", "1.5"] {
        let got = h.get(&format!("{url}?lines={bad}")).await.ok_json(200);
        assert_eq!(got.as_array().unwrap(), all, "lines={bad} falls back to 100");
    }
    h.get("/api/v1/sandboxes/sb-nonexistent/logs").await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn stats_not_supported_on_mock() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let res = h.get(&format!("/api/v1/sandboxes/{id}/stats")).await;
    assert_eq!(res.ok_json(200), json!({"supported": false}));
    h.get("/api/v1/sandboxes/sb-nonexistent/stats").await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn spawn_with_template_field_honours_template() {
    let h = Harness::new().await;
    h.post(
        "/api/v1/templates",
        json!({"name": "big", "image": "python:3.12", "memory_mb": 4096, "vcpus": 4, "ttl": "2h",
               "metadata": {"team": "ml"}}),
    )
    .await
    .ok_json(201);
    let sb = h.spawn_with(json!({"template": "big"})).await;
    assert_eq!(sb["image"], "python:3.12");
    assert_eq!(sb["memory_mb"], 4096);
    assert_eq!(sb["vcpus"], 4);
    assert_eq!(sb["metadata"], json!({"team": "ml", "template": "big"}));
    let ttl = (utc(&sb["expires_at"]) - utc(&sb["created_at"])).num_seconds();
    assert!((7195..=7205).contains(&ttl), "template ttl 2h, got {ttl}");
    // Explicit fields override the template.
    let sb = h
        .spawn_with(json!({"template": "big", "memory_mb": 512, "image": "alpine:3.20", "ttl": "10m",
                           "metadata": {"team": "web"}}))
        .await;
    assert_eq!(sb["memory_mb"], 512);
    assert_eq!(sb["vcpus"], 4);
    assert_eq!(sb["image"], "alpine:3.20");
    assert_eq!(sb["metadata"]["team"], "web");
    let ttl = (utc(&sb["expires_at"]) - utc(&sb["created_at"])).num_seconds();
    assert!((595..=605).contains(&ttl));
    // Unknown template: 404, nothing spawned.
    let msg = h.post("/api/v1/sandboxes", json!({"template": "nope"})).await.err(404, "NOT_FOUND");
    assert!(msg.contains("nope"), "{msg}");
    assert_eq!(h.list_ids().await.len(), 2);
}

#[tokio::test]
async fn failed_spawn_leaves_nothing_and_releases_its_slot() {
    let h = Harness::builder().provider("flaky", Behaviour::FailCreate).settings(|s| s.max_sandboxes = 1).build().await;
    let msg = h.post("/api/v1/sandboxes", json!({"provider": "flaky"})).await.err(500, "INTERNAL_ERROR");
    assert!(msg.contains("simulated create failure"), "{msg}");
    assert!(h.list_ids().await.is_empty());
    assert!(h.live_rows().await.is_empty(), "only a destroyed row may remain");
    let d = h.post("/api/v1/sandboxes/admission", json!({})).await.ok_json(200);
    assert_eq!((d["allowed"].as_bool(), d["active_sandboxes"].as_u64()), (Some(true), Some(0)));
    // The reservation was released: the one slot is usable.
    h.spawn().await;
}

#[tokio::test]
async fn concurrent_spawns_never_exceed_max_sandboxes() {
    let h = std::sync::Arc::new(Harness::builder().settings(|s| s.max_sandboxes = 2).build().await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let h = std::sync::Arc::clone(&h);
            tokio::spawn(async move { h.post("/api/v1/sandboxes", json!({})).await.status.as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 429, 429, 429, 429, 429, 429]);
    assert_eq!(h.list_ids().await.len(), 2);
    assert_eq!(h.live_rows().await.len(), 2);
    assert_eq!(h.runtime_dirs().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_spawn_does_not_block_others() {
    let h = std::sync::Arc::new(
        Harness::builder().provider("slow", Behaviour::SlowCreate(Duration::from_secs(3))).build().await,
    );
    let slow = {
        let h = std::sync::Arc::clone(&h);
        tokio::spawn(async move { h.post("/api/v1/sandboxes", json!({"provider": "slow"})).await.status.as_u16() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let id = h.spawn().await;
    h.run(&id, "true").await;
    h.get("/api/v1/sandboxes").await.ok_json(200);
    assert!(started.elapsed() < Duration::from_secs(2), "blocked behind the slow spawn: {:?}", started.elapsed());
    assert_eq!(slow.await.unwrap(), 201);
    assert_eq!(h.list_ids().await.len(), 2);
}
