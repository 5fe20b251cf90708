//! Login transactions: what a protocol front needs to resume after the person has logged in,
//! stored as a database row with an expiry (any instance can resume it).

use super::{Authn, Session, acr};
use crate::storage::{self, sessions::TransactionRecord};
use serde::de::DeserializeOwned;

/// The party that started a login, and so where it resumes. Stored by name in the
/// transaction row; the login front maps each to its server-chosen resume path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Oidc,
    Saml,
    /// Self-service password reset, started at the password page itself.
    PasswordReset,
    /// A login to the admin web UI.
    Admin,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Saml => "saml",
            Self::PasswordReset => "password",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oidc" => Some(Self::Oidc),
            "saml" => Some(Self::Saml),
            "password" => Some(Self::PasswordReset),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// What a front learns when the browser comes back to resume a transaction. (Returned once
/// per resume and matched at once, so the large variant is not boxed.)
#[allow(clippy::large_enum_variant)]
pub enum Resumed<R> {
    /// No live transaction of this protocol: the login expired (or never was).
    Expired,
    /// The browser's session does not answer the request (yet): back to the login page.
    Login(String),
    /// A session answers the request; the front checks its relying party again, then
    /// calls `Authn::finish` and answers.
    Ready {
        tx: Transaction,
        request: R,
        session: Session,
    },
}

/// What a login must satisfy, derived by the protocol front from the request and the
/// relying party's login policy.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Requirement {
    /// The person must log in again (OIDC prompt=login, SAML ForceAuthn).
    pub force: bool,
    /// The login must be at most this many seconds old (OIDC max_age).
    pub max_age: Option<i64>,
    /// The session must reach one of these levels (OIDC acr_values, SAML
    /// RequestedAuthnContext); empty means any.
    pub acr_values: Vec<String>,
    /// The relying party's allowed methods (`policy`); empty allows every method.
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    /// The relying party's minimum level; the request's levels may raise it, never lower.
    #[serde(default)]
    pub min_level: Option<String>,
    /// The requested levels are voluntary (OIDC acr_values): when no allowed method can
    /// reach them, the login asks only for the minimum and the issued acr says what was
    /// reached. (SAML's RequestedAuthnContext is not: it is refused with NoAuthnContext.)
    #[serde(default)]
    pub acr_voluntary: bool,
}

impl Requirement {
    /// Adds a relying party's login policy to what the request asked for.
    pub fn with_policy(mut self, policy: &super::policy::LoginPolicy) -> Self {
        self.allowed_methods = policy.allowed_methods.clone();
        self.min_level = policy.min_level.clone();
        self
    }

    /// The level a login must reach: the relying party's minimum, raised by the lowest of
    /// the requested levels (reaching any one of them is enough).
    pub fn required_level(&self) -> Option<String> {
        let requested = self.acr_values.iter().min_by_key(|a| acr::rank(a)).cloned();
        super::policy::raise(self.min_level.clone(), requested)
    }

    /// The level the session reached with methods the relying party allows (None: it
    /// used none of them).
    fn level_reached<'a>(&self, s: &'a Session) -> Option<&'a str> {
        if self.allowed_methods.is_empty() {
            return Some(&s.acr);
        }
        s.methods
            .iter()
            .filter(|m| super::policy::allows(&self.allowed_methods, &m.policy_name()))
            .map(|m| m.acr.as_str())
            .max_by_key(|a| acr::rank(a))
    }

    /// Whether the session reaches the level with allowed methods.
    fn level_met(&self, s: &Session) -> bool {
        match (self.level_reached(s), self.required_level()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(got), Some(need)) => acr::rank(got) >= acr::rank(&need),
        }
    }

    /// Whether an existing session can answer the request without a new login. Never a
    /// session below the required level, nor one whose allowed logins do not reach it.
    pub fn reusable(&self, s: &Session, now: i64) -> bool {
        if self.force {
            return false;
        }
        if let Some(max) = self.max_age
            && now - s.auth_time > max
        {
            return false;
        }
        self.level_met(s)
    }

    /// Whether a login for this request raises the session (a step-up): the session is
    /// fresh enough and not forced out, but falls short of the level or the allowed
    /// methods. Only then must the same person prove themselves: on a shared computer,
    /// another person's ordinary or forced login must not be bound to whoever used it
    /// before.
    pub fn steps_up(&self, s: &Session, now: i64) -> bool {
        !self.force && self.max_age.is_none_or(|max| now - s.auth_time <= max) && !self.level_met(s)
    }
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub protocol: Protocol,
    pub rp_id: String,
    /// The relying party's display name, as the front named it when the login began
    /// (empty for a password reset, which has none).
    pub rp_name: String,
    /// Protocol-specific JSON, opaque to authn.
    pub request: String,
    pub created_at: i64,
    /// The session created by the login this transaction asked for, once it succeeded.
    /// Resuming with that session needs no further checks (a forced or max_age login
    /// happened for exactly this request), and no clock comparison is involved.
    pub completed_session: Option<String>,
    pub login_hint: Option<String>,
    /// The relying party's allowed methods (empty: every enabled one).
    pub allowed_methods: Vec<String>,
    /// The level the login must reach (None: any); the login page offers only allowed
    /// methods that reach it.
    pub required_level: Option<String>,
    /// A step-up: the person of the browser's session, who must be the one to log in.
    pub step_up_person: Option<String>,
    /// An upstream chosen in advance (OIDC `idp_hint`, SAML Scoping's IDPList): its NAME.
    pub upstream_hint: Option<String>,
    /// The relying party demanded a fresh login (OIDC prompt=login, SAML ForceAuthn): an
    /// upstream must authenticate again too.
    pub force: bool,
    /// The relying party's OIDC max_age, passed on to an upstream.
    pub max_age: Option<i64>,
}

