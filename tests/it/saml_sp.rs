//! A test SAML SP: its key and certificate, its metadata, AuthnRequests and LogoutRequests
//! in both bindings (signed with openssl and libxmlsec1 via samael, not with Portvakt's
//! code), and checks of Portvakt's Responses with libxmlsec1.

#![allow(dead_code)]

use crate::helpers::{Browser, Resp, TestApp, cli, hidden};
use base64::{Engine, engine::general_purpose::STANDARD};
use portvakt::saml::xml::{self, Element};
use std::io::Write;

pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const BAS: &str = "http://id.skolfederation.se/loa/bas";
pub const TWO_FACTOR: &str = "http://id.skolfederation.se/loa/2fa";

const PERSISTENT_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

pub struct TestSp {
    pub entity_id: String,
    pub acs: String,
    pub slo: String,
    pub key_pkcs8: Vec<u8>,
    pub cert_der: Vec<u8>,
    /// A key for the encryption KeyDescriptor, when the SP wants encrypted assertions.
    pub enc_key_pem: Option<Vec<u8>>,
    pub enc_cert_der: Option<Vec<u8>>,
    pub sign_requests: bool,
    /// The NameIDFormats its metadata lists (persistent unless a test changes it).
    pub name_id_formats: Vec<String>,
}

fn cert_for(key: &openssl::pkey::PKey<openssl::pkey::Private>, cn: &str) -> Vec<u8> {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, x509};
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

impl TestSp {
    /// An SP at `base` (a made-up origin: the browser never goes there, tests read the form).
    pub fn new(base: &str) -> Self {
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let cert_der = cert_for(&key, "test-sp");
        TestSp {
            entity_id: format!("{base}/sp"),
            acs: format!("{base}/acs"),
            slo: format!("{base}/slo"),
            key_pkcs8: key.private_key_to_pkcs8().unwrap(),
            cert_der,
            enc_key_pem: None,
            enc_cert_der: None,
            sign_requests: false,
            name_id_formats: vec![PERSISTENT_FORMAT.to_string()],
        }
    }

    pub fn signing(mut self) -> Self {
        self.sign_requests = true;
        self
    }

    pub fn encrypting(mut self) -> Self {
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        self.enc_cert_der = Some(cert_for(&key, "test-sp-enc"));
        self.enc_key_pem = Some(key.private_key_to_pem_pkcs8().unwrap());
        self
    }

