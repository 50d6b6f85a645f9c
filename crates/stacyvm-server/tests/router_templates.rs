//! Router tests for `/api/v1/templates` (CRUD and template spawn).

mod support;

use axum::http::{header, Method};
use serde_json::{json, Value};
use support::{utc, Harness};

const SDK_KEYS: [&str; 7] = ["name", "image", "memory_mb", "vcpus", "ttl", "provider", "metadata"];

async fn create(h: &Harness, body: Value) -> Value {
    h.post("/api/v1/templates", body).await.ok_json(201)
}

#[tokio::test]
async fn create_emits_both_spellings() {
    let h = Harness::new().await;
    let t = create(
        &h,
        json!({"name": "py", "image": "python:3.12", "memory_mb": 2048, "vcpus": 2, "ttl": "45m",
               "provider": "mock", "metadata": {"team": "ml"}, "description": "Python"}),
    )
    .await;
    for key in SDK_KEYS {
        assert!(t.get(key).is_some(), "SDK key {key} missing in {t}");
    }
    assert_eq!(t["name"], "py");
    assert_eq!(t["image"], "python:3.12");
    assert_eq!(t["memory_mb"], 2048);
    assert_eq!(t["vcpus"], 2);
    assert_eq!(t["cpu_cores"], 2);
    assert_eq!(t["ttl"], "45m0s");
    assert_eq!(t["ttl_seconds"], 2700);
    assert_eq!(t["provider"], "mock");
    assert_eq!(t["metadata"], json!({"team": "ml"}));
    assert_eq!(t["description"], "Python");
    assert_eq!(t["version"], 1);
    utc(&t["created_at"]);
    utc(&t["updated_at"]);
    assert_eq!(h.get("/api/v1/templates/py").await.ok_json(200), t, "GET returns what POST returned");
}

#[tokio::test]
async fn create_defaults_and_server_spelling() {
    let h = Harness::new().await;
    let t = create(&h, json!({"name": "min", "image": "alpine"})).await;
    assert_eq!((t["memory_mb"].as_u64(), t["vcpus"].as_u64(), t["cpu_cores"].as_u64()), (Some(512), Some(1), Some(1)));
    assert_eq!((t["ttl"].as_str(), t["ttl_seconds"].as_u64()), (Some("5m0s"), Some(300)));
    assert_eq!(t["provider"], "");
    assert_eq!(t["metadata"], json!({}));
    for key in SDK_KEYS {
        assert!(t.get(key).is_some(), "SDK key {key} missing in {t}");
    }
    // Server spelling only.
    let t = create(&h, json!({"name": "srv", "image": "alpine", "cpu_cores": 3, "ttl_seconds": 120})).await;
    assert_eq!((t["vcpus"].as_u64(), t["ttl"].as_str()), (Some(3), Some("2m0s")));
    // Both given: the server spelling wins.
    let t = create(
        &h,
        json!({"name": "both", "image": "alpine", "cpu_cores": 4, "vcpus": 8, "ttl_seconds": 60, "ttl": "2h"}),
    )
    .await;
    assert_eq!((t["vcpus"].as_u64(), t["cpu_cores"].as_u64()), (Some(4), Some(4)));
    assert_eq!((t["ttl"].as_str(), t["ttl_seconds"].as_u64()), (Some("1m0s"), Some(60)));
}

#[tokio::test]
async fn create_validation() {
    let h = Harness::new().await;
    create(&h, json!({"name": "dup", "image": "alpine"})).await;
    let msg = h.post("/api/v1/templates", json!({"name": "dup", "image": "other"})).await.err(409, "CONFLICT");
    assert!(msg.contains("dup"), "{msg}");
    assert_eq!(h.get("/api/v1/templates/dup").await.ok_json(200)["image"], "alpine", "the original is kept");
    let bad = [
        json!({"image": "alpine"}),
        json!({"name": "", "image": "alpine"}),
        json!({"name": "noimage"}),
        json!({"name": "blank", "image": "  "}),
        json!({"name": "a/b", "image": "alpine"}),
        json!({"name": "neg", "image": "alpine", "memory_mb": -1}),
        json!({"name": "ttl", "image": "alpine", "ttl": "abc"}),
        json!({"name": "ttl2", "image": "alpine", "ttl": "48h"}),
        json!({"name": "prov", "image": "alpine", "provider": "nope"}),
    ];
    for body in bad {
        let msg = h.post("/api/v1/templates", body.clone()).await.err(400, "BAD_REQUEST");
        assert!(msg.starts_with("invalid input:"), "{body}: {msg}");
    }
    h.post_raw("/api/v1/templates", Some("application/json"), "{").await.err(400, "BAD_REQUEST");
    h.post("/api/v1/templates", json!({"name": "x", "image": "y", "vcpus": "two"})).await.err(400, "BAD_REQUEST");
    let names: Vec<String> = h
        .get("/api/v1/templates")
        .await
        .ok_json(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["dup"], "failed creates store nothing");
}

