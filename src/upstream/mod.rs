//! Upstream identity providers: the protocol clients of federation login. An upstream OpenID
//! provider (`oidc`) or SAML IdP (`saml`, by its own helper) proves who a person is and hands
//! back an `Identity`; `authn::upstream` maps that to exactly one person of the directory.
//! This module knows protocols only: no HTTP server, no database (it may use `keys`,
//! `config` and `clock`).

pub mod oidc;
/// The upstream SAML IdP client: Portvakt as a SAML SP.
pub mod saml;

use std::collections::BTreeMap;
use std::fmt;

/// What an upstream proved, protocol-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The upstream's configured NAME.
    pub upstream: String,
    /// Stable subject (OIDC iss+sub; SAML persistent NameID or subject-id).
    pub subject: String,
    /// Flattened claims: email, email_verified ("true"/"false"), tid, hd, eppn, ...
    pub claims: BTreeMap<String, String>,
    /// acr / AuthnContextClassRef asserted upstream (informational).
    pub level: Option<String>,
}

/// A fresh login the relying party demands (OIDC `prompt=login` or `max_age`, SAML
/// ForceAuthn), passed on to the upstream: its session there must not answer for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Authenticate again even with a session at the upstream.
    pub force: bool,
    /// The relying party's `max_age`, seconds (passed on to an OpenID provider).
    pub max_age: Option<i64>,
    /// When the login transaction began: a forced login is no older.
    pub since: i64,
}

impl Freshness {
    /// Whether the upstream must authenticate the person again.
    pub fn required(&self) -> bool {
        self.force || self.max_age.is_some()
    }

    /// The oldest authentication time acceptable at `now` (None: any).
    pub fn oldest(&self, now: i64) -> Option<i64> {
        let forced = self.force.then_some(self.since);
        let aged = self.max_age.map(|m| now - m);
        forced.max(aged)
    }
}

/// The person field a linking rule matches an upstream claim against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonField {
    Username,
    Email,
    Eppn,
    CivicNo,
    ExternalId,
}

impl PersonField {
    pub const ALL: [PersonField; 5] = [
        Self::Username,
        Self::Email,
        Self::Eppn,
        Self::CivicNo,
        Self::ExternalId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
            Self::Eppn => "eppn",
            Self::CivicNo => "civic_no",
            Self::ExternalId => "external_id",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// `UPSTREAM_CLAIM=PERSON_FIELD`: the first login through an upstream links the person whose
/// `field` equals the upstream's `claim` (exactly one active person, else refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRule {
    pub claim: String,
    pub field: PersonField,
}

impl LinkRule {
    pub fn parse(s: &str) -> Result<Self, UpstreamError> {
        let (claim, field) = s
            .split_once('=')
            .ok_or_else(|| UpstreamError::Invalid(format!("link rule {s:?}: use CLAIM=FIELD")))?;
        let claim = claim.trim();
        if !is_claim_name(claim) {
            return Err(UpstreamError::Invalid(format!(
                "link rule {s:?}: the claim name is empty or has odd characters"
            )));
        }
        let field = PersonField::parse(field.trim()).ok_or_else(|| {
            UpstreamError::Invalid(format!(
                "link rule {s:?}: FIELD must be one of username, email, eppn, civic_no, external_id"
            ))
        })?;
        Ok(Self {
            claim: claim.to_string(),
            field,
        })
    }

    /// Whether the rule links on an email address (then the upstream must say it is
    /// verified and be pinned to a tenant or domain).
    pub fn uses_email(&self) -> bool {
        self.field == PersonField::Email || self.claim.eq_ignore_ascii_case("email")
    }
}

impl fmt::Display for LinkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.claim, self.field.as_str())
    }
}

/// `CLAIM=VALUE`: a pin checked on every login through the upstream (`tid`, `hd`, ...).
pub fn parse_require_claim(s: &str) -> Result<(String, String), UpstreamError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| UpstreamError::Invalid(format!("required claim {s:?}: use CLAIM=VALUE")))?;
    let k = k.trim();
    if !is_claim_name(k) || v.is_empty() {
        return Err(UpstreamError::Invalid(format!(
            "required claim {s:?}: both the claim name and the value are needed"
        )));
    }
    Ok((k.to_string(), v.to_string()))
}

fn is_claim_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/#".contains(c))
}

