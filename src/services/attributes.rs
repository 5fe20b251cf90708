//! The attributes an SP may receive: the eduPerson / Skolfederation profile
//! (specs/skolfederation.md §4), with `urn:oid:` names, NameFormat uri and FriendlyName.
//! Values come from the directory; nothing is released that the SP's policy does not name.

use crate::authn::Session;
use crate::directory::PersonDetails;
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

/// Everything needed to compute attribute values.
pub struct Subject<'a> {
    pub details: &'a PersonDetails,
    pub session: &'a Session,
    pub scope: &'a str,
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
        "eduPersonAssurance" => one(&s.session.acr),
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
pub fn statement(released: &[&str], s: &Subject, overrides: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for friendly in released {
        let vals = values(friendly, s);
        if vals.is_empty() {
            continue;
        }
        let (name, format) = name_of(friendly, overrides);
        out.push_str(&format!(
            r#"<saml:Attribute Name="{}" NameFormat="{format}" FriendlyName="{}">"#,
            esc(name),
            esc(friendly)
        ));
        for v in vals {
            out.push_str(r#"<saml:AttributeValue xsi:type="xs:string">"#);
            out.push_str(&esc(&v));
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
