//! The upstream IdP's metadata (what we trust: entity id, SSO and SLO endpoints, signing
//! certificates) and our SP metadata for it.

use super::{PERSISTENT, POST, REDIRECT, SpEndpoints, SpKeys};
use crate::xmlsec::xml::{self, DS, Element, MD, MDUI, esc};
use base64::{Engine, engine::general_purpose::STANDARD};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("invalid IdP metadata: {0}")]
    Invalid(String),
}

/// An endpoint of the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: String,
    pub location: String,
    pub response_location: Option<String>,
}

/// What the IdP's metadata says, parsed once.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub display_name: Option<String>,
    /// The SingleSignOnService with the HTTP-Redirect binding (the only one we send to).
    pub sso: String,
    /// SingleLogoutService endpoints (Redirect preferred by `slo`).
    pub slo: Vec<Endpoint>,
    /// Signing certificates (DER): the only keys a Response may be verified with.
    pub signing_certs: Vec<Vec<u8>>,
    pub want_authn_requests_signed: bool,
    pub valid_until: Option<i64>,
}

impl IdpMetadata {
    /// The SLO endpoint to send a LogoutRequest to: HTTP-Redirect only (what we sign).
    pub fn slo_redirect(&self) -> Option<&Endpoint> {
        self.slo.iter().find(|e| e.binding == REDIRECT)
    }

    /// The metadata's validUntil has passed: logins through it stop until it is refreshed.
    pub fn expired(&self, now: i64) -> bool {
        self.valid_until.is_some_and(|v| v <= now)
    }
}

fn certs_of(kd: &Element) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    kd.descendants(DS, "X509Certificate", &mut found);
    found
        .into_iter()
        .filter_map(|el| {
            let compact: String = el.text.chars().filter(|c| !c.is_whitespace()).collect();
            let der = STANDARD.decode(compact).ok()?;
            openssl::x509::X509::from_der(&der).ok()?;
            Some(der)
        })
        .collect()
}

fn http_url(location: &str) -> bool {
    url::Url::parse(location).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
}

/// Parses one IdP's metadata (an EntityDescriptor with an IDPSSODescriptor, alone or the
/// only one in an EntitiesDescriptor). Refused: no signing certificate (a verifier given no
/// key must not fall back to accepting), no HTTP-Redirect SingleSignOnService, a passed
/// validUntil.
pub fn parse(doc: &str, now: i64) -> Result<IdpMetadata, MetadataError> {
    let bad = |m: &str| MetadataError::Invalid(m.to_string());
    let root = xml::parse(doc).map_err(|e| MetadataError::Invalid(e.to_string()))?;
    let xml::Entity {
        entity_id,
        role: idp,
        valid_until,
    } = xml::metadata_entity(&root, "IDPSSODescriptor", now).map_err(MetadataError::Invalid)?;
    let sso = idp
        .children(MD, "SingleSignOnService")
        .find(|e| e.attr("Binding") == Some(REDIRECT))
        .and_then(|e| e.attr("Location"))
        .ok_or_else(|| bad("no SingleSignOnService with the HTTP-Redirect binding"))?;
    if !http_url(sso) {
        return Err(bad(
            "the SingleSignOnService Location is not an http(s) URL",
        ));
    }
    let mut slo = Vec::new();
    for e in idp.children(MD, "SingleLogoutService") {
        let location = e
            .attr("Location")
            .filter(|l| http_url(l))
            .ok_or_else(|| bad("a SingleLogoutService Location is not an http(s) URL"))?;
        slo.push(Endpoint {
            binding: e.attr("Binding").unwrap_or_default().to_string(),
            location: location.to_string(),
            response_location: e.attr("ResponseLocation").map(String::from),
        });
    }
    let signing_certs: Vec<Vec<u8>> = idp
        .children(MD, "KeyDescriptor")
        .filter(|kd| kd.attr("use") != Some("encryption"))
        .flat_map(certs_of)
        .collect();
    if signing_certs.is_empty() {
        return Err(bad(
            "it has no signing certificate (KeyDescriptor use=\"signing\"); responses could not be verified",
        ));
    }
    let display_name = {
        let mut names = Vec::new();
        idp.descendants(MDUI, "DisplayName", &mut names);
        names
            .iter()
            .find(|n| n.attr("xml:lang") == Some("sv"))
            .or_else(|| names.first())
            .map(|n| n.trimmed_text().to_string())
            .filter(|n| !n.is_empty())
    };
    Ok(IdpMetadata {
        entity_id,
        display_name,
        sso: sso.to_string(),
        slo,
        signing_certs,
        want_authn_requests_signed: matches!(
            idp.attr("WantAuthnRequestsSigned"),
            Some("true" | "1")
        ),
        valid_until,
    })
}

/// The largest IdP metadata document read from a URL.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// How long metadata fetched from a URL is used before it is fetched again.
pub const METADATA_TTL: i64 = 3600;

