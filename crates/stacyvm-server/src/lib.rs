//! The StacyVM REST API (`/api/v1`) on axum.
//!
//! Handlers are thin: they extract and validate wire input, call the core [`Manager`], and
//! turn results into responses. Errors become `{code, message}` in exactly one place
//! ([`error::code_for`]). The OpenAPI document is generated from the handler annotations
//! ([`openapi::ApiDoc`]).

pub mod auth;
mod cors;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod rate_limit;
mod request_id;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::Router;
use stacyvm_core::Manager;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::AuthSettings;
pub use routes::system::prometheus_text;

/// Server version reported by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default of [`HttpSettings::max_upload_bytes`] (and of `server.max_upload_bytes`): 10 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 << 30;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest accepted request body (except raw uploads).
    pub max_body_bytes: usize,
    /// Largest raw upload (`PUT /sandboxes/{id}/files`), which is streamed, not buffered.
    pub max_upload_bytes: u64,
    /// `*` or explicit origins.
    pub cors_allowed_origins: Vec<String>,
    /// Keys.
    pub auth: AuthSettings,
    /// The image store behind `/images` (`None`: those routes answer 503).
    pub images: Option<Arc<stacyvm_image::ImageStore>>,
    /// `rate_limit.*`; `None` (or `enabled: false`) = no limit.
    pub rate_limit: Option<stacyvm_config::RateLimitConfig>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body_bytes: 16 << 20,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            cors_allowed_origins: vec!["*".into()],
            auth: AuthSettings::default(),
            images: None,
            rate_limit: None,
        }
    }
}

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub manager: Arc<Manager>,
    /// The image store, when there is one.
    pub images: Option<Arc<stacyvm_image::ImageStore>>,
    /// Largest raw upload.
    pub max_upload_bytes: u64,
    /// The rate limiter, when `rate_limit.enabled`.
    pub rate_limiter: Option<Arc<rate_limit::RateLimiter>>,
}

/// Builds the complete router (API, OpenAPI, fallbacks, middleware).
pub fn router(manager: Arc<Manager>, settings: &HttpSettings) -> Router {
    let rate_limiter =
        settings.rate_limit.clone().filter(|c| c.enabled).map(|c| Arc::new(rate_limit::RateLimiter::new(c)));
    let state = AppState {
        manager,
        images: settings.images.clone(),
        max_upload_bytes: settings.max_upload_bytes,
        rate_limiter: rate_limiter.clone(),
    };
    let mut api = routes::api_routes()
        .layer(axum::middleware::from_fn_with_state(Arc::new(settings.auth.clone()), auth::require_auth));
    if let Some(limiter) = rate_limiter {
        // Outside authentication: floods with wrong keys are limited too.
        api = api.layer(axum::middleware::from_fn_with_state(limiter, rate_limit::limit));
    }
    Router::new()
        .nest("/api/v1", api)
        .route("/swagger/doc.json", axum::routing::get(openapi::serve))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(cors_layer(&settings.cors_allowed_origins))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(cors::PreflightPolicy::new(&settings.cors_allowed_origins)),
            cors::reject_unlisted_preflight,
        ))
        .layer(axum::middleware::from_fn(request_id::propagate))
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.is_empty() || origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-admin-api-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-user-id"),
            HeaderName::from_static("x-tenant-id"),
        ])
        .max_age(Duration::from_secs(600))
}