    pub fn metadata(&self) -> String {
        let cert = STANDARD.encode(&self.cert_der);
        let enc = self
            .enc_cert_der
            .as_ref()
            .map(|c| {
                format!(
                    r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo><md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/></md:KeyDescriptor>"#,
                    STANDARD.encode(c)
                )
            })
            .unwrap_or_default();
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{eid}">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="{signed}" WantAssertionsSigned="true">
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>{enc}
<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{slo}"/>
{formats}
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}/second" index="1"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#,
            eid = self.entity_id,
            signed = self.sign_requests,
            formats = self
                .name_id_formats
                .iter()
                .map(|f| format!("<md:NameIDFormat>{f}</md:NameIDFormat>"))
                .collect::<String>(),
            slo = self.slo,
            acs = self.acs,
        )
    }

    /// Registers the SP with the CLI (`portvakt sp add`), with extra flags.
    pub fn register(&self, app: &TestApp, flags: &[&str]) {
        let path = app
            .dir
            .path()
            .join(format!("sp-{}.xml", portvakt::keys::random_token()));
        std::fs::write(&path, self.metadata()).unwrap();
        let mut args = vec!["sp", "add", "--metadata", path.to_str().unwrap()];
        args.extend_from_slice(flags);
        let out = cli(app, &args, None);
        assert!(
            out.status.success(),
            "sp add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An AuthnRequest; `extra` goes inside (e.g. NameIDPolicy), `attrs` on the root.
    pub fn authn_request(&self, app: &TestApp, id: &str, attrs: &str, extra: &str) -> String {
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{attrs}><saml:Issuer>{eid}</saml:Issuer>{extra}</samlp:AuthnRequest>"#,
            now = xml::instant(app.clock.now()),
            dest = app.url("/saml/sso"),
            acs = self.acs,
            eid = self.entity_id,
        )
    }

    /// The HTTP-Redirect URL for a message (signed when the SP signs).
    pub fn redirect_url(
        &self,
        endpoint: &str,
        param: &str,
        xml: &str,
        relay: Option<&str>,
    ) -> String {
        self.redirect_url_with(endpoint, param, xml, relay, RSA_SHA256)
    }

    /// The HTTP-Redirect URL, signed (when the SP signs) with `sig_alg` (rsa-sha256 or rsa-sha1).
    pub fn redirect_url_with(
        &self,
        endpoint: &str,
        param: &str,
        xml: &str,
        relay: Option<&str>,
        sig_alg: &str,
    ) -> String {
        let key = self.sign_requests.then_some(self.key_pkcs8.as_slice());
        redirect_url_signed_with(endpoint, param, xml, relay, key, sig_alg)
    }

    /// A LogoutRequest for the subject this SP was told about.
    pub fn logout_request(&self, app: &TestApp, id: &str, s: &SpSubject) -> String {
        self.logout_request_for(app, id, &s.name_id, &s.format, &s.session_index)
    }

    /// A LogoutRequest naming any NameID and SessionIndex.
    pub fn logout_request_for(
        &self,
        app: &TestApp,
        id: &str,
        name_id: &str,
        format: &str,
        session_index: &str,
    ) -> String {
        format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}"><saml:Issuer>{eid}</saml:Issuer><saml:NameID Format="{format}">{name_id}</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
            now = xml::instant(app.clock.now()),
            dest = app.url("/saml/slo"),
            eid = self.entity_id,
            name_id = xml::esc(name_id),
            format = xml::esc(format),
            session_index = xml::esc(session_index),
        )
    }

    /// This SP's LogoutResponse to a LogoutRequest the IdP sent it.
    pub fn logout_response(&self, app: &TestApp, in_response_to: &str, status: &str) -> String {
        format!(
            r#"<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{eid}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status></samlp:LogoutResponse>"#,
            id = portvakt::keys::random_token(),
            now = xml::instant(app.clock.now()),
            dest = app.url("/saml/slo"),
            irt = xml::esc(in_response_to),
            eid = self.entity_id,
        )
    }

    /// SP-initiated SSO in a browser (Redirect binding, a fresh request ID); logs in when
    /// `login` is given, and otherwise insists that the IdP answers without a login page.
    /// Returns what the SP learned from the verified assertion.
    pub async fn log_in(
        &self,
        app: &TestApp,
        b: &Browser,
        login: Option<(&str, &str)>,
    ) -> SpSubject {
        let id = format!("_authn-{}", portvakt::keys::random_token());
        let req = self.authn_request(app, &id, "", "");
        let url = self.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
        let first = b.get(&url).await;
        if login.is_none() {
            assert!(
                first.status == 200 && first.body.contains("name=\"SAMLResponse\""),
                "expected an answer without a login page: {} {:?}",
                first.status,
                first.location
            );
        }
        let page = sso_until_form(b, app, first, login).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let (action, response, _) = form_response(&page);
        assert_eq!(action, self.acs);
        assert_eq!(status_of(&response).0, SUCCESS);
        let assertion = verified_assertion(&response, &idp_cert(app).await);
        let root = xml::parse(&response).unwrap();
        assert_eq!(root.attr("InResponseTo"), Some(id.as_str()));
        subject_of(&assertion)
    }

    /// Whether the browser's SSO session still answers this SP's AuthnRequest at once
    /// (true), or the IdP sends it to the login page (false).
    pub async fn answered_without_login(&self, app: &TestApp, b: &Browser) -> bool {
        let id = format!("_probe-{}", portvakt::keys::random_token());
        let req = self.authn_request(app, &id, "", "");
        let r = b
            .get(&self.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
            .await;
        if r.status == 200 && r.body.contains("name=\"SAMLResponse\"") {
            let (_, response, _) = form_response(&r);
            assert_eq!(status_of(&response).0, SUCCESS);
            return true;
        }
        assert_eq!(r.status, 303, "{}", r.body);
        let loc = r.location.unwrap();
        assert!(
            loc.contains("/login?tx="),
            "neither an answer nor a login: {loc}"
        );
        false
    }
}

