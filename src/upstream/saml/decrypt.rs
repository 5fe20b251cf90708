//! Opens a `<saml:EncryptedAssertion>` with our SP encryption key (openssl).
//!
//! Only AES-GCM content encryption (128 or 256) with the key transported by RSA-OAEP
//! (`xmlenc#rsa-oaep-mgf1p`, or `xmlenc11#rsa-oaep` with SHA-1/SHA-256 digest and MGF1) is
//! accepted: CBC is open to a padding oracle and PKCS#1 v1.5 key transport to Bleichenbacher,
//! and merely accepting them would undermine the GCM users (§4.6). Every failure is the same
//! `Undecryptable`, so a sender learns nothing about which step failed.

use crate::xmlsec::xml::{DS, Element};
use base64::{Engine, engine::general_purpose::STANDARD};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, decrypt_aead};

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";

/// The one error of decryption, whatever went wrong.
#[derive(Debug, thiserror::Error)]
#[error("the encrypted assertion cannot be decrypted")]
pub struct Undecryptable;

fn b64(el: &Element) -> Option<Vec<u8>> {
    let v = el.child(XENC, "CipherData")?.child(XENC, "CipherValue")?;
    let compact: String = v.text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

fn digest_of(uri: Option<&str>) -> Option<MessageDigest> {
    match uri {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Some(MessageDigest::sha1()),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Some(MessageDigest::sha256()),
        _ => None,
    }
}

/// Unwraps the content key of an `xenc:EncryptedKey` with our RSA key.
fn unwrap_key(ek: &Element, key_pkcs8: &[u8]) -> Option<Vec<u8>> {
    let method = ek.child(XENC, "EncryptionMethod")?;
    let digest = digest_of(
        method
            .child(DS, "DigestMethod")
            .and_then(|d| d.attr("Algorithm")),
    )?;
    if method.child(XENC, "OAEPparams").is_some() {
        return None;
    }
    let mgf = match method.attr("Algorithm")? {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" => MessageDigest::sha1(),
        "http://www.w3.org/2009/xmlenc11#rsa-oaep" => {
            match method
                .child(XENC11, "MGF")
                .and_then(|m| m.attr("Algorithm"))
            {
                None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1") => MessageDigest::sha1(),
                Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => MessageDigest::sha256(),
                _ => return None,
            }
        }
        _ => return None,
    };
    let wrapped = b64(ek)?;
    let key = PKey::private_key_from_pkcs8(key_pkcs8).ok()?;
    let mut d = openssl::encrypt::Decrypter::new(&key).ok()?;
    d.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    d.set_rsa_oaep_md(digest).ok()?;
    d.set_rsa_mgf1_md(mgf).ok()?;
    let mut out = vec![0; d.decrypt_len(&wrapped).ok()?];
    let n = d.decrypt(&wrapped, &mut out).ok()?;
    out.truncate(n);
    Some(out)
}

/// The plaintext of an EncryptedAssertion: the assertion's bytes as the IdP signed them.
/// The EncryptedKey may sit in the EncryptedData's KeyInfo or beside the EncryptedData
/// (Shibboleth's layout); exactly one is accepted.
pub fn decrypt(encrypted: &Element, key_pkcs8: &[u8]) -> Result<String, Undecryptable> {
    open(encrypted, key_pkcs8).ok_or(Undecryptable)
}

fn open(encrypted: &Element, key_pkcs8: &[u8]) -> Option<String> {
    let mut datas = encrypted.children(XENC, "EncryptedData");
    let data = datas.next()?;
    if datas.next().is_some() {
        return None;
    }
    let cipher = match data.child(XENC, "EncryptionMethod")?.attr("Algorithm")? {
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => Cipher::aes_128_gcm(),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => Cipher::aes_256_gcm(),
        _ => return None,
    };
    let mut keys: Vec<&Element> = encrypted.children(XENC, "EncryptedKey").collect();
    if let Some(ki) = data.child(DS, "KeyInfo") {
        keys.extend(ki.children(XENC, "EncryptedKey"));
    }
    let [ek] = keys.as_slice() else {
        return None;
    };
    let content_key = unwrap_key(ek, key_pkcs8)?;
    if content_key.len() != cipher.key_len() {
        return None;
    }
    let blob = b64(data)?;
    if blob.len() < 12 + 16 {
        return None;
    }
    let (iv, rest) = blob.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let plain = decrypt_aead(cipher, &content_key, Some(iv), &[], ct, tag).ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmlsec::xml;

    /// An EncryptedAssertion as another implementation lays it out: GCM data, the key
    /// wrapped with xmlenc11 RSA-OAEP (SHA-256, MGF1-SHA256), the EncryptedKey beside the
    /// EncryptedData.
    fn encrypt(plain: &str, cert_der: &[u8], data_alg: &str) -> String {
        let cert = openssl::x509::X509::from_der(cert_der).unwrap();
        let pk = cert.public_key().unwrap();
        let ck = [7u8; 32];
        let mut e = openssl::encrypt::Encrypter::new(&pk).unwrap();
        e.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        e.set_rsa_oaep_md(MessageDigest::sha256()).unwrap();
        e.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
        let mut wrapped = vec![0; e.encrypt_len(&ck).unwrap()];
        let n = e.encrypt(&ck, &mut wrapped).unwrap();
        wrapped.truncate(n);
        let iv = [1u8; 12];
        let mut tag = [0u8; 16];
        let ct = openssl::symm::encrypt_aead(
            Cipher::aes_256_gcm(),
            &ck,
            Some(&iv),
            &[],
            plain.as_bytes(),
            &mut tag,
        )
        .unwrap();
        let blob = STANDARD.encode([&iv[..], &ct, &tag].concat());
        format!(
            r#"<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xenc="{XENC}" xmlns:ds="{DS}"><xenc:EncryptedData><xenc:EncryptionMethod Algorithm="{data_alg}"/><xenc:CipherData><xenc:CipherValue>{blob}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{XENC11}rsa-oaep"><ds:DigestMethod Algorithm="{XENC}sha256"/><xenc11:MGF xmlns:xenc11="{XENC11}" Algorithm="{XENC11}mgf1sha256"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></saml:EncryptedAssertion>"#,
            STANDARD.encode(wrapped)
        )
    }

    #[test]
    fn gcm_with_oaep_opens_and_anything_else_is_one_error() {
        let key = super::super::tests::rsa_pkcs8();
        let cert = super::super::certificate(&key, "sp").unwrap();
        let gcm = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
        let doc = encrypt("<a>å</a>", &cert, gcm);
        assert_eq!(
            decrypt(&xml::parse(&doc).unwrap(), &key).unwrap(),
            "<a>å</a>"
        );
        // CBC named: refused even though the rest is fine.
        let cbc = doc.replace(gcm, "http://www.w3.org/2001/04/xmlenc#aes256-cbc");
        assert!(decrypt(&xml::parse(&cbc).unwrap(), &key).is_err());
        // Another key, a flipped ciphertext byte: the same error.
        let other = super::super::tests::rsa_pkcs8();
        assert!(decrypt(&xml::parse(&doc).unwrap(), &other).is_err());
        let v = doc.split("<xenc:CipherValue>").nth(1).unwrap();
        let v = v.split('<').next().unwrap();
        let mut raw = STANDARD.decode(v).unwrap();
        raw[13] ^= 1;
        let flipped = doc.replace(v, &STANDARD.encode(raw));
        assert!(decrypt(&xml::parse(&flipped).unwrap(), &key).is_err());
    }
}
