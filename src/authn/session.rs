//! SSO sessions: a database row behind an opaque cookie. The row's id is the SHA-256 of the
//! cookie value; the `sid` given to relying parties is a separate random value. A login always
//! creates a new session (no fixation); the old one's relying parties carry over when the same
//! person logs in again.

use super::{Authn, AuthnError};
use crate::storage::{self, sessions::SessionRecord};

/// One use of a login method in a session.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MethodUse {
    /// The amr value (RFC 8176): `pwd`, `bankid`, `fed`.
    pub method: String,
    pub at: i64,
    pub acr: String,
    /// For `fed`: the upstream's NAME (the policy knows the method as `upstream:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl MethodUse {
    /// A use of the policy method `name` (`password`, `bankid`, `upstream:NAME`) reaching
    /// `level` at `at`.
    pub fn new(name: &str, level: &str, at: i64) -> Self {
        let upstream = name.strip_prefix(super::policy::UPSTREAM_PREFIX);
        let method = match name {
            super::policy::PASSWORD => "pwd",
            _ if upstream.is_some() => "fed",
            other => other,
        };
        Self {
            method: method.into(),
            at,
            acr: level.into(),
            upstream: upstream.map(String::from),
        }
    }

    /// The policy's name for the method (`password`, `bankid`, `upstream:NAME`).
    pub fn policy_name(&self) -> String {
        match (self.method.as_str(), &self.upstream) {
            ("pwd", _) => super::policy::PASSWORD.into(),
            ("fed", Some(u)) => format!("{}{u}", super::policy::UPSTREAM_PREFIX),
            (m, _) => m.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie value: the database key, never sent anywhere.
    pub id: String,
    /// Session id for relying parties (OIDC `sid`, SAML SessionIndex).
    pub sid: String,
    pub person_id: String,
    pub methods: Vec<MethodUse>,
    pub acr: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

impl Session {
    pub fn amr(&self) -> Vec<String> {
        let mut v: Vec<String> = self.methods.iter().map(|m| m.method.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A session that ended, handed to each protocol front to end its part.
#[derive(Debug, Clone)]
pub struct EndedSession {
    pub id: String,
    pub sid: String,
    pub person_id: String,
    /// (relying party id, protocol) for every relying party the session was used for.
    pub participants: Vec<(String, String)>,
}

/// A session ended in a transaction not yet committed: hand it to `Authn::notify_ended` after
/// the commit (dropping it only skips telling the relying parties).
#[must_use]
#[derive(Debug)]
pub struct Ending(EndedSession);

/// Implemented by each protocol front (wired in app.rs) so single logout crosses protocols
/// without authn knowing them. Implementations spawn their own work and return at once; what
/// must hold when logout returns (refresh tokens revoked) is done before, in the
/// transaction that ends the session.
pub trait LogoutNotifier: Send + Sync {
    fn session_ended(&self, ended: &EndedSession, now: i64);

    /// Logout that needs the browser (SAML front-channel): where to send it first, on a path
    /// that ends at `then`. None when this front has nothing to do through the browser.
    fn front_channel<'a>(
        &'a self,
        _ended: &'a EndedSession,
        _then: &'a str,
        _now: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(async { None })
    }
}

fn to_session(r: SessionRecord) -> Result<Session, AuthnError> {
    Ok(Session {
        methods: serde_json::from_str(&r.methods)
            .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?,
        id: r.id,
        sid: r.sid,
        person_id: r.person_id,
        acr: r.acr,
        auth_time: r.auth_time,
        expires_at: r.expires_at,
    })
}

impl Authn {
    /// The live session behind a cookie value, if any. Extends the idle timeout.
    pub async fn session(
        &self,
        cookie: Option<&str>,
        now: i64,
    ) -> Result<Option<Session>, AuthnError> {
        let Some(cookie) = cookie.filter(|c| !c.is_empty() && c.len() <= 128) else {
            return Ok(None);
        };
        let id = crate::keys::hash_token(cookie);
        let Some(rec) = storage::sessions::get_session(&self.db, &id).await? else {
            return Ok(None);
        };
        if rec.ended_at.is_some()
            || now >= rec.expires_at
            || now - rec.last_seen >= self.config.session.idle_ttl
        {
            return Ok(None);
        }
        // Writing on every request would make each SSO hop a write; a minute's precision
        // is plenty for an idle timeout measured in hours.
        if now - rec.last_seen >= 60 {
            storage::sessions::touch_session(&self.db, &id, now).await?;
        }
        to_session(rec).map(Some)
    }

    pub async fn session_by_sid(&self, sid: &str) -> Result<Option<Session>, AuthnError> {
        match storage::sessions::get_session_by_sid(&self.db, sid).await? {
            Some(r) if r.ended_at.is_none() => to_session(r).map(Some),
            _ => Ok(None),
        }
    }

    /// Starts a new session after a successful login and returns (cookie value, session).
    /// A previous session of the same browser ends; its relying parties move to the new one
    /// if it was the same person, otherwise they are logged out.
    pub async fn start_session(
        &self,
        person_id: &str,
        method: MethodUse,
        previous_cookie: Option<&str>,
        now: i64,
    ) -> Result<(String, Session), AuthnError> {
        let previous = self.session(previous_cookie, now).await?;
        let mut methods = Vec::new();
        if let Some(p) = previous.as_ref().filter(|p| p.person_id == person_id) {
            methods.extend(p.methods.iter().cloned());
        }
        methods.push(method);
        // The session's level is the highest any of its logins reached: a step-up raises
        // it, a weaker login later (a forced password login) does not lower it.
        let acr = methods
            .iter()
            .map(|m| m.acr.clone())
            .max_by_key(|a| super::acr::rank(a))
            .unwrap_or_default();
        let cookie = crate::keys::random_token();
        let rec = SessionRecord {
            id: crate::keys::hash_token(&cookie),
            sid: crate::keys::random_token(),
            person_id: person_id.to_string(),
            methods: serde_json::to_string(&methods)
                .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?,
            acr,
            auth_time: now,
            created_at: now,
            last_seen: now,
            expires_at: now + self.config.session.absolute_ttl,
            ended_at: None,
        };
        match previous {
            // The same person again (prompt=login, max_age, step-up, password reset): the new
            // session takes over the old one's relying parties, SAML subjects and refresh
            // tokens, so its logout reaches them all.
            Some(p)
                if p.person_id == person_id
                    && storage::sessions::replace_session(&self.db, &rec, &p.id, now).await? => {}
            Some(p) if p.person_id == person_id => {
                // Ended meanwhile (a logout raced this login): nothing to take over.
                storage::sessions::insert_session(&self.db, &rec).await?;
            }
            Some(p) => {
                storage::sessions::insert_session(&self.db, &rec).await?;
                self.end_session(&p, now).await?;
            }
            None => storage::sessions::insert_session(&self.db, &rec).await?,
        }
        Ok((cookie, to_session(rec)?))
    }

    /// Records that a session was used for a relying party (for single logout).
    pub async fn add_participant(
        &self,
        s: &Session,
        rp_id: &str,
        protocol: &str,
        now: i64,
    ) -> Result<(), AuthnError> {
        storage::sessions::add_participant(&self.db, &s.id, rp_id, protocol, now).await?;
        Ok(())
    }

    /// A live session by its database id (single logout names sessions this way).
    pub async fn session_by_id(&self, id: &str, now: i64) -> Result<Option<Session>, AuthnError> {
        match storage::sessions::get_session(&self.db, id).await? {
            Some(r) if r.ended_at.is_none() && now < r.expires_at => to_session(r).map(Some),
            _ => Ok(None),
        }
    }

    /// Ends a session and tells every protocol front, so each can end its part. The session's
    /// refresh tokens are revoked in the transaction that ends it.
    pub async fn end_session(&self, s: &Session, now: i64) -> Result<(), AuthnError> {
        self.end(s, now).await.map(|_| ())
    }

    /// Ends a session inside the caller's transaction (its refresh tokens revoked there too),
    /// so a change and its audit event commit together. The relying parties are told only
    /// once the caller has committed: `notify_ended`. None if it had already ended.
    pub async fn end_session_in(
        &self,
        tx: &mut storage::Tx,
        s: &Session,
        now: i64,
    ) -> Result<Option<Ending>, AuthnError> {
        let participants = storage::sessions::participants(&self.db, &s.id).await?;
        if !storage::sessions::end_session_in(tx, &s.id, now).await? {
            return Ok(None);
        }
        Ok(Some(Ending(EndedSession {
            id: s.id.clone(),
            sid: s.sid.clone(),
            person_id: s.person_id.clone(),
            participants,
        })))
    }

    /// `end_other_sessions` inside the caller's transaction (a new password and its audit
    /// event, and the sessions it ends, commit together); `notify_ended` after the commit.
    pub async fn end_other_sessions_in(
        &self,
        tx: &mut storage::Tx,
        person_id: &str,
        keep: &str,
        now: i64,
    ) -> Result<Vec<Ending>, AuthnError> {
        let mut endings = Vec::new();
        for rec in storage::sessions::live_for_person(&self.db, person_id, keep, now).await? {
            let s = to_session(rec)?;
            endings.extend(self.end_session_in(tx, &s, now).await?);
        }
        Ok(endings)
    }

    /// Tells every protocol front of sessions ended by a committed `end_session_in`.
    pub fn notify_ended(&self, endings: impl IntoIterator<Item = Ending>, now: i64) {
        for Ending(ended) in endings {
            for n in self.notifiers.iter() {
                n.session_ended(&ended, now);
            }
        }
    }

    /// Ends every live session of a person except `keep` (a password reset: whoever else
    /// is signed in with the old password is signed out, and their refresh tokens revoked).
    pub async fn end_other_sessions(
        &self,
        person_id: &str,
        keep: &str,
        now: i64,
    ) -> Result<(), AuthnError> {
        for rec in storage::sessions::live_for_person(&self.db, person_id, keep, now).await? {
            let s = to_session(rec)?;
            self.end(&s, now).await?;
        }
        Ok(())
    }

    /// Ends a session with the browser present: returns where to send it, which is `then`
    /// unless a protocol front must first visit its relying parties through the browser.
    pub async fn end_session_in_browser(
        &self,
        s: &Session,
        then: &str,
        now: i64,
    ) -> Result<String, AuthnError> {
        let mut next = then.to_string();
        if let Some(ended) = self.end(s, now).await? {
            // Each front's browser hops end where the next one's begin: the last notifier's
            // hop is the last before `then`.
            for n in self.notifiers.iter().rev() {
                if let Some(first) = n.front_channel(&ended, &next, now).await {
                    next = first;
                }
            }
        }
        Ok(next)
    }

    /// The notifiers' browser hops before `then` for a session that has already ended
    /// (a SAML SP's LogoutRequest ended it and the SAML front walked its own chain): the
    /// hops that need only the session's id, such as logging out at the upstream it came
    /// from. Fronts that act on the relying parties get none (no participants are named).
    pub async fn last_browser_hops(&self, session_id: &str, then: &str, now: i64) -> String {
        let ended = EndedSession {
            id: session_id.to_string(),
            sid: String::new(),
            person_id: String::new(),
            participants: Vec::new(),
        };
        let mut next = then.to_string();
        for n in self.notifiers.iter().rev() {
            if let Some(first) = n.front_channel(&ended, &next, now).await {
                next = first;
            }
        }
        next
    }

    async fn end(&self, s: &Session, now: i64) -> Result<Option<EndedSession>, AuthnError> {
        if !storage::sessions::end_session(&self.db, &s.id, now).await? {
            return Ok(None);
        }
        let ended = EndedSession {
            id: s.id.clone(),
            sid: s.sid.clone(),
            person_id: s.person_id.clone(),
            participants: storage::sessions::participants(&self.db, &s.id).await?,
        };
        let event = super::Event::Logout {
            person_id: &ended.person_id,
            relying_parties: &ended.participants,
        };
        self.audit(event, now).await;
        for n in self.notifiers.iter() {
            n.session_ended(&ended, now);
        }
        Ok(Some(ended))
    }
}
