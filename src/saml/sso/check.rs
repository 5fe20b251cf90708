//! Reading and checking an inbound message: decoding the binding, the signature rules, and
//! the AuthnRequest's own checks.

use super::name_id::name_id_rule;
use super::{Binding, Checked, Fatal, Inbound, OwnedInbound, Pending};
use crate::authn::{Requirement, acr};
use crate::saml::response::{self, Status};
use crate::saml::sp::{self, Sp};
use crate::saml::xml::{self, Element, SAML, SAMLP};
use crate::saml::{Idp, dsig};
use crate::web::paths;
use base64::{Engine, engine::general_purpose::STANDARD};
use std::io::Read;
use std::sync::Arc;

/// Decodes a binding's message: base64 (and raw DEFLATE for Redirect), bounded before and
/// after inflating, UTF-8, no DOCTYPE.
pub fn decode(binding: Binding, message: &str, max: usize) -> Result<String, Fatal> {
    if message.len() > max.saturating_mul(4) / 3 + 4 {
        return Err(Fatal("saml.too_large"));
    }
    let compact: String = message
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let raw = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| Fatal("saml.malformed"))?;
    let bytes = match binding {
        Binding::Post => raw,
        Binding::Redirect => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(raw.as_slice())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| Fatal("saml.malformed"))?;
            out
        }
    };
    if bytes.len() > max {
        return Err(Fatal("saml.too_large"));
    }
    let text = String::from_utf8(bytes).map_err(|_| Fatal("saml.malformed"))?;
    if text.to_ascii_uppercase().contains("<!DOCTYPE") {
        return Err(Fatal("saml.malformed"));
    }
    Ok(text)
}

/// Reads a message whose signature rules depend on its issuer: verifies the binding's
/// signature when there is one (required when `must_sign`), and returns the element to read:
/// for a POST-signed message only the signed, reduced document.
pub fn verified_root(
    inbound: &Inbound,
    xml_text: &str,
    certs: &[Vec<u8>],
    must_sign: bool,
) -> Result<(Element, bool), Fatal> {
    match (inbound.binding, inbound.query) {
        (Binding::Redirect, Some(query)) if query.has("Signature") => {
            dsig::verify_redirect(query, certs).map_err(sig_fatal)?;
            let root = xml::parse(xml_text).map_err(|_| Fatal("saml.malformed"))?;
            Ok((root, true))
        }
        (Binding::Post, _) if xml_text.contains("Signature") => {
            let root = xml::parse(xml_text).map_err(|_| Fatal("saml.malformed"))?;
            let mut sigs = Vec::new();
            root.descendants(xml::DS, "Signature", &mut sigs);
            if sigs.is_empty() {
                if must_sign {
                    return Err(Fatal("saml.bad_signature"));
                }
                return Ok((root, false));
            }
            // Only a signature of the one expected shape reaches libxmlsec1.
            dsig::precheck(&root).map_err(sig_fatal)?;
            let reduced = dsig::verify_and_reduce(xml_text, certs).map_err(sig_fatal)?;
            let root = xml::parse(&reduced).map_err(|_| Fatal("saml.bad_signature"))?;
            Ok((root, true))
        }
        _ if must_sign => Err(Fatal("saml.bad_signature")),
        _ => {
            let root = xml::parse(xml_text).map_err(|_| Fatal("saml.malformed"))?;
            Ok((root, false))
        }
    }
}

/// Whether `verified_root` will check a signature with libxmlsec1 for this message.
fn carries_signature(inbound: &Inbound, xml_text: &str) -> bool {
    match (inbound.binding, inbound.query) {
        (Binding::Redirect, Some(query)) => query.has("Signature"),
        (Binding::Post, _) => xml_text.contains("Signature"),
        (Binding::Redirect, None) => false,
    }
}

fn sig_fatal(e: dsig::DsigError) -> Fatal {
    match e {
        dsig::DsigError::Algorithm(_) => Fatal("saml.weak_algorithm"),
        _ => Fatal("saml.bad_signature"),
    }
}