/// An upstream name: the path segment of `/upstream/NAME/…` and the `upstream:NAME` method.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// How Portvakt talks to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An OpenID provider found by discovery at `issuer`. The client secret is stored
    /// sealed, apart from this (`authn::Authn::upstream_secret`).
    Oidc {
        issuer: String,
        client_id: String,
        scopes: Vec<String>,
    },
    /// A SAML IdP from metadata: a URL (`metadata_url`) and/or the document itself (the
    /// file's contents, or the last fetched copy).
    Saml {
        metadata_url: Option<String>,
        metadata: Option<String>,
    },
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Oidc { .. } => "oidc",
            Kind::Saml { .. } => "saml",
        }
    }
}

/// A registered upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub kind: Kind,
    /// Shown on the login page ("Logga in med kommunens konto").
    pub display_name: String,
    /// A logo URL shown beside the display name.
    pub logo: Option<String>,
    /// The level of assurance (LoA URI) a login through it reaches.
    pub level: String,
    pub link: LinkRule,
    /// Pins checked on every login: (claim, value).
    pub require_claims: Vec<(String, String)>,
    pub enabled: bool,
}

impl Upstream {
    /// What a SAML IDPEntry's ProviderID names it by: the OIDC issuer, or the SAML IdP's
    /// entityID (from its stored metadata; None while only a metadata URL is known).
    pub fn provider_id(&self) -> Option<String> {
        match &self.kind {
            Kind::Oidc { issuer, .. } => Some(issuer.clone()),
            Kind::Saml { metadata, .. } => {
                let root = crate::xmlsec::xml::parse(metadata.as_deref()?).ok()?;
                root.attr("entityID").map(String::from)
            }
        }
    }

    /// The pins this identity fails, by claim name.
    pub fn pin_mismatches(&self, id: &Identity) -> Vec<&str> {
        self.require_claims
            .iter()
            .filter(|(k, v)| id.claims.get(k) != Some(v))
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

/// Scopes asked of an OIDC upstream unless configured.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Bad configuration input (CLI, config file): one line saying what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The upstream could not be reached or answered nonsense (timeouts included).
    #[error("upstream unreachable or broken: {0}")]
    Unavailable(String),
    /// The upstream's answer failed validation (signature, issuer, audience, nonce ...).
    #[error("upstream answer refused: {0}")]
    Refused(String),
    /// The person cancelled or the upstream refused the login (OAuth `error=access_denied`).
    #[error("the upstream refused the login or the person cancelled")]
    Denied,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_rules_parse_and_print() {
        let r = LinkRule::parse("email=email").unwrap();
        assert_eq!(r.field, PersonField::Email);
        assert!(r.uses_email());
        assert_eq!(r.to_string(), "email=email");
        let r = LinkRule::parse("upn=eppn").unwrap();
        assert!(!r.uses_email());
        assert!(LinkRule::parse("email").is_err());
        assert!(LinkRule::parse("=email").is_err());
        assert!(LinkRule::parse("email=phone").is_err());
        assert!(LinkRule::parse("a b=email").is_err());
    }

    #[test]
    fn require_claims_and_pins() {
        assert_eq!(
            parse_require_claim("tid=abc=").unwrap(),
            ("tid".into(), "abc=".into())
        );
        assert!(parse_require_claim("tid=").is_err());
        assert!(parse_require_claim("tid").is_err());
        let up = Upstream {
            name: "entra".into(),
            kind: Kind::Saml {
                metadata_url: None,
                metadata: None,
            },
            display_name: "E".into(),
            logo: None,
            level: "x".into(),
            link: LinkRule::parse("email=email").unwrap(),
            require_claims: vec![("tid".into(), "t1".into())],
            enabled: true,
        };
        let mut id = Identity {
            upstream: "entra".into(),
            subject: "s".into(),
            claims: BTreeMap::new(),
            level: None,
        };
        assert_eq!(up.pin_mismatches(&id), vec!["tid"]);
        id.claims.insert("tid".into(), "t2".into());
        assert_eq!(up.pin_mismatches(&id), vec!["tid"]);
        id.claims.insert("tid".into(), "t1".into());
        assert!(up.pin_mismatches(&id).is_empty());
    }

    #[test]
    fn names() {
        assert!(valid_name("kommun-entra_1"));
        assert!(!valid_name("Kommun"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn freshness_names_the_oldest_acceptable_login() {
        let none = Freshness::default();
        assert!(!none.required());
        assert_eq!(none.oldest(1000), None);
        let forced = Freshness {
            force: true,
            since: 900,
            ..Default::default()
        };
        assert_eq!(forced.oldest(1000), Some(900));
        let aged = Freshness {
            max_age: Some(60),
            since: 900,
            ..Default::default()
        };
        assert!(aged.required());
        assert_eq!(aged.oldest(1000), Some(940));
        let both = Freshness {
            force: true,
            max_age: Some(600),
            since: 900,
        };
        assert_eq!(both.oldest(1000), Some(900));
    }
}
