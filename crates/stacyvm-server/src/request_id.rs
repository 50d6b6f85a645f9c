//! `X-Request-ID`: echoed when the client sends one, generated (UUIDv4) otherwise.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Middleware that sets the response's `X-Request-ID`.
pub async fn propagate(req: Request, next: Next) -> Response {
    let id =
        req.headers().get(&X_REQUEST_ID).filter(|v| !v.is_empty() && v.len() <= 128).cloned().unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is a valid header")
        });
    let mut res = next.run(req).await;
    res.headers_mut().insert(X_REQUEST_ID.clone(), id);
    res
}
