//! Responses, assertions and logout messages, written as text with every value escaped,
//! then signed by `dsig`. The signed string is what is sent; nothing is re-serialised.

use super::encrypt::{DataAlg, KeyTransport};
use super::xml::{esc, instant, new_id};
use super::{Credential, SamlError, dsig, sp::Sp};

pub const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const VERSION_MISMATCH: &str = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch";
pub const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
pub const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
pub const INVALID_NAMEID_POLICY: &str = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
pub const REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const AUTHN_FAILED: &str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed";
pub const UNKNOWN_PRINCIPAL: &str = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal";
pub const PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";

const NS: &str = r#"xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#;

/// A SAML status: top-level code, optional second-level code and message.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub code: &'static str,
    pub sub: Option<&'static str>,
    pub message: Option<&'static str>,
}

impl Status {
    pub const OK: Status = Status {
        code: SUCCESS,
        sub: None,
        message: None,
    };

    pub fn requester(sub: &'static str, message: &'static str) -> Self {
        Status {
            code: REQUESTER,
            sub: Some(sub),
            message: Some(message),
        }
    }

    pub fn responder(sub: Option<&'static str>, message: &'static str) -> Self {
        Status {
            code: RESPONDER,
            sub,
            message: Some(message),
        }
    }

    fn xml(&self) -> String {
        let sub = self
            .sub
            .map(|s| format!(r#"<samlp:StatusCode Value="{s}"/>"#))
            .unwrap_or_default();
        let msg = self
            .message
            .map(|m| format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", esc(m)))
            .unwrap_or_default();
        format!(
            r#"<samlp:Status><samlp:StatusCode Value="{}">{sub}</samlp:StatusCode>{msg}</samlp:Status>"#,
            self.code
        )
    }
}

/// What an assertion says.
pub struct AssertionParts<'a> {
    pub idp: &'a str,
    pub sp: &'a str,
    pub acs: &'a str,
    pub in_response_to: Option<&'a str>,
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub session_index: &'a str,
    pub auth_time: i64,
    pub authn_context: &'a str,
    /// A complete AttributeStatement, or "".
    pub attributes: &'a str,
    pub now: i64,
    pub ttl: i64,
    pub skew: i64,
}

/// Builds and signs the assertion; returns its bytes as signed.
pub fn signed_assertion(p: &AssertionParts, cred: &Credential) -> Result<String, SamlError> {
    let id = new_id();
    let in_response_to = p
        .in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, esc(r)))
        .unwrap_or_default();
    let not_after = instant(p.now + p.ttl);
    let xml = format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            r#"xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            r#"ID="{id}" Version="2.0" IssueInstant="{now}">"#,
            "<saml:Issuer>{idp}</saml:Issuer>{sig}",
            "<saml:Subject>",
            r#"<saml:NameID Format="{fmt}" NameQualifier="{idp}" SPNameQualifier="{sp}">{name_id}</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
            r#"<saml:SubjectConfirmationData{irt} NotOnOrAfter="{not_after}" Recipient="{acs}"/>"#,
            "</saml:SubjectConfirmation></saml:Subject>",
            r#"<saml:Conditions NotBefore="{not_before}" NotOnOrAfter="{not_after}">"#,
            "<saml:AudienceRestriction><saml:Audience>{sp}</saml:Audience></saml:AudienceRestriction>",
            "</saml:Conditions>",
            r#"<saml:AuthnStatement AuthnInstant="{auth}" SessionIndex="{si}">"#,
            "<saml:AuthnContext><saml:AuthnContextClassRef>{ctx}</saml:AuthnContextClassRef></saml:AuthnContext>",
            "</saml:AuthnStatement>{attrs}</saml:Assertion>"
        ),
        id = id,
        now = instant(p.now),
        idp = esc(p.idp),
        sig = dsig::template(&id, &cred.cert_b64),
        fmt = esc(p.name_id_format),
        sp = esc(p.sp),
        name_id = esc(p.name_id),
        irt = in_response_to,
        not_after = not_after,
        acs = esc(p.acs),
        not_before = instant(p.now - p.skew),
        auth = instant(p.auth_time),
        si = esc(p.session_index),
        ctx = esc(p.authn_context),
        attrs = p.attributes,
    );
    Ok(dsig::sign(&xml, &cred.key_der)?)
}

