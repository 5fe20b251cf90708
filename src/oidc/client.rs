//! Authenticating registered clients in constant time at the token, introspection and
//! revocation endpoints, and the short cache of their registrations. The registry itself is
//! `services::oidc_client`.

pub use crate::services::oidc_client::*;

use super::OidcError;
use crate::storage::{self, Db};

/// Authenticates a client at the token, introspection and revocation endpoints.
/// `secret` is None for a public client. Unknown client, disabled client and wrong secret
/// are one error (a disabled client's refresh tokens stop working too).
pub async fn authenticate(
    op: &super::Op,
    client_id: &str,
    secret: Option<&str>,
    now: i64,
) -> Result<Client, OidcError> {
    let client = op
        .client(client_id, now)
        .await?
        .filter(|c| !c.record.disabled)
        .ok_or(OidcError::InvalidClient)?;
    match (&client.record.secret_hash, secret) {
        (Some(stored), Some(given)) => {
            let given = hash_secret(&op.keys, given);
            if subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), given.as_bytes()).into() {
                Ok(client)
            } else {
                Err(OidcError::InvalidClient)
            }
        }
        (None, None) if client.record.public_client => Ok(client),
        _ => Err(OidcError::InvalidClient),
    }
}

/// Registered clients cached for `ttl` seconds: the token endpoint reads its client on every
/// request, and client changes are rare. Only existing clients are cached, so the map is
/// bounded by the number of registrations.
#[derive(Clone)]
pub struct ClientCache {
    ttl: i64,
    entries: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, (Client, i64)>>>,
}

impl ClientCache {
    pub fn new(ttl: i64) -> Self {
        Self {
            ttl,
            entries: Default::default(),
        }
    }

    pub async fn get(
        &self,
        db: &Db,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Client>, storage::StorageError> {
        if self.ttl > 0 {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some((c, at)) = entries.get(client_id)
                && now - at < self.ttl
            {
                return Ok(Some(c.clone()));
            }
        }
        let fresh = get(db, client_id).await?;
        if self.ttl > 0 {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            match &fresh {
                Some(c) => {
                    entries.insert(client_id.to_string(), (c.clone(), now));
                }
                None => {
                    entries.remove(client_id);
                }
            }
        }
        Ok(fresh)
    }
}