/// Fetches metadata from `url` (the registration checked it is https, or http on loopback),
/// streamed and abandoned past `MAX_METADATA_BYTES`.
pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, MetadataError> {
    let fail = |e: String| MetadataError::Invalid(format!("cannot fetch {url}: {e}"));
    let mut res = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !res.status().is_success() {
        return Err(fail(format!("HTTP {}", res.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(fail("larger than 1 MiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| fail("not UTF-8".into()))
}

/// IdP metadata documents fetched from URLs, by URL, each used for `METADATA_TTL` seconds;
/// when a refetch fails, the last good copy keeps serving (logged), so an IdP's metadata
/// server being down does not stop logins.
#[derive(Clone, Default)]
pub struct UrlCache {
    docs: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, (i64, String)>>>,
}

impl UrlCache {
    pub async fn get(
        &self,
        http: &reqwest::Client,
        url: &str,
        now: i64,
    ) -> Result<String, MetadataError> {
        let cached = self.docs.read().ok().and_then(|m| m.get(url).cloned());
        if let Some((at, doc)) = &cached
            && now - at < METADATA_TTL
        {
            return Ok(doc.clone());
        }
        match fetch(http, url)
            .await
            .and_then(|doc| parse(&doc, now).map(|_| doc))
        {
            Ok(doc) => {
                if let Ok(mut m) = self.docs.write() {
                    m.insert(url.to_string(), (now, doc.clone()));
                }
                Ok(doc)
            }
            Err(e) => match cached {
                Some((_, doc)) => {
                    tracing::warn!("{e}; the last good copy is used");
                    Ok(doc)
                }
                None => Err(e),
            },
        }
    }
}

/// Our SP metadata for one upstream: signed requests, signed assertions wanted, a signing
/// and a separate encryption key (AES-GCM with RSA-OAEP named), persistent NameIDs, the ACS
/// over HTTP-POST and SLO over HTTP-Redirect.
pub fn sp_metadata(sp: &SpEndpoints, keys: &SpKeys, display_name: &str) -> String {
    let cert = |der: &[u8]| STANDARD.encode(der);
    format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" xmlns:mdui="{mdui}" entityID="{entity}">"#,
            r#"<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true" WantAssertionsSigned="true">"#,
            r#"<md:Extensions><mdui:UIInfo><mdui:DisplayName xml:lang="sv">{name}</mdui:DisplayName><mdui:DisplayName xml:lang="en">{name}</mdui:DisplayName></mdui:UIInfo></md:Extensions>"#,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{sig}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{enc}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#,
            r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>"#,
            r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>"#,
            r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"/>"#,
            r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
            r#"</md:KeyDescriptor>"#,
            r#"<md:SingleLogoutService Binding="{redirect}" Location="{slo}"/>"#,
            r#"<md:NameIDFormat>{persistent}</md:NameIDFormat>"#,
            r#"<md:AssertionConsumerService Binding="{post}" Location="{acs}" index="0" isDefault="true"/>"#,
            r#"</md:SPSSODescriptor></md:EntityDescriptor>"#
        ),
        md = MD,
        ds = DS,
        mdui = MDUI,
        entity = esc(&sp.entity_id),
        name = esc(display_name),
        sig = cert(&keys.signing_cert),
        enc = cert(&keys.encryption_cert),
        redirect = REDIRECT,
        slo = esc(&sp.slo),
        persistent = PERSISTENT,
        post = POST,
        acs = esc(&sp.acs),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(key_descriptor: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.se" validUntil="2040-01-01T00:00:00Z">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="true">
    {key_descriptor}
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.se/slo"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.se/post"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.se/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    fn cert_b64() -> String {
        let k = super::super::tests::rsa_pkcs8();
        STANDARD.encode(super::super::certificate(&k, "idp").unwrap())
    }

    #[test]
    fn idp_metadata_is_read() {
        let kd = format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            cert_b64()
        );
        let m = parse(&doc(&kd), 0).unwrap();
        assert_eq!(m.entity_id, "https://idp.example.se");
        assert_eq!(m.sso, "https://idp.example.se/sso");
        assert_eq!(m.signing_certs.len(), 1);
        assert_eq!(
            m.slo_redirect().unwrap().location,
            "https://idp.example.se/slo"
        );
        assert!(m.want_authn_requests_signed);
        assert_eq!(m.valid_until, xml::parse_instant("2040-01-01T00:00:00Z"));
        // Past its validUntil, refused.
        assert!(parse(&doc(&kd), 2_300_000_000).is_err());
    }

    #[test]
    fn metadata_without_a_signing_certificate_is_refused() {
        let err = parse(&doc(""), 0).unwrap_err().to_string();
        assert!(err.contains("no signing certificate"), "{err}");
        // An encryption-only key does not count, nor does a certificate that is not one.
        let enc = format!(
            r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            cert_b64()
        );
        assert!(parse(&doc(&enc), 0).is_err());
        let junk = r#"<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#;
        assert!(parse(&doc(junk), 0).is_err());
        // No Redirect SSO endpoint.
        let kd = format!(
            r#"<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            cert_b64()
        );
        let no_redirect = doc(&kd).replace(
            r#"HTTP-Redirect" Location="https://idp.example.se/sso""#,
            r#"HTTP-Artifact" Location="https://idp.example.se/sso""#,
        );
        assert!(parse(&no_redirect, 0).is_err());
    }

    #[test]
    fn our_sp_metadata_names_both_keys_and_endpoints() {
        let (s, e) = (
            super::super::tests::rsa_pkcs8(),
            super::super::tests::rsa_pkcs8(),
        );
        let keys = SpKeys::from_keys(s, e, "sp").unwrap();
        let sp = SpEndpoints::new("https://p.example.se", "kommun");
        let md = sp_metadata(&sp, &keys, "Portvakt & co");
        let root = xml::parse(&md).unwrap();
        assert_eq!(root.attr("entityID"), Some(sp.entity_id.as_str()));
        let d = root.child(MD, "SPSSODescriptor").unwrap();
        assert_eq!(d.attr("AuthnRequestsSigned"), Some("true"));
        let kds: Vec<_> = d.children(MD, "KeyDescriptor").collect();
        assert_eq!(kds.len(), 2);
        assert_ne!(certs_of(kds[0]), certs_of(kds[1]), "separate keys");
        let acs = d.child(MD, "AssertionConsumerService").unwrap();
        assert_eq!(acs.attr("Location"), Some(sp.acs.as_str()));
        assert_eq!(acs.attr("Binding"), Some(POST));
    }
}
