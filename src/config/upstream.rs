//! `[[upstream]]`: upstream identity providers managed as code. Each entry is created or
//! updated at start (as `portvakt upstream add|update` would); an upstream left out of the
//! file stays until `portvakt upstream remove`. Secrets are never in the file: an OIDC
//! upstream's client secret is read from `client_secret_file`.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The NAME of `/upstream/NAME/…` and of the `upstream:NAME` login method.
    pub name: String,
    /// An OpenID provider: its issuer URL (found by discovery) …
    pub oidc: Option<String>,
    pub client_id: Option<String>,
    /// A file holding the client secret (the first line).
    pub client_secret_file: Option<PathBuf>,
    /// Scopes to ask for (default: openid email profile).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// … or a SAML IdP: its metadata, a file or an https URL.
    pub saml_metadata: Option<String>,
    /// The linking rule `UPSTREAM_CLAIM=FIELD`.
    pub link_on: String,
    /// Pins checked on every login, each `CLAIM=VALUE`.
    #[serde(default)]
    pub require_claims: Vec<String>,
    /// The level of assurance (LoA URI); default loa/bas.
    pub level: Option<String>,
    pub display_name: Option<String>,
    pub logo: Option<String>,
}

/// `[[login_policy]]`: a relying party's login policy managed as code, as `portvakt client
/// add|update` and `sp add|update` set it with `--allow-method` and `--min-level`. Applied at
/// start to the registered OIDC client or SAML SP it names (an unknown name stops the start),
/// and when `client add` or `sp add` registers that relying party.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LoginPolicyConfig {
    /// An OIDC client_id or a SAML SP entityID.
    pub relying_party: String,
    /// `password`, `bankid`, `upstream:NAME`; empty or left out: every enabled method.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// The lowest level of assurance (a LoA URI) the relying party accepts.
    pub min_level: Option<String>,
}