#[tokio::test]
async fn list_sorted_by_name_never_null() {
    let h = Harness::new().await;
    let res = h.get("/api/v1/templates").await;
    assert_eq!(res.ok_json(200), json!([]));
    for name in ["charlie", "alpha", "bravo"] {
        create(&h, json!({"name": name, "image": "alpine"})).await;
    }
    let list = h.get("/api/v1/templates").await.ok_json(200);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "bravo", "charlie"]);
    for t in list.as_array().unwrap() {
        assert_eq!(t["vcpus"], t["cpu_cores"]);
        assert_eq!(t["ttl"], "5m0s");
    }
}

#[tokio::test]
async fn get_put_delete() {
    let h = Harness::new().await;
    let original =
        create(&h, json!({"name": "web", "image": "node:20", "memory_mb": 1024, "metadata": {"a": "1"}})).await;
    h.get("/api/v1/templates/nope").await.err(404, "NOT_FOUND");

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = h
        .put(
            "/api/v1/templates/web",
            json!({"name": "ignored-body-name", "image": "node:22", "vcpus": 2, "ttl": "1h", "metadata": {"b": "2"}}),
        )
        .await
        .ok_json(200);
    assert_eq!(updated["name"], "web", "the name comes from the path");
    assert_eq!(updated["image"], "node:22");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["created_at"], original["created_at"], "created_at kept");
    assert!(utc(&updated["updated_at"]) > utc(&original["updated_at"]));
    assert_eq!(updated["memory_mb"], 512, "full replace with defaults applied");
    assert_eq!((updated["vcpus"].as_u64(), updated["cpu_cores"].as_u64()), (Some(2), Some(2)));
    assert_eq!((updated["ttl"].as_str(), updated["ttl_seconds"].as_u64()), (Some("1h0m0s"), Some(3600)));
    assert_eq!(updated["metadata"], json!({"b": "2"}));
    assert_eq!(h.get("/api/v1/templates/web").await.ok_json(200), updated, "PUT returns the stored record");
    h.get("/api/v1/templates/ignored-body-name").await.err(404, "NOT_FOUND");
    let again = h.put("/api/v1/templates/web", json!({"image": "node:22"})).await.ok_json(200);
    assert_eq!(again["version"], 3);

    h.put("/api/v1/templates/nope", json!({"image": "x"})).await.err(404, "NOT_FOUND");
    h.get("/api/v1/templates/nope").await.err(404, "NOT_FOUND");
    h.put("/api/v1/templates/web", json!({})).await.err(400, "BAD_REQUEST");
    h.put("/api/v1/templates/web", json!({"image": "x", "memory_mb": -5})).await.err(400, "BAD_REQUEST");
    assert_eq!(h.get("/api/v1/templates/web").await.ok_json(200)["version"], 3, "failed PUTs change nothing");

    let res = h.delete("/api/v1/templates/web").await;
    assert_eq!(res.ok_json(200), json!({"status": "deleted"}));
    h.get("/api/v1/templates/web").await.err(404, "NOT_FOUND");
    let msg = h.delete("/api/v1/templates/web").await.err(404, "NOT_FOUND");
    assert!(msg.contains("web"), "{msg}");
}

async fn spawn_template_json(h: &Harness, name: &str, body: Option<&str>) -> support::Resp {
    let mut b = h.request(Method::POST, &format!("/api/v1/templates/{name}/spawn"));
    let body = match body {
        Some(text) => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            axum::body::Body::from(text.to_string())
        }
        None => axum::body::Body::empty(),
    };
    h.send(b.body(body).unwrap()).await
}

