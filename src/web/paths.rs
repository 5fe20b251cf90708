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

pub const SAML_METADATA: &str = "/saml/metadata";
pub const SAML_SSO: &str = "/saml/sso";
pub const SAML_SSO_RESUME: &str = "/saml/sso/resume";
pub const SAML_IDP_INIT: &str = "/saml/idp-init";
pub const SAML_SLO: &str = "/saml/slo";
pub const SAML_SLO_NEXT: &str = "/saml/slo/next";

pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
pub const LOGIN_BANKID: &str = "/login/bankid";
pub const BANKID_STATUS: &str = "/login/bankid/status";
pub const BANKID_QR: &str = "/login/bankid/qr";
pub const BANKID_CANCEL: &str = "/login/bankid/cancel";
/// The returnUrl BankID's app sends the browser back to (same-device logins).
pub const BANKID_RETURN: &str = "/login/bankid/return";
pub const BANKID_STUB_SCAN: &str = "/login/bankid/stub-scan";
pub const BANKID_SCRIPT: &str = "/static/bankid.js";
/// Where the built-in BankID stub is mounted (stub environment only, never in production).
pub const BANKID_STUB: &str = "/bankid-stub";
pub const PASSWORD: &str = "/password";
pub const LOGGED_OUT: &str = "/logged-out";
pub const STYLESHEET: &str = "/static/portvakt.css";
pub const HEALTH: &str = "/healthz";

pub const DEMO: &str = "/demo";
pub const DEMO_LOGIN: &str = "/demo/rp/{client}/login";
pub const DEMO_CALLBACK: &str = "/demo/rp/{client}/callback";
pub const DEMO_SP: &str = "/demo/sp";
pub const DEMO_SP_LOGIN: &str = "/demo/sp/login";
pub const DEMO_SP_ACS: &str = "/demo/sp/acs";

/// Where a login transaction of `protocol` resumes. Only server-chosen paths: no endpoint
/// takes a return URL from the request.
pub fn resume_path(protocol: &str) -> Option<&'static str> {
    match protocol {
        "oidc" => Some(AUTHORIZE_RESUME),
        "saml" => Some(SAML_SSO_RESUME),
        "password" => Some(PASSWORD),
        _ => None,
    }
}

/// Fills a `{name}` segment of a route pattern.
pub fn fill(pattern: &str, name: &str, value: &str) -> String {
    pattern.replace(&format!("{{{name}}}"), value)
}

/// Where the login page sends the browser to log in with an upstream provider (served by
/// the upstream login front); `{name}` is the upstream's NAME, `?tx=` the transaction.
pub const UPSTREAM_START: &str = "/upstream/{name}/start";
