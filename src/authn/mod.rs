//! Authentication, protocol-neutral and without HTTP: login transactions (`flow`), SSO
//! sessions (`session`), the password method (`password`) and its throttle, the BankID
//! method (`bankid`), self-service password reset, and assurance levels (`acr`).
//! The fronts (`login`, `oidc`, `saml`) call it with plain values: protocol fronts store what
//! they need to resume in a transaction, the login front runs the methods, and single logout
//! reaches the fronts through `LogoutNotifier`s wired in `app.rs`.

pub mod bankid;
pub mod flow;
pub mod password;
pub mod session;

pub use flow::{Protocol, Requirement, Resumed, Transaction};
pub use session::{EndedSession, LogoutNotifier, MethodUse, Session};

use crate::config::Config;
use crate::directory::Person;
use crate::keys::KeyStore;
use crate::storage::{self, Db};
use std::sync::Arc;

/// Assurance levels, as Skolfederation names them (specs/skolfederation.md §3).
pub mod acr {
    pub const BAS: &str = "http://id.skolfederation.se/loa/bas";
    pub const TWO_FACTOR: &str = "http://id.skolfederation.se/loa/2fa";

    /// The levels the enabled login methods can reach: password `BAS`, BankID its
    /// configured level. A protocol front refuses at once a request for a level that no
    /// method can reach.
    pub fn offered(config: &crate::config::Config) -> Vec<&str> {
        let mut v = vec![BAS];
        if config.bankid.enabled && !v.contains(&config.bankid.acr.as_str()) {
            v.push(config.bankid.acr.as_str());
        }
        v
    }

    /// Rank of an acr value; unknown values rank above everything we can give, so a request
    /// for them is never silently satisfied by a weaker session.
    pub fn rank(acr: &str) -> u8 {
        match acr {
            BAS => 1,
            TWO_FACTOR => 2,
            _ => u8::MAX,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// Unknown user, wrong password or inactive person: one answer for all.
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many attempts; try again in {0} seconds")]
    Throttled(i64),
    /// Refused before hashing (over `password::MAX_LOGIN_BYTES`).
    #[error("password too long")]
    PasswordTooLong,
    /// The hashing queue is full; try again in this many seconds.
    #[error("too busy; try again in {0} seconds")]
    Busy(i64),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error("BankID is not enabled")]
    BankIdDisabled,
}

#[derive(Clone)]
pub struct Authn {
    db: Db,
    config: Arc<Config>,
    keys: KeyStore,
    hasher: password::PasswordHasher,
    notifiers: Arc<Vec<Arc<dyn LogoutNotifier>>>,
    bankid: Option<bankid::BankIdMethod>,
    clock: crate::clock::Clock,
}

impl Authn {
    pub fn new(
        db: Db,
        config: Arc<Config>,
        keys: KeyStore,
        hasher: password::PasswordHasher,
        clock: crate::clock::Clock,
    ) -> Self {
        Self {
            db,
            config,
            keys,
            hasher,
            notifiers: Arc::new(Vec::new()),
            bankid: None,
            clock,
        }
    }

    /// The application's clock: handlers take `now` from it.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// Enables BankID login with this client (app.rs, when `[bankid] enabled`); `stub_app`
    /// is where the built-in stub's app page is, when the stub plays BankID.
    pub fn with_bankid(mut self, client: crate::bankid::Client, stub_app: Option<String>) -> Self {
        self.bankid = Some(bankid::BankIdMethod::new(client, stub_app));
        self
    }

    /// The person with this internal id, if any.
    pub async fn person(&self, id: &str) -> Result<Option<Person>, AuthnError> {
        Ok(storage::persons::by_id(&self.db, id).await?)
    }

    /// Self-service password reset: sets the new password (already checked with
    /// `password::check_new`) and writes the audit event in the same step.
    pub async fn reset_password(
        &self,
        person_id: &str,
        password: String,
        now: i64,
    ) -> Result<(), AuthnError> {
        self.set_password(person_id, password, now).await?;
        storage::records::audit(
            &self.db,
            "user.password_reset",
            person_id,
            "after BankID",
            now,
        )
        .await?;
        Ok(())
    }

    /// Adds the protocol fronts' logout handlers (app.rs wires them once at start).
    pub fn with_notifiers(mut self, notifiers: Vec<Arc<dyn LogoutNotifier>>) -> Self {
        self.notifiers = Arc::new(notifiers);
        self
    }

    pub fn hasher(&self) -> &password::PasswordHasher {
        &self.hasher
    }

    /// Checks a username (or eppn) and password from `source` (the client address), with a
    /// growing delay per (account, address) after repeated failures. Never a lock-out: the
    /// delay is capped and other addresses are unaffected.
    pub async fn check_password(
        &self,
        username: &str,
        password: String,
        source: &str,
        now: i64,
    ) -> Result<Person, AuthnError> {
        if password.len() > password::MAX_LOGIN_BYTES {
            return Err(AuthnError::PasswordTooLong);
        }
        let key = crate::keys::hash_token(&format!("{}\u{0}{}", username.to_lowercase(), source));
        let counted = storage::throttle::blocked_until(&self.db, &key).await?;
        if let Some(until) = counted.filter(|u| *u > now) {
            return Err(AuthnError::Throttled(until - now));
        }
        let (person, stored) = match storage::persons::login_candidate(&self.db, username).await? {
            Some((p, hash)) if p.active => (Some(p), hash),
            _ => (None, None),
        };
        let ok = match self.hasher.verify(password, stored).await {
            Err(password::HashError::Busy) => return Err(AuthnError::Busy(1)),
            r => r?,
        };
        if ok {
            if counted.is_some() {
                storage::throttle::clear(&self.db, &key).await?;
            }
            // verify() is true only for a known, active person with a password.
            return person.ok_or(AuthnError::InvalidCredentials);
        }
        let failures = storage::throttle::record_failure(&self.db, &key, now).await?;
        let t = &self.config.throttle;
        if failures >= t.free_attempts {
            // 2 s, 4 s, 8 s … up to the cap.
            let exp = (failures - t.free_attempts + 1).min(16) as u32;
            let delay = 2i64.saturating_pow(exp).min(t.max_delay);
            storage::throttle::set_blocked_until(&self.db, &key, now + delay).await?;
        }
        Err(AuthnError::InvalidCredentials)
    }

    /// Sets a person's password (CLI, admin).
    pub async fn set_password(
        &self,
        person_id: &str,
        password: String,
        now: i64,
    ) -> Result<(), AuthnError> {
        let hash = self.hasher.hash(password).await?;
        storage::persons::set_password_hash(&self.db, person_id, &hash, now).await?;
        Ok(())
    }
}
