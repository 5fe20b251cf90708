//! OAuth 2.0 / OIDC protocol errors with the spec's codes. `Display` is the code itself.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// RFC 6749 §5.2: missing or malformed parameter.
    #[error("invalid_request")]
    InvalidRequest(String),
    /// RFC 6749 §5.2: client authentication failed (401).
    #[error("invalid_client")]
    InvalidClient,
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked or was issued
    /// to another client or redirect URI.
    #[error("invalid_grant")]
    InvalidGrant(String),
    /// RFC 6749 §5.2: the client may not use this grant type.
    #[error("unauthorized_client")]
    UnauthorizedClient,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope")]
    InvalidScope(String),
    /// RFC 6750 §3.1: the access token is invalid (401 at the resource).
    #[error("invalid_token")]
    InvalidToken,
    /// RFC 6750 §3.1.
    #[error("insufficient_scope")]
    InsufficientScope,
    #[error("server_error")]
    Server(String),
    /// The database cannot be reached now (503, `Retry-After`); the string is for the log.
    #[error("temporarily_unavailable")]
    Unavailable(String),
}

impl OidcError {
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::InvalidRequest(_) => "invalid_request",
            OidcError::InvalidClient => "invalid_client",
            OidcError::InvalidGrant(_) => "invalid_grant",
            OidcError::UnauthorizedClient => "unauthorized_client",
            OidcError::UnsupportedGrantType => "unsupported_grant_type",
            OidcError::InvalidScope(_) => "invalid_scope",
            OidcError::InvalidToken => "invalid_token",
            OidcError::InsufficientScope => "insufficient_scope",
            OidcError::Server(_) => "server_error",
            OidcError::Unavailable(_) => "temporarily_unavailable",
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            OidcError::InvalidRequest(d)
            | OidcError::InvalidGrant(d)
            | OidcError::InvalidScope(d) => Some(d),
            _ => None,
        }
    }
}

macro_rules! server_from {
    ($($t:ty),*) => {$(
        impl From<$t> for OidcError {
            fn from(e: $t) -> Self {
                let detail = crate::error_chain(&e);
                if crate::web::unavailable(&e) {
                    OidcError::Unavailable(detail)
                } else {
                    OidcError::Server(detail)
                }
            }
        }
    )*};
}
server_from!(
    crate::storage::StorageError,
    crate::keys::KeyError,
    crate::authn::AuthnError,
    crate::directory::DirectoryError
);

/// Token-endpoint style JSON error (RFC 6749 §5.2; RFC 6750 §3 for resource errors).
impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        let status = match &self {
            OidcError::InvalidClient | OidcError::InvalidToken => StatusCode::UNAUTHORIZED,
            OidcError::InsufficientScope => StatusCode::FORBIDDEN,
            OidcError::Server(detail) => {
                tracing::error!("oidc server error: {detail}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            OidcError::Unavailable(detail) => {
                tracing::error!("oidc: database unavailable: {detail}");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let mut body = json!({ "error": self.code() });
        if let Some(d) = self.description() {
            body["error_description"] = json!(d);
        }
        let mut res = (status, Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        let challenge = match &self {
            OidcError::InvalidClient => Some("Basic realm=\"portvakt\"".to_string()),
            OidcError::InvalidToken | OidcError::InsufficientScope => Some(format!(
                "Bearer realm=\"portvakt\", error=\"{}\"",
                self.code()
            )),
            _ => None,
        };
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if matches!(self, OidcError::Unavailable(_)) {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::web::RETRY_AFTER_SECS),
            );
        }
        res
    }
}