pub const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
pub const REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const UNKNOWN_PRINCIPAL: &str = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal";

/// What an SP learned about the subject from an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpSubject {
    pub name_id: String,
    pub format: String,
    pub session_index: String,
}

pub fn subject_of(assertion: &Element) -> SpSubject {
    let name_id = assertion
        .child(SAML, "Subject")
        .and_then(|s| s.child(SAML, "NameID"))
        .expect("a NameID");
    let session_index = assertion
        .child(SAML, "AuthnStatement")
        .and_then(|a| a.attr("SessionIndex"))
        .expect("a SessionIndex");
    SpSubject {
        name_id: name_id.trimmed_text().to_string(),
        format: name_id.attr("Format").unwrap_or_default().to_string(),
        session_index: session_index.to_string(),
    }
}

/// A fresh RSA key (PKCS#8 DER) nobody registered.
pub fn stranger_key() -> Vec<u8> {
    openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap())
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap()
}

/// The HTTP-Redirect URL for a message, its query signed (RSA-SHA256) by `key` if given.
pub fn redirect_url_signed_by(
    endpoint: &str,
    param: &str,
    xml: &str,
    relay: Option<&str>,
    key: Option<&[u8]>,
) -> String {
    redirect_url_signed_with(endpoint, param, xml, relay, key, RSA_SHA256)
}

/// The HTTP-Redirect URL, its query signed by `key` (if given) with `sig_alg` (RSA-SHA256 or
/// RSA-SHA1).
pub fn redirect_url_signed_with(
    endpoint: &str,
    param: &str,
    xml: &str,
    relay: Option<&str>,
    key: Option<&[u8]>,
    sig_alg: &str,
) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    let msg = STANDARD.encode(e.finish().unwrap());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut q = format!("{param}={}", enc(&msg));
    if let Some(r) = relay {
        q.push_str(&format!("&RelayState={}", enc(r)));
    }
    if let Some(key) = key {
        q.push_str(&format!("&SigAlg={}", enc(sig_alg)));
        let digest = match sig_alg {
            RSA_SHA1 => openssl::hash::MessageDigest::sha1(),
            _ => openssl::hash::MessageDigest::sha256(),
        };
        let key = openssl::pkey::PKey::private_key_from_pkcs8(key).unwrap();
        let mut s = openssl::sign::Signer::new(digest, &key).unwrap();
        s.update(q.as_bytes()).unwrap();
        q.push_str(&format!(
            "&Signature={}",
            enc(&STANDARD.encode(s.sign_to_vec().unwrap()))
        ));
    }
    format!("{endpoint}?{q}")
}

impl TestSp {
    /// Signs a message's XML (enveloped, over its ID) with libxmlsec1 through samael.
    pub fn sign_xml(&self, xml_text: &str, id: &str) -> String {
        self.sign_xml_with(xml_text, id, |t| t)
    }

    /// Signs with RSA-SHA1 and a SHA-1 digest (what the IdP must refuse).
    pub fn sign_xml_sha1(&self, xml_text: &str, id: &str) -> String {
        self.sign_xml_with(xml_text, id, |t| {
            t.replace(RSA_SHA256, RSA_SHA1).replace(
                "http://www.w3.org/2001/04/xmlenc#sha256",
                "http://www.w3.org/2000/09/xmldsig#sha1",
            )
        })
    }

    fn sign_xml_with(&self, xml_text: &str, id: &str, tune: impl Fn(String) -> String) -> String {
        use samael::crypto::{Crypto, CryptoProvider};
        let template = tune(portvakt::saml::dsig::template(
            id,
            &STANDARD.encode(&self.cert_der),
        ));
        // Right after the Issuer, as the schema wants.
        let with_template =
            xml_text.replacen("</saml:Issuer>", &format!("</saml:Issuer>{template}"), 1);
        Crypto::sign_xml(with_template, &self.key_pkcs8).unwrap()
    }
}