impl Transaction {
    /// What an upstream must be told (and is checked for) about the login's freshness.
    pub fn freshness(&self) -> crate::upstream::Freshness {
        crate::upstream::Freshness {
            force: self.force,
            max_age: self.max_age,
            since: self.created_at,
        }
    }
}

/// What a protocol front stores in the transaction.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    login_hint: Option<String>,
    #[serde(default)]
    rp_name: String,
    request: String,
    #[serde(default)]
    allowed_methods: Vec<String>,
    #[serde(default)]
    required_level: Option<String>,
    #[serde(default)]
    step_up_person: Option<String>,
    #[serde(default)]
    upstream_hint: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    max_age: Option<i64>,
}

/// What a protocol front begins a login with.
pub struct Begin<'a> {
    pub protocol: Protocol,
    pub rp_id: &'a str,
    /// The relying party's display name (empty for a password reset).
    pub rp_name: &'a str,
    /// The front's own JSON, handed back when the browser resumes.
    pub request: String,
    pub login_hint: Option<String>,
    /// An upstream NAME chosen in advance by the relying party.
    pub upstream_hint: Option<String>,
    pub requirement: &'a Requirement,
    /// The browser's live session, if any: a step-up binds the login to its person.
    pub session: Option<&'a Session>,
}

impl Authn {
    /// Starts a login transaction; returns its id.
    pub async fn begin(&self, b: Begin<'_>, now: i64) -> Result<String, storage::StorageError> {
        let id = crate::keys::random_token();
        let mut effective = b.requirement.clone();
        if effective.acr_voluntary
            && super::policy::offer(
                &self.methods().await,
                &effective.allowed_methods,
                effective.required_level().as_deref(),
            )
            .is_empty()
        {
            effective.acr_values.clear();
        }
        let required_level = effective.required_level();
        let step_up_person = b
            .session
            .filter(|s| effective.steps_up(s, now))
            .map(|s| s.person_id.clone());
        let stored = serde_json::to_string(&Stored {
            login_hint: b.login_hint,
            rp_name: b.rp_name.to_string(),
            request: b.request,
            allowed_methods: b.requirement.allowed_methods.clone(),
            required_level,
            step_up_person,
            upstream_hint: b
                .upstream_hint
                .filter(|h| super::policy::valid_upstream_name(h)),
            force: b.requirement.force,
            max_age: b.requirement.max_age,
        })
        .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
        storage::sessions::insert_transaction(
            &self.db,
            &TransactionRecord {
                id: id.clone(),
                protocol: b.protocol.as_str().into(),
                rp_id: b.rp_id.into(),
                request: stored,
                session_id: None,
                created_at: now,
                expires_at: now + self.config.session.login_ttl,
            },
        )
        .await?;
        Ok(id)
    }

