//! Per-service login policy: which login methods a relying party allows and the lowest
//! level it accepts (`storage::LoginPolicy`, set with `client|sp add|update --allow-method
//! --min-level`), the level each method reaches, what one request requires, and the one
//! function every method calls to finish a login (`Authn::finish_login`), which refuses a
//! step-up proved by a different person.
//!
//! Method names: `password` (amr `pwd`, level `loa/bas`), `bankid` (amr `bankid`, level
//! `bankid.acr`), `upstream:NAME` (amr `fed`, the level the upstream was registered with,
//! from an `UpstreamLevels` lookup). Without upstreams nothing about them is offered.

use super::{Authn, AuthnError, MethodUse, Session, Transaction, acr};
use crate::storage;
use std::future::Future;
use std::pin::Pin;

pub use crate::storage::LoginPolicy;

pub const PASSWORD: &str = "password";
pub const BANKID: &str = "bankid";
pub const UPSTREAM_PREFIX: &str = "upstream:";

/// An enabled login method and the level it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `password`, `bankid` or `upstream:NAME`.
    pub name: String,
    pub level: String,
    /// How the login page names an upstream (None for the built-in methods).
    pub display_name: Option<String>,
    /// An upstream's issuer or entityID (what SAML Scoping's IDPEntry names).
    pub provider_id: Option<String>,
}

impl Method {
    /// The upstream's NAME, for `upstream:NAME`.
    pub fn upstream(&self) -> Option<&str> {
        self.name.strip_prefix(UPSTREAM_PREFIX)
    }
}

/// An upstream provider as a login method: its NAME, the level a login through it counts
/// as, and its display name. An upstream whose NAME is not of the safe form
/// (`valid_upstream_name`) or whose level is not a known LoA URI (`acr::known`) is not
/// offered: an unknown level would rank above every requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamMethod {
    pub name: String,
    pub level: String,
    pub display_name: String,
    /// The upstream's issuer (OIDC) or entityID (SAML).
    pub provider_id: String,
}

/// The registry of upstream providers, as the policy needs it (implemented by the upstream
/// registry and wired in app.rs with `Authn::set_upstreams`). Asynchronous, so it may read
/// the database on each call.
pub trait UpstreamLevels: Send + Sync {
    /// Every enabled upstream.
    fn upstreams(&self) -> Pin<Box<dyn Future<Output = Vec<UpstreamMethod>> + Send + '_>>;
}

/// A fixed list of upstreams (tests, or upstreams that never change while serving).
impl UpstreamLevels for Vec<UpstreamMethod> {
    fn upstreams(&self) -> Pin<Box<dyn Future<Output = Vec<UpstreamMethod>> + Send + '_>> {
        Box::pin(async move { self.clone() })
    }
}

/// Why a method name is refused (CLI, config); the text says what is allowed.
pub fn check_method(name: &str) -> Result<(), String> {
    match name {
        PASSWORD | BANKID => Ok(()),
        n => match n.strip_prefix(UPSTREAM_PREFIX) {
            Some(upstream) if valid_upstream_name(upstream) => Ok(()),
            Some(_) => Err(format!(
                "invalid upstream name in {n:?}: 1-64 characters of a-z, 0-9, '-', '_'"
            )),
            None => Err(format!(
                "unknown login method {n:?} (known: password, bankid, upstream:NAME)"
            )),
        },
    }
}

/// An upstream NAME as it may appear in a path (`/upstream/NAME/start`).
pub fn valid_upstream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Why a level is refused (CLI, config).
pub fn check_level(level: &str) -> Result<(), String> {
    if acr::known(level) {
        Ok(())
    } else {
        Err(format!(
            "unknown level of assurance {level:?} (known: {} and the Swedish eID LoA URIs)",
            [acr::BAS, acr::TWO_FACTOR].join(", ")
        ))
    }
}

/// Checks a whole policy; the first problem as one line.
pub fn check_policy(p: &LoginPolicy) -> Result<(), String> {
    p.allowed_methods.iter().try_for_each(|m| check_method(m))?;
    p.min_level.as_deref().map_or(Ok(()), check_level)
}