/// Follows a browser through SSO until the POST form to an ACS; logs in when asked.
pub async fn sso_until_form(
    b: &Browser,
    app: &TestApp,
    first: Resp,
    login: Option<(&str, &str)>,
) -> Resp {
    let mut r = first;
    for _ in 0..6 {
        if r.status == 200 && r.body.contains("name=\"SAMLResponse\"") {
            return r;
        }
        if r.status != 303 && r.status != 302 {
            return r;
        }
        let next = r.location.clone().unwrap();
        if next.contains("/login?tx=") {
            let (user, pass) = login.expect("the IdP asked for a login");
            let page = b.get(&next).await;
            let (tx, csrf) = (hidden(&page.body, "tx"), hidden(&page.body, "csrf"));
            r = b.post_login(app, &tx, &csrf, user, pass).await;
        } else {
            r = b.get(&next).await;
        }
    }
    r
}

/// The form's action and decoded SAMLResponse.
pub fn form_response(page: &Resp) -> (String, String, Option<String>) {
    let action = page
        .body
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let value = html_unescape(&hidden(&page.body, "SAMLResponse"));
    let relay = page
        .body
        .contains("name=\"RelayState\"")
        .then(|| html_unescape(&hidden(&page.body, "RelayState")));
    let xml = String::from_utf8(STANDARD.decode(value).unwrap()).unwrap();
    (html_unescape(action), xml, relay)
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#43;", "+")
        .replace("&#61;", "=")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The IdP's signing certificate from its metadata.
pub async fn idp_cert(app: &TestApp) -> Vec<u8> {
    let md = app
        .client()
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let root = xml::parse(&md).unwrap();
    let mut certs = Vec::new();
    root.descendants(
        "http://www.w3.org/2000/09/xmldsig#",
        "X509Certificate",
        &mut certs,
    );
    STANDARD.decode(certs[0].trimmed_text()).unwrap()
}

/// Verifies every signature in a Response with libxmlsec1 (through samael) and returns the
/// signed, reduced assertion; panics when a signature is missing or wrong.
pub fn verified_assertion(response_xml: &str, idp_cert: &[u8]) -> Element {
    verify(response_xml, idp_cert).expect("the response's signatures verify")
}

/// Like `verified_assertion`, but says why instead of panicking.
pub fn verify(response_xml: &str, idp_cert: &[u8]) -> Result<Element, String> {
    use samael::crypto::{Crypto, CryptoProvider, ReduceMode};
    let reduced = Crypto::reduce_xml_to_signed(
        response_xml,
        &[idp_cert.to_vec().into()],
        ReduceMode::ValidateAndMarkNoAncestors,
    )
    .map_err(|e| e.to_string())?;
    let root = xml::parse(&reduced).map_err(|e| e.to_string())?;
    if root.is(SAML, "Assertion") {
        Ok(root)
    } else {
        root.child(SAML, "Assertion")
            .cloned()
            .ok_or_else(|| "no signed assertion".to_string())
    }
}

/// The status code of a Response.
pub fn status_of(response_xml: &str) -> (String, Option<String>) {
    let root = xml::parse(response_xml).unwrap();
    let code = root
        .child(SAMLP, "Status")
        .unwrap()
        .child(SAMLP, "StatusCode")
        .unwrap();
    (
        code.attr("Value").unwrap().to_string(),
        code.child(SAMLP, "StatusCode")
            .and_then(|c| c.attr("Value"))
            .map(String::from),
    )
}

/// Attribute values by FriendlyName.
pub fn attributes(assertion: &Element) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let mut attrs = Vec::new();
    assertion.descendants(SAML, "Attribute", &mut attrs);
    for a in attrs {
        let vals = a
            .children(SAML, "AttributeValue")
            .map(|v| v.text.clone())
            .collect();
        out.insert(a.attr("FriendlyName").unwrap_or_default().to_string(), vals);
    }
    out
}

/// A fresh message ID (an NCName).
pub fn fresh_id() -> String {
    format!("_{}", portvakt::keys::random_token())
}

/// Sets an attribute on the first element that has it (for requests: the root).
pub fn set_attr(xml: &str, name: &str, value: &str) -> String {
    let marker = format!(" {name}=\"");
    let start = xml.find(&marker).unwrap_or_else(|| panic!("no {name}")) + marker.len();
    let end = start + xml[start..].find('"').unwrap();
    format!("{}{value}{}", &xml[..start], &xml[end..])
}

