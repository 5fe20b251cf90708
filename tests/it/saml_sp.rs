//! A test SAML SP: its key and certificate, its metadata, AuthnRequests and LogoutRequests
//! in both bindings (signed with openssl and libxmlsec1 via samael, not with Portvakt's
//! code), and checks of Portvakt's Responses with libxmlsec1.

use crate::helpers::{Browser, Resp, TestApp, cli, hidden};
use base64::{Engine, engine::general_purpose::STANDARD};
use portvakt::saml::xml::{self, Element};
use std::io::Write;

pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

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
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}/second" index="1"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#,
            eid = self.entity_id,
            signed = self.sign_requests,
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
            now = xml::instant(portvakt::unix_now()),
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
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(xml.as_bytes()).unwrap();
        let msg = STANDARD.encode(e.finish().unwrap());
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut q = format!("{param}={}", enc(&msg));
        if let Some(r) = relay {
            q.push_str(&format!("&RelayState={}", enc(r)));
        }
        if self.sign_requests {
            q.push_str(&format!(
                "&SigAlg={}",
                enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
            ));
            let key = openssl::pkey::PKey::private_key_from_pkcs8(&self.key_pkcs8).unwrap();
            let mut s =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
            s.update(q.as_bytes()).unwrap();
            q.push_str(&format!(
                "&Signature={}",
                enc(&STANDARD.encode(s.sign_to_vec().unwrap()))
            ));
        }
        format!("{endpoint}?{q}")
    }

    /// Signs a message's XML (enveloped, over its ID) with libxmlsec1 through samael.
    pub fn sign_xml(&self, xml_text: &str, id: &str) -> String {
        use samael::crypto::{Crypto, CryptoProvider};
        let template = portvakt::saml::dsig::template(id, &STANDARD.encode(&self.cert_der));
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
    use samael::crypto::{Crypto, CryptoProvider, ReduceMode};
    let reduced = Crypto::reduce_xml_to_signed(
        response_xml,
        &[idp_cert.to_vec().into()],
        ReduceMode::ValidateAndMarkNoAncestors,
    )
    .expect("the response's signatures verify");
    let root = xml::parse(&reduced).unwrap();
    if root.is(SAML, "Assertion") {
        root
    } else {
        root.child(SAML, "Assertion")
            .expect("a signed assertion")
            .clone()
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