/// The issuer named in a message (unverified: used only to find the SP and its keys).
pub fn issuer_of(xml_text: &str) -> Result<String, Fatal> {
    let root = xml::parse(xml_text).map_err(|_| Fatal("saml.malformed"))?;
    root.child(SAML, "Issuer")
        .map(|i| i.trimmed_text().to_string())
        .filter(|i| !i.is_empty())
        .ok_or(Fatal("saml.malformed"))
}

/// Checks an AuthnRequest. `Err(Fatal)` means an error page and no response to anyone.
pub async fn check(
    idp: &Idp,
    inbound: &Inbound<'_>,
    now: i64,
) -> Result<(Arc<Sp>, Checked), Fatal> {
    let cfg = &idp.config;
    if inbound.relay_state.is_some_and(|r| r.len() > 1024) {
        return Err(Fatal("saml.too_large"));
    }
    let text = decode(inbound.binding, inbound.message, cfg.saml.max_message_bytes)?;
    let issuer = issuer_of(&text)?;
    let sp = match idp.sp(&issuer, now).await {
        Ok(Some(sp)) => sp,
        Ok(None) => return Err(Fatal("saml.unknown_sp")),
        Err(e) => return Err(Fatal::internal("loading SP failed", &e)),
    };
    if sp.expired(now) {
        return Err(Fatal("saml.metadata_expired"));
    }
    // A disabled SP gets nothing, not even an error Response: the browser gets a page.
    if sp.disabled {
        return Err(Fatal(super::SP_DISABLED));
    }
    let certs = sp.meta.signing_certs.clone();
    let must_sign = sp.requires_signed_requests();
    // libxmlsec1 is CPU work: off the async threads, a bounded number at once. A request
    // without a signature is only parsed (its size is bounded above), so it never waits for
    // a verification slot nor is refused as busy: under load it was (issue 16's benchmark,
    // c = 32).
    let (root, signed) = if carries_signature(inbound, &text) {
        let owned = OwnedInbound {
            binding: inbound.binding,
            query: inbound.query.cloned(),
        };
        let text2 = text.clone();
        idp.verifications()
            .run(move || verified_root(&owned.view(), &text2, &certs, must_sign))
            .await
            .map_err(|_| Fatal("saml.busy"))??
    } else {
        verified_root(inbound, &text, &certs, must_sign)?
    };
    if !root.is(SAMLP, "AuthnRequest") {
        return Err(Fatal("saml.malformed"));
    }
    // After verification the issuer is read again from what was signed.
    let signed_issuer = root.child(SAML, "Issuer").map(|i| i.trimmed_text());
    if signed_issuer != Some(issuer.as_str()) {
        return Err(Fatal("saml.bad_signature"));
    }
    let acs_url = root.attr("AssertionConsumerServiceURL");
    let acs_index = root
        .attr("AssertionConsumerServiceIndex")
        .map(|i| i.parse::<u32>().map_err(|_| Fatal("saml.malformed")))
        .transpose()?;
    if acs_url.is_some() && acs_index.is_some() {
        return Err(Fatal("saml.malformed"));
    }
    if let Some(b) = root.attr("ProtocolBinding")
        && b != sp::POST
    {
        // We answer only over HTTP-POST; an ACS for another binding is not ours to use.
        return Err(Fatal("saml.bad_acs"));
    }
    let acs = sp
        .acs(acs_url, acs_index)
        .ok_or(Fatal("saml.bad_acs"))?
        .location
        .clone();
    let request_id = root.attr("ID").map(String::from);
    let passive = root
        .attr("IsPassive")
        .is_some_and(|v| v == "true" || v == "1");
    let force = root
        .attr("ForceAuthn")
        .is_some_and(|v| v == "true" || v == "1");
    let name_id_format = root
        .child(SAMLP, "NameIDPolicy")
        .and_then(|p| p.attr("Format"))
        .filter(|f| *f != sp::UNSPECIFIED)
        .map(String::from);
    let mut pending = Pending {
        sp: sp.entity_id().to_string(),
        acs,
        request_id: request_id.clone(),
        relay_state: inbound.relay_state.map(String::from),
        requirement: Requirement {
            force,
            ..Default::default()
        }
        .with_policy(&sp.policy.login),
        passive,
        name_id_format,
        idp_hint: None,
    };
    let refuse = |p: Pending, s: Status| Ok((sp.clone(), Err((p, s))));

    if root.attr("Version") != Some("2.0") {
        // VersionMismatch is a top-level status code (SAML Core §3.2.2.2).
        let status = Status {
            code: response::VERSION_MISMATCH,
            sub: None,
            message: Some("SAML 2.0 only"),
        };
        return refuse(pending, status);
    }
    let Some(id) = request_id.filter(|i| !i.is_empty() && i.len() <= 256) else {
        return refuse(
            pending,
            Status::requester(response::REQUEST_DENIED, "the request has no ID"),
        );
    };
    let sso_post = idp.url(paths::SAML_SSO);
    match root.attr("Destination") {
        Some(d) if d != sso_post => {
            return refuse(
                pending,
                Status::requester(response::REQUEST_DENIED, "wrong Destination"),
            );
        }
        // A signed request must say where it was meant to go (SAML Bindings §3.4.5.2, 3.5.5.2).
        None if signed => {
            return refuse(
                pending,
                Status::requester(response::REQUEST_DENIED, "Destination missing"),
            );
        }
        _ => {}
    }
    let skew = cfg.tokens.clock_skew;
    let Some(issued) = root.attr("IssueInstant").and_then(xml::parse_instant) else {
        return refuse(
            pending,
            Status::requester(response::REQUEST_DENIED, "IssueInstant missing"),
        );
    };
    if issued > now + skew || issued < now - cfg.saml.request_max_age - skew {
        return refuse(
            pending,
            Status::requester(response::REQUEST_DENIED, "the request is not fresh"),
        );
    }
    let expires = issued + cfg.saml.request_max_age + 2 * skew;
    match crate::storage::saml::remember_request_id(&idp.db, &issuer, &id, expires).await {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                pending,
                Status::requester(response::REQUEST_DENIED, "the request was replayed"),
            );
        }
        Err(e) => return Err(Fatal::internal("replay cache failed", &e)),
    }
    if let Some(f) = &pending.name_id_format
        && name_id_rule(&sp, Some(f)).is_none()
    {
        return refuse(
            pending,
            Status::requester(
                response::INVALID_NAMEID_POLICY,
                "this NameID format is not available to this service",
            ),
        );
    }
    // An upstream chosen in advance: the first IDPEntry that names an enabled upstream.
    if let Some(list) = root
        .child(SAMLP, "Scoping")
        .and_then(|s| s.child(SAMLP, "IDPList"))
    {
        for entry in list.children(SAMLP, "IDPEntry").take(16) {
            if let Some(id) = entry.attr("ProviderID")
                && let Some(name) = idp.authn.upstream_named_by(id).await
            {
                pending.idp_hint = Some(name);
                break;
            }
        }
    }
    if let Some(rac) = root.child(SAMLP, "RequestedAuthnContext") {
        let offered = idp.authn.levels_for(&sp.policy.login).await;
        let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
        match requested_levels(rac, &offered) {
            Some(levels) => pending.requirement.acr_values = levels,
            None => {
                return refuse(
                    pending,
                    Status::requester(
                        response::NO_AUTHN_CONTEXT,
                        "the requested authentication context cannot be met",
                    ),
                );
            }
        }
    }
    if passive && force {
        return refuse(
            pending,
            Status::requester(response::NO_PASSIVE, "ForceAuthn and IsPassive together"),
        );
    }
    Ok((sp, Ok(pending)))
}