/// Removes an attribute from the first element that has it.
pub fn drop_attr(xml: &str, name: &str) -> String {
    let marker = format!(" {name}=\"");
    let start = xml.find(&marker).unwrap_or_else(|| panic!("no {name}"));
    let end = start + marker.len() + xml[start + marker.len()..].find('"').unwrap() + 1;
    format!("{}{}", &xml[..start], &xml[end..])
}

/// Sends an AuthnRequest with the HTTP-POST binding (a form with SAMLRequest in base64).
pub async fn post_request(b: &Browser, app: &TestApp, xml: &str, relay: Option<&str>) -> Resp {
    let msg = STANDARD.encode(xml);
    let mut form = vec![("SAMLRequest", msg.as_str())];
    if let Some(r) = relay {
        form.push(("RelayState", r));
    }
    b.post(&app.url("/saml/sso"), &form).await
}

/// An error page: 400 and nothing for any SP.
pub fn assert_error_page(r: &Resp) {
    assert_eq!(r.status, 400, "expected an error page, got: {}", r.body);
    assert!(
        !r.body.contains("SAMLResponse"),
        "an error page must not carry a SAMLResponse"
    );
}

/// A Response form, as the SP receives it.
pub struct Answer {
    pub action: String,
    pub xml: String,
    pub relay: Option<String>,
}

impl Answer {
    pub fn status(&self) -> (String, Option<String>) {
        status_of(&self.xml)
    }

    pub fn root(&self) -> Element {
        xml::parse(&self.xml).unwrap()
    }
}

/// Follows `first` through login (when `user` is given) to the POST form and reads it.
pub async fn answer(b: &Browser, app: &TestApp, first: Resp, user: Option<&str>) -> Answer {
    let login = user.map(|u| (u, crate::helpers::PASSWORD));
    let page = sso_until_form(b, app, first, login).await;
    assert_eq!(page.status, 200, "expected the POST form: {}", page.body);
    assert!(
        page.body.contains("<form method=\"post\""),
        "a POST form: {}",
        page.body
    );
    let (action, xml, relay) = form_response(&page);
    Answer { action, xml, relay }
}

/// An AuthnRequest over HTTP-Redirect, through login when needed, to the form.
pub async fn redirect_sso(
    b: &Browser,
    app: &TestApp,
    sp: &TestSp,
    req: &str,
    user: Option<&str>,
) -> Answer {
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", req, None);
    answer(b, app, b.get(&url).await, user).await
}

/// The InResponseTo of a Response.
pub fn in_response_to(response_xml: &str) -> Option<String> {
    xml::parse(response_xml)
        .unwrap()
        .attr("InResponseTo")
        .map(String::from)
}

/// The NameID's (Format, value).
pub fn name_id(assertion: &Element) -> (String, String) {
    let n = assertion
        .child(SAML, "Subject")
        .and_then(|s| s.child(SAML, "NameID"))
        .expect("a NameID");
    (n.attr("Format").unwrap_or_default().into(), n.text.clone())
}

/// The AuthnContextClassRef.
pub fn authn_context(assertion: &Element) -> String {
    let mut refs = Vec::new();
    assertion.descendants(SAML, "AuthnContextClassRef", &mut refs);
    refs[0].trimmed_text().to_string()
}

/// A person as `TestApp::add_person` makes one, to be tuned.
pub fn new_person(username: &str) -> portvakt::directory::NewPerson {
    portvakt::directory::NewPerson {
        username: username.into(),
        given_name: "Test".into(),
        family_name: username.into(),
        email: Some(format!("{username}@example.se")),
        civic_no: None,
        protected_identity: false,
        roles: vec![portvakt::directory::Role::parse("student").unwrap()],
        source: "local".into(),
    }
}

/// Adds a person through the directory, with the test password.
pub async fn add_person_as(
    app: &TestApp,
    new: portvakt::directory::NewPerson,
) -> portvakt::directory::Person {
    let now = app.clock.now();
    for r in &new.roles {
        if let Some(u) = &r.school_unit_code {
            portvakt::storage::persons::upsert_school_unit(&app.db, u, u, "local")
                .await
                .unwrap();
        }
    }
    let p = portvakt::directory::add_person(&app.db, &new, "test.example", now)
        .await
        .unwrap();
    app.state
        .authn
        .set_password(&p.id, crate::helpers::PASSWORD.into(), now)
        .await
        .unwrap();
    p
}

