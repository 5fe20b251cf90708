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

/// The discovery document and the levels it was built with.
type CachedDiscovery = (Vec<String>, Arc<[u8]>);

/// The OpenID Provider's shared handle.
#[derive(Clone)]
pub struct Op {
    pub db: Db,
    pub keys: KeyStore,
    pub config: Arc<Config>,
    pub authn: Authn,
    clients: client::ClientCache,
    /// The discovery document, serialised once per set of reachable levels (which changes
    /// only when upstreams do): (acr_values_supported, document).
    discovery: Arc<std::sync::RwLock<CachedDiscovery>>,
    clock: crate::clock::Clock,
}

impl Op {
    pub fn new(db: Db, keys: KeyStore, config: Arc<Config>, authn: Authn) -> Self {
        let clients = client::ClientCache::new(config.cache.client_ttl);
        let discovery = Arc::new(std::sync::RwLock::new((Vec::new(), Arc::from(&[][..]))));
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

    /// The discovery document; `acr_values_supported` lists the levels the enabled
    /// methods reach (password, BankID, each upstream's).
    pub async fn discovery_document(&self) -> Arc<[u8]> {
        let levels = self.authn.reachable_levels().await;
        {
            let cached = self.discovery.read().unwrap_or_else(|p| p.into_inner());
            if cached.0 == levels && !cached.1.is_empty() {
                return cached.1.clone();
            }
        }
        let refs: Vec<&str> = levels.iter().map(String::as_str).collect();
        let doc: Arc<[u8]> = serde_json::to_vec(&discovery::metadata(&self.config.issuer, &refs))
            .unwrap_or_default()
            .into();
        *self.discovery.write().unwrap_or_else(|p| p.into_inner()) = (levels, doc.clone());
        doc
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
