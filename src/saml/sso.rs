//! Web Browser SSO: checking an AuthnRequest (HTTP-Redirect or HTTP-POST), the login
//! transaction that carries it across the login page, and the Response that answers it.
//!
//! A request that cannot be answered safely (unknown SP, bad signature, an ACS not in the
//! metadata, unreadable XML) gets an error page and nothing is sent anywhere. Once the SP and
//! its ACS are known, every other failure is answered with a SAML status at that ACS.

use super::attributes;
use super::response::{self, AssertionParts, Status};
use super::sp::{self, Sp};
use super::xml::{self, Element, SAML, SAMLP};
use super::{Idp, SamlError, dsig};
use crate::authn::{Requirement, Session, acr};
use crate::web::paths;
use base64::{Engine, engine::general_purpose::STANDARD};
use std::io::Read;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Redirect,
    Post,
}

/// A SAML message as it arrived.
pub struct Inbound<'a> {
    pub binding: Binding,
    /// The SAMLRequest/SAMLResponse value (form-decoded, still base64).
    pub message: &'a str,
    pub relay_state: Option<&'a str>,
    /// Redirect binding: the query string exactly as received.
    pub raw_query: Option<&'a str>,
}

/// Why a message gets an error page (a catalogue key) instead of a SAML answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fatal(pub &'static str);

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
    let signature_param = inbound
        .raw_query
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("Signature=")));
    match inbound.binding {
        Binding::Redirect if signature_param => {
            dsig::verify_redirect(inbound.raw_query.unwrap_or_default(), certs)
                .map_err(sig_fatal)?;
            let root = xml::parse(xml_text).map_err(|_| Fatal("saml.malformed"))?;
            Ok((root, true))
        }
        Binding::Post if xml_text.contains("Signature") => {
            let root = xml::parse(xml_text).map_err(|_| Fatal("saml.malformed"))?;
            let mut sigs = Vec::new();
            root.descendants(xml::DS, "Signature", &mut sigs);
            if sigs.is_empty() {
                if must_sign {
                    return Err(Fatal("saml.bad_signature"));
                }
                return Ok((root, false));
            }
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

/// What the login transaction carries for the SAML front (stored as JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub sp: String,
    pub acs: String,
    pub request_id: Option<String>,
    pub relay_state: Option<String>,
    pub requirement: Requirement,
    pub passive: bool,
    /// The NameID format asked for in NameIDPolicy (None: the SP's default).
    pub name_id_format: Option<String>,
}

/// A checked request: either answerable (`Ok`) or to be answered with a status at a known
/// ACS (`Err((pending, status))`).
pub type Checked = Result<Pending, (Pending, Status)>;

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
        Err(e) => {
            tracing::error!("loading SP failed: {}", crate::error_chain(&e));
            return Err(Fatal("error.internal"));
        }
    };
    if sp.expired(now) {
        return Err(Fatal("saml.metadata_expired"));
    }
    let certs = sp.meta.signing_certs.clone();
    let must_sign = sp.requires_signed_requests();
    let owned = OwnedInbound {
        binding: inbound.binding,
        raw_query: inbound.raw_query.map(String::from),
    };
    let text2 = text.clone();
    // libxmlsec1 is CPU work: off the async threads.
    let (root, signed) = tokio::task::spawn_blocking(move || {
        verified_root(&owned.view(), &text2, &certs, must_sign)
    })
    .await
    .map_err(|_| Fatal("error.internal"))??;
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
        },
        passive,
        name_id_format,
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
        Err(e) => {
            tracing::error!("replay cache failed: {}", crate::error_chain(&e));
            return Err(Fatal("error.internal"));
        }
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
    if let Some(rac) = root.child(SAMLP, "RequestedAuthnContext") {
        match requested_levels(rac, &acr::offered(&idp.config)) {
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

/// What `verified_root` needs from an Inbound, owned so it can move to a blocking thread.
pub(crate) struct OwnedInbound {
    pub binding: Binding,
    pub raw_query: Option<String>,
}

impl OwnedInbound {
    pub fn view(&self) -> Inbound<'_> {
        Inbound {
            binding: self.binding,
            message: "",
            relay_state: None,
            raw_query: self.raw_query.as_deref(),
        }
    }
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

/// The AuthnContextClassRef to state: the level the session reached (the method mapping in
/// `authn::acr`), or the requested level it satisfies.
fn context_for(session: &Session, requirement: &Requirement) -> String {
    requirement
        .acr_values
        .iter()
        .filter(|a| acr::rank(&session.acr) >= acr::rank(a))
        .max_by_key(|a| acr::rank(a))
        .cloned()
        .unwrap_or_else(|| session.acr.clone())
}

/// The NameID rule: the request's format (NameIDPolicy), else one the SP's metadata lists,
/// else the configured default, else transient. Among several formats in the metadata the
/// configured one wins (the administrator's choice among what the SP accepts). Formats other
/// than transient and persistent only as the SP's configuration allows. None when the SP may
/// not have the format.
fn name_id_rule(sp: &Sp, requested: Option<&str>) -> Option<sp::NameIdRule> {
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
fn name_id_value(
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
fn session_index(idp: &Idp, session: &Session, sp: &Sp) -> String {
    let tag = ring::hmac::sign(
        &idp.keys.secrets().pairwise,
        format!("saml-session-index|{}|{}", sp.entity_id(), session.sid).as_bytes(),
    );
    format!("_{}", hex(&tag.as_ref()[..16]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What goes back to the browser: an auto-submitting form to the SP.
pub struct PostForm {
    pub action: String,
    pub field: &'static str,
    pub value: String,
    pub relay_state: Option<String>,
}

/// Answers with a status only (no assertion), signed.
pub async fn status_response(
    idp: &Idp,
    pending: &Pending,
    status: Status,
    now: i64,
) -> Result<PostForm, SamlError> {
    let cred = idp.credential(now).await?;
    let (idp_id, acs, irt) = (
        idp.entity_id().to_string(),
        pending.acs.clone(),
        pending.request_id.clone(),
    );
    let xml = super::blocking(move || {
        response::response(&idp_id, &acs, irt.as_deref(), status, "", Some(&cred), now)
    })
    .await?;
    Ok(form(pending, xml))
}

fn form(pending: &Pending, xml: String) -> PostForm {
    PostForm {
        action: pending.acs.clone(),
        field: "SAMLResponse",
        value: STANDARD.encode(xml),
        relay_state: pending.relay_state.clone(),
    }
}

/// Answers with an assertion about the session's person.
pub async fn answer(
    idp: &Idp,
    sp: &Sp,
    pending: &Pending,
    session: &Session,
    now: i64,
) -> Result<PostForm, SamlError> {
    let person = match crate::storage::persons::by_id(&idp.db, &session.person_id).await? {
        Some(p) if p.active => p,
        _ => {
            return status_response(
                idp,
                pending,
                Status::responder(Some(response::AUTHN_FAILED), "the account is not active"),
                now,
            )
            .await;
        }
    };
    let details = crate::directory::details(
        &idp.db,
        &idp.config.directory,
        person,
        crate::directory::roles::day_of(now),
    )
    .await?;
    let Some(rule) = name_id_rule(sp, pending.name_id_format.as_deref()) else {
        return status_response(
            idp,
            pending,
            Status::requester(
                response::INVALID_NAMEID_POLICY,
                "NameID format not available",
            ),
            now,
        )
        .await;
    };
    let Some(name_id) = name_id_value(idp, &rule, sp, &details, session) else {
        return status_response(
            idp,
            pending,
            Status::responder(
                Some(response::INVALID_NAMEID_POLICY),
                "the person has no value for this NameID",
            ),
            now,
        )
        .await;
    };
    let released = sp.released(attributes::canonical);
    let scope = idp.config.saml_scope();
    let subject_attrs = attributes::Subject {
        details: &details,
        session,
        scope: &scope,
    };
    let attrs = attributes::statement(&released, &subject_attrs, &idp.config.saml.attribute_names);
    // What this SP learns about the person, recorded as every issuance is (the attributes
    // actually sent, by FriendlyName).
    let sent: Vec<String> = released
        .iter()
        .filter(|a| !attributes::values(a, &subject_attrs).is_empty())
        .map(|a| a.to_string())
        .collect();
    crate::storage::records::insert_release(
        &idp.db,
        &details.person.id,
        sp.entity_id(),
        "saml",
        "assertion",
        &sent,
        now,
    )
    .await?;
    let index = session_index(idp, session, sp);
    let subject = crate::storage::saml::Subject {
        session_id: session.id.clone(),
        sp: sp.entity_id().to_string(),
        name_id: name_id.clone(),
        name_id_format: rule.format.clone(),
        session_index: index.clone(),
    };
    // Repeated SSO to the same SP in a session tells it the same: no write needed.
    let known = crate::storage::saml::subject(&idp.db, &session.id, sp.entity_id()).await?;
    if known.as_ref() != Some(&subject) {
        crate::storage::saml::upsert_subject(&idp.db, &subject).await?;
        idp.authn
            .add_participant(session, sp.entity_id(), "saml", now)
            .await?;
    }
    let cred = idp.credential(now).await?;
    let idp_id = idp.entity_id().to_string();
    let ctx = context_for(session, &pending.requirement);
    let (ttl, skew) = (idp.config.saml.assertion_ttl, idp.config.tokens.clock_skew);
    let encryption = response::encryption_for(sp).map(|(c, d, t)| (c.to_vec(), d, t));
    let sign_response = sp.policy.sign_response;
    let sp_id = sp.entity_id().to_string();
    let p = pending.clone();
    let auth_time = session.auth_time;
    let xml = super::blocking(move || {
        let assertion = response::signed_assertion(
            &AssertionParts {
                idp: &idp_id,
                sp: &sp_id,
                acs: &p.acs,
                in_response_to: p.request_id.as_deref(),
                name_id: &name_id,
                name_id_format: &rule.format,
                session_index: &index,
                auth_time,
                authn_context: &ctx,
                attributes: &attrs,
                now,
                ttl,
                skew,
            },
            &cred,
        )?;
        let assertion = match encryption {
            Some((cert, data, transport)) => {
                super::encrypt::encrypt_assertion(&assertion, &cert, data, transport)?
            }
            None => assertion,
        };
        response::response(
            &idp_id,
            &p.acs,
            p.request_id.as_deref(),
            Status::OK,
            &assertion,
            sign_response.then_some(&cred),
            now,
        )
    })
    .await?;
    Ok(form(pending, xml))
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