/// Decrypts a Response's EncryptedAssertion with Debian's xmlsec1 and the SP's key; returns
/// the Response with the plain assertion in place.
pub fn decrypt_with_xmlsec1(app: &TestApp, sp: &TestSp, response_xml: &str) -> String {
    let dir = app.dir.path();
    let tag = portvakt::keys::random_token();
    let (key, doc) = (
        dir.join(format!("enc-{tag}.pem")),
        dir.join(format!("resp-{tag}.xml")),
    );
    std::fs::write(&key, sp.enc_key_pem.as_ref().expect("an encrypting SP")).unwrap();
    std::fs::write(&doc, response_xml).unwrap();
    let out = std::process::Command::new("/usr/bin/xmlsec1")
        .arg("--decrypt")
        .arg("--privkey-pem")
        .arg(&key)
        .arg(&doc)
        .output()
        .expect("xmlsec1 is installed at /usr/bin/xmlsec1");
    assert!(
        out.status.success(),
        "xmlsec1 --decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A message the IdP sent through the browser by the HTTP-Redirect binding.
#[derive(Debug)]
pub struct IdpRedirect {
    /// The URL without its query.
    pub endpoint: String,
    /// SAMLRequest or SAMLResponse.
    pub param: String,
    pub xml: String,
    pub root: Element,
    pub relay_state: Option<String>,
}

impl IdpRedirect {
    pub fn id(&self) -> &str {
        self.root.attr("ID").expect("an ID")
    }

    /// (top-level, second-level) status of a LogoutResponse.
    pub fn status(&self) -> (String, Option<String>) {
        status_of(&self.xml)
    }
}

/// Reads a Redirect-binding URL from the IdP: the query signature must be there (RSA-SHA256)
/// and verify with the IdP's certificate over the octets as sent (SAML Bindings §3.4.4.1);
/// then the message is inflated and parsed. Panics otherwise.
pub fn idp_redirect(url: &str, idp_cert: &[u8]) -> IdpRedirect {
    let (endpoint, query) = url.split_once('?').expect("a query");
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .map(|kv| kv.split_once('=').expect("name=value"))
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    let raw = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let decoded = |v: &str| {
        url::form_urlencoded::parse(format!("a={v}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    };
    let param = if raw("SAMLRequest").is_some() {
        "SAMLRequest"
    } else {
        "SAMLResponse"
    };
    let message = raw(param).expect("a SAMLRequest or SAMLResponse");
    let sig_alg = raw("SigAlg").expect("the message is signed: SigAlg");
    let signature = raw("Signature").expect("the message is signed: Signature");
    assert_eq!(decoded(sig_alg), RSA_SHA256);
    let mut signed = format!("{param}={message}");
    if let Some(r) = raw("RelayState") {
        signed.push_str(&format!("&RelayState={r}"));
    }
    signed.push_str(&format!("&SigAlg={sig_alg}"));
    let expected_order: Vec<&str> = [Some(param), raw("RelayState").map(|_| "RelayState")]
        .into_iter()
        .flatten()
        .chain(["SigAlg", "Signature"])
        .collect();
    assert_eq!(
        names, expected_order,
        "the query holds the signed parameters only"
    );
    let cert = openssl::x509::X509::from_der(idp_cert).unwrap();
    let key = cert.public_key().unwrap();
    let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    v.update(signed.as_bytes()).unwrap();
    let sig = STANDARD.decode(decoded(signature)).unwrap();
    assert!(
        v.verify(&sig).unwrap(),
        "the query signature verifies with the IdP's certificate"
    );
    let deflated = STANDARD.decode(decoded(message)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::DeflateDecoder::new(deflated.as_slice()),
        &mut text,
    )
    .unwrap();
    let root = xml::parse(&text).unwrap();
    assert_eq!(
        root.attr("Destination"),
        Some(endpoint),
        "Destination is where it was sent"
    );
    IdpRedirect {
        endpoint: endpoint.to_string(),
        param: param.to_string(),
        root,
        xml: text,
        relay_state: raw("RelayState").map(decoded),
    }
}