/// The encryption an SP gets: its metadata's key, GCM unless it lists only CBC methods,
/// RSA-OAEP (MGF1-SHA1) unless it asks for the XML Encryption 1.1 form.
pub fn encryption_for(sp: &Sp) -> Option<(&[u8], DataAlg, KeyTransport)> {
    let (cert, methods) = sp.meta.encryption.as_ref()?;
    let has = |s: &str| methods.iter().any(|m| m.contains(s));
    let data = if has("cbc") && !has("gcm") {
        DataAlg::Aes256Cbc
    } else {
        DataAlg::Aes256Gcm
    };
    let transport = if has("xmlenc11#rsa-oaep") && !has("rsa-oaep-mgf1p") {
        KeyTransport::RsaOaep11
    } else {
        KeyTransport::RsaOaepMgf1p
    };
    Some((cert.as_slice(), data, transport))
}

/// A Response carrying `assertion` (signed, perhaps encrypted) or only a status.
pub fn response(
    idp: &str,
    destination: &str,
    in_response_to: Option<&str>,
    status: Status,
    assertion: &str,
    sign: Option<&Credential>,
    now: i64,
) -> Result<String, SamlError> {
    let id = new_id();
    let irt = in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, esc(r)))
        .unwrap_or_default();
    let sig = sign
        .map(|c| dsig::template(&id, &c.cert_b64))
        .unwrap_or_default();
    let xml = format!(
        r#"<samlp:Response {NS} ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"{irt}><saml:Issuer>{}</saml:Issuer>{sig}{}{assertion}</samlp:Response>"#,
        instant(now),
        esc(destination),
        esc(idp),
        status.xml(),
    );
    match sign {
        Some(c) => Ok(dsig::sign(&xml, &c.key_der)?),
        None => Ok(xml),
    }
}

/// Whom a LogoutRequest is about, as the SP was told.
pub struct LogoutSubject<'a> {
    pub sp: &'a str,
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub session_index: &'a str,
}

/// A LogoutRequest (signed in the XML when `sign_xml`; the Redirect binding signs the query
/// instead); returns (ID, XML).
pub fn logout_request(
    idp: &str,
    destination: &str,
    subject: &LogoutSubject,
    cred: &Credential,
    sign_xml: bool,
    now: i64,
) -> Result<(String, String), SamlError> {
    let id = new_id();
    let sig = if sign_xml {
        dsig::template(&id, &cred.cert_b64)
    } else {
        String::new()
    };
    let xml = format!(
        r#"<samlp:LogoutRequest {NS} ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer>{sig}<saml:NameID Format="{}" NameQualifier="{}" SPNameQualifier="{}">{}</saml:NameID><samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        instant(now),
        esc(destination),
        esc(idp),
        esc(subject.name_id_format),
        esc(idp),
        esc(subject.sp),
        esc(subject.name_id),
        esc(subject.session_index),
    );
    let xml = if sign_xml {
        dsig::sign(&xml, &cred.key_der)?
    } else {
        xml
    };
    Ok((id, xml))
}

/// A LogoutResponse (signed in the XML when `sign_xml`; the Redirect binding signs the
/// query instead).
pub fn logout_response(
    idp: &str,
    destination: &str,
    in_response_to: &str,
    status: Status,
    cred: &Credential,
    sign_xml: bool,
    now: i64,
) -> Result<String, SamlError> {
    let id = new_id();
    let sig = if sign_xml {
        dsig::template(&id, &cred.cert_b64)
    } else {
        String::new()
    };
    let xml = format!(
        r#"<samlp:LogoutResponse {NS} ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer>{sig}{}</samlp:LogoutResponse>"#,
        instant(now),
        esc(destination),
        esc(in_response_to),
        esc(idp),
        status.xml(),
    );
    if sign_xml {
        Ok(dsig::sign(&xml, &cred.key_der)?)
    } else {
        Ok(xml)
    }
}
