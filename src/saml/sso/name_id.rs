//! NameIDs: which format an SP gets, the person's value in it, and the SessionIndex.

use crate::authn::Session;
use crate::saml::Idp;
use crate::saml::sp::{self, Sp};
use base64::Engine;

/// The NameID rule: the request's format (NameIDPolicy), else one the SP's metadata lists,
/// else the configured default, else transient. Among several formats in the metadata the
/// configured one wins (the administrator's choice among what the SP accepts). Formats other
/// than transient and persistent only as the SP's configuration allows. None when the SP may
/// not have the format.
pub(super) fn name_id_rule(sp: &Sp, requested: Option<&str>) -> Option<sp::NameIdRule> {
    let configured = sp.policy.name_id.clone();
    let pairwise = |f: &str| sp::NameIdRule {
        format: f.to_string(),
        source: None,
    };
    let allowed = |f: &str| {
        f == sp::TRANSIENT
            || f == sp::PERSISTENT
            || configured.as_ref().is_some_and(|c| c.format == f)
    };
    let listed = &sp.meta.name_id_formats;
    let from_metadata = configured
        .as_ref()
        .filter(|c| listed.contains(&c.format))
        .map(|c| c.format.clone())
        .or_else(|| listed.iter().find(|f| allowed(f)).cloned());
    let wanted = requested.map(String::from).or(from_metadata);
    match wanted.as_deref() {
        None => Some(configured.unwrap_or_else(|| pairwise(sp::TRANSIENT))),
        Some(f) if f == sp::TRANSIENT || f == sp::PERSISTENT => Some(pairwise(f)),
        Some(f) => configured.filter(|c| c.format == f),
    }
}

/// The person's value for a NameID rule.
pub(super) fn name_id_value(
    idp: &Idp,
    rule: &sp::NameIdRule,
    sp: &Sp,
    details: &crate::directory::PersonDetails,
    session: &Session,
) -> Option<String> {
    let p = &details.person;
    match rule.source.as_deref() {
        Some("mail") => p.email.clone(),
        Some("eppn") => Some(p.eppn.clone()),
        Some("username") => Some(p.username.clone()),
        _ if rule.format == sp::PERSISTENT => {
            // Pairwise: stable per (SP, person), opaque, not linkable across SPs.
            Some(mac(
                idp,
                &format!("saml-persistent|{}|{}", sp.entity_id(), p.id),
            ))
        }
        // Transient: opaque and new with every SSO session (and per SP), so it is stable
        // for single logout within the session and links nothing beyond it.
        _ => Some(mac(
            idp,
            &format!("saml-transient|{}|{}", sp.entity_id(), session.sid),
        )),
    }
}

fn mac(idp: &Idp, input: &str) -> String {
    let tag = ring::hmac::sign(&idp.keys.secrets().pairwise, input.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..24])
}

/// A SessionIndex per (session, SP), so SPs cannot correlate sessions through it.
pub(super) fn session_index(idp: &Idp, session: &Session, sp: &Sp) -> String {
    let tag = ring::hmac::sign(
        &idp.keys.secrets().pairwise,
        format!("saml-session-index|{}|{}", sp.entity_id(), session.sid).as_bytes(),
    );
    format!("_{}", hex(&tag.as_ref()[..16]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