    pub async fn transaction(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<Transaction>, storage::StorageError> {
        let Some(rec) = storage::sessions::get_transaction(&self.db, id, now).await? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_str(&rec.request)
            .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
        let Some(protocol) = Protocol::parse(&rec.protocol) else {
            return Ok(None);
        };
        Ok(Some(Transaction {
            id: rec.id,
            protocol,
            rp_id: rec.rp_id,
            rp_name: stored.rp_name,
            request: stored.request,
            created_at: rec.created_at,
            completed_session: rec.session_id,
            login_hint: stored.login_hint,
            allowed_methods: stored.allowed_methods,
            required_level: stored.required_level,
            step_up_person: stored.step_up_person,
            upstream_hint: stored.upstream_hint,
            force: stored.force,
            max_age: stored.max_age,
        }))
    }

    /// Marks a transaction as completed by a login that created `session`.
    pub async fn complete(
        &self,
        tx_id: &str,
        session: &Session,
    ) -> Result<(), storage::StorageError> {
        storage::sessions::complete_transaction(&self.db, tx_id, &session.id).await
    }

    /// Whether `session` may answer the transaction: the login it asked for created it, or
    /// it satisfies the requirement on its own.
    pub fn answers(
        tx: &Transaction,
        requirement: &Requirement,
        session: &Session,
        now: i64,
    ) -> bool {
        tx.completed_session.as_deref() == Some(session.id.as_str())
            || requirement.reusable(session, now)
    }

    /// Resuming a login after the person has authenticated, for every front: the live
    /// transaction of `protocol`, the front's request read back, and whether the browser's
    /// session (`cookie`) answers it (`requirement` picks the request's requirement).
    pub async fn resume<R: DeserializeOwned>(
        &self,
        protocol: Protocol,
        tx_id: &str,
        cookie: Option<&str>,
        requirement: impl FnOnce(&R) -> &Requirement,
        now: i64,
    ) -> Result<Resumed<R>, super::AuthnError> {
        let Some(tx) = self
            .transaction(tx_id, now)
            .await?
            .filter(|t| t.protocol == protocol)
        else {
            return Ok(Resumed::Expired);
        };
        let request: R = serde_json::from_str(&tx.request)
            .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
        let session = self.session(cookie, now).await?;
        match session.filter(|s| Self::answers(&tx, requirement(&request), s, now)) {
            Some(session) => Ok(Resumed::Ready {
                tx,
                request,
                session,
            }),
            None => Ok(Resumed::Login(tx.id)),
        }
    }

    /// Ends a transaction; true for the one caller that ended it.
    pub async fn finish(&self, id: &str) -> Result<bool, storage::StorageError> {
        storage::sessions::take_transaction(&self.db, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::MethodUse;

    fn session(methods: &[(&str, &str)]) -> Session {
        let methods: Vec<MethodUse> = methods
            .iter()
            .map(|(m, l)| MethodUse::new(m, l, 0))
            .collect();
        let acr = methods
            .iter()
            .map(|m| m.acr.clone())
            .max_by_key(|a| acr::rank(a))
            .unwrap_or_default();
        Session {
            id: "s".into(),
            sid: "sid".into(),
            person_id: "p".into(),
            methods,
            acr,
            auth_time: 0,
            expires_at: 1,
        }
    }

    fn req(min: Option<&str>, acr_values: &[&str], allowed: &[&str]) -> Requirement {
        Requirement {
            acr_values: acr_values.iter().map(|s| s.to_string()).collect(),
            allowed_methods: allowed.iter().map(|s| s.to_string()).collect(),
            min_level: min.map(String::from),
            ..Default::default()
        }
    }

    /// Never a session below the required level; the request raises the relying party's
    /// minimum and never lowers it; only allowed methods count.
    #[test]
    fn a_session_below_the_requirement_is_never_reused() {
        let pwd = session(&[("password", acr::BAS)]);
        let both = session(&[("password", acr::BAS), ("bankid", acr::TWO_FACTOR)]);
        assert!(req(None, &[], &[]).reusable(&pwd, 0));
        assert!(!req(Some(acr::TWO_FACTOR), &[], &[]).reusable(&pwd, 0));
        assert!(!req(None, &[acr::TWO_FACTOR], &[]).reusable(&pwd, 0));
        assert!(!req(Some(acr::TWO_FACTOR), &[acr::BAS], &[]).reusable(&pwd, 0));
        assert!(req(Some(acr::TWO_FACTOR), &[acr::BAS], &[]).reusable(&both, 0));
        assert!(!req(None, &[], &["bankid"]).reusable(&pwd, 0));
        assert!(req(None, &[], &["bankid"]).reusable(&both, 0));
        // Only BankID is allowed and only the password reached 2fa? Not here: the allowed
        // method's own level counts.
        assert!(!req(Some(acr::TWO_FACTOR), &[], &["password"]).reusable(&both, 0));
        assert_eq!(
            req(Some(acr::BAS), &[acr::TWO_FACTOR], &[]).required_level(),
            Some(acr::TWO_FACTOR.to_string())
        );
    }

    /// Only a step-up binds the login to the session's person: not a forced login nor one
    /// for a session too old for max_age (on a shared computer, another person may log in).
    #[test]
    fn only_a_step_up_is_bound_to_the_sessions_person() {
        let pwd = session(&[("password", acr::BAS)]);
        assert!(req(Some(acr::TWO_FACTOR), &[], &[]).steps_up(&pwd, 0));
        assert!(req(None, &[acr::TWO_FACTOR], &[]).steps_up(&pwd, 0));
        assert!(!req(None, &[], &[]).steps_up(&pwd, 0));
        let forced = Requirement {
            force: true,
            ..req(Some(acr::TWO_FACTOR), &[], &[])
        };
        assert!(!forced.steps_up(&pwd, 0));
        let old = Requirement {
            max_age: Some(10),
            ..req(Some(acr::TWO_FACTOR), &[], &[])
        };
        assert!(!old.steps_up(&pwd, 100));
    }

    #[test]
    fn method_uses_know_their_policy_names() {
        assert_eq!(MethodUse::new("password", acr::BAS, 0).method, "pwd");
        let fed = MethodUse::new("upstream:kommun", acr::BAS, 0);
        assert_eq!(fed.method, "fed");
        assert_eq!(fed.policy_name(), "upstream:kommun");
        assert_eq!(
            MethodUse::new("bankid", acr::TWO_FACTOR, 0).policy_name(),
            "bankid"
        );
    }
}