/// The higher of two optional levels (never the lower: a request only raises).
pub fn raise(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) if acr::rank(&b) > acr::rank(&a) => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    }
}

/// Whether a relying party's list allows `method` (empty allows every method).
pub fn allows(allowed: &[String], method: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|m| m == method)
}

/// The methods of `available` that a transaction may use: allowed by the relying party
/// and reaching the required level.
pub fn offer(available: &[Method], allowed: &[String], required: Option<&str>) -> Vec<Method> {
    available
        .iter()
        .filter(|m| allows(allowed, &m.name))
        .filter(|m| required.is_none_or(|r| acr::rank(&m.level) >= acr::rank(r)))
        .cloned()
        .collect()
}

/// Why a successful login may not finish its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// A step-up was proved by someone else than the session's person.
    OtherPerson,
    /// The relying party does not allow this method, or it does not reach the level.
    NotAllowed,
}

impl LoginRefused {
    /// The catalogue key of the page that says so.
    pub fn message(self) -> &'static str {
        match self {
            Self::OtherPerson => "login.step_up_other_person",
            Self::NotAllowed => "login.method_unavailable",
        }
    }
}

impl Authn {
    /// Wires the upstream registry (app.rs, when upstreams are configured). Every clone of
    /// this `Authn` (the fronts') sees it.
    pub fn set_upstreams(&self, upstreams: std::sync::Arc<dyn UpstreamLevels>) {
        *self.upstreams.write().unwrap_or_else(|p| p.into_inner()) = Some(upstreams);
    }

    /// Every enabled login method with its level: password, BankID when enabled, and each
    /// enabled upstream.
    pub async fn methods(&self) -> Vec<Method> {
        let mut v = vec![Method {
            name: PASSWORD.into(),
            level: acr::BAS.into(),
            display_name: None,
            provider_id: None,
        }];
        if self.bankid_enabled() {
            v.push(Method {
                name: BANKID.into(),
                level: self.config.bankid.acr.clone(),
                display_name: None,
                provider_id: None,
            });
        }
        let fixed = self
            .upstreams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let upstreams = match fixed {
            Some(u) => u.upstreams().await,
            None => self.registered_upstreams().await,
        };
        {
            // A NAME goes into paths (`/upstream/NAME/start`): only the safe form is offered.
            for up in upstreams
                .into_iter()
                .filter(|up| valid_upstream_name(&up.name) && acr::known(&up.level))
            {
                v.push(Method {
                    name: format!("{UPSTREAM_PREFIX}{}", up.name),
                    level: up.level,
                    display_name: Some(up.display_name),
                    provider_id: Some(up.provider_id),
                });
            }
        }
        v
    }

