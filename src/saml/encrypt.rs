//! Builds a SAML2 `<saml:EncryptedAssertion>` per XML Encryption 1.1.
//!
//! The assertion is encrypted with a fresh AES-256 content key, which is transported to the SP
//! with RSA-OAEP under the SP's encryption certificate. The `xenc:EncryptedKey` sits inside the
//! `ds:KeyInfo` of `xenc:EncryptedData`, the layout xmlsec1 (pysaml2) and Shibboleth SPs accept.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::encrypt::Encrypter;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher};
use openssl::x509::X509;

/// Smallest RSA modulus we are willing to encrypt to.
const MIN_RSA_BITS: u32 = 2048;

/// Block cipher for the assertion itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAlg {
    /// `http://www.w3.org/2009/xmlenc11#aes256-gcm`
    Aes256Gcm,
    /// `http://www.w3.org/2001/04/xmlenc#aes256-cbc`, only for SPs that cannot do GCM.
    Aes256Cbc,
}

/// How the content key is wrapped for the SP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTransport {
    /// `http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p`: OAEP with SHA-1 and MGF1-SHA1.
    RsaOaepMgf1p,
    /// `http://www.w3.org/2009/xmlenc11#rsa-oaep` with SHA-256 and MGF1-SHA256.
    RsaOaep11,
}

/// Why an assertion could not be encrypted; the OpenSSL cause is the `source()`.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("SP encryption certificate is not valid X.509 DER")]
    BadCertificate(#[source] ErrorStack),
    #[error("SP encryption key is not RSA")]
    NotRsa,
    #[error("SP encryption key is RSA-{0}; at least RSA-{MIN_RSA_BITS} is required")]
    KeyTooSmall(u32),
    #[error("encryption failed")]
    Crypto(#[from] ErrorStack),
}

const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

impl DataAlg {
    fn uri(self) -> &'static str {
        match self {
            DataAlg::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            DataAlg::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        }
    }

    /// Returns `IV || ciphertext [|| tag]`, the CipherValue octets xmlenc expects.
    fn encrypt(self, key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        match self {
            DataAlg::Aes256Gcm => {
                let iv = random::<12>()?;
                let mut tag = [0u8; 16];
                let ct = symm::encrypt_aead(
                    Cipher::aes_256_gcm(),
                    key,
                    Some(&iv),
                    &[],
                    plaintext,
                    &mut tag,
                )?;
                Ok([&iv[..], &ct, &tag].concat())
            }
            DataAlg::Aes256Cbc => {
                // OpenSSL's PKCS#7 padding is a valid instance of xmlenc's padding scheme.
                let iv = random::<16>()?;
                let ct = symm::encrypt(Cipher::aes_256_cbc(), key, Some(&iv), plaintext)?;
                Ok([&iv[..], &ct].concat())
            }
        }
    }
}

impl KeyTransport {
    fn digest(self) -> MessageDigest {
        match self {
            KeyTransport::RsaOaepMgf1p => MessageDigest::sha1(),
            KeyTransport::RsaOaep11 => MessageDigest::sha256(),
        }
    }

    /// The `xenc:EncryptionMethod` element of the EncryptedKey, parameters spelled out.
    fn method_xml(self) -> String {
        match self {
            KeyTransport::RsaOaepMgf1p => format!(
                r#"<xenc:EncryptionMethod Algorithm="{XENC_NS}rsa-oaep-mgf1p"><ds:DigestMethod Algorithm="{DS_NS}sha1"/></xenc:EncryptionMethod>"#
            ),
            KeyTransport::RsaOaep11 => format!(
                r#"<xenc:EncryptionMethod Algorithm="{XENC11_NS}rsa-oaep"><ds:DigestMethod Algorithm="{XENC_NS}sha256"/><xenc11:MGF xmlns:xenc11="{XENC11_NS}" Algorithm="{XENC11_NS}mgf1sha256"/></xenc:EncryptionMethod>"#
            ),
        }
    }