#[tokio::test]
async fn spawn_from_template() {
    let h = Harness::new().await;
    create(
        &h,
        json!({"name": "py", "image": "python:3.12", "memory_mb": 2048, "vcpus": 2, "ttl": "45m",
               "metadata": {"team": "ml"}}),
    )
    .await;
    // No body at all (the Python SDK), an empty JSON object, whitespace.
    for body in [None, Some("{}"), Some("  ")] {
        let sb = spawn_template_json(&h, "py", body).await.ok_json(201);
        assert_eq!(sb["state"], "running", "{body:?}");
        assert!(sb["id"].as_str().unwrap().starts_with("sb-"));
        assert_eq!(sb["image"], "python:3.12");
        assert_eq!(sb["memory_mb"], 2048);
        assert_eq!(sb["vcpus"], 2);
        assert_eq!(sb["provider"], "mock");
        assert_eq!(sb["metadata"], json!({"team": "ml", "template": "py"}));
        let ttl = (utc(&sb["expires_at"]) - utc(&sb["created_at"])).num_seconds();
        assert!((2695..=2705).contains(&ttl), "template ttl 45m, got {ttl}");
    }
    // TTL override.
    let sb = spawn_template_json(&h, "py", Some(r#"{"ttl":"1h"}"#)).await.ok_json(201);
    let ttl = (utc(&sb["expires_at"]) - utc(&sb["created_at"])).num_seconds();
    assert!((3595..=3605).contains(&ttl), "override ttl 1h, got {ttl}");
    assert_eq!(sb["metadata"]["template"], "py");
    // Provider override.
    let sb = spawn_template_json(&h, "py", Some(r#"{"provider":"mock"}"#)).await.ok_json(201);
    assert_eq!(sb["provider"], "mock");
    assert_eq!(h.list_ids().await.len(), 5);
}

#[tokio::test]
async fn spawn_from_template_applies_x_user_id() {
    let h = Harness::new().await;
    create(&h, json!({"name": "t", "image": "alpine"})).await;
    let req = h
        .request(Method::POST, "/api/v1/templates/t/spawn")
        .header("x-user-id", "alice")
        .body(axum::body::Body::empty())
        .unwrap();
    let sb = h.send(req).await.ok_json(201);
    assert_eq!(sb["owner_id"], "alice");
    let req = h
        .request(Method::POST, "/api/v1/templates/t/spawn")
        .header("x-user-id", "a/b")
        .body(axum::body::Body::empty())
        .unwrap();
    h.send(req).await.err(400, "BAD_REQUEST");
    assert_eq!(h.list_ids().await.len(), 1);
}

#[tokio::test]
async fn spawn_from_template_errors_leave_nothing_behind() {
    let h = Harness::new().await;
    create(&h, json!({"name": "t", "image": "alpine"})).await;
    let msg = spawn_template_json(&h, "nope", None).await.err(404, "NOT_FOUND");
    assert!(msg.contains("nope"), "{msg}");
    spawn_template_json(&h, "t", Some(r#"{"ttl":"48h"}"#)).await.err(429, "RESOURCE_LIMIT");
    spawn_template_json(&h, "t", Some(r#"{"ttl":"abc"}"#)).await.err(400, "BAD_REQUEST");
    spawn_template_json(&h, "t", Some(r#"{"provider":"nope"}"#)).await.err(404, "NOT_FOUND");
    let msg = spawn_template_json(&h, "t", Some("{")).await.err(400, "BAD_REQUEST");
    assert!(msg.starts_with("invalid request body"), "{msg}");
    assert!(h.list_ids().await.is_empty());
    assert!(h.live_rows().await.is_empty());
    assert!(h.runtime_dirs().is_empty());
}

#[tokio::test]
async fn deleted_template_cannot_spawn() {
    let h = Harness::new().await;
    create(&h, json!({"name": "gone", "image": "alpine"})).await;
    h.delete("/api/v1/templates/gone").await.ok_json(200);
    spawn_template_json(&h, "gone", None).await.err(404, "NOT_FOUND");
    h.post("/api/v1/sandboxes", json!({"template": "gone"})).await.err(404, "NOT_FOUND");
    assert!(h.list_ids().await.is_empty());
}
