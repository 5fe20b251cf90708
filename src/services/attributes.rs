//! The attributes an SP may receive: the eduPerson / Skolfederation profile
//! (specs/skolfederation.md §4), with `urn:oid:` names, NameFormat uri and FriendlyName.
//! Values come from the directory; nothing is released that the SP's policy does not name.

use crate::directory::PersonDetails;
use crate::directory::release::Reveals;
use crate::services::saml_sp::Sp;
use crate::xmlsec::xml::esc;
use std::collections::BTreeMap;

const URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
const BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";

/// FriendlyName and SAML Name. An empty name means the OID is not verified (the profile PDF
/// could not be read): it must come from `[saml.attribute_names]`, else the attribute is
/// sent with its FriendlyName as a basic-format name rather than under a guessed OID.
pub const CATALOGUE: [(&str, &str); 14] = [
    ("eduPersonPrincipalName", "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"),
    ("eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"),
    (
        "eduPersonScopedAffiliation",
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
    ),
    ("eduPersonEntitlement", "urn:oid:1.3.6.1.4.1.5923.1.1.1.7"),
    ("eduPersonAssurance", "urn:oid:1.3.6.1.4.1.5923.1.1.1.11"),
    ("givenName", "urn:oid:2.5.4.42"),
    ("sn", "urn:oid:2.5.4.4"),
    ("displayName", "urn:oid:2.16.840.1.113730.3.1.241"),
    ("mail", "urn:oid:0.9.2342.19200300.100.1.3"),
    ("norEduPersonNIN", "urn:oid:1.3.6.1.4.1.2428.90.1.5"),
    ("schacHomeOrganization", "urn:oid:1.3.6.1.4.1.25178.1.2.9"),
    ("sisSchoolUnitCode", ""),
    ("sisSchoolGrade", "urn:oid:1.2.752.194.10.2.2"),
    ("sisLegalGuardianFor", "urn:oid:1.2.752.194.10.2.1"),
];

/// The catalogue's FriendlyName for a FriendlyName or a built-in Name.
pub fn canonical(name: &str) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|(f, oid)| *f == name || (!oid.is_empty() && *oid == name))
        .map(|(f, _)| *f)
}

/// The Name and NameFormat an attribute is sent with.
fn name_of<'a>(
    friendly: &'a str,
    overrides: &'a BTreeMap<String, String>,
) -> (&'a str, &'static str) {
    if let Some(n) = overrides.get(friendly) {
        return (n, if n.starts_with("urn:") { URI } else { BASIC });
    }
    match CATALOGUE.iter().find(|(f, _)| *f == friendly) {
        Some((_, oid)) if !oid.is_empty() => (oid, URI),
        _ => (friendly, BASIC),
    }
}

/// What an attribute of the catalogue reveals (the admin UI's grouping of a release list).
pub fn reveals(friendly: &str) -> Reveals {
    match friendly {
        "mail" => Reveals::Contact,
        "eduPersonEntitlement" | "sisSchoolUnitCode" | "sisSchoolGrade" | "sisLegalGuardianFor" => {
            Reveals::School
        }
        "norEduPersonNIN" => Reveals::CivicNumber,
        _ => Reveals::Identity,
    }
}

/// The attribute whose value is the login's level (the session's acr), not the person's.
pub const ASSURANCE: &str = "eduPersonAssurance";

/// Everything needed to compute attribute values.
pub struct Subject<'a> {
    pub details: &'a PersonDetails,
    /// The session's level (`Session::acr`); None outside a login (the admin preview), when
    /// `eduPersonAssurance` has no value.
    pub acr: Option<&'a str>,
    pub scope: &'a str,
}

/// What `sp` receives about the subject: the attributes its policy releases (narrowed by
/// its metadata), in order, each with its values; attributes without a value are left out.
/// The SSO answer and the admin preview both call this.
pub fn release(sp: &Sp, s: &Subject) -> Vec<(&'static str, Vec<String>)> {
    sp.released(canonical)
        .into_iter()
        .map(|a| (a, values(a, s)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The values of one attribute (empty: not sent).
pub fn values(friendly: &str, s: &Subject) -> Vec<String> {
    let p = &s.details.person;
    let derived = &s.details.derived;
    let affs = &derived.affiliations;
    let one = |v: &str| {
        if v.is_empty() {
            vec![]
        } else {
            vec![v.to_string()]
        }
    };
    match friendly {
        "eduPersonPrincipalName" => one(&p.eppn),
        "eduPersonAffiliation" => affs.iter().map(|a| a.to_string()).collect(),
        "eduPersonScopedAffiliation" => affs.iter().map(|a| format!("{a}@{}", s.scope)).collect(),
        ASSURANCE => s.acr.map(one).unwrap_or_default(),
        "givenName" => one(&p.given_name),
        "sn" => one(&p.family_name),
        "displayName" => one(&p.display_name()),
        "mail" => p.email.as_deref().map(one).unwrap_or_default(),
        "norEduPersonNIN" => match &p.civic_no {
            Some(c) if !p.protected_identity => one(c.as_str()),
            _ => vec![],
        },
        "schacHomeOrganization" => one(s.scope),
        "eduPersonEntitlement" => derived.entitlements.clone(),
        "sisSchoolUnitCode" => derived.school_unit_codes.clone(),
        "sisSchoolGrade" => derived.school_grades.clone(),
        // Empty for a protected identity on either side (roles::derive).
        "sisLegalGuardianFor" => derived.guardian_for.clone(),
        _ => vec![],
    }
}

/// The AttributeStatement for the released attributes, or "" when nothing is released
/// (an empty AttributeStatement is invalid).
pub fn statement(
    released: &[(&'static str, Vec<String>)],
    overrides: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    for (friendly, vals) in released {
        let (name, format) = name_of(friendly, overrides);
        out.push_str(&format!(
            r#"<saml:Attribute Name="{}" NameFormat="{format}" FriendlyName="{}">"#,
            esc(name),
            esc(friendly)
        ));
        for v in vals {
            out.push_str(r#"<saml:AttributeValue xsi:type="xs:string">"#);
            out.push_str(&esc(v));
            out.push_str("</saml:AttributeValue>");
        }
        out.push_str("</saml:Attribute>");
    }
    if out.is_empty() {
        out
    } else {
        format!("<saml:AttributeStatement>{out}</saml:AttributeStatement>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical("mail"), Some("mail"));
        assert_eq!(canonical("urn:oid:2.5.4.42"), Some("givenName"));
        assert_eq!(canonical("sisSchoolUnitCode"), Some("sisSchoolUnitCode"));
        assert_eq!(canonical(""), None);
        assert_eq!(canonical("role"), None);
    }

    #[test]
    fn every_attribute_has_a_group_and_only_the_civic_number_is_sensitive() {
        for (f, _) in CATALOGUE {
            assert_eq!(reveals(f).sensitive(), f == "norEduPersonNIN", "{f}");
        }
        assert_eq!(reveals("mail"), Reveals::Contact);
        assert_eq!(reveals("sisSchoolGrade"), Reveals::School);
    }

    #[test]
    fn unverified_oid_is_not_guessed() {
        let none = BTreeMap::new();
        assert_eq!(
            name_of("sisSchoolUnitCode", &none),
            ("sisSchoolUnitCode", BASIC)
        );
        let mut cfg = BTreeMap::new();
        cfg.insert("sisSchoolUnitCode".to_string(), "urn:oid:1.2.3".to_string());
        assert_eq!(name_of("sisSchoolUnitCode", &cfg), ("urn:oid:1.2.3", URI));
        assert_eq!(name_of("mail", &none).1, URI);
    }
}
