//! Upstream identity providers. TEMPORARY on branch fed-saml: fed-oidc owns this file; at the
//! merge its content replaces this one, keeping `pub mod saml;`.

pub mod saml;

/// What an upstream proved (the shared definition from COMMON.md; fed-oidc's is the one kept).
#[derive(Debug, Clone)]
pub struct Identity {
    pub upstream: String,
    pub subject: String,
    pub claims: std::collections::BTreeMap<String, String>,
    pub level: Option<String>,
}
