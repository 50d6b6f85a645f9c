//! Authentication: API and admin keys, closed by default.
//!
//! - No credentials configured: only loopback peers are served, unless
//!   `auth.allow_unauthenticated` opts in to open access.
//! - Otherwise every non-public route needs `X-Admin-API-Key` or `X-API-Key` (checked in that
//!   order, compared in constant time); `/api/v1/admin/*` needs the admin role.
//! - `/api/v1/health`, `/live` and `/ready` are public. CORS preflights are answered before
//!   this layer runs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stacyvm_types::ErrorCode;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Key settings.
#[derive(Clone, Default)]
pub struct AuthSettings {
    /// Regular key (role `api`).
    pub api_key: String,
    /// Admin key (role `admin`).
    pub admin_api_key: String,
    /// The regular key acts as admin while no admin key is set.
    pub admin_fallback_enabled: bool,
    /// Serve non-loopback peers without credentials when none are configured.
    pub allow_unauthenticated: bool,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("api_key", &if self.api_key.is_empty() { "" } else { "[REDACTED]" })
            .field("admin_api_key", &if self.admin_api_key.is_empty() { "" } else { "[REDACTED]" })
            .field("admin_fallback_enabled", &self.admin_fallback_enabled)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .finish()
    }
}

/// The caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Regular key.
    Api,
    /// Admin key (or open local access).
    Admin,
}

impl AuthSettings {
    /// True when any credential is configured.
    pub fn is_configured(&self) -> bool {
        !self.api_key.is_empty() || !self.admin_api_key.is_empty()
    }

    fn role_for(&self, presented: &str) -> Option<Role> {
        let matches = |key: &str| !key.is_empty() && bool::from(presented.as_bytes().ct_eq(key.as_bytes()));
        if matches(&self.admin_api_key) {
            Some(Role::Admin)
        } else if matches(&self.api_key) {
            Some(if self.admin_fallback_enabled && self.admin_api_key.is_empty() { Role::Admin } else { Role::Api })
        } else {
            None
        }
    }

    /// Decides who the caller is.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Role, ApiError> {
        if !self.is_configured() {
            let local = peer.is_some_and(|p| p.ip().is_loopback());
            if local || self.allow_unauthenticated {
                return Ok(Role::Admin);
            }
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "authentication is not configured: only localhost may connect; set auth.api_key \
                 (STACYVM_AUTH_API_KEY) or auth.allow_unauthenticated: true",
            ));
        }
        let presented = ["x-admin-api-key", "x-api-key"]
            .iter()
            .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()));
        presented
            .and_then(|key| self.role_for(key))
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "invalid or missing API key"))
    }
}

fn is_public(path: &str) -> bool {
    matches!(path, "/api/v1/health" | "/api/v1/live" | "/api/v1/ready")
}

/// Axum middleware enforcing [`AuthSettings`].
pub async fn require_auth(State(auth): State<Arc<AuthSettings>>, mut req: Request, next: Next) -> Response {
    // Nested routers see a stripped path; decide on the full one.
    let path = req.extensions().get::<OriginalUri>().map_or_else(|| req.uri().path(), |u| u.path()).to_string();
    if is_public(&path) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    match auth.authenticate(req.headers(), peer) {
        Ok(role) => {
            if path.starts_with("/api/v1/admin") && role != Role::Admin {
                return ApiError::new(ErrorCode::Forbidden, "admin API key required").into_response();
            }
            req.extensions_mut().insert(role);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn closed_by_default_except_loopback() {
        let auth = AuthSettings::default();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert_eq!(auth.authenticate(&HeaderMap::new(), Some(local)).unwrap(), Role::Admin);
        let err = auth.authenticate(&HeaderMap::new(), Some(remote)).unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
        assert!(err.message.contains("auth.api_key"));
        assert!(auth.authenticate(&HeaderMap::new(), None).is_err());
        let open = AuthSettings { allow_unauthenticated: true, ..Default::default() };
        assert!(open.authenticate(&HeaderMap::new(), Some(remote)).is_ok());
    }

    #[test]
    fn keys_and_roles() {
        let auth = AuthSettings {
            api_key: "k-api".into(),
            admin_api_key: "k-admin".into(),
            admin_fallback_enabled: true,
            ..Default::default()
        };
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(auth.authenticate(&headers(&[("x-api-key", "k-api")]), Some(local)).unwrap(), Role::Api);
        assert_eq!(auth.authenticate(&headers(&[("x-api-key", "k-admin")]), None).unwrap(), Role::Admin);
        assert_eq!(
            auth.authenticate(&headers(&[("x-admin-api-key", "k-admin"), ("x-api-key", "bad")]), None).unwrap(),
            Role::Admin
        );
        assert!(auth.authenticate(&headers(&[("x-api-key", "wrong")]), Some(local)).is_err(), "no loopback bypass");
        assert!(auth.authenticate(&HeaderMap::new(), Some(local)).is_err());
        let fallback = AuthSettings { api_key: "k".into(), admin_fallback_enabled: true, ..Default::default() };
        assert_eq!(fallback.authenticate(&headers(&[("x-api-key", "k")]), None).unwrap(), Role::Admin);
        let no_fallback = AuthSettings { api_key: "k".into(), ..Default::default() };
        assert_eq!(no_fallback.authenticate(&headers(&[("x-api-key", "k")]), None).unwrap(), Role::Api);
    }

    #[test]
    fn debug_never_prints_keys() {
        let auth = AuthSettings { api_key: "secret-value".into(), ..Default::default() };
        assert!(!format!("{auth:?}").contains("secret-value"));
    }
}
