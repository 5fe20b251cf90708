//! Authentication, protocol-neutral and without HTTP: login transactions (`flow`), SSO
//! sessions (`session`), the password method (`password`) and its throttle, the BankID
//! method (`bankid`), the federation method (`upstream`), self-service password reset, and assurance levels (`acr`).
//! The fronts (`login`, `oidc`, `saml`) call it with plain values: protocol fronts store what
//! they need to resume in a transaction, the login front runs the methods, and single logout
//! reaches the fronts through `LogoutNotifier`s wired in `app.rs`.

mod audit;
pub mod bankid;
pub mod flow;
mod generated;
pub mod password;
pub mod policy;
pub mod session;
pub mod upstream;
mod upstream_saml;

pub use audit::Event;
pub use flow::{Begin, Protocol, Requirement, Resumed, Transaction};
pub use generated::Generated;
pub use policy::{LoginRefused, Method, UpstreamLevels};
pub use session::{EndedSession, Ending, LogoutNotifier, MethodUse, Session};

use crate::config::Config;
use crate::directory::Person;
use crate::keys::KeyStore;
use crate::storage::{self, Db};
use std::sync::Arc;

/// Assurance levels, as Skolfederation names them (specs/skolfederation.md §3).
pub mod acr {
    pub const BAS: &str = "http://id.skolfederation.se/loa/bas";
    pub const TWO_FACTOR: &str = "http://id.skolfederation.se/loa/2fa";

    /// Every level of assurance a relying party may require or an upstream may be given,
    /// with its rank: Skolfederation's (specs/skolfederation.md §3) and the Swedish eID
    /// Framework's (Sweden Connect, eIDAS). Levels of different frameworks with one rank
    /// count as equivalent: `loa/2fa` is multi-factor as `loa2` is, and BankID is `loa3`.
    pub const KNOWN: &[(&str, u8)] = &[
        (BAS, 1),
        (TWO_FACTOR, 2),
        ("http://id.elegnamnden.se/loa/1.0/loa1", 1),
        ("http://id.elegnamnden.se/loa/1.0/loa2", 2),
        ("http://id.elegnamnden.se/loa/1.0/loa3", 3),
        ("http://id.elegnamnden.se/loa/1.0/loa4", 4),
        ("http://id.swedenconnect.se/loa/1.0/uncertified-loa2", 2),
        ("http://id.swedenconnect.se/loa/1.0/uncertified-loa3", 3),
        ("http://id.swedenconnect.se/loa/1.0/loa2-nonresident", 2),
        ("http://id.swedenconnect.se/loa/1.0/loa3-nonresident", 3),
        ("http://id.swedenconnect.se/loa/1.0/loa4-nonresident", 4),
        ("http://id.elegnamnden.se/loa/1.0/eidas-low", 1),
        ("http://id.elegnamnden.se/loa/1.0/eidas-sub", 3),
        ("http://id.elegnamnden.se/loa/1.0/eidas-high", 4),
        ("http://id.elegnamnden.se/loa/1.0/eidas-nf-low", 1),
        ("http://id.elegnamnden.se/loa/1.0/eidas-nf-sub", 3),
        ("http://id.elegnamnden.se/loa/1.0/eidas-nf-high", 4),
        (
            "http://id.swedenconnect.se/loa/1.0/uncertified-eidas-low",
            1,
        ),
        (
            "http://id.swedenconnect.se/loa/1.0/uncertified-eidas-sub",
            3,
        ),
        (
            "http://id.swedenconnect.se/loa/1.0/uncertified-eidas-high",
            4,
        ),
    ];

    /// Whether `acr` is a level Portvakt knows (and so can compare).
    pub fn known(acr: &str) -> bool {
        KNOWN.iter().any(|(k, _)| *k == acr)
    }

