//! Router tests for `/api/v1/quotas` (and the `/api/v1/admin/quotas` alias): CRUD, the SDK's
//! exact-key summary, usage, validation, and enforcement on spawn, extend and exec.

mod support;

use serde_json::json;
use support::Harness;

#[tokio::test]
async fn crud_summary_and_usage() {
    let h = Harness::new().await;
    assert_eq!(h.get("/api/v1/quotas").await.ok_json(200), json!([]));
    let summary = h.get("/api/v1/quotas/summary").await.ok_json(200);
    assert_eq!(summary, json!({"total": 0, "with_max_sandboxes": 0, "with_max_ttl": 0, "with_max_exec_timeout": 0}));
    h.get("/api/v1/quotas/alice").await.err(404, "NOT_FOUND");

    let q = h.put("/api/v1/quotas/alice", json!({"max_sandboxes": 2, "max_ttl": "2h", "max_exec_timeout": "0s"})).await;
    let q = q.ok_json(200);
    assert_eq!((q["owner_id"].clone(), q["max_sandboxes"].clone()), (json!("alice"), json!(2)));
    assert_eq!((q["max_ttl"].clone(), q["max_exec_timeout"].clone()), (json!("2h0m0s"), json!("0s")));
    assert_eq!(h.get("/api/v1/quotas/alice").await.ok_json(200)["max_ttl"], "2h0m0s");
    assert_eq!(h.get("/api/v1/admin/quotas/alice").await.ok_json(200)["owner_id"], "alice", "admin alias");

    let summary = h.get("/api/v1/quotas/summary").await.ok_json(200);
    assert_eq!(summary, json!({"total": 1, "with_max_sandboxes": 1, "with_max_ttl": 1, "with_max_exec_timeout": 0}));

    h.spawn_with(json!({"owner_id": "alice"})).await;
    let usage = h.get("/api/v1/quotas/alice/usage").await.ok_json(200);
    assert_eq!(
        usage,
        json!({"owner_id": "alice", "active_sandboxes": 1, "max_sandboxes": 2, "max_ttl": "2h0m0s",
               "max_exec_timeout": "10m0s", "quota_configured": true})
    );

    assert_eq!(h.delete("/api/v1/quotas/alice").await.ok_json(200), json!({"status": "deleted"}));
    h.delete("/api/v1/quotas/alice").await.err(404, "NOT_FOUND");
    assert_eq!(h.get("/api/v1/quotas/alice/usage").await.ok_json(200)["quota_configured"], false);
}

#[tokio::test]
async fn bad_input_is_rejected_and_nothing_is_stored() {
    let h = Harness::new().await;
    for (owner, body) in [
        ("alice", json!({"max_sandboxes": -1})),
        ("alice", json!({"max_ttl": "1.5s"})),
        ("alice", json!({"max_ttl": "-1h"})),
        ("alice", json!({"max_exec_timeout": "soon"})),
        ("alice", json!({"max_sandboxes": "two"})),
        ("a%20b", json!({"max_sandboxes": 1})),
        ("a%5Cb", json!({"max_sandboxes": 1})),
    ] {
        h.put(&format!("/api/v1/quotas/{owner}"), body).await.err(400, "BAD_REQUEST");
    }
    assert_eq!(h.get("/api/v1/quotas").await.ok_json(200), json!([]));
}

#[tokio::test]
async fn quotas_are_enforced_on_spawn_extend_and_exec() {
    let h = Harness::new().await;
    h.put("/api/v1/quotas/bob", json!({"max_sandboxes": 1, "max_ttl": "1h", "max_exec_timeout": "2s"}))
        .await
        .ok_json(200);
    let owner = [("X-User-ID", "bob")];
    let first = h.call(axum::http::Method::POST, "/api/v1/sandboxes", &owner, Some(json!({}))).await.ok_json(201);
    let id = first["id"].as_str().unwrap().to_string();
    let msg =
        h.call(axum::http::Method::POST, "/api/v1/sandboxes", &owner, Some(json!({}))).await.err(429, "RESOURCE_LIMIT");
    assert_eq!(msg, "max sandboxes per owner reached (1)");
    // Other owners are not affected.
    h.spawn_with(json!({"owner_id": "carol"})).await;

    let msg = h
        .call(axum::http::Method::POST, "/api/v1/sandboxes/admission", &owner, Some(json!({"ttl": "2h"})))
        .await
        .ok_json(200);
    assert_eq!(msg["reason"], "max_ttl");
    assert_eq!(msg["max_ttl"], "1h0m0s");
    h.post(&format!("/api/v1/sandboxes/{id}/extend"), json!({"ttl": "90m"})).await.err(429, "RESOURCE_LIMIT");
    h.exec(&id, json!({"command": "true", "timeout": "3s"})).await.err(429, "RESOURCE_LIMIT");
    assert_eq!(h.exec(&id, json!({"command": "true", "timeout": "2s"})).await.ok_json(200)["exit_code"], 0);

    // Deleting the quota lifts the cap.
    h.delete("/api/v1/quotas/bob").await.ok_json(200);
    h.call(axum::http::Method::POST, "/api/v1/sandboxes", &owner, Some(json!({}))).await.ok_json(201);
}
