//! The login front: the pages a person logs in on. The login page (password, the choice of
//! BankID and of upstream identity providers), the BankID pages, the federation pages
//! (`/upstream/NAME/…`), self-service password reset, the SSO and login-binding
//! cookies, and where each kind of transaction resumes. The methods themselves are
//! `authn`'s; this front only parses, calls them and renders.

mod bankid;
pub mod cookies;
mod page;
mod password;
mod upstream;
mod upstream_saml;

pub use upstream::UpstreamLogout;

use crate::authn::{Authn, Protocol, Transaction};
use crate::config::Config;
use crate::keys::KeyStore;
use crate::web::{WebError, i18n::Lang, paths};
use axum::Router;
use std::sync::Arc;

/// The login front's state: the core it drives and what its pages need.
#[derive(Clone)]
pub struct Login {
    authn: Authn,
    config: Arc<Config>,
    keys: KeyStore,
    /// The client of upstream OpenID providers (federation login).
    oidc: crate::upstream::oidc::OidcClient,
    /// Bounds the libxmlsec1 work of upstream SAML Responses (anyone can POST one).
    saml_gate: Arc<crate::upstream::saml::Gate>,
    /// The application's HTTP client and the IdP metadata fetched with it from URLs.
    http: reqwest::Client,
    saml_metadata: crate::upstream::saml::metadata::UrlCache,
    /// The SAML SP role's keys, loaded once (they are made once and never rotate).
    sp_keys: Arc<tokio::sync::OnceCell<crate::upstream::saml::SpKeys>>,
}

impl Login {
    /// `http` is the application's HTTP client (no redirects followed, with a timeout): the
    /// upstream OpenID providers are reached with it.
    pub fn new(authn: Authn, config: Arc<Config>, keys: KeyStore, http: reqwest::Client) -> Self {
        let oidc = crate::upstream::oidc::OidcClient::new(http.clone(), authn.clock().clone());
        Self {
            http,
            saml_metadata: Default::default(),
            sp_keys: Default::default(),
            saml_gate: Arc::new(crate::upstream::saml::Gate::new(
                config.saml_verifications(),
                config.saml.verification_queue,
            )),
            authn,
            config,
            keys,
            oidc,
        }
    }

    fn csrf_key(&self) -> &ring::hmac::Key {
        &self.keys.secrets().csrf
    }
}

pub fn routes() -> Router<Login> {
    page::routes()
        .merge(bankid::routes())
        .merge(password::routes())
        .merge(upstream::routes())
        .merge(upstream_saml::routes())
}

/// Where a transaction resumes once the person has logged in: a server-chosen path per
/// protocol, never a URL from the request.
pub fn resume_path(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Oidc => paths::AUTHORIZE_RESUME,
        Protocol::Saml => paths::SAML_SSO_RESUME,
        Protocol::PasswordReset => paths::PASSWORD,
        Protocol::Admin => paths::ADMIN_RESUME,
    }
}

fn resume_url(tx: &Transaction) -> String {
    format!("{}?tx={}", resume_path(tx.protocol), tx.id)
}

/// The relying party's name on the login pages (the site's own for a password reset).
fn rp_name(tx: &Transaction, lang: Lang) -> String {
    match tx.protocol {
        Protocol::PasswordReset => lang.t("site.name").to_string(),
        _ if tx.rp_name.is_empty() => tx.rp_id.clone(),
        _ => tx.rp_name.clone(),
    }
}

/// The login transaction, or the "login expired" page.
async fn live_transaction(login: &Login, id: &str, now: i64) -> Result<Transaction, WebError> {
    login
        .authn
        .transaction(id, now)
        .await?
        .ok_or(WebError::bad_request("login.expired"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_resumes_at_its_own_path() {
        assert_eq!(resume_path(Protocol::Oidc), "/oidc/authorize/resume");
        assert_eq!(resume_path(Protocol::Saml), "/saml/sso/resume");
        assert_eq!(resume_path(Protocol::PasswordReset), "/password");
        assert_eq!(resume_path(Protocol::Admin), "/admin/resume");
        for p in [
            Protocol::Oidc,
            Protocol::Saml,
            Protocol::PasswordReset,
            Protocol::Admin,
        ] {
            assert_eq!(Protocol::parse(p.as_str()), Some(p));
        }
        assert_eq!(Protocol::parse("upstream"), None);
    }
}
