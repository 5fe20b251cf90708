//! Portvakt as a SAML SP towards an upstream IdP (specs/upstream-idps.md §4).
//!
//! `metadata` reads the IdP's metadata (a signing certificate is required: samael and others
//! fail open without one) and writes ours; `request` builds the signed AuthnRequest sent over
//! HTTP-Redirect; `response` validates an HTTP-POST Response strictly (§4.4) and maps the
//! verified assertion to what the upstream proved; `decrypt` opens encrypted assertions
//! (AES-GCM with RSA-OAEP only).
//!
//! No HTTP and no storage here: the caller stores the AuthnRequest ID with the login
//! transaction, runs `response::validate` through the verification `Gate`, and answers
//! `response::Accepted::replay_key` from the shared replay cache.

pub mod decrypt;
pub mod logout;
pub mod metadata;
pub mod request;
pub mod response;

use crate::keys::KeyStore;
/// The bounded verification gate every inbound Response goes through.
pub use crate::xmlsec::dsig::Gate;

pub const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

/// Our SP's URLs for one upstream: each upstream sees its own entity id, so one IdP's
/// registration never covers another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpEndpoints {
    /// `{issuer}/upstream/NAME/metadata`.
    pub entity_id: String,
    /// `{issuer}/upstream/NAME/acs` (HTTP-POST).
    pub acs: String,
    /// `{issuer}/upstream/NAME/slo` (HTTP-Redirect).
    pub slo: String,
}

impl SpEndpoints {
    /// The endpoints for upstream `name` under `issuer` (no trailing slash).
    pub fn new(issuer: &str, name: &str) -> Self {
        let base = format!("{}/upstream/{name}", issuer.trim_end_matches('/'));
        Self {
            entity_id: format!("{base}/metadata"),
            acs: format!("{base}/acs"),
            slo: format!("{base}/slo"),
        }
    }
}

/// The SP role's two key pairs with their certificates (DER). Separate from the IdP's
/// signing keys (see `KeyStore::sp_rsa_key`), and signing never shares a key with
/// encryption (samlify's warning, §4.1).
#[derive(Clone)]
pub struct SpKeys {
    pub signing_key: Vec<u8>,
    pub signing_cert: Vec<u8>,
    pub encryption_key: Vec<u8>,
    pub encryption_cert: Vec<u8>,
}

impl std::fmt::Debug for SpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpKeys(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpKeyError {
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error("certificate: {0}")]
    Certificate(#[from] openssl::error::ErrorStack),
}

impl SpKeys {
    /// The installation's SP keys, made on first use; `cn` names the certificates.
    pub async fn load(keys: &KeyStore, cn: &str, now: i64) -> Result<Self, SpKeyError> {
        let signing = keys.sp_rsa_key("signing", now).await?;
        let encryption = keys.sp_rsa_key("encryption", now).await?;
        Self::from_keys(signing, encryption, cn)
    }

    /// Certificates for two RSA keys (PKCS#8 DER).
    pub fn from_keys(signing: Vec<u8>, encryption: Vec<u8>, cn: &str) -> Result<Self, SpKeyError> {
        Ok(Self {
            signing_cert: certificate(&signing, cn)?,
            encryption_cert: certificate(&encryption, cn)?,
            signing_key: signing,
            encryption_key: encryption,
        })
    }
}

/// A self-signed certificate that is a function of the key alone (serial from the public
/// key's digest, fixed validity, deterministic RSA PKCS#1 v1.5 signature), so every instance
/// publishes the same metadata without storing the certificate. SAML uses it only to carry
/// the key.
pub fn certificate(pkcs8: &[u8], cn: &str) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, x509};
    let key = PKey::private_key_from_pkcs8(pkcs8)?;
    let mut name = x509::X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    name.append_entry_by_text("O", "Portvakt SP")?;
    let name = name.build();
    let mut b = x509::X509Builder::new()?;
    b.set_version(2)?;
    let digest = openssl::hash::hash(MessageDigest::sha256(), &key.public_key_to_der()?)?;
    let mut serial_bytes = digest[..16].to_vec();
    serial_bytes[0] &= 0x7f;
    let serial = BigNum::from_slice(&serial_bytes)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (from, until) = (
        Asn1Time::from_str("20250101000000Z")?,
        Asn1Time::from_str("20491231235959Z")?,
    );
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.sign(&key, MessageDigest::sha256())?;
    b.build().to_der()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn rsa_pkcs8() -> Vec<u8> {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        openssl::pkey::PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap()
    }

    #[test]
    fn the_certificate_depends_on_the_key_only() {
        let k = rsa_pkcs8();
        assert_eq!(certificate(&k, "a").unwrap(), certificate(&k, "a").unwrap());
        assert_ne!(
            certificate(&k, "a").unwrap(),
            certificate(&rsa_pkcs8(), "a").unwrap()
        );
    }

    #[test]
    fn endpoints_per_upstream() {
        let e = SpEndpoints::new("https://idp.example.se/", "kommun");
        assert_eq!(
            e.entity_id,
            "https://idp.example.se/upstream/kommun/metadata"
        );
        assert_eq!(e.acs, "https://idp.example.se/upstream/kommun/acs");
    }
}
