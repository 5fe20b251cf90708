//! Release policy: which claims a relying party receives about a person.
//!
//! Deny by default: a claim is released only when (1) a granted scope asks for it and
//! (2) the relying party's release list names it. The civic number is never released for a
//! person with a protected identity (skyddad identitet), whatever the list says.

use super::{DirectoryError, Person, PersonDetails};
use crate::storage::Db;
use serde_json::{Map, Value, json};

/// The claim carrying the personnummer, as named by the Swedish OIDC profile.
pub const CIVIC_NO_CLAIM: &str = "https://id.oidc.se/claim/personalIdentityNumber";
pub const CIVIC_NO_SCOPE: &str = "https://id.oidc.se/scope/naturalPersonNumber";

/// The claims each scope asks for (OpenID Connect Core §5.4, plus our `school` scope, whose
/// eduPerson claims are named as in the REFEDS eduPerson OIDC claim names).
pub fn claims_for_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &["given_name", "family_name", "name"],
        "email" => &["email", "email_verified"],
        "school" => &[
            "roles",
            "school_unit_codes",
            "groups",
            "school_grades",
            "eduperson_affiliation",
            "eduperson_entitlement",
            "guardian_of",
        ],
        CIVIC_NO_SCOPE => &[CIVIC_NO_CLAIM],
        _ => &[],
    }
}

/// Every claim name a release list may contain.
pub fn known_claims() -> Vec<&'static str> {
    ["profile", "email", "school", CIVIC_NO_SCOPE]
        .iter()
        .flat_map(|s| claims_for_scope(s).iter().copied())
        .collect()
}

/// The claims of the profile, email and school scopes: what an ordinary school service is
/// typically allowed (the demo clients' release list). Never the personnummer.
pub fn ordinary_claims() -> Vec<String> {
    ["profile", "email", "school"]
        .iter()
        .flat_map(|s| claims_for_scope(s).iter().map(|c| c.to_string()))
        .collect()
}

/// What a released claim or attribute reveals about a person: how the admin UI groups a
/// relying party's release list. The civic number is a group of its own: it is sensitive,
/// and never released for a protected identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveals {
    Identity,
    School,
    Contact,
    CivicNumber,
}

impl Reveals {
    pub const ALL: [Reveals; 4] = [
        Reveals::Identity,
        Reveals::School,
        Reveals::Contact,
        Reveals::CivicNumber,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reveals::Identity => "identity",
            Reveals::School => "school",
            Reveals::Contact => "contact",
            Reveals::CivicNumber => "civic_number",
        }
    }

    pub fn sensitive(self) -> bool {
        self == Reveals::CivicNumber
    }
}

/// What a claim of `known_claims` reveals.
pub fn claim_reveals(claim: &str) -> Reveals {
    match claim {
        "email" | "email_verified" => Reveals::Contact,
        "school_unit_codes"
        | "groups"
        | "school_grades"
        | "eduperson_entitlement"
        | "guardian_of" => Reveals::School,
        CIVIC_NO_CLAIM => Reveals::CivicNumber,
        _ => Reveals::Identity,
    }
}

/// The scope that asks for a claim of `known_claims`.
pub fn scope_of(claim: &str) -> Option<&'static str> {
    CLAIM_SCOPES
        .into_iter()
        .find(|s| claims_for_scope(s).contains(&claim))
}

/// The scopes Portvakt understands (besides `openid` and `offline_access`).
pub const CLAIM_SCOPES: [&str; 4] = ["profile", "email", "school", CIVIC_NO_SCOPE];

/// What `person` releases now to a relying party whose release list is `allowed`, for
/// `scopes`: the person's details as of today, then `release`. The ID token and userinfo
/// (`oidc::tokens`) and the admin preview both call this.
pub async fn released_now(
    db: &Db,
    cfg: &crate::config::DirectoryConfig,
    person: Person,
    scopes: &[String],
    allowed: &[String],
    now: i64,
) -> Result<Map<String, Value>, DirectoryError> {
    let details = super::details(db, cfg, person, super::roles::day_of(now)).await?;
    Ok(release(&details, scopes, allowed))
}

/// `released_now` for a person by id, read with their facts in one statement (the token
/// path); None when the person is unknown or not active.
pub async fn released_now_by_id(
    db: &Db,
    cfg: &crate::config::DirectoryConfig,
    person_id: &str,
    scopes: &[String],
    allowed: &[String],
    now: i64,
) -> Result<Option<Map<String, Value>>, DirectoryError> {
    let details = super::details_by_id(db, cfg, person_id, super::roles::day_of(now)).await?;
    Ok(details
        .filter(|d| d.person.active)
        .map(|d| release(&d, scopes, allowed)))
}