    /// The enabled upstreams of the registry (`authn::upstream`), as the policy sees them. A
    /// registry that cannot be read offers no upstream (logged), never a wrong one.
    async fn registered_upstreams(&self) -> Vec<UpstreamMethod> {
        let list = match self.upstreams().await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!("reading the upstreams failed: {}", crate::error_chain(&e));
                return Vec::new();
            }
        };
        list.into_iter()
            .map(|up| UpstreamMethod {
                provider_id: up.provider_id().unwrap_or_default(),
                name: up.name,
                level: up.level,
                display_name: up.display_name,
            })
            .collect()
    }

    /// The level a login with `method` reaches; None when it is not enabled.
    pub async fn level_of(&self, method: &str) -> Option<String> {
        self.methods()
            .await
            .into_iter()
            .find(|m| m.name == method)
            .map(|m| m.level)
    }

    /// The NAME of the enabled upstream that a SAML IDPEntry's ProviderID names (its
    /// entityID or issuer, or its NAME).
    pub async fn upstream_named_by(&self, provider_id: &str) -> Option<String> {
        self.methods().await.into_iter().find_map(|m| {
            let name = m.upstream()?.to_string();
            (m.provider_id.as_deref() == Some(provider_id) || name == provider_id).then_some(name)
        })
    }

    /// The levels a relying party with `policy` can be given, lowest first: those of the
    /// enabled methods it allows, at or above its minimum.
    pub async fn levels_for(&self, policy: &LoginPolicy) -> Vec<String> {
        let methods = offer(
            &self.methods().await,
            &policy.allowed_methods,
            policy.min_level.as_deref(),
        );
        let mut v: Vec<String> = methods.into_iter().map(|m| m.level).collect();
        v.sort_by_key(|l| acr::rank(l));
        v.dedup();
        v
    }

    /// The levels some enabled method reaches, lowest first (discovery's
    /// `acr_values_supported`; what a SAML RequestedAuthnContext can be met with).
    pub async fn reachable_levels(&self) -> Vec<String> {
        let mut v: Vec<String> = self.methods().await.into_iter().map(|m| m.level).collect();
        v.sort_by_key(|l| acr::rank(l));
        v.dedup();
        v
    }

    /// The methods a transaction's login page may offer.
    pub async fn offered(&self, tx: &Transaction) -> Vec<Method> {
        offer(
            &self.methods().await,
            &tx.allowed_methods,
            tx.required_level.as_deref(),
        )
    }

    /// Finishes a successful login for a transaction; every method calls this once the
    /// person is known. It refuses a method the relying party does not allow or that does
    /// not reach the required level, and a step-up proved by another person than the
    /// session's (audited; the existing session is left as it was). Otherwise it starts
    /// the new session (`start_session`: the same person's session is replaced and keeps
    /// its methods) and marks the transaction completed by it.
    pub async fn finish_login(
        &self,
        tx: &Transaction,
        person_id: &str,
        method: MethodUse,
        previous_cookie: Option<&str>,
        now: i64,
    ) -> Result<(String, Session), AuthnError> {
        self.finish_for(tx, person_id, method, previous_cookie, false, now)
            .await
    }

    /// A BankID login for a password reset inside a relying party's login: the person
    /// proves themselves for their own password, so the relying party's methods and level
    /// do not stop it (a step-up's person still must match). It completes the transaction
    /// only when the relying party would have taken this login; otherwise the person logs
    /// in again, as the relying party allows, once the new password is set.
    pub(crate) async fn finish_reset_login(
        &self,
        tx: &Transaction,
        person_id: &str,
        method: MethodUse,
        previous_cookie: Option<&str>,
        now: i64,
    ) -> Result<(String, Session), AuthnError> {
        self.finish_for(tx, person_id, method, previous_cookie, true, now)
            .await
    }

    async fn finish_for(
        &self,
        tx: &Transaction,
        person_id: &str,
        method: MethodUse,
        previous_cookie: Option<&str>,
        reset: bool,
        now: i64,
    ) -> Result<(String, Session), AuthnError> {
        let name = method.policy_name();
        let reaches = tx
            .required_level
            .as_deref()
            .is_none_or(|r| acr::rank(&method.acr) >= acr::rank(r));
        let allowed = allows(&tx.allowed_methods, &name) && reaches;
        if !allowed && !reset {
            let detail = format!("{}: {name} not allowed or too weak", tx.rp_id);
            storage::records::audit(&self.db, "login.refused", "login", &detail, now).await?;
            return Err(AuthnError::Refused(LoginRefused::NotAllowed));
        }
        if let Some(expected) = &tx.step_up_person
            && expected != person_id
        {
            // Names neither person: the event says what happened and for which service.
            let detail = format!("{}: step-up with {name} proved by another person", tx.rp_id);
            storage::records::audit(&self.db, "login.step_up_refused", "login", &detail, now)
                .await?;
            tracing::warn!("step-up refused: {detail}");
            return Err(AuthnError::Refused(LoginRefused::OtherPerson));
        }
        let acr = method.acr.clone();
        let (cookie, session) = self
            .start_session(person_id, method, previous_cookie, now)
            .await?;
        let event = super::Event::Success {
            person_id,
            rp_id: &tx.rp_id,
            method: &name,
            acr: &acr,
        };
        self.audit(event, now).await;
        if allowed {
            // Binds this login to its transaction, so resuming needs no clock comparison.
            self.complete(&tx.id, &session).await?;
        }
        Ok((cookie, session))
    }
}

