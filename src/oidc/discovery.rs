//! Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414), built from the same path
//! constants the router uses.

use crate::directory::release;
use crate::web::paths;
use serde_json::{Value, json};

/// The document for `issuer`; built once at start (it depends only on configuration).
pub fn metadata(issuer: &str, acr_values: &[&str]) -> Value {
    let url = |path: &str| format!("{issuer}{path}");
    let mut scopes = vec!["openid", "offline_access"];
    scopes.extend(release::CLAIM_SCOPES);
    let mut claims = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
    ];
    claims.extend(release::known_claims());
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(paths::AUTHORIZE),
        "token_endpoint": url(paths::TOKEN),
        "userinfo_endpoint": url(paths::USERINFO),
        "jwks_uri": url(paths::JWKS),
        "end_session_endpoint": url(paths::END_SESSION),
        "introspection_endpoint": url(paths::INTROSPECT),
        "revocation_endpoint": url(paths::REVOKE),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": super::client::GRANTS,
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": claims,
        "acr_values_supported": acr_values,
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["sv", "en"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    })
}
