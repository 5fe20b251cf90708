//! Every public path, defined once. Routers, discovery and templates all use these.

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/oidc/jwks";
pub const AUTHORIZE: &str = "/oidc/authorize";
pub const AUTHORIZE_RESUME: &str = "/oidc/authorize/resume";
pub const TOKEN: &str = "/oidc/token";
pub const USERINFO: &str = "/oidc/userinfo";
pub const INTROSPECT: &str = "/oidc/introspect";
pub const REVOKE: &str = "/oidc/revoke";
pub const END_SESSION: &str = "/oidc/logout";

pub const LOGIN: &str = "/login";
pub const LOGGED_OUT: &str = "/logged-out";
pub const STYLESHEET: &str = "/static/portvakt.css";
pub const HEALTH: &str = "/healthz";

pub const DEMO: &str = "/demo";
pub const DEMO_LOGIN: &str = "/demo/rp/{client}/login";
pub const DEMO_CALLBACK: &str = "/demo/rp/{client}/callback";

/// Where a login transaction of `protocol` resumes. Only server-chosen paths: no endpoint
/// takes a return URL from the request.
pub fn resume_path(protocol: &str) -> Option<&'static str> {
    match protocol {
        "oidc" => Some(AUTHORIZE_RESUME),
        _ => None,
    }
}

/// Fills a `{name}` segment of a route pattern.
pub fn fill(pattern: &str, name: &str, value: &str) -> String {
    pattern.replace(&format!("{{{name}}}"), value)
}