/// Sets the login policies of the config file's `[[login_policy]]` (at start, and for the one
/// relying party `only` that `client add`/`sp add` has just registered). Every method must be
/// known (an upstream registered), the level a known LoA URI, and the relying party a
/// registered OIDC client or SAML SP; the error names the entry and what is wrong with it.
pub async fn apply_config(
    db: &crate::storage::Db,
    entries: &[crate::config::LoginPolicyConfig],
    only: Option<&str>,
    now: i64,
) -> Result<Vec<String>, String> {
    let entries: Vec<_> = entries
        .iter()
        .filter(|e| only.is_none_or(|rp| rp == e.relying_party))
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let upstreams: Vec<String> = super::upstream::list(db)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|u| u.name)
        .collect();
    let mut applied = Vec::new();
    for e in entries {
        let named = |m: String| format!("[[login_policy]] {:?}: {m}", e.relying_party);
        for m in &e.allow_methods {
            check_method(m).map_err(named)?;
            if let Some(up) = m.strip_prefix(UPSTREAM_PREFIX)
                && !upstreams.iter().any(|u| u == up)
            {
                return Err(named(format!("no upstream {up:?} is registered")));
            }
        }
        if let Some(level) = &e.min_level
            && !acr::known(level)
        {
            return Err(named(format!("unknown level {level:?} (a LoA URI)")));
        }
        let login = crate::storage::LoginPolicy {
            allowed_methods: e.allow_methods.clone(),
            min_level: e.min_level.clone(),
        };
        let rp = e.relying_party.as_str();
        let set = crate::storage::clients::set_login(db, rp, &login, now)
            .await
            .map_err(|err| err.to_string())?
            || crate::storage::saml::set_login(db, rp, &login, now)
                .await
                .map_err(|err| err.to_string())?;
        if !set {
            return Err(named(
                "no OIDC client or SAML SP of that id is registered (register it first)".into(),
            ));
        }
        applied.push(e.relying_party.clone());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, level: &str) -> Method {
        Method {
            name: name.into(),
            level: level.into(),
            display_name: None,
            provider_id: None,
        }
    }

    #[test]
    fn method_names_and_levels() {
        assert!(check_method("password").is_ok());
        assert!(check_method("bankid").is_ok());
        assert!(check_method("upstream:entra-kommun").is_ok());
        assert!(check_method("upstream:").is_err());
        assert!(check_method("upstream:Bad/Name").is_err());
        assert!(
            check_method("sms")
                .unwrap_err()
                .contains("unknown login method")
        );
        assert!(check_level(acr::TWO_FACTOR).is_ok());
        assert!(check_level("http://id.elegnamnden.se/loa/1.0/loa3").is_ok());
        assert!(check_level("urn:x").is_err());
    }

    #[test]
    fn a_request_only_raises_the_level() {
        let bas = Some(acr::BAS.to_string());
        let two = Some(acr::TWO_FACTOR.to_string());
        assert_eq!(raise(two.clone(), bas.clone()), two);
        assert_eq!(raise(bas.clone(), two.clone()), two);
        assert_eq!(raise(None, bas.clone()), bas);
        assert_eq!(raise(bas.clone(), None), bas);
    }

    #[test]
    fn only_allowed_methods_that_reach_the_level_are_offered() {
        let all = [
            m(PASSWORD, acr::BAS),
            m(BANKID, acr::TWO_FACTOR),
            m("upstream:staff", acr::BAS),
        ];
        let names = |v: Vec<Method>| v.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(offer(&all, &[], None)).len(), 3);
        assert_eq!(names(offer(&all, &[], Some(acr::TWO_FACTOR))), vec![BANKID]);
        assert_eq!(
            names(offer(&all, &["upstream:staff".into()], None)),
            vec!["upstream:staff"]
        );
        assert!(offer(&all, &["upstream:staff".into()], Some(acr::TWO_FACTOR)).is_empty());
        assert!(offer(&all, &[], Some("urn:unknown")).is_empty());
    }
}
