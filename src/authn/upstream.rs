//! The federation method: registered upstreams (add, update, list, remove, the sealed client
//! secret), the state of a login out at an upstream (bound to the transaction and the
//! browser, taken once), and linking what an upstream proved (`upstream::Identity`) to
//! exactly one active person. Federation never creates people.
//!
//! Linking, in order (specs: upstream-idps.md §6):
//! 1. the upstream's pins (`require_claims`) must all hold, on every login;
//! 2. a stored (upstream, subject) link decides; its person must be active;
//! 3. else the upstream's rule `CLAIM=FIELD` must find exactly one active person; by email
//!    only when the upstream says the address is verified and the upstream is pinned, and
//!    never a protected identity; the link is stored on this first login.

use super::{Authn, AuthnError, MethodUse, Session, Transaction};
use crate::directory::Person;
use crate::directory::model::CivicNo;
use crate::keys::KeyStore;
use crate::storage::{self, Db, StorageError, upstream::UpstreamRecord};
use crate::upstream::{Identity, Kind, LinkRule, PersonField, Upstream, UpstreamError};

/// The amr value (RFC 8176) of a federated login.
pub const AMR: &str = "fed";

/// Why a federated login found no person to log in. Each has its own page; `Protected`
/// shows the page of `Unknown` (a different page would reveal that a protected person
/// exists) but is audited as what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// No active person matches the rule (or the rule's claim is missing).
    Unknown,
    /// Several active people match the rule.
    Ambiguous,
    /// The rule links by email, but the upstream did not say the address is verified, or the
    /// upstream is not pinned to a tenant or domain.
    UnverifiedEmail,
    /// A required claim (tenant, domain ...) is missing or differs.
    PinMismatch,
    /// The person is deactivated.
    Deactivated,
    /// The person is already linked to another subject at this upstream.
    AlreadyLinked,
    /// The email rule found a protected identity (never linked automatically).
    Protected,
}

impl LinkRefusal {
    /// The word in the audit event.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Ambiguous => "ambiguous",
            Self::UnverifiedEmail => "unverified_email",
            Self::PinMismatch => "pin_mismatch",
            Self::Deactivated => "deactivated",
            Self::AlreadyLinked => "already_linked",
            Self::Protected => "protected",
        }
    }

    /// The catalogue key of the page that explains it.
    pub fn message(self) -> &'static str {
        match self {
            Self::Unknown | Self::Protected => "upstream.refused.unknown",
            Self::Ambiguous => "upstream.refused.ambiguous",
            Self::UnverifiedEmail => "upstream.refused.unverified_email",
            Self::PinMismatch => "upstream.refused.pin_mismatch",
            Self::Deactivated => "upstream.refused.deactivated",
            Self::AlreadyLinked => "upstream.refused.already_linked",
        }
    }
}

/// A login out at an upstream: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    pub upstream: String,
    /// The login transaction it belongs to.
    pub tx_id: String,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// OIDC PKCE code verifier.
    pub pkce_verifier: Option<String>,
    /// The id of the request sent (SAML AuthnRequest ID, for InResponseTo).
    pub request_id: Option<String>,
    pub created_at: i64,
}

/// The sealing label of a kept upstream ID token.
const ID_TOKEN_LABEL: &str = "upstream-id-token";

/// The KEK label of an upstream's client secret (defined by `keys`, which rewraps it).
use crate::keys::kek::upstream_secret_label as secret_label;

fn invalid(s: impl Into<String>) -> UpstreamError {
    UpstreamError::Invalid(s.into())
}

/// Whether `url` is https, or http on a loopback host (development and tests).
fn acceptable_url(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}

