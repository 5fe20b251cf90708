//! The OpenID Provider (OpenID Connect Core 1.0, Discovery 1.0, RFC 6749, 7636, 7009, 7662,
//! 9068, 9207, RP-Initiated Logout 1.0, Back-Channel Logout 1.0).
//!
//! `authorize` validates requests and resumes after login, `grants` serves the token
//! endpoint, `tokens` builds and checks the JWTs, `logout` ends sessions. `routes` holds the
//! thin HTTP handlers. This module never imports `saml`.

pub mod authorize;
pub mod client;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod logout;
pub mod routes;
pub mod tokens;

pub use error::OidcError;

use crate::authn::Authn;
use crate::config::Config;
use crate::keys::KeyStore;
use crate::storage::Db;
use std::sync::Arc;

/// The OpenID Provider's shared handle.
#[derive(Clone)]
pub struct Op {
    pub db: Db,
    pub keys: KeyStore,
    pub config: Arc<Config>,
    pub authn: Authn,
    clients: client::ClientCache,
    /// The discovery document, serialised once.
    discovery: Arc<[u8]>,
    clock: crate::clock::Clock,
}

impl Op {
    pub fn new(db: Db, keys: KeyStore, config: Arc<Config>, authn: Authn) -> Self {
        let clients = client::ClientCache::new(config.cache.client_ttl);
        let discovery = serde_json::to_vec(&discovery::metadata(
            &config.issuer,
            &crate::authn::acr::offered(&config),
        ))
        .unwrap_or_default()
        .into();
        Self {
            clock: authn.clock().clone(),
            db,
            keys,
            config,
            authn,
            clients,
            discovery,
        }
    }

    /// The application's clock (the one `Authn` holds).
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// The discovery document, serialised once at start.
    pub fn discovery_document(&self) -> Arc<[u8]> {
        self.discovery.clone()
    }

    /// A registered client, from the short-lived cache or the database.
    pub async fn client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<Option<client::Client>, crate::storage::StorageError> {
        self.clients.get(&self.db, client_id, now).await
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.issuer, path)
    }
}

/// What a code or refresh token stands for (stored as JSON in `grant_data`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GrantData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: String,
}

/// Splits a space-delimited parameter (scope, prompt, acr_values).
pub(crate) fn split_spaces(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split(' ')
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}