    fn wrap(self, pkey: &PKey<Public>, key: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let mut enc = Encrypter::new(pkey)?;
        enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
        enc.set_rsa_oaep_md(self.digest())?;
        enc.set_rsa_mgf1_md(self.digest())?;
        let mut out = vec![0; enc.encrypt_len(key)?];
        let n = enc.encrypt(key, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

fn random<const N: usize>() -> Result<[u8; N], ErrorStack> {
    let mut buf = [0u8; N];
    openssl::rand::rand_bytes(&mut buf)?;
    Ok(buf)
}

/// A fresh XML ID (an NCName, hence the leading underscore).
fn new_id() -> Result<String, ErrorStack> {
    let hex: String = random::<16>()?.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("_{hex}"))
}

/// Extracts the SP's RSA public key, refusing anything but RSA of at least [`MIN_RSA_BITS`].
fn sp_public_key(sp_cert_der: &[u8]) -> Result<PKey<Public>, EncryptError> {
    let cert = X509::from_der(sp_cert_der).map_err(EncryptError::BadCertificate)?;
    let pkey = cert.public_key().map_err(EncryptError::BadCertificate)?;
    if pkey.id() != Id::RSA {
        return Err(EncryptError::NotRsa);
    }
    if pkey.bits() < MIN_RSA_BITS {
        return Err(EncryptError::KeyTooSmall(pkey.bits()));
    }
    Ok(pkey)
}

/// Encrypts `assertion` for the SP whose encryption certificate is `sp_cert_der`.
///
/// `assertion` is the complete, already-signed `<saml:Assertion ...>` element (bytes exactly as
/// signed; it may declare its own xmlns prefixes). `sp_cert_der` is the SP's encryption
/// certificate (X.509 DER) from its metadata. Only RSA keys (>= 2048 bits) are accepted.
pub fn encrypt_assertion(
    assertion: &str,
    sp_cert_der: &[u8],
    data: DataAlg,
    transport: KeyTransport,
) -> Result<String, EncryptError> {
    let pkey = sp_public_key(sp_cert_der)?;
    let content_key = random::<32>()?;
    let wrapped_key = B64.encode(transport.wrap(&pkey, &content_key)?);
    let cipher_value = B64.encode(data.encrypt(&content_key, assertion.as_bytes())?);

    Ok(format!(
        concat!(
            r#"<saml:EncryptedAssertion xmlns:saml="{saml}">"#,
            r#"<xenc:EncryptedData xmlns:xenc="{xenc}" Id="{data_id}" Type="{xenc}Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{data_alg}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="{ds}">"#,
            r#"<xenc:EncryptedKey Id="{key_id}">{key_method}"#,
            r#"<xenc:CipherData><xenc:CipherValue>{wrapped_key}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey>"#,
            r#"</ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{cipher_value}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData>"#,
            r#"</saml:EncryptedAssertion>"#,
        ),
        saml = SAML_NS,
        xenc = XENC_NS,
        ds = DS_NS,
        data_id = new_id()?,
        key_id = new_id()?,
        data_alg = data.uri(),
        key_method = transport.method_xml(),
        wrapped_key = wrapped_key,
        cipher_value = cipher_value,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::encrypt::Decrypter;
    use openssl::nid::Nid;
    use openssl::pkey::{PKeyRef, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;
    use std::process::Command;

    /// Signed-looking assertion with its own namespace declarations; the exact bytes must survive.
    const ASSERTION: &str = r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="_a1" IssueInstant="2025-01-01T00:00:00Z" Version="2.0"><saml:Issuer>https://idp.example/saml/metadata</saml:Issuer><saml:AttributeStatement><saml:Attribute Name="urn:oid:2.5.4.42"><saml:AttributeValue>Åsa &amp; Örjan</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#;

    fn self_signed(pkey: &PKeyRef<Private>) -> Vec<u8> {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sp.example").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(pkey).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(pkey, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    fn rsa_key(bits: u32) -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
    }

    /// Base64-decoded text of every `<xenc:CipherValue>`, in document order.
    fn cipher_values(xml: &str) -> Vec<Vec<u8>> {
        xml.split("<xenc:CipherValue>")
            .skip(1)
            .map(|s| B64.decode(s.split('<').next().unwrap()).unwrap())
            .collect()
    }

    fn decrypt_by_hand(xml: &str, key: &PKey<Private>, data: DataAlg, t: KeyTransport) -> String {
        let values = cipher_values(xml);
        assert_eq!(values.len(), 2);
        let (wrapped, blob) = (&values[0], &values[1]);

        let mut dec = Decrypter::new(key).unwrap();
        dec.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        dec.set_rsa_oaep_md(t.digest()).unwrap();
        dec.set_rsa_mgf1_md(t.digest()).unwrap();
        let mut ck = vec![0; dec.decrypt_len(wrapped).unwrap()];
        let n = dec.decrypt(wrapped, &mut ck).unwrap();
        ck.truncate(n);
        assert_eq!(ck.len(), 32);

        let plain = match data {
            DataAlg::Aes256Gcm => {
                let (iv, rest) = blob.split_at(12);
                let (ct, tag) = rest.split_at(rest.len() - 16);
                symm::decrypt_aead(Cipher::aes_256_gcm(), &ck, Some(iv), &[], ct, tag).unwrap()
            }
            DataAlg::Aes256Cbc => {
                let (iv, ct) = blob.split_at(16);
                symm::decrypt(Cipher::aes_256_cbc(), &ck, Some(iv), ct).unwrap()
            }
        };
        String::from_utf8(plain).unwrap()
    }

    #[test]
    fn round_trip_all_algorithms() {
        let key = rsa_key(2048);
        let cert = self_signed(&key);
        for data in [DataAlg::Aes256Gcm, DataAlg::Aes256Cbc] {
            for t in [KeyTransport::RsaOaepMgf1p, KeyTransport::RsaOaep11] {
                let xml = encrypt_assertion(ASSERTION, &cert, data, t).unwrap();
                assert!(xml.starts_with("<saml:EncryptedAssertion "));
                assert!(xml.contains(data.uri()));
                assert_eq!(decrypt_by_hand(&xml, &key, data, t), ASSERTION);
            }
        }
    }

    #[test]
    fn fresh_key_and_iv_per_call() {
        let cert = self_signed(&rsa_key(2048));
        let a = encrypt_assertion(
            ASSERTION,
            &cert,
            DataAlg::Aes256Gcm,
            KeyTransport::RsaOaep11,
        );
        let b = encrypt_assertion(
            ASSERTION,
            &cert,
            DataAlg::Aes256Gcm,
            KeyTransport::RsaOaep11,
        );
        let (a, b) = (cipher_values(&a.unwrap()), cipher_values(&b.unwrap()));
        assert_ne!(a[0], b[0]);
        assert_ne!(a[1][..12], b[1][..12]);
    }

    /// Decrypts with the xmlsec1 CLI (what pysaml2 runs); fails if xmlsec1 is not installed.
    fn xmlsec1_decrypt(xml: &str, key: &PKey<Private>) -> String {
        let dir = std::env::temp_dir();
        let unique = format!("portvakt-enc-{}-{}", std::process::id(), new_id().unwrap());
        let key_path = dir.join(format!("{unique}.key.pem"));
        let xml_path = dir.join(format!("{unique}.xml"));
        std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        std::fs::write(&xml_path, xml).unwrap();
        let out = Command::new("xmlsec1")
            .arg("--decrypt")
            .arg("--privkey-pem")
            .arg(&key_path)
            .arg(&xml_path)
            .output();
        let _ = std::fs::remove_file(&key_path);
        let _ = std::fs::remove_file(&xml_path);
        let out = out.expect("xmlsec1 must be installed (apt-get install xmlsec1)");
        assert!(
            out.status.success(),
            "xmlsec1 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn xmlsec1_decrypts() {
        // xmlsec1 re-serializes non-ASCII as character references, so compare ASCII only.
        let assertion = ASSERTION.replace("Åsa &amp; Örjan", "Asa &amp; Orjan");
        let key = rsa_key(2048);
        let cert = self_signed(&key);
        // xmlsec1 1.2.x does not know xmlenc11#rsa-oaep (added in 1.3), so only mgf1p here.
        let t = KeyTransport::RsaOaepMgf1p;
        for data in [DataAlg::Aes256Gcm, DataAlg::Aes256Cbc] {
            let xml = encrypt_assertion(&assertion, &cert, data, t).unwrap();
            let out = xmlsec1_decrypt(&xml, &key);
            // The EncryptedData is replaced in place by the assertion, bytes unchanged.
            let expected = format!(
                r#"<saml:EncryptedAssertion xmlns:saml="{SAML_NS}">{assertion}</saml:EncryptedAssertion>"#
            );
            assert!(out.contains(&expected), "{data:?}: {out}");
        }
    }

    #[test]
    fn refuses_ec_and_small_rsa() {
        let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap());
        let ec_cert = self_signed(&PKey::from_ec_key(ec.unwrap()).unwrap());
        let small_cert = self_signed(&rsa_key(1024));
        let (d, t) = (DataAlg::Aes256Gcm, KeyTransport::RsaOaepMgf1p);
        assert!(matches!(
            encrypt_assertion(ASSERTION, &ec_cert, d, t),
            Err(EncryptError::NotRsa)
        ));
        assert!(matches!(
            encrypt_assertion(ASSERTION, &small_cert, d, t),
            Err(EncryptError::KeyTooSmall(1024))
        ));
        assert!(matches!(
            encrypt_assertion(ASSERTION, b"not a cert", d, t),
            Err(EncryptError::BadCertificate(_))
        ));
    }
}
