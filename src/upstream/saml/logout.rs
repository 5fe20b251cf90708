//! Single logout with an upstream IdP over HTTP-Redirect: a LogoutRequest it sends us (its
//! query signature verified with its metadata certificates only; unsigned is refused), our
//! LogoutResponse, and the LogoutRequest we send when a session that came from it ends.

use super::metadata::IdpMetadata;
use super::request::Outgoing;
use super::{REDIRECT, SpEndpoints};
use crate::xmlsec::dsig::{self, DsigError, RedirectQuery};
use crate::xmlsec::xml::{self, SAML, SAMLP, esc, instant, new_id};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::io::{Read, Write};

/// The largest inflated logout message read.
const MAX_MESSAGE: usize = 64 * 1024;
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    #[error("the logout message is malformed or too large")]
    Malformed,
    #[error("the logout message is not signed by the IdP's metadata certificates")]
    Signature,
    #[error("{0} does not match")]
    Mismatch(&'static str),
    #[error("the logout request has expired")]
    Expired,
}

/// What an upstream's LogoutRequest asks us to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub id: String,
    pub name_id: String,
    pub session_indexes: Vec<String>,
    pub relay_state: Option<String>,
}

fn inflate(b64: &str) -> Result<String, LogoutError> {
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = STANDARD
        .decode(compact)
        .map_err(|_| LogoutError::Malformed)?;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(MAX_MESSAGE as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| LogoutError::Malformed)?;
    if out.len() > MAX_MESSAGE {
        return Err(LogoutError::Malformed);
    }
    String::from_utf8(out).map_err(|_| LogoutError::Malformed)
}

fn deflate(text: &str) -> Result<String, DsigError> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes())
        .map_err(|e| DsigError::Sign(e.to_string()))?;
    let out = e.finish().map_err(|e| DsigError::Sign(e.to_string()))?;
    Ok(STANDARD.encode(out))
}

/// Reads a LogoutRequest from the upstream, sent to our SLO over HTTP-Redirect (`raw_query`
/// as received). The query signature is required and checked first.
pub fn read_request(
    raw_query: &str,
    idp: &IdpMetadata,
    sp: &SpEndpoints,
    now: i64,
    skew: i64,
) -> Result<LogoutRequest, LogoutError> {
    let q = RedirectQuery::parse(raw_query).ok_or(LogoutError::Malformed)?;
    if q.message_param() != Some("SAMLRequest") {
        return Err(LogoutError::Malformed);
    }
    dsig::verify_redirect(&q, &idp.signing_certs).map_err(|_| LogoutError::Signature)?;
    let text = inflate(&q.decoded("SAMLRequest").unwrap_or_default())?;
    let root = xml::parse(&text).map_err(|_| LogoutError::Malformed)?;
    if !root.is(SAMLP, "LogoutRequest") || root.attr("Version") != Some("2.0") {
        return Err(LogoutError::Malformed);
    }
    if root.child(SAML, "Issuer").map(|i| i.text.as_str()) != Some(idp.entity_id.as_str()) {
        return Err(LogoutError::Mismatch("the Issuer"));
    }
    if root.attr("Destination") != Some(sp.slo.as_str()) {
        return Err(LogoutError::Mismatch("the Destination"));
    }
    let issued = root
        .attr("IssueInstant")
        .and_then(xml::parse_instant)
        .ok_or(LogoutError::Malformed)?;
    // A request is acted on soon after it was made, or not at all.
    let not_after = root.attr("NotOnOrAfter").and_then(xml::parse_instant);
    if issued > now + skew
        || now - issued > 300 + skew
        || not_after.is_some_and(|t| now >= t + skew)
    {
        return Err(LogoutError::Expired);
    }
    let name_id = root
        .child(SAML, "NameID")
        .map(|n| n.text.clone())
        .filter(|n| !n.is_empty())
        .ok_or(LogoutError::Malformed)?;
    Ok(LogoutRequest {
        id: root
            .attr("ID")
            .filter(|i| !i.is_empty())
            .ok_or(LogoutError::Malformed)?
            .to_string(),
        name_id,
        session_indexes: root
            .children(SAMLP, "SessionIndex")
            .map(|s| s.trimmed_text().to_string())
            .collect(),
        relay_state: q.decoded("RelayState"),
    })
}

/// The upstream's LogoutResponse to our LogoutRequest, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub in_response_to: String,
    pub success: bool,
    pub relay_state: Option<String>,
}