/// Checks an upstream before it is stored; returns it with defaults filled in.
pub fn check(mut up: Upstream) -> Result<Upstream, UpstreamError> {
    if !crate::upstream::valid_name(&up.name) {
        return Err(invalid(format!(
            "upstream name {:?}: use 1-64 lowercase letters, digits, '-' or '_'",
            up.name
        )));
    }
    up.display_name = up.display_name.trim().to_string();
    if up.display_name.is_empty() {
        up.display_name = up.name.clone();
    }
    if up.display_name.chars().count() > 100 {
        return Err(invalid("--display-name: at most 100 characters"));
    }
    if let Some(logo) = &up.logo
        && !acceptable_url(logo)
    {
        return Err(invalid(format!("--logo {logo:?}: must be an https URL")));
    }
    if up.level.trim().is_empty() || !up.level.contains(':') {
        return Err(invalid(format!(
            "--level {:?}: must be an LoA URI",
            up.level
        )));
    }
    if up.link.uses_email() && up.require_claims.is_empty() {
        return Err(invalid(
            "linking by email needs at least one --require-claim pin (tid=…, hd=…): \
             otherwise anyone who can set an email address at the upstream could take over an account",
        ));
    }
    match &mut up.kind {
        Kind::Oidc {
            issuer,
            client_id,
            scopes,
        } => {
            if !acceptable_url(issuer) {
                return Err(invalid(format!(
                    "--oidc {issuer:?}: the issuer must be an https URL"
                )));
            }
            if client_id.trim().is_empty() {
                return Err(invalid("--client-id is empty"));
            }
            if scopes.is_empty() {
                scopes.extend(crate::upstream::DEFAULT_SCOPES.map(String::from));
            }
            if !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            if let Some(bad) = scopes
                .iter()
                .find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_graphic() && c != '"'))
            {
                return Err(invalid(format!("--scope {bad:?} is not a scope")));
            }
        }
        Kind::Saml {
            metadata_url,
            metadata,
        } => {
            if metadata_url.is_none() && metadata.is_none() {
                return Err(invalid("--saml-metadata: give a file or an https URL"));
            }
            // Refused at registration, not at the first login: no signing certificate (a
            // verifier without a key must not accept), no Redirect SSO endpoint, bad XML.
            // validUntil is checked at each login.
            if let Some(doc) = metadata {
                crate::upstream::saml::metadata::parse(doc, i64::MIN)
                    .map_err(|e| invalid(format!("--saml-metadata: {e}")))?;
            }
            if let Some(u) = metadata_url
                && !acceptable_url(u)
            {
                return Err(invalid(format!(
                    "--saml-metadata {u:?}: the URL must be https"
                )));
            }
        }
    }
    Ok(up)
}

fn to_record(up: &Upstream, sealed_secret: Option<String>) -> UpstreamRecord {
    let (issuer, client_id, scopes, metadata_url, metadata) = match &up.kind {
        Kind::Oidc {
            issuer,
            client_id,
            scopes,
        } => (
            Some(issuer.clone()),
            Some(client_id.clone()),
            scopes.clone(),
            None,
            None,
        ),
        Kind::Saml {
            metadata_url,
            metadata,
        } => (
            None,
            None,
            Vec::new(),
            metadata_url.clone(),
            metadata.clone(),
        ),
    };
    UpstreamRecord {
        name: up.name.clone(),
        kind: up.kind.as_str().into(),
        display_name: up.display_name.clone(),
        logo: up.logo.clone(),
        level: up.level.clone(),
        link_claim: up.link.claim.clone(),
        link_field: up.link.field.as_str().into(),
        require_claims: up.require_claims.clone(),
        issuer,
        client_id,
        client_secret: sealed_secret,
        scopes,
        metadata_url,
        metadata,
        enabled: up.enabled,
    }
}

