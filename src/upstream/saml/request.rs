//! The AuthnRequest we send to an upstream IdP over HTTP-Redirect, signed over the query
//! string (SAML Bindings §3.4.4.1).

use super::metadata::IdpMetadata;
use super::{PERSISTENT, POST, SpEndpoints};
use crate::xmlsec::dsig::{self, DsigError};
use crate::xmlsec::xml::{SAML, SAMLP, esc, instant, new_id};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::io::Write;

/// A request ready to send: its ID (store it with the login transaction; the Response's
/// InResponseTo must equal it) and the URL to redirect the browser to.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub url: String,
}

/// Options of one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// Ask the IdP to authenticate again even with a session there.
    pub force_authn: bool,
    /// An AuthnContextClassRef to require (Comparison="exact", what Entra accepts).
    pub authn_context: Option<&'a str>,
    /// RelayState: an opaque handle, never a URL.
    pub relay_state: Option<&'a str>,
}

/// The AuthnRequest XML (unsigned: the Redirect binding signs the query instead).
pub fn xml(id: &str, idp: &IdpMetadata, sp: &SpEndpoints, o: &Options, now: i64) -> String {
    let force = if o.force_authn {
        r#" ForceAuthn="true""#
    } else {
        ""
    };
    let context = o
        .authn_context
        .map(|c| {
            format!(
                r#"<samlp:RequestedAuthnContext Comparison="exact"><saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>"#,
                esc(c)
            )
        })
        .unwrap_or_default();
    format!(
        concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" "#,
            r#"ProtocolBinding="{post}"{force}><saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<samlp:NameIDPolicy Format="{persistent}" AllowCreate="true"/>{context}</samlp:AuthnRequest>"#
        ),
        samlp = SAMLP,
        saml = SAML,
        id = id,
        now = instant(now),
        dest = esc(&idp.sso),
        acs = esc(&sp.acs),
        post = POST,
        force = force,
        issuer = esc(&sp.entity_id),
        persistent = PERSISTENT,
        context = context,
    )
}

/// A request built but not yet signed: its ID can be stored before the RelayState (the
/// stored login's handle) is known.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: String,
    pub xml: String,
}

/// A fresh AuthnRequest. `new_id` starts with `_`: an NCName that never starts with a digit
/// (Entra refuses those).
pub fn draft(idp: &IdpMetadata, sp: &SpEndpoints, options: &Options, now: i64) -> Draft {
    let id = new_id();
    Draft {
        xml: xml(&id, idp, sp, options, now),
        id,
    }
}

/// Deflates, encodes and signs `draft` with our SP signing key (PKCS#8 DER): the URL to
/// send the browser to.
pub fn signed_url(
    idp: &IdpMetadata,
    draft: &Draft,
    signing_key: &[u8],
    relay_state: Option<&str>,
) -> Result<String, DsigError> {
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater
        .write_all(draft.xml.as_bytes())
        .map_err(|e| DsigError::Sign(e.to_string()))?;
    let deflated = deflater
        .finish()
        .map_err(|e| DsigError::Sign(e.to_string()))?;
    let query = dsig::sign_redirect(
        "SAMLRequest",
        &STANDARD.encode(deflated),
        relay_state,
        signing_key,
    )?;
    let sep = if idp.sso.contains('?') { '&' } else { '?' };
    Ok(format!("{}{sep}{query}", idp.sso))
}

/// `draft` and `signed_url` in one.
pub fn authn_request(
    idp: &IdpMetadata,
    sp: &SpEndpoints,
    signing_key: &[u8],
    options: &Options,
    now: i64,
) -> Result<Outgoing, DsigError> {
    let d = draft(idp, sp, options, now);
    Ok(Outgoing {
        url: signed_url(idp, &d, signing_key, options.relay_state)?,
        id: d.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmlsec::xml;
    use std::io::Read;

    fn idp() -> IdpMetadata {
        IdpMetadata {
            entity_id: "https://idp.example.se".into(),
            display_name: None,
            sso: "https://idp.example.se/sso?tenant=1".into(),
            slo: vec![],
            signing_certs: vec![],
            want_authn_requests_signed: true,
            valid_until: None,
        }
    }

    #[test]
    fn the_request_is_signed_and_names_our_endpoints() {
        let key = super::super::tests::rsa_pkcs8();
        let cert = super::super::certificate(&key, "sp").unwrap();
        let sp = SpEndpoints::new("https://p.example.se", "kommun");
        let o = Options {
            force_authn: true,
            relay_state: Some("h1"),
            authn_context: None,
        };
        let out = authn_request(&idp(), &sp, &key, &o, 1_800_000_000).unwrap();
        assert!(out.id.starts_with('_'));
        let (base, query) = out.url.split_once("tenant=1&").unwrap();
        assert_eq!(base, "https://idp.example.se/sso?");
        let q = dsig::RedirectQuery::parse(query).unwrap();
        dsig::verify_redirect(&q, &[cert]).expect("the signature verifies with our SP cert");
        assert_eq!(q.decoded("RelayState").as_deref(), Some("h1"));
        let deflated = STANDARD.decode(q.decoded("SAMLRequest").unwrap()).unwrap();
        let mut text = String::new();
        flate2::read::DeflateDecoder::new(&deflated[..])
            .read_to_string(&mut text)
            .unwrap();
        let root = xml::parse(&text).unwrap();
        assert!(root.is(SAMLP, "AuthnRequest"));
        assert_eq!(root.attr("ID"), Some(out.id.as_str()));
        assert_eq!(root.attr("Destination"), Some(idp().sso.as_str()));
        assert_eq!(
            root.attr("AssertionConsumerServiceURL"),
            Some(sp.acs.as_str())
        );
        assert_eq!(root.attr("ForceAuthn"), Some("true"));
        assert_eq!(
            root.child(SAML, "Issuer").unwrap().text,
            sp.entity_id.as_str()
        );
        // A second request has another ID.
        let again = authn_request(&idp(), &sp, &key, &Options::default(), 1).unwrap();
        assert_ne!(again.id, out.id);
        assert!(!xml(&again.id, &idp(), &sp, &Options::default(), 1).contains("ForceAuthn"));
    }
}