/// Reads the upstream's LogoutResponse sent to our SLO over HTTP-Redirect (`raw_query` as
/// received): signed by its metadata certificates (required), its Issuer, our SLO as the
/// Destination, recent. The caller binds InResponseTo to the request it sent.
pub fn read_response(
    raw_query: &str,
    idp: &IdpMetadata,
    sp: &SpEndpoints,
    now: i64,
    skew: i64,
) -> Result<LogoutResponse, LogoutError> {
    let q = RedirectQuery::parse(raw_query).ok_or(LogoutError::Malformed)?;
    if q.message_param() != Some("SAMLResponse") {
        return Err(LogoutError::Malformed);
    }
    dsig::verify_redirect(&q, &idp.signing_certs).map_err(|_| LogoutError::Signature)?;
    let text = inflate(&q.decoded("SAMLResponse").unwrap_or_default())?;
    let root = xml::parse(&text).map_err(|_| LogoutError::Malformed)?;
    if !root.is(SAMLP, "LogoutResponse") || root.attr("Version") != Some("2.0") {
        return Err(LogoutError::Malformed);
    }
    if root.child(SAML, "Issuer").map(|i| i.trimmed_text()) != Some(idp.entity_id.as_str()) {
        return Err(LogoutError::Mismatch("the Issuer"));
    }
    if root.attr("Destination").is_some_and(|d| d != sp.slo) {
        return Err(LogoutError::Mismatch("the Destination"));
    }
    let issued = root
        .attr("IssueInstant")
        .and_then(xml::parse_instant)
        .ok_or(LogoutError::Malformed)?;
    if issued > now + skew || now - issued > 300 + skew {
        return Err(LogoutError::Expired);
    }
    let in_response_to = root
        .attr("InResponseTo")
        .filter(|i| !i.is_empty())
        .ok_or(LogoutError::Malformed)?
        .to_string();
    let success = root
        .child(SAMLP, "Status")
        .and_then(|s| s.child(SAMLP, "StatusCode"))
        .and_then(|c| c.attr("Value"))
        == Some(SUCCESS);
    Ok(LogoutResponse {
        in_response_to,
        success,
        relay_state: q.decoded("RelayState"),
    })
}

/// Where an IdP's Redirect SLO endpoint takes responses.
fn response_location(idp: &IdpMetadata) -> Option<&str> {
    let e = idp.slo.iter().find(|e| e.binding == REDIRECT)?;
    Some(e.response_location.as_deref().unwrap_or(&e.location))
}

/// Our signed LogoutResponse to `request`, as the URL to send the browser to; None when the
/// IdP has no Redirect SLO endpoint.
pub fn response_url(
    idp: &IdpMetadata,
    sp: &SpEndpoints,
    request: &LogoutRequest,
    success: bool,
    signing_key: &[u8],
    now: i64,
) -> Result<Option<String>, DsigError> {
    let Some(dest) = response_location(idp) else {
        return Ok(None);
    };
    let status = if success {
        SUCCESS
    } else {
        "urn:oasis:names:tc:SAML:2.0:status:Responder"
    };
    let body = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status></samlp:LogoutResponse>"#,
        new_id(),
        instant(now),
        esc(dest),
        esc(&request.id),
        esc(&sp.entity_id),
    );
    let query = dsig::sign_redirect(
        "SAMLResponse",
        &deflate(&body)?,
        request.relay_state.as_deref(),
        signing_key,
    )?;
    let sep = if dest.contains('?') { '&' } else { '?' };
    Ok(Some(format!("{dest}{sep}{query}")))
}

/// A signed LogoutRequest to the upstream for a session that came from it; None when the IdP
/// has no Redirect SLO endpoint. `name_id` is (value, Format) as its assertion had it.
pub fn request(
    idp: &IdpMetadata,
    sp: &SpEndpoints,
    name_id: (&str, &str),
    session_index: Option<&str>,
    signing_key: &[u8],
    now: i64,
) -> Result<Option<Outgoing>, DsigError> {
    request_with(
        idp,
        sp,
        name_id,
        session_index,
        &new_id(),
        None,
        signing_key,
        now,
    )
}

