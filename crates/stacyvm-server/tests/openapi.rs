//! The checked-in `docs/openapi.json` must equal the generated document.
//! Regenerate with `make openapi` (sets `STACYVM_UPDATE_OPENAPI=1`).

use std::path::PathBuf;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn checked_in_openapi_is_current() {
    let generated = stacyvm_server::openapi::document_json();
    let path = checked_in_path();
    if std::env::var_os("STACYVM_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(stored == generated, "docs/openapi.json is stale: run `make openapi` and commit the result");
}

#[test]
fn document_describes_the_sdk_routes() {
    let doc: serde_json::Value = serde_json::from_str(&stacyvm_server::openapi::document_json()).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for route in [
        "/api/v1/sandboxes",
        "/api/v1/sandboxes/admission",
        "/api/v1/sandboxes/{id}",
        "/api/v1/sandboxes/{id}/exec",
        "/api/v1/sandboxes/{id}/exec/ws",
        "/api/v1/sandboxes/{id}/extend",
        "/api/v1/sandboxes/{id}/files",
        "/api/v1/sandboxes/{id}/files/list",
        "/api/v1/sandboxes/{id}/files/stat",
        "/api/v1/sandboxes/{id}/files/glob",
        "/api/v1/sandboxes/{id}/files/move",
        "/api/v1/sandboxes/{id}/files/chmod",
        "/api/v1/templates",
        "/api/v1/templates/{name}/spawn",
        "/api/v1/providers",
        "/api/v1/pool/status",
        "/api/v1/quotas/summary",
        "/api/v1/health",
        "/api/v1/events",
        "/api/v1/metrics/prometheus",
    ] {
        assert!(paths.contains_key(route), "OpenAPI document lacks {route}");
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for schema in ["Sandbox", "SpawnRequest", "ExecRequest", "ExecResult", "FileInfo", "Template", "ErrorBody"] {
        assert!(schemas.contains_key(schema), "OpenAPI document lacks schema {schema}");
    }
}
