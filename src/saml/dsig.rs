//! XML signatures and the HTTP-Redirect binding's query signatures. The XML work is done by
//! libxmlsec1 through samael's `Crypto`; this is the one place that calls it, behind three
//! functions (sign, verify-and-reduce, redirect query), so the engine could be swapped.
//!
//! Rules kept here (DEPENDENCIES.md §2.4): templates name SHA-256 digests; the bytes libxmlsec1
//! returns are the bytes sent, never re-serialised; a received document is verified as a whole
//! and only the signed, reduced document is read afterwards (no signature wrapping); SHA-1 is
//! refused.

use base64::{Engine, engine::general_purpose::STANDARD};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// What we accept on signatures we verify: SHA-2 only.
const ALLOWED: [AllowedSignatureAlgorithm; 5] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
];

#[derive(Debug, thiserror::Error)]
pub enum DsigError {
    #[error("the signature does not verify")]
    Invalid,
    #[error("the signature algorithm {0} is not accepted (SHA-1 is refused)")]
    Algorithm(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An enveloped-signature template for the element with `ID="id"`, to be placed right after
/// its Issuer. The certificate goes in KeyInfo so SPs can pick the right key during rotation.
pub fn template(id: &str, cert_b64: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{RSA_SHA256}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

/// Signs the first signature template in `xml` with an RSA key (PKCS#8 DER) and returns the
/// signed document without the XML declaration (so it can be embedded as it is).
pub fn sign(xml: &str, key_der: &[u8]) -> Result<String, DsigError> {
    let signed = Crypto::sign_xml(xml, key_der).map_err(|e| DsigError::Sign(e.to_string()))?;
    Ok(strip_declaration(&signed).to_string())
}

fn strip_declaration(s: &str) -> &str {
    let s = s.trim_start();
    match s.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(s, |(_, r)| r.trim_start()),
        None => s,
    }
    .trim_end()
}

/// Verifies every signature in `xml` against the certificates (DER) and returns the document
/// reduced to what the signature covers, rooted at the signed element.
pub fn verify_and_reduce(xml: &str, certs: &[Vec<u8>]) -> Result<String, DsigError> {
    if certs.is_empty() {
        return Err(DsigError::Invalid);
    }
    if let Some(alg) = weak_algorithm(xml) {
        return Err(DsigError::Algorithm(alg));
    }
    let certs: Vec<CertificateDer> = certs.iter().map(|c| c.clone().into()).collect();
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALLOWED),
    )
    .map_err(|_| DsigError::Invalid)
}

/// A SHA-1 signature or digest method named anywhere in the document, for a clear error
/// (libxmlsec1 would refuse it too, with a less helpful one).
fn weak_algorithm(xml: &str) -> Option<String> {
    [
        "xmldsig#rsa-sha1",
        "xmldsig#sha1",
        "xmldsig#dsa-sha1",
        "xmldsig-more#ecdsa-sha1",
    ]
    .iter()
    .find(|a| xml.contains(*a))
    .map(|a| a.to_string())
}

/// Verifies an HTTP-Redirect binding signature (SAML Bindings §3.4.4.1) over the query string
/// exactly as received: the raw `SAMLRequest`/`SAMLResponse`, `RelayState` and `SigAlg`
/// parameters, in that order, joined with `&`, without decoding or re-encoding anything.
pub fn verify_redirect(raw_query: &str, certs: &[Vec<u8>]) -> Result<(), DsigError> {
    let raw = |name: &str| {
        raw_query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let message = raw("SAMLRequest")
        .map(|v| ("SAMLRequest", v))
        .or_else(|| raw("SAMLResponse").map(|v| ("SAMLResponse", v)))
        .ok_or(DsigError::Invalid)?;
    let sig_alg_raw = raw("SigAlg").ok_or(DsigError::Invalid)?;
    let sig_alg = url::form_urlencoded::parse(format!("a={sig_alg_raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let digest = match sig_alg.as_str() {
        RSA_SHA256 | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => {
            openssl::hash::MessageDigest::sha256()
        }
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => {
            openssl::hash::MessageDigest::sha384()
        }
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => {
            openssl::hash::MessageDigest::sha512()
        }
        other => return Err(DsigError::Algorithm(other.to_string())),
    };
    let signature = raw("Signature")
        .and_then(|s| {
            url::form_urlencoded::parse(format!("a={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        })
        .and_then(|s| STANDARD.decode(s.as_bytes()).ok())
        .ok_or(DsigError::Invalid)?;
    let mut signed = format!("{}={}", message.0, message.1);
    if let Some(relay) = raw("RelayState") {
        signed.push_str("&RelayState=");
        signed.push_str(relay);
    }
    signed.push_str("&SigAlg=");
    signed.push_str(sig_alg_raw);
    for cert in certs {
        let Ok(key) = openssl::x509::X509::from_der(cert).and_then(|c| c.public_key()) else {
            continue;
        };
        let ok = openssl::sign::Verifier::new(digest, &key)
            .and_then(|mut v| {
                v.update(signed.as_bytes())?;
                v.verify(&signature)
            })
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
    }
    Err(DsigError::Invalid)
}

/// Builds a signed HTTP-Redirect query: `param=…[&RelayState=…]&SigAlg=…&Signature=…`.
pub fn sign_redirect(
    param: &str,
    deflated_b64: &str,
    relay_state: Option<&str>,
    key_der: &[u8],
) -> Result<String, DsigError> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut q = format!("{param}={}", enc(deflated_b64));
    if let Some(r) = relay_state {
        q.push_str("&RelayState=");
        q.push_str(&enc(r));
    }
    q.push_str("&SigAlg=");
    q.push_str(&enc(RSA_SHA256));
    let key = openssl::pkey::PKey::private_key_from_pkcs8(key_der)
        .map_err(|e| DsigError::Sign(e.to_string()))?;
    let sig = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
        .and_then(|mut s| {
            s.update(q.as_bytes())?;
            s.sign_to_vec()
        })
        .map_err(|e| DsigError::Sign(e.to_string()))?;
    q.push_str("&Signature=");
    q.push_str(&enc(&STANDARD.encode(sig)));
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_is_stripped() {
        assert_eq!(strip_declaration("<?xml version=\"1.0\"?>\n<a/>\n"), "<a/>");
        assert_eq!(strip_declaration("<a/>"), "<a/>");
    }

    #[test]
    fn sha1_is_named() {
        let x = r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>"#;
        assert!(matches!(
            verify_and_reduce(x, &[vec![1]]),
            Err(DsigError::Algorithm(_))
        ));
    }
}