/// The stored upstream as the rest of Portvakt sees it.
pub fn from_record(r: &UpstreamRecord) -> Result<Upstream, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("upstream {}: {what}", r.name));
    let kind = match r.kind.as_str() {
        "oidc" => Kind::Oidc {
            issuer: r.issuer.clone().ok_or_else(|| corrupt("no issuer"))?,
            client_id: r.client_id.clone().ok_or_else(|| corrupt("no client id"))?,
            scopes: r.scopes.clone(),
        },
        "saml" => Kind::Saml {
            metadata_url: r.metadata_url.clone(),
            metadata: r.metadata.clone(),
        },
        _ => return Err(corrupt("unknown kind")),
    };
    Ok(Upstream {
        name: r.name.clone(),
        kind,
        display_name: r.display_name.clone(),
        logo: r.logo.clone(),
        level: r.level.clone(),
        link: LinkRule {
            claim: r.link_claim.clone(),
            field: PersonField::parse(&r.link_field).ok_or_else(|| corrupt("link field"))?,
        },
        require_claims: r.require_claims.clone(),
        enabled: r.enabled,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Invalid(#[from] UpstreamError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

/// Registers an upstream (`upstream add`). An OIDC upstream needs its client secret, which
/// is stored sealed under the KEK.
pub async fn add(
    db: &Db,
    keys: &KeyStore,
    up: Upstream,
    client_secret: Option<&str>,
    now: i64,
) -> Result<Upstream, ConfigError> {
    let up = check(up)?;
    let sealed = match (&up.kind, client_secret) {
        (Kind::Oidc { .. }, None) => {
            return Err(invalid("an OIDC upstream needs --client-secret-stdin").into());
        }
        (Kind::Oidc { .. }, Some(s)) => Some(keys.seal(&secret_label(&up.name), s.as_bytes())?),
        (Kind::Saml { .. }, _) => None,
    };
    storage::upstream::insert(db, &to_record(&up, sealed), now).await?;
    Ok(up)
}

/// Replaces an upstream's settings (`upstream update`); `client_secret` None keeps the
/// stored one. False when there is no such upstream.
pub async fn update(
    db: &Db,
    keys: &KeyStore,
    up: Upstream,
    client_secret: Option<&str>,
    now: i64,
) -> Result<Option<Upstream>, ConfigError> {
    let up = check(up)?;
    let Some(old) = storage::upstream::get(db, &up.name).await? else {
        return Ok(None);
    };
    let sealed = match (&up.kind, client_secret) {
        (Kind::Oidc { .. }, Some(s)) => Some(keys.seal(&secret_label(&up.name), s.as_bytes())?),
        (Kind::Oidc { .. }, None) if old.client_secret.is_some() => old.client_secret,
        (Kind::Oidc { .. }, None) => {
            return Err(invalid("an OIDC upstream needs --client-secret-stdin").into());
        }
        (Kind::Saml { .. }, _) => None,
    };
    Ok(storage::upstream::update(db, &to_record(&up, sealed), now)
        .await?
        .then_some(up))
}

/// Every registered upstream (enabled or not), by name.
pub async fn list(db: &Db) -> Result<Vec<Upstream>, StorageError> {
    storage::upstream::list(db)
        .await?
        .iter()
        .map(from_record)
        .collect()
}

pub async fn get(db: &Db, name: &str) -> Result<Option<Upstream>, StorageError> {
    storage::upstream::get(db, name)
        .await?
        .as_ref()
        .map(from_record)
        .transpose()
}

/// Creates or updates the upstreams of the config file's `[[upstream]]` (at start). The
/// error names the entry and what is wrong with it.
pub async fn apply_config(
    db: &Db,
    keys: &KeyStore,
    entries: &[crate::config::UpstreamConfig],
    now: i64,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    for e in entries {
        let named = |m: String| invalid(format!("[[upstream]] {:?}: {m}", e.name));
        let kind = match (&e.oidc, &e.saml_metadata) {
            (Some(issuer), None) => Kind::Oidc {
                issuer: issuer.trim_end_matches('/').to_string(),
                client_id: e
                    .client_id
                    .clone()
                    .ok_or_else(|| named("client_id is required with oidc".into()))?,
                scopes: e.scopes.clone(),
            },
            (None, Some(src)) if src.starts_with("https://") || src.starts_with("http://") => {
                Kind::Saml {
                    metadata_url: Some(src.clone()),
                    metadata: None,
                }
            }
            (None, Some(path)) => Kind::Saml {
                metadata_url: None,
                metadata: Some(
                    std::fs::read_to_string(path)
                        .map_err(|err| named(format!("cannot read {path}: {err}")))?,
                ),
            },
            _ => return Err(named("give exactly one of oidc or saml_metadata".into()).into()),
        };
        let secret = match &e.client_secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| named(format!("cannot read {}: {err}", path.display())))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            None => None,
        };
        let up = Upstream {
            name: e.name.clone(),
            kind,
            display_name: e.display_name.clone().unwrap_or_default(),
            logo: e.logo.clone(),
            level: e.level.clone().unwrap_or_else(|| super::acr::BAS.into()),
            link: LinkRule::parse(&e.link_on).map_err(|err| named(err.to_string()))?,
            require_claims: e
                .require_claims
                .iter()
                .map(|c| crate::upstream::parse_require_claim(c))
                .collect::<Result<_, _>>()
                .map_err(|err| named(err.to_string()))?,
            enabled: true,
        };
        let up = check(up).map_err(|err| named(err.to_string()))?;
        let secret = secret.as_deref();
        if get(db, &up.name).await?.is_some() {
            update(db, keys, up, secret, now).await?;
        } else {
            add(db, keys, up, secret, now).await?;
        }
        applied.push(e.name.clone());
    }
    Ok(applied)
}

/// Removes an upstream, its links and its pending logins.
pub async fn remove(db: &Db, name: &str) -> Result<bool, StorageError> {
    storage::upstream::remove(db, name).await
}

impl Authn {
    /// The enabled upstreams, by name (the login page lists them). Read through a cache of
    /// `[cache] client_ttl` seconds, like registered clients: authorize, the login page (three
    /// times) and its POST each asked for them, a database read per request, and a change
    /// takes effect within that time.
    pub async fn upstreams(&self) -> Result<Vec<Upstream>, AuthnError> {
        let ttl = self.config.cache.client_ttl;
        let now = self.clock.now();
        if ttl > 0 {
            let cached = self
                .upstream_cache
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some((at, list)) = cached
                && (at..at + ttl).contains(&now)
            {
                return Ok(list.to_vec());
            }
        }
        let fresh: Vec<Upstream> = list(&self.db)
            .await?
            .into_iter()
            .filter(|u| u.enabled)
            .collect();
        if ttl > 0 {
            *self
                .upstream_cache
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Some((now, fresh.clone().into()));
        }
        Ok(fresh)
    }

    /// The enabled upstream of this name.
    pub async fn upstream(&self, name: &str) -> Result<Option<Upstream>, AuthnError> {
        Ok(get(&self.db, name).await?.filter(|u| u.enabled))
    }

    /// An OIDC upstream's client secret, opened from its seal.
    pub async fn upstream_secret(&self, name: &str) -> Result<Option<String>, AuthnError> {
        let Some(rec) = storage::upstream::get(&self.db, name).await? else {
            return Ok(None);
        };
        let Some(sealed) = rec.client_secret else {
            return Ok(None);
        };
        let plain = self.keys.open_sealed(&secret_label(name), &sealed)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| StorageError::Corrupt(format!("upstream {name}: secret")).into())
    }

    /// Keeps the upstream's ID token of a session that came from an upstream OpenID
    /// provider, sealed, for RP-initiated logout there (`id_token_hint`).
    pub async fn remember_upstream_id_token(
        &self,
        session: &Session,
        upstream: &str,
        id_token: &str,
        now: i64,
    ) -> Result<(), AuthnError> {
        let sealed = crate::keys::kek::seal_with(
            &self.keys.secrets().token,
            ID_TOKEN_LABEL,
            id_token.as_bytes(),
        )?;
        storage::upstream::insert_session_token(&self.db, &session.id, upstream, &sealed, now)
            .await?;
        Ok(())
    }

    /// Takes (once) the upstream and its ID token of the session `session_id`, if it came
    /// from an upstream OpenID provider.
    pub async fn take_upstream_id_token(
        &self,
        session_id: &str,
    ) -> Result<Option<(String, String)>, AuthnError> {
        let Some((upstream, sealed)) =
            storage::upstream::take_session_token(&self.db, session_id).await?
        else {
            return Ok(None);
        };
        let plain =
            crate::keys::kek::open_with(&self.keys.secrets().token, ID_TOKEN_LABEL, &sealed)
                .and_then(|b| String::from_utf8(b).ok());
        Ok(plain.map(|t| (upstream, t)))
    }

    /// Stores a login going out to an upstream, bound to the browser's login-binding cookie
    /// value `binding`; returns the handle the upstream must echo (OIDC `state`, SAML
    /// RelayState). Only its hash is stored.
    pub async fn begin_upstream_login(
        &self,
        login: &UpstreamLogin,
        binding: &str,
        now: i64,
    ) -> Result<String, AuthnError> {
        let handle = crate::keys::random_token();
        storage::upstream::insert_login(
            &self.db,
            &storage::upstream::LoginRecord {
                id: crate::keys::hash_token(&handle),
                upstream: login.upstream.clone(),
                tx_id: login.tx_id.clone(),
                binding: crate::keys::hash_token(binding),
                nonce: login.nonce.clone(),
                pkce_verifier: login.pkce_verifier.clone(),
                request_id: login.request_id.clone(),
                created_at: now,
                expires_at: now + self.config.session.login_ttl,
            },
        )
        .await?;
        Ok(handle)
    }

    /// Takes the login behind `handle` once, only for the upstream it went to and only in
    /// the browser that started it. None for an unknown, replayed, expired or foreign one.
    pub async fn take_upstream_login(
        &self,
        upstream: &str,
        handle: &str,
        binding: &str,
        now: i64,
    ) -> Result<Option<UpstreamLogin>, AuthnError> {
        if handle.is_empty() || handle.len() > 128 || binding.is_empty() || binding.len() > 128 {
            return Ok(None);
        }
        let rec = storage::upstream::take_login(
            &self.db,
            &crate::keys::hash_token(handle),
            upstream,
            &crate::keys::hash_token(binding),
            now,
        )
        .await?;
        Ok(rec.map(|r| UpstreamLogin {
            upstream: r.upstream,
            tx_id: r.tx_id,
            nonce: r.nonce,
            pkce_verifier: r.pkce_verifier,
            request_id: r.request_id,
            created_at: r.created_at,
        }))
    }

    /// The one active person `id` stands for at `up`, storing the link on the first login.
    /// A refusal is audited and returned as `AuthnError::LinkRefused`.
    pub async fn resolve_upstream(
        &self,
        up: &Upstream,
        id: &Identity,
        now: i64,
    ) -> Result<Person, AuthnError> {
        match self.link(up, id, now).await? {
            Ok(p) => Ok(p),
            Err((refusal, person)) => {
                let mut detail = format!("reason={}", refusal.reason());
                if refusal == LinkRefusal::PinMismatch {
                    detail.push_str(&format!(" claims={}", up.pin_mismatches(id).join(",")));
                }
                if let Some(p) = person {
                    detail.push_str(&format!(" person={p}"));
                }
                storage::records::audit(
                    &self.db,
                    "upstream.refused",
                    &format!("upstream:{}", up.name),
                    &detail,
                    now,
                )
                .await?;
                Err(AuthnError::LinkRefused(refusal))
            }
        }
    }

    /// A federated login for transaction `tx`: resolves the person, then finishes the login
    /// as every method does (`finish_login`: the relying party's policy, a step-up proved by
    /// the session's own person, a new session that carries over only the same person's).
    pub async fn finish_upstream(
        &self,
        tx: &Transaction,
        up: &Upstream,
        id: &Identity,
        previous_cookie: Option<&str>,
        now: i64,
    ) -> Result<(String, Session), AuthnError> {
        let person = self.resolve_upstream(up, id, now).await?;
        let method = MethodUse::new(
            &format!("{}{}", super::policy::UPSTREAM_PREFIX, up.name),
            &up.level,
            now,
        );
        self.finish_login(tx, &person.id, method, previous_cookie, now)
            .await
    }

    /// Linking without the audit of a refusal: Err((why, the person concerned if any)).
    async fn link(
        &self,
        up: &Upstream,
        id: &Identity,
        now: i64,
    ) -> Result<Result<Person, (LinkRefusal, Option<String>)>, AuthnError> {
        if id.upstream != up.name || id.subject.is_empty() {
            return Ok(Err((LinkRefusal::Unknown, None)));
        }
        if !up.pin_mismatches(id).is_empty() {
            return Ok(Err((LinkRefusal::PinMismatch, None)));
        }
        let db = &self.db;
        if let Some(pid) = storage::upstream::linked_person(db, &up.name, &id.subject).await? {
            return Ok(match storage::persons::by_id(db, &pid).await? {
                Some(p) if p.active => {
                    storage::upstream::touch_link(db, &up.name, &id.subject, now).await?;
                    Ok(p)
                }
                Some(p) => Err((LinkRefusal::Deactivated, Some(p.id))),
                None => Err((LinkRefusal::Unknown, None)),
            });
        }
        let person = match find_by_rule(db, up, id).await? {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(other) = storage::upstream::link_of_person(db, &up.name, &person.id).await?
            && other != id.subject
        {
            return Ok(Err((LinkRefusal::AlreadyLinked, Some(person.id))));
        }
        match storage::upstream::insert_link(db, &up.name, &id.subject, &person.id, now).await {
            Ok(()) => {}
            // Two first logins at once: the stored link decides.
            Err(StorageError::Conflict(_)) => {
                let pid = storage::upstream::linked_person(db, &up.name, &id.subject).await?;
                if pid.as_deref() != Some(person.id.as_str()) {
                    return Ok(Err((LinkRefusal::AlreadyLinked, Some(person.id))));
                }
                return Ok(Ok(person));
            }
            Err(e) => return Err(e.into()),
        }
        storage::records::audit(
            db,
            "upstream.link",
            &format!("upstream:{}", up.name),
            &format!("person={} rule={}", person.id, up.link),
            now,
        )
        .await?;
        Ok(Ok(person))
    }
}

/// The one active person the upstream's rule finds for `id`.
async fn find_by_rule(
    db: &Db,
    up: &Upstream,
    id: &Identity,
) -> Result<Result<Person, (LinkRefusal, Option<String>)>, AuthnError> {
    let refuse = |r| Ok(Err((r, None)));
    if up.link.uses_email()
        && (id.claims.get("email_verified").map(String::as_str) != Some("true")
            || up.require_claims.is_empty())
    {
        return refuse(LinkRefusal::UnverifiedEmail);
    }
    let Some(value) = id.claims.get(&up.link.claim).map(|v| v.trim()) else {
        return refuse(LinkRefusal::Unknown);
    };
    if value.is_empty() {
        return refuse(LinkRefusal::Unknown);
    }
    let value = match up.link.field {
        PersonField::CivicNo => match CivicNo::parse(value) {
            Ok(c) => c.as_str().to_string(),
            Err(_) => return refuse(LinkRefusal::Unknown),
        },
        _ => value.to_string(),
    };
    let found = storage::persons::by_field(db, up.link.field.as_str(), &value, 20).await?;
    let (active, inactive): (Vec<Person>, Vec<Person>) = found.into_iter().partition(|p| p.active);
    match (active.len(), inactive.first()) {
        (0, Some(p)) => Ok(Err((LinkRefusal::Deactivated, Some(p.id.clone())))),
        (0, None) => refuse(LinkRefusal::Unknown),
        (1, _) => {
            let Some(p) = active.into_iter().next() else {
                return refuse(LinkRefusal::Unknown);
            };
            if up.link.uses_email() && p.protected_identity {
                return Ok(Err((LinkRefusal::Protected, Some(p.id))));
            }
            Ok(Ok(p))
        }
        _ => refuse(LinkRefusal::Ambiguous),
    }
}