/// Builds the released claims for `scopes` under the relying party's `allowed` list.
pub fn release(
    details: &PersonDetails,
    scopes: &[String],
    allowed: &[String],
) -> Map<String, Value> {
    let p = &details.person;
    let mut out = Map::new();
    for scope in scopes {
        for &claim in claims_for_scope(scope) {
            if !allowed.iter().any(|a| a == claim) {
                continue;
            }
            let value = match claim {
                "given_name" => json!(p.given_name),
                "family_name" => json!(p.family_name),
                "name" => json!(p.display_name()),
                "email" => match &p.email {
                    Some(e) => json!(e),
                    None => continue,
                },
                // Addresses come from the register or an admin, never self-asserted.
                "email_verified" if p.email.is_some() => json!(true),
                "roles" => {
                    let mut roles: Vec<String> = details
                        .roles
                        .iter()
                        .map(|r| r.kind.as_str().to_string())
                        .collect();
                    roles.sort();
                    roles.dedup();
                    json!(roles)
                }
                "school_unit_codes" => json!(details.derived.school_unit_codes),
                "groups" => json!(details.derived.groups),
                "school_grades" if !details.derived.school_grades.is_empty() => {
                    json!(details.derived.school_grades)
                }
                "eduperson_affiliation" => json!(details.derived.affiliations),
                "eduperson_entitlement" if !details.derived.entitlements.is_empty() => {
                    json!(details.derived.entitlements)
                }
                // Empty for a protected identity on either side (roles::derive).
                "guardian_of" if !details.derived.guardian_for.is_empty() => {
                    json!(details.derived.guardian_for)
                }
                CIVIC_NO_CLAIM => match &p.civic_no {
                    Some(c) if !p.protected_identity => json!(c.as_str()),
                    _ => continue,
                },
                _ => continue,
            };
            out.insert(claim.to_string(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{CivicNo, Person, Role, RoleKind};

    fn details(protected: bool) -> PersonDetails {
        PersonDetails {
            person: Person {
                id: "p1".into(),
                username: "anna".into(),
                eppn: "x@y".into(),
                given_name: "Anna".into(),
                family_name: "Berg".into(),
                email: Some("anna@example.se".into()),
                civic_no: Some(CivicNo::parse("19121212-1212").unwrap()),
                protected_identity: protected,
                active: true,
                source: "local".into(),
                external_id: None,
                deactivated_at: None,
            },
            roles: vec![Role {
                kind: RoleKind::Student,
                school_unit_code: Some("EKS".into()),
            }],
            groups: vec![],
            facts: Default::default(),
            derived: Default::default(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ordinary_claims_never_include_the_personnummer() {
        let c = ordinary_claims();
        assert!(c.contains(&"roles".to_string()) && c.contains(&"email".to_string()));
        assert!(!c.iter().any(|x| x == CIVIC_NO_CLAIM));
    }

    #[test]
    fn every_claim_has_one_group_and_only_the_civic_number_is_sensitive() {
        for c in known_claims() {
            let g = claim_reveals(c);
            assert_eq!(g.sensitive(), c == CIVIC_NO_CLAIM, "{c}");
            assert!(scope_of(c).is_some(), "{c}");
        }
        assert_eq!(claim_reveals("email"), Reveals::Contact);
        assert_eq!(claim_reveals("groups"), Reveals::School);
        assert_eq!(claim_reveals("given_name"), Reveals::Identity);
    }

    #[test]
    fn deny_by_default() {
        let c = release(&details(false), &s(&["profile", "email", "school"]), &[]);
        assert!(c.is_empty());
    }

    #[test]
    fn scope_and_policy_both_needed() {
        let c = release(
            &details(false),
            &s(&["profile"]),
            &s(&["given_name", "email"]),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c["given_name"], "Anna");
    }

    #[test]
    fn civic_number_never_for_protected_identity() {
        let allowed = s(&[CIVIC_NO_CLAIM]);
        let scopes = s(&[CIVIC_NO_SCOPE]);
        assert_eq!(
            release(&details(false), &scopes, &allowed)[CIVIC_NO_CLAIM],
            "191212121212"
        );
        assert!(release(&details(true), &scopes, &allowed).is_empty());
    }
}