/// The levels that satisfy a RequestedAuthnContext, or None when none we can offer does.
/// `exact` and `minimum` accept the listed levels or stronger ones (a stronger login implies
/// the weaker); `better` needs a stronger one; `maximum` accepts anything up to the listed.
fn requested_levels(rac: &Element, offered: &[&str]) -> Option<Vec<String>> {
    let refs: Vec<&str> = rac
        .children(SAML, "AuthnContextClassRef")
        .map(|c| c.trimmed_text())
        .collect();
    let comparison = rac.attr("Comparison").unwrap_or("exact");
    let known: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|r| acr::rank(r) != u8::MAX)
        .collect();
    let levels: Vec<String> = match comparison {
        "exact" | "minimum" => known
            .iter()
            .filter(|r| offered.iter().any(|o| acr::rank(o) >= acr::rank(r)))
            .map(|r| r.to_string())
            .collect(),
        "better" => {
            let floor = known.iter().map(|r| acr::rank(r)).max().unwrap_or(0);
            offered
                .iter()
                .filter(|o| acr::rank(o) > floor)
                .map(|o| o.to_string())
                .collect()
        }
        "maximum" => {
            let ceiling = known.iter().map(|r| acr::rank(r)).max().unwrap_or(0);
            offered
                .iter()
                .filter(|o| acr::rank(o) <= ceiling)
                .map(|o| o.to_string())
                .collect()
        }
        _ => Vec::new(),
    };
    (!levels.is_empty()).then_some(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_doctype_refused() {
        let big = STANDARD.encode(vec![b'a'; 2000]);
        assert_eq!(
            decode(Binding::Post, &big, 1000),
            Err(Fatal("saml.too_large"))
        );
        // A deflate bomb: small on the wire, large when inflated.
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &vec![b' '; 100_000]).unwrap();
        let bomb = STANDARD.encode(e.finish().unwrap());
        assert!(bomb.len() < 1000);
        assert_eq!(
            decode(Binding::Redirect, &bomb, 1000),
            Err(Fatal("saml.too_large"))
        );
        let dt = STANDARD.encode("<!doctype x><x/>");
        assert_eq!(
            decode(Binding::Post, &dt, 1000),
            Err(Fatal("saml.malformed"))
        );
    }

    #[test]
    fn authn_context_levels() {
        let rac = |cmp: &str, refs: &[&str]| {
            let inner: String = refs
                .iter()
                .map(|r| format!("<saml:AuthnContextClassRef>{r}</saml:AuthnContextClassRef>"))
                .collect();
            xml::parse(&format!(
                r#"<samlp:RequestedAuthnContext xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" Comparison="{cmp}">{inner}</samlp:RequestedAuthnContext>"#
            ))
            .unwrap()
        };
        let password = [acr::BAS];
        let both = [acr::BAS, acr::TWO_FACTOR];
        assert_eq!(
            requested_levels(&rac("exact", &[acr::BAS]), &password),
            Some(vec![acr::BAS.to_string()])
        );
        assert_eq!(
            requested_levels(&rac("exact", &["urn:unknown"]), &both),
            None
        );
        assert_eq!(
            requested_levels(&rac("maximum", &[acr::BAS]), &both),
            Some(vec![acr::BAS.to_string()])
        );
        // Password alone cannot meet 2fa; with BankID it can.
        assert_eq!(
            requested_levels(&rac("minimum", &[acr::TWO_FACTOR]), &password),
            None
        );
        assert_eq!(
            requested_levels(&rac("better", &[acr::BAS]), &password),
            None
        );
        assert_eq!(
            requested_levels(&rac("minimum", &[acr::TWO_FACTOR]), &both),
            Some(vec![acr::TWO_FACTOR.to_string()])
        );
        assert_eq!(
            requested_levels(&rac("better", &[acr::BAS]), &both),
            Some(vec![acr::TWO_FACTOR.to_string()])
        );
    }
}