    /// Rank of an acr value; unknown values rank above everything we can give, so a request
    /// for them is never silently satisfied by a weaker session.
    pub fn rank(acr: &str) -> u8 {
        KNOWN
            .iter()
            .find(|(k, _)| *k == acr)
            .map_or(u8::MAX, |(_, r)| *r)
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
    /// A federated login found no person to log in (audited).
    #[error("federated login refused: {}", .0.reason())]
    LinkRefused(upstream::LinkRefusal),
    /// The login succeeded but may not finish this transaction (`Authn::finish_login`).
    #[error("login refused: {0:?}")]
    Refused(LoginRefused),
}

/// The registered upstreams and when they were read.
type CachedUpstreams = (i64, Arc<[crate::upstream::Upstream]>);

#[derive(Clone)]
pub struct Authn {
    db: Db,
    config: Arc<Config>,
    keys: KeyStore,
    hasher: password::PasswordHasher,
    notifiers: Arc<Vec<Arc<dyn LogoutNotifier>>>,
    bankid: Option<bankid::BankIdMethod>,
    /// The upstream providers' levels, when federation is configured (`policy`). Shared by
    /// every clone, so the registry can be wired once the fronts hold theirs.
    upstreams: Arc<std::sync::RwLock<Option<Arc<dyn UpstreamLevels>>>>,
    /// The registered upstreams as last read, and when (`Authn::upstreams`).
    upstream_cache: Arc<std::sync::RwLock<Option<CachedUpstreams>>>,
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
            upstreams: Default::default(),
            upstream_cache: Default::default(),
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
        current_session: &str,
        password: String,
        now: i64,
    ) -> Result<(), AuthnError> {
        self.set_password(person_id, password, now).await?;
        // Whoever else is signed in as this person (perhaps with the old password) is signed
        // out, and their refresh tokens revoked; the session that proved the reset stays.
        self.end_other_sessions(person_id, current_session, now)
            .await?;
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

    /// Checks a username (or eppn) and password from `source` (the client address).
    ///
    /// Every limit is taken before argon2 runs, in single conditional statements shared by
    /// all instances, so parallel requests cannot all reach the hasher:
    /// - per client address (an IPv6 /64): at most `address_attempts` per window, against
    ///   spraying across accounts;
    /// - per account (the resolved person, so username and eppn are one account; an unknown
    ///   name keyed on its lowercased form): one attempt in flight at a time, and a growing
    ///   delay after `account_free_attempts` failures from anywhere;
    /// - per (account, address): a growing delay after `free_attempts` failures.
    ///
    /// Delays are capped at `max_delay`: never a lock-out. A failure and a throttled
    /// attempt are audited (`audit::Event`); of a burst over the address limit only the
    /// first, so a flood does not become a flood of writes.
    pub async fn check_password(
        &self,
        username: &str,
        password: String,
        source: &str,
        now: i64,
    ) -> Result<Person, AuthnError> {
        let mut seen = Seen::default();
        let result = self
            .password_outcome(username, password, source, now, &mut seen)
            .await;
        let person_id = seen.person_id.as_deref();
        let event = match &result {
            Err(AuthnError::InvalidCredentials) => Some(Event::Failure {
                person_id,
                address: source,
                reason: "invalid credentials",
            }),
            Err(AuthnError::PasswordTooLong) => Some(Event::Failure {
                person_id,
                address: source,
                reason: "password too long",
            }),
            Err(AuthnError::Throttled(_)) if !seen.quiet => Some(Event::Throttled {
                person_id,
                address: source,
                limit: seen.limit,
            }),
            _ => None,
        };
        if let Some(event) = event {
            self.audit(event, now).await;
        }
        result
    }

    async fn password_outcome(
        &self,
        username: &str,
        password: String,
        source: &str,
        now: i64,
        seen: &mut Seen,
    ) -> Result<Person, AuthnError> {
        if password.len() > password::MAX_LOGIN_BYTES {
            return Err(AuthnError::PasswordTooLong);
        }
        let t = &self.config.throttle;
        let address = throttle_address(source);
        let addr_key = crate::keys::hash_token(&format!("addr\u{0}{address}"));
        let (attempts, window_start) =
            storage::throttle::count_in_window(&self.db, &addr_key, now, t.address_window).await?;
        if attempts > t.address_attempts {
            (seen.limit, seen.quiet) = ("address", attempts > t.address_attempts + 1);
            return Err(AuthnError::Throttled(
                (window_start + t.address_window - now).max(1),
            ));
        }
        let (person, stored) = match storage::persons::login_candidate(&self.db, username).await? {
            Some((p, hash)) => (Some(p), hash),
            None => (None, None),
        };
        seen.person_id = person.as_ref().map(|p| p.id.clone());
        let account = match &person {
            Some(p) => format!("person\u{0}{}", p.id),
            None => format!("name\u{0}{}", username.to_lowercase()),
        };
        let account_key = crate::keys::hash_token(&format!("acct\u{0}{account}"));
        // The hold covers queueing and hashing; should this instance die meanwhile, the
        // account is free again after it.
        if let Some(until) =
            storage::throttle::reserve(&self.db, &account_key, now, now + HOLD_SECONDS).await?
        {
            seen.limit = "account";
            return Err(AuthnError::Throttled(until - now));
        }
        seen.limit = "account and address";
        let pair_key = crate::keys::hash_token(&format!("{account}\u{0}{address}"));
        let result = self
            .attempt(person, stored, password, &pair_key, &account_key, now)
            .await;
        if let Err(AuthnError::Throttled(_) | AuthnError::Busy(_)) = &result {
            // Nothing was tried: give the hold back without counting a failure.
            storage::throttle::set_blocked_until(&self.db, &account_key, now).await?;
        }
        result
    }

    /// One attempt while holding the account's reservation; on a wrong password the
    /// failure counts for the account and for (account, address), and the account's
    /// reservation becomes its delay.
    async fn attempt(
        &self,
        person: Option<Person>,
        stored: Option<String>,
        password: String,
        pair_key: &str,
        account_key: &str,
        now: i64,
    ) -> Result<Person, AuthnError> {
        let t = &self.config.throttle;
        let counted = storage::throttle::blocked_until(&self.db, pair_key).await?;
        if let Some(until) = counted.filter(|u| *u > now) {
            return Err(AuthnError::Throttled(until - now));
        }
        let person = person.filter(|p| p.active);
        let stored = if person.is_some() { stored } else { None };
        let ok = match self.hasher.verify(password, stored).await {
            Ok(ok) => ok,
            Err(password::HashError::Busy) => return Err(AuthnError::Busy(1)),
            Err(e) => {
                storage::throttle::set_blocked_until(&self.db, account_key, now).await?;
                return Err(e.into());
            }
        };
        if ok {
            if counted.is_some() {
                storage::throttle::clear(&self.db, pair_key).await?;
            }
            // The account's failure count stays (guessing from elsewhere may go on); only
            // the hold ends.
            storage::throttle::set_blocked_until(&self.db, account_key, now).await?;
            // verify() is true only for a known, active person with a password.
            return person.ok_or(AuthnError::InvalidCredentials);
        }
        let failures = storage::throttle::record_failure(&self.db, pair_key, now).await?;
        if let Some(delay) = delay(failures, t.free_attempts, t.max_delay) {
            storage::throttle::set_blocked_until(&self.db, pair_key, now + delay).await?;
        }
        let failures = storage::throttle::record_failure(&self.db, account_key, now).await?;
        let delay = delay(failures, t.account_free_attempts, t.max_delay).unwrap_or(0);
        storage::throttle::set_blocked_until(&self.db, account_key, now + delay).await?;
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

/// What a password check learnt, for the audit event of its outcome.
#[derive(Default)]
struct Seen {
    /// The account's person, when the name was known.
    person_id: Option<String>,
    /// The limit that refused the attempt, if one did.
    limit: &'static str,
    /// Not audited: a later attempt of a burst over the address limit.
    quiet: bool,
}

/// How long an account's reservation holds at most (queueing plus hashing).
const HOLD_SECONDS: i64 = 30;

/// The delay after `failures` failures: none for the first `free - 1`, then 2 s, 4 s, 8 s …
/// up to `max`.
fn delay(failures: i64, free: i64, max: i64) -> Option<i64> {
    (failures >= free).then(|| {
        let exp = (failures - free + 1).min(16) as u32;
        2i64.saturating_pow(exp).min(max)
    })
}

/// The address a throttle counts: an IPv4 address as is, an IPv6 address by its /64 (one
/// host or home usually holds a whole /64, so counting single addresses would not count).
fn throttle_address(source: &str) -> String {
    match source.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            throttle_address("2001:db8:1:2:aaaa::1"),
            throttle_address("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(
            throttle_address("2001:db8:1:2::1"),
            throttle_address("2001:db8:1:3::1")
        );
        assert_eq!(throttle_address("192.0.2.7"), "192.0.2.7");
        assert_eq!(throttle_address("::ffff:192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay(2, 3, 30), None);
        assert_eq!(delay(3, 3, 30), Some(2));
        assert_eq!(delay(4, 3, 30), Some(4));
        assert_eq!(delay(40, 3, 30), Some(30));
    }
}