/// `request` with the ID chosen by the caller and a RelayState (covered by the query
/// signature), so the caller can bind the answer to both.
#[allow(clippy::too_many_arguments)]
pub fn request_with(
    idp: &IdpMetadata,
    sp: &SpEndpoints,
    name_id: (&str, &str),
    session_index: Option<&str>,
    id: &str,
    relay_state: Option<&str>,
    signing_key: &[u8],
    now: i64,
) -> Result<Option<Outgoing>, DsigError> {
    let Some(dest) = idp.slo.iter().find(|e| e.binding == REDIRECT) else {
        return Ok(None);
    };
    let id = id.to_string();
    let index = session_index
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", esc(s)))
        .unwrap_or_default();
    let format = if name_id.1.is_empty() {
        String::new()
    } else {
        format!(r#" Format="{}""#, esc(name_id.1))
    };
    let body = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID{format}>{}</saml:NameID>{index}</samlp:LogoutRequest>"#,
        instant(now),
        esc(&dest.location),
        esc(&sp.entity_id),
        esc(name_id.0),
    );
    let query = dsig::sign_redirect("SAMLRequest", &deflate(&body)?, relay_state, signing_key)?;
    let sep = if dest.location.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Some(Outgoing {
        url: format!("{}{sep}{query}", dest.location),
        id,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::metadata::Endpoint;
    use super::*;

    fn idp(cert: Vec<u8>) -> IdpMetadata {
        IdpMetadata {
            entity_id: "https://idp.example.se".into(),
            display_name: None,
            sso: "https://idp.example.se/sso".into(),
            slo: vec![Endpoint {
                binding: REDIRECT.into(),
                location: "https://idp.example.se/slo".into(),
                response_location: None,
            }],
            signing_certs: vec![cert],
            want_authn_requests_signed: false,
            valid_until: None,
        }
    }

    /// A LogoutRequest as the upstream would send it: our own `request` with the roles
    /// swapped (the IdP's key signs, the Destination is our SLO).
    fn from_upstream(key: &[u8], sp: &SpEndpoints, issuer: &str, now: i64) -> String {
        let as_idp = IdpMetadata {
            slo: vec![Endpoint {
                binding: REDIRECT.into(),
                location: sp.slo.clone(),
                response_location: None,
            }],
            ..idp(vec![])
        };
        let as_sp = SpEndpoints {
            entity_id: issuer.into(),
            ..sp.clone()
        };
        let url = request(&as_idp, &as_sp, ("pers-1", ""), Some("_s1"), key, now)
            .unwrap()
            .unwrap()
            .url;
        url.split_once('?').unwrap().1.to_string()
    }

    #[test]
    fn an_upstream_logout_request_is_read_only_when_signed_by_it_and_fresh() {
        let key = super::super::tests::rsa_pkcs8();
        let cert = super::super::certificate(&key, "idp").unwrap();
        let sp = SpEndpoints::new("https://p.example.se", "kommun");
        let md = idp(cert);
        let now = 1_800_000_000;
        let q = from_upstream(&key, &sp, &md.entity_id, now);
        let r = read_request(&q, &md, &sp, now + 5, 60).unwrap();
        assert_eq!(r.name_id, "pers-1");
        assert_eq!(r.session_indexes, vec!["_s1".to_string()]);
        // Too late, another signer, another issuer, unsigned.
        assert_eq!(
            read_request(&q, &md, &sp, now + 3600, 60),
            Err(LogoutError::Expired)
        );
        let other = super::super::tests::rsa_pkcs8();
        let forged = from_upstream(&other, &sp, &md.entity_id, now);
        assert_eq!(
            read_request(&forged, &md, &sp, now, 60),
            Err(LogoutError::Signature)
        );
        let stranger = from_upstream(&key, &sp, "https://other.example", now);
        assert!(matches!(
            read_request(&stranger, &md, &sp, now, 60),
            Err(LogoutError::Mismatch(_))
        ));
        let unsigned = q.split("&SigAlg=").next().unwrap();
        assert_eq!(
            read_request(unsigned, &md, &sp, now, 60),
            Err(LogoutError::Signature)
        );
        // Our answer goes to the IdP's SLO, signed with our key.
        let url = response_url(&md, &sp, &r, true, &key, now)
            .unwrap()
            .unwrap();
        assert!(url.starts_with("https://idp.example.se/slo?SAMLResponse="));
    }

    #[test]
    fn an_upstream_logout_response_is_read_only_when_signed_by_it_and_fresh() {
        let key = super::super::tests::rsa_pkcs8();
        let cert = super::super::certificate(&key, "idp").unwrap();
        let sp = SpEndpoints::new("https://p.example.se", "kommun");
        let md = idp(cert);
        let now = 1_800_000_000;
        // The IdP's answer: `response_url` with the roles swapped.
        let answer = |signer: &[u8], issuer: &str| {
            let as_idp = IdpMetadata {
                slo: vec![Endpoint {
                    binding: REDIRECT.into(),
                    location: sp.slo.clone(),
                    response_location: None,
                }],
                ..idp(vec![])
            };
            let as_sp = SpEndpoints {
                entity_id: issuer.into(),
                ..sp.clone()
            };
            let ours = LogoutRequest {
                id: "_r1".into(),
                name_id: "pers-1".into(),
                session_indexes: vec![],
                relay_state: Some("then.mac".into()),
            };
            let url = response_url(&as_idp, &as_sp, &ours, true, signer, now)
                .unwrap()
                .unwrap();
            url.split_once('?').unwrap().1.to_string()
        };
        let q = answer(&key, &md.entity_id);
        let r = read_response(&q, &md, &sp, now + 5, 60).unwrap();
        assert_eq!(r.in_response_to, "_r1");
        assert!(r.success);
        assert_eq!(r.relay_state.as_deref(), Some("then.mac"));
        assert_eq!(
            read_response(&q, &md, &sp, now + 3600, 60),
            Err(LogoutError::Expired)
        );
        let other = super::super::tests::rsa_pkcs8();
        assert_eq!(
            read_response(&answer(&other, &md.entity_id), &md, &sp, now, 60),
            Err(LogoutError::Signature)
        );
        assert!(matches!(
            read_response(&answer(&key, "https://other.example"), &md, &sp, now, 60),
            Err(LogoutError::Mismatch(_))
        ));
        // A request is not a response.
        let request = request_with(&md, &sp, ("p", ""), None, "_x", None, &key, now)
            .unwrap()
            .unwrap()
            .url;
        assert_eq!(
            read_response(request.split_once('?').unwrap().1, &md, &sp, now, 60),
            Err(LogoutError::Malformed)
        );
    }
}
