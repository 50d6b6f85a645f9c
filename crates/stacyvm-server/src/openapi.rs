//! The generated OpenAPI document, served at `/api/v1/openapi.json` and `/swagger/doc.json`
//! and checked in as `docs/openapi.json` (a test fails when it is stale).

use axum::Json;
use utoipa::OpenApi;

use crate::routes::{exec, exec_ws, files, images, providers, quotas, sandboxes, system, templates, upload};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "StacyVM API", description = "Self-hosted sandbox orchestrator for AI agents.", license(name = "Apache-2.0")),
    paths(
        sandboxes::list, sandboxes::spawn, sandboxes::admission, sandboxes::prune, sandboxes::get_one,
        sandboxes::destroy, sandboxes::extend, sandboxes::logs, sandboxes::stats,
        exec::exec, exec_ws::exec_ws,
        files::write, files::read, files::delete, files::list, files::stat, files::glob, files::move_file, files::chmod,
        upload::upload,
        templates::list, templates::create, templates::get_one, templates::update, templates::delete, templates::spawn,
        providers::list, providers::test, providers::detail, providers::snapshots, providers::pool_status,
        system::health, system::live, system::ready, system::diagnostics, system::metrics, system::prometheus,
        system::events,
        quotas::list, quotas::summary, quotas::get_one, quotas::put, quotas::delete, quotas::usage,
        images::list, images::pull, images::import, images::remove, images::prune,
    ),
    components(schemas(
        stacyvm_types::ErrorBody, stacyvm_types::ErrorCode,
        stacyvm_types::event::Event, stacyvm_types::exec::StreamChunk, stacyvm_types::exec::ExitLine,
        stacyvm_types::exec::ExecWsInput,
    )),
    tags(
        (name = "sandboxes", description = "Spawn, inspect and destroy sandboxes"),
        (name = "exec", description = "Run commands"),
        (name = "files", description = "Files inside a sandbox"),
        (name = "templates", description = "Named spawn presets"),
        (name = "providers", description = "Backends, snapshots and pool mode"),
        (name = "quotas", description = "Per-owner limits"),
        (name = "images", description = "The local OCI image store: pull, import, list, remove, prune"),
        (name = "system", description = "Health, metrics and events"),
    )
)]
pub struct ApiDoc;

/// The document with the server version filled in.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = crate::VERSION.to_string();
    doc
}

/// The document as pretty JSON (the checked-in form).
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().expect("OpenAPI document serialises");
    text.push('\n');
    text
}

/// Handler serving the document.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
