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

/// Federation: where a login goes out to an upstream OpenID provider and comes back.
pub const UPSTREAM_START: &str = "/upstream/{name}/start";
pub const UPSTREAM_CALLBACK: &str = "/upstream/{name}/callback";
/// Federation with an upstream SAML IdP: our SP metadata, ACS (HTTP-POST) and SLO (Redirect).
pub const UPSTREAM_METADATA: &str = "/upstream/{name}/metadata";
pub const UPSTREAM_ACS: &str = "/upstream/{name}/acs";
pub const UPSTREAM_SLO: &str = "/upstream/{name}/slo";
/// Where an upstream OpenID provider sends the browser after logging out there.
pub const UPSTREAM_LOGGED_OUT: &str = "/upstream/{name}/logged-out";

pub const DEMO: &str = "/demo";
pub const DEMO_LOGIN: &str = "/demo/rp/{client}/login";
pub const DEMO_CALLBACK: &str = "/demo/rp/{client}/callback";
pub const DEMO_SP: &str = "/demo/sp";
pub const DEMO_SP_LOGIN: &str = "/demo/sp/login";
pub const DEMO_SP_ACS: &str = "/demo/sp/acs";

/// The admin web UI (the admin front). Service and person pages take their id as a query
/// parameter (`?protocol=oidc&id=…`, `?id=…`): entity IDs are URLs.
pub const ADMIN: &str = "/admin";
pub const ADMIN_LOGIN: &str = "/admin/login";
pub const ADMIN_RESUME: &str = "/admin/resume";
pub const ADMIN_LOGOUT: &str = "/admin/logout";
pub const ADMIN_STYLESHEET: &str = "/static/admin.css";
pub const ADMIN_SCRIPT: &str = "/static/admin.js";
pub const ADMIN_SERVICES: &str = "/admin/services";
// OIDC clients (admin/services/oidc.rs): the page of one (?id=), new, and its actions.
pub const ADMIN_OIDC: &str = "/admin/services/oidc";
pub const ADMIN_OIDC_NEW: &str = "/admin/services/oidc/new";
pub const ADMIN_OIDC_SECRET: &str = "/admin/services/oidc/secret";
pub const ADMIN_OIDC_DISABLE: &str = "/admin/services/oidc/disable";
pub const ADMIN_OIDC_ENABLE: &str = "/admin/services/oidc/enable";
pub const ADMIN_OIDC_REMOVE: &str = "/admin/services/oidc/remove";
// SAML SPs (admin/services/saml.rs): the page of one (?id=ENTITY_ID), new, and its actions.
pub const ADMIN_SAML: &str = "/admin/services/saml";
pub const ADMIN_SAML_NEW: &str = "/admin/services/saml/new";
pub const ADMIN_SAML_REFRESH: &str = "/admin/services/saml/refresh";
pub const ADMIN_SAML_DISABLE: &str = "/admin/services/saml/disable";
pub const ADMIN_SAML_ENABLE: &str = "/admin/services/saml/enable";
pub const ADMIN_SAML_REMOVE: &str = "/admin/services/saml/remove";
// A service's release and login policies (admin/services/policy.rs), ?protocol=…&id=….
pub const ADMIN_RELEASE: &str = "/admin/services/release";
pub const ADMIN_RELEASE_PREVIEW: &str = "/admin/services/release/preview";
pub const ADMIN_LOGIN_POLICY: &str = "/admin/services/login-policy";
// People (admin/people.rs).
pub const ADMIN_PEOPLE: &str = "/admin/people";
pub const ADMIN_PERSON: &str = "/admin/person";
pub const ADMIN_PERSON_REVEAL: &str = "/admin/person/reveal";
pub const ADMIN_PERSON_END_SESSION: &str = "/admin/person/end-session";
pub const ADMIN_PERSON_END_SESSIONS: &str = "/admin/person/end-sessions";
// Local people and local roles (admin/local.rs).
pub const ADMIN_PERSON_NEW: &str = "/admin/people/new";
pub const ADMIN_PERSON_ROLES: &str = "/admin/person/roles";
// Passwords (admin/passwords/).
pub const ADMIN_PASSWORDS: &str = "/admin/passwords";
pub const ADMIN_PASSWORDS_PERSON: &str = "/admin/passwords/person";
pub const ADMIN_PASSWORDS_GENERATE: &str = "/admin/passwords/generate";

/// Fills a `{name}` segment of a route pattern.
pub fn fill(pattern: &str, name: &str, value: &str) -> String {
    pattern.replace(&format!("{{{name}}}"), value)
}
