//! The shared replay cache for assertions from upstream SAML IdPs: the database table the
//! IdP already uses for AuthnRequest IDs (`saml_request_ids`, insert-if-absent), under a
//! namespace of its own, so every instance sees every use.

use super::Authn;
use crate::storage;
use crate::upstream::saml::response::ReplayCache;

impl ReplayCache for Authn {
    async fn first_use(&self, namespace: &str, id: &str, expires_at: i64) -> Result<bool, String> {
        storage::saml::remember_request_id(&self.db, namespace, id, expires_at)
            .await
            .map_err(|e| e.to_string())
    }
}
