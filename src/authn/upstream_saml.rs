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

impl Authn {
    /// Records that `session` came from upstream `upstream`'s assertion about `name_id`
    /// (with its SessionIndex), so the upstream's LogoutRequest can end it.
    pub async fn remember_upstream_saml_session(
        &self,
        session: &super::Session,
        upstream: &str,
        name_id: &str,
        session_index: Option<&str>,
    ) -> Result<(), super::AuthnError> {
        storage::upstream_saml::insert(
            &self.db,
            &session.id,
            upstream,
            name_id,
            session_index,
            session.expires_at,
        )
        .await?;
        Ok(())
    }

    /// The upstream SAML IdP a session came from and what it called the person:
    /// (upstream, NameID, SessionIndex), for the LogoutRequest sent there when it ends.
    pub async fn upstream_saml_session(
        &self,
        session_id: &str,
    ) -> Result<Option<(String, String, Option<String>)>, super::AuthnError> {
        Ok(storage::upstream_saml::by_session(&self.db, session_id).await?)
    }

    /// Ends the live sessions the upstream knows by `name_id` (only those of the listed
    /// SessionIndexes, when it lists any). The session of the browser that carries the
    /// upstream's LogoutRequest (`browser`, its SSO cookie) ends in that browser: Portvakt's
    /// own single logout runs first (the SAML SPs it visits through the browser), then the
    /// browser goes to `then` (the answer to the upstream). Returns the ended sessions' ids
    /// and where to send the browser.
    pub async fn end_upstream_saml_sessions(
        &self,
        upstream: &str,
        name_id: &str,
        session_indexes: &[String],
        browser: Option<&str>,
        then: &str,
        now: i64,
    ) -> Result<(Vec<String>, String), super::AuthnError> {
        let mine = self.session(browser, now).await?.map(|s| s.id);
        let mut ended = Vec::new();
        let mut next = then.to_string();
        for (id, index) in
            storage::upstream_saml::by_name_id(&self.db, upstream, name_id, now).await?
        {
            if !session_indexes.is_empty()
                && !index.as_ref().is_some_and(|i| session_indexes.contains(i))
            {
                continue;
            }
            let Some(s) = self.session_by_id(&id, now).await? else {
                continue;
            };
            // The upstream is ending it: no LogoutRequest goes back there.
            storage::upstream_saml::forget(&self.db, &id, upstream).await?;
            if mine.as_deref() == Some(id.as_str()) {
                next = self.end_session_in_browser(&s, then, now).await?;
            } else {
                self.end_session(&s, now).await?;
            }
            ended.push(id);
        }
        Ok((ended, next))
    }
}
