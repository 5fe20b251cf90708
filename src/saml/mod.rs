//! The SAML2 IdP (Web Browser SSO and Single Logout; specs/skolfederation.md §2).
//!
//! `sp` is the registry of service providers, `sso` checks AuthnRequests and answers them,
//! `response` builds and signs assertions (`encrypt` encrypts them), `attributes` maps the
//! directory to the attribute profile, `slo` runs single logout, `metadata` describes us.
//! `xml` reads messages namespace-aware; `dsig` is the only caller of libxmlsec1.
//! Like `oidc`, this module never imports the other protocol front.

pub use crate::services::attributes;
pub mod encrypt;
pub mod metadata;
pub mod response;
pub mod routes;
pub mod slo;
pub use crate::services::saml_sp as sp;
pub mod sso;

/// The XML reader and signatures live in `xmlsec`, shared with the upstream SAML client.
pub use crate::xmlsec::{dsig, xml};

use crate::authn::Authn;
use crate::config::Config;
use crate::keys::KeyStore;
use crate::storage::{self, Db};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Dsig(#[from] dsig::DsigError),
    #[error(transparent)]
    Encrypt(#[from] encrypt::EncryptError),
    #[error(transparent)]
    Sp(#[from] sp::SpError),
    #[error(transparent)]
    Authn(#[from] crate::authn::AuthnError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("certificate: {0}")]
    Certificate(String),
}

/// The key that signs now, with its certificate.
#[derive(Clone)]
pub struct Credential {
    pub key_der: Arc<Vec<u8>>,
    /// base64 DER, as it goes into KeyInfo and metadata.
    pub cert_b64: Arc<str>,
}

/// The IdP's shared handle.
#[derive(Clone)]
pub struct Idp {
    pub db: Db,
    pub keys: KeyStore,
    pub config: Arc<Config>,
    pub authn: Authn,
    pub http: reqwest::Client,
    sps: sp::SpCache,
    /// Certificates by key id (they never change once made).
    certs: Arc<RwLock<HashMap<String, Arc<str>>>>,
    entity_id: Arc<str>,
    clock: crate::clock::Clock,
    /// The metadata as served, with the key ids it was built for (`metadata::served`).
    metadata: Arc<RwLock<Option<metadata::Served>>>,
    /// Bounds the libxmlsec1 work that unauthenticated senders can cause.
    verifications: Arc<dsig::Gate>,
}

impl Idp {
    pub fn new(
        db: Db,
        keys: KeyStore,
        config: Arc<Config>,
        authn: Authn,
        http: reqwest::Client,
    ) -> Self {
        Self {
            sps: sp::SpCache::new(config.cache.client_ttl),
            entity_id: config.saml_entity_id().into(),
            verifications: Arc::new(dsig::Gate::new(
                config.saml_verifications(),
                config.saml.verification_queue,
            )),
            clock: authn.clock().clone(),
            db,
            keys,
            config,
            authn,
            http,
            certs: Default::default(),
            metadata: Default::default(),
        }
    }

    /// The application's clock (the one `Authn` holds).
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// The gate every inbound signature verification goes through.
    pub fn verifications(&self) -> &dsig::Gate {
        &self.verifications
    }

    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.issuer, path)
    }

    /// A registered SP (cached for `cache.client_ttl` seconds).
    pub async fn sp(&self, entity_id: &str, now: i64) -> Result<Option<Arc<sp::Sp>>, SamlError> {
        Ok(self.sps.get(&self.db, entity_id, now).await?)
    }

    /// The certificate of a signing key, made and stored on first use (race-safe: the first
    /// instance to store one wins and every instance then reads that one).
    async fn certificate(
        &self,
        key: &crate::keys::SigningKey,
        now: i64,
    ) -> Result<Arc<str>, SamlError> {
        if let Some(c) = self
            .certs
            .read()
            .ok()
            .and_then(|m| m.get(&key.kid).cloned())
        {
            return Ok(c);
        }
        if storage::saml::certificate(&self.db, &key.kid)
            .await?
            .is_none()
        {
            let pkcs8 = key
                .rsa_pkcs8()
                .ok_or_else(|| SamlError::Certificate("not an RSA key".into()))?;
            let der = self_signed(pkcs8, &self.config.saml_scope())
                .map_err(|e| SamlError::Certificate(e.to_string()))?;
            storage::saml::insert_certificate(&self.db, &key.kid, &STANDARD.encode(der), now)
                .await?;
        }
        let cert: Arc<str> = storage::saml::certificate(&self.db, &key.kid)
            .await?
            .ok_or_else(|| SamlError::Certificate("lost".into()))?
            .into();
        if let Ok(mut m) = self.certs.write() {
            m.insert(key.kid.clone(), cert.clone());
        }
        Ok(cert)
    }

    /// The credential that signs now.
    pub async fn credential(&self, now: i64) -> Result<Credential, SamlError> {
        self.keys.refresh(now).await;
        let (active, _) = self.keys.rsa_keys(now)?;
        self.credential_of(&active, now).await
    }

    async fn credential_of(
        &self,
        key: &crate::keys::SigningKey,
        now: i64,
    ) -> Result<Credential, SamlError> {
        let cert_b64 = self.certificate(key, now).await?;
        let key_der = key
            .rsa_pkcs8()
            .ok_or_else(|| SamlError::Certificate("not an RSA key".into()))?;
        Ok(Credential {
            key_der: Arc::new(key_der.to_vec()),
            cert_b64,
        })
    }

    /// Every published certificate (pending, active, recently superseded), for metadata.
    pub async fn published_certificates(&self, now: i64) -> Result<Vec<Arc<str>>, SamlError> {
        self.keys.refresh(now).await;
        let (_, published) = self.keys.rsa_keys(now)?;
        let mut out = Vec::new();
        for k in published {
            out.push(self.certificate(&k, now).await?);
        }
        Ok(out)
    }
}

/// A self-signed certificate for an RSA key: SAML uses certificates only to carry the key,
/// so it is long-lived; rotation replaces the key, not the certificate.
fn self_signed(pkcs8: &[u8], cn: &str) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, x509};
    let key = PKey::private_key_from_pkcs8(pkcs8)?;
    let mut name = x509::X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    name.append_entry_by_text("O", "Portvakt")?;
    let name = name.build();
    let mut b = x509::X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(3650)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.sign(&key, MessageDigest::sha256())?;
    b.build().to_der()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A credential as the IdP makes it, and its certificate's DER.
    pub fn test_credential() -> (Credential, Vec<u8>) {
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let pkcs8 = key.private_key_to_pkcs8().unwrap();
        let der = self_signed(&pkcs8, "test").unwrap();
        (
            Credential {
                key_der: Arc::new(pkcs8),
                cert_b64: STANDARD.encode(&der).into(),
            },
            der,
        )
    }

    #[test]
    fn signed_response_verifies_and_reduces_to_the_assertion() {
        let (cred, der) = test_credential();
        let assertion = response::signed_assertion(
            &response::AssertionParts {
                idp: "https://idp",
                sp: "https://sp",
                acs: "https://sp/acs",
                in_response_to: Some("_r"),
                name_id: "a<b",
                name_id_format: sp::TRANSIENT,
                session_index: "_s",
                auth_time: 1,
                authn_context: crate::authn::acr::BAS,
                attributes: "",
                now: 2,
                ttl: 300,
                skew: 60,
            },
            &cred,
        )
        .unwrap();
        let resp = response::response(
            "https://idp",
            "https://sp/acs",
            Some("_r"),
            response::Status::OK,
            &assertion,
            None,
            2,
        )
        .unwrap();
        let reduced = dsig::verify_and_reduce(&resp, std::slice::from_ref(&der)).expect("verifies");
        let root = xml::parse(&reduced).unwrap();
        assert!(root.is(xml::SAML, "Assertion"), "{reduced}");
        let tampered = resp.replace("a&lt;b", "a&lt;c");
        assert!(dsig::verify_and_reduce(&tampered, &[der]).is_err());
    }

    /// `text` without its first ds:Signature element (the enveloped transform, done by hand
    /// so libxml2 gets a document our own code did not touch).
    fn without_first_signature(text: &str) -> String {
        let from = text.find("<ds:Signature ").unwrap();
        let to = from + text[from..].find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        format!("{}{}", &text[..from], &text[to..])
    }

    /// The hand-made canonical form against libxml2's, and the signature against libxmlsec1,
    /// on every value shape the release policy can put into an assertion: Unicode, `&`, `<`,
    /// `>`, both quotes, empty and multiple values, tabs and line ends, in attribute values,
    /// attribute names (the configured ones), the NameID, the SP's entity ID and the request ID.
    #[test]
    fn signatures_agree_with_libxml2_and_libxmlsec1_on_every_value_shape() {
        use crate::xmlsec::c14n::{VALUE_SHAPES, exclusive, libxml2_exclusive};
        let (cred, der) = test_credential();
        let all: Vec<String> = VALUE_SHAPES.iter().map(|v| v.to_string()).collect();
        let mut overrides = std::collections::BTreeMap::new();
        overrides.insert("mail".to_string(), "urn:åäö:𝔘:&<>\"'\t".to_string());
        overrides.insert("sn".to_string(), "efternamn å & \"x\"".to_string());
        let released = vec![
            ("givenName", all.clone()),
            ("mail", vec![String::new()]),
            (
                "sn",
                vec!["Åström".to_string(), "O'Brien & <Co>".to_string()],
            ),
        ];
        let statement = attributes::statement(&released, &overrides);
        for (i, shape) in VALUE_SHAPES.iter().enumerate() {
            let irt = format!("_r{i}{shape}");
            let sp_id = format!("https://sp.example/{shape}");
            let parts = response::AssertionParts {
                idp: "https://idp.example/å",
                sp: &sp_id,
                acs: "https://sp.example/acs?a=1&b=2",
                in_response_to: Some(&irt),
                name_id: shape,
                name_id_format: sp::TRANSIENT,
                session_index: "_s",
                auth_time: 1,
                authn_context: crate::authn::acr::BAS,
                attributes: if i % 2 == 0 { &statement } else { "" },
                now: 2,
                ttl: 300,
                skew: 60,
            };
            let assertion = response::signed_assertion(&parts, &cred).unwrap();
            let ours = String::from_utf8(exclusive(&assertion, true).unwrap().bytes).unwrap();
            assert_eq!(
                ours,
                libxml2_exclusive(&without_first_signature(&assertion))
            );
            let reduced = dsig::verify_and_reduce(&assertion, std::slice::from_ref(&der))
                .unwrap_or_else(|e| panic!("{e}: {assertion}"));
            assert!(xml::parse(&reduced).unwrap().is(xml::SAML, "Assertion"));
            // The same assertion inside a signed Response: both signatures verify.
            let resp = response::response(
                "https://idp.example/å",
                &sp_id,
                Some(&irt),
                response::Status::OK,
                &assertion,
                Some(&cred),
                2,
            )
            .unwrap();
            let ours = String::from_utf8(exclusive(&resp, true).unwrap().bytes).unwrap();
            assert_eq!(ours, libxml2_exclusive(&without_first_signature(&resp)));
            let reduced = dsig::verify_and_reduce(&resp, std::slice::from_ref(&der)).unwrap();
            assert!(xml::parse(&reduced).unwrap().is(xml::SAMLP, "Response"));
        }
        // Logout messages and a status Response with a message.
        let subject = response::LogoutSubject {
            sp: "https://sp.example/&",
            name_id: "a<b\"c'\td",
            name_id_format: sp::PERSISTENT,
            session_index: "_s&",
        };
        let (_, req) = response::logout_request(
            "https://idp",
            "https://sp/slo?x=<",
            &subject,
            &cred,
            true,
            2,
        )
        .unwrap();
        let status = response::Status::requester(response::REQUEST_DENIED, "nej & <nej>");
        let resp = response::logout_response(
            "https://idp",
            "https://sp/slo",
            "_q\"",
            status,
            &cred,
            true,
            2,
        )
        .unwrap();
        let failed = response::response(
            "https://idp",
            "https://sp",
            None,
            status,
            "",
            Some(&cred),
            2,
        )
        .unwrap();
        for doc in [req, resp, failed] {
            let ours = String::from_utf8(exclusive(&doc, true).unwrap().bytes).unwrap();
            assert_eq!(ours, libxml2_exclusive(&without_first_signature(&doc)));
            dsig::verify_and_reduce(&doc, std::slice::from_ref(&der))
                .unwrap_or_else(|e| panic!("{e}: {doc}"));
        }
    }

    /// Metadata's shape: the root declares `ds` itself and namespaces it does not use, and
    /// `xml:lang` attributes (never declared, sorted by their namespace).
    #[test]
    fn signed_metadata_shape_agrees_with_libxml2_and_verifies() {
        use crate::xmlsec::c14n::{exclusive, libxml2_exclusive};
        let (cred, der) = test_credential();
        let doc = format!(
            concat!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
                r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" "#,
                r#"xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" ID="_m" entityID="https://idp/å&amp;" cacheDuration="PT1H">"#,
                "{sig}<md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">",
                "<md:Extensions><shibmd:Scope regexp=\"false\">skola.se</shibmd:Scope><mdui:UIInfo>",
                r#"<mdui:DisplayName xml:lang="sv">Kommunens inloggning &amp; "å"</mdui:DisplayName>"#,
                "</mdui:UIInfo></md:Extensions>",
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                "</md:IDPSSODescriptor></md:EntityDescriptor>"
            ),
            sig = dsig::template("_m", &cred.cert_b64),
            cert = cred.cert_b64,
        );
        let signed = dsig::sign(&doc, &cred.key_der).unwrap();
        let ours = String::from_utf8(exclusive(&signed, true).unwrap().bytes).unwrap();
        assert_eq!(ours, libxml2_exclusive(&without_first_signature(&signed)));
        dsig::verify_and_reduce(&signed, std::slice::from_ref(&der)).unwrap();
    }
}
