//! XML signatures and the HTTP-Redirect binding's query signatures, behind a few functions
//! (sign, verify-and-reduce, the redirect query) so the engine could be swapped.
//!
//! Signing is done here, not by libxmlsec1: every document we sign is one we wrote, so its
//! exclusive canonical form is computed by `c14n` from our own text, digested with SHA-256,
//! and the canonical SignedInfo signed with RSA-SHA256 by an OpenSSL key decoded once per
//! key (`loaded_key`). libxmlsec1 used to decode the PKCS#8 key and set up a fresh RSA
//! object (blinding included) on every signature: about 3 ms of a 4–5 ms SSO. Verifying
//! received messages stays with libxmlsec1 through samael's `Crypto`, and libxmlsec1 (and
//! every SP in the interop tests) checks what we sign.
//!
//! Rules kept here (DEPENDENCIES.md §2.4): templates name SHA-256 digests; the bytes we sign
//! are the bytes sent, never re-serialised; a received document is verified as a whole
//! and only the signed, reduced document is read afterwards (no signature wrapping); SHA-1 is
//! refused.

use super::xml::{DS, Element};
use base64::{Engine, engine::general_purpose::STANDARD};
use openssl::pkey::{PKey, Private};
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

/// Signs the signature template that is a child of the root of `xml` (made by `template`
/// for the root's ID) with an RSA key (PKCS#8 DER) and returns the signed document without
/// an XML declaration (so it can be embedded as it is).
pub fn sign(xml: &str, key_der: &[u8]) -> Result<String, DsigError> {
    let key = loaded_key(key_der)?;
    let xml = strip_declaration(xml);
    let canonical =
        super::c14n::exclusive(xml, true).map_err(|e| DsigError::Sign(e.to_string()))?;
    let (Some(span), Some(id)) = (canonical.signature, canonical.root_id) else {
        return Err(DsigError::Sign("no signature template for the root".into()));
    };
    let digest = STANDARD.encode(openssl::sha::sha256(&canonical.bytes));
    let info = signed_info(&id, &digest);
    let value = rsa_sha256(&key, info.as_bytes())?;
    let template = &xml[span.clone()];
    let filled = template
        .replacen(
            "<ds:DigestValue></ds:DigestValue>",
            &format!("<ds:DigestValue>{digest}</ds:DigestValue>"),
            1,
        )
        .replacen(
            "<ds:SignatureValue></ds:SignatureValue>",
            &format!(
                "<ds:SignatureValue>{}</ds:SignatureValue>",
                STANDARD.encode(value)
            ),
            1,
        );
    if filled.len() == template.len() {
        return Err(DsigError::Sign("the signature template is not ours".into()));
    }
    Ok([&xml[..span.start], &filled, &xml[span.end..]].concat())
}

/// The exclusive canonical form of the SignedInfo that `template` makes, with its digest:
/// what the signature value signs (the template's SignedInfo, canonicalized; a test checks
/// it against libxml2's canonical form of the template).
fn signed_info(id: &str, digest_b64: &str) -> String {
    let mut uri = Vec::new();
    super::c14n::escape_attr(&format!("#{id}"), &mut uri);
    let uri = String::from_utf8_lossy(&uri);
    format!(
        r#"<ds:SignedInfo xmlns:ds="{DS}"><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm="{RSA_SHA256}"></ds:SignatureMethod><ds:Reference URI="{uri}"><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"></ds:Transform><ds:Transform Algorithm="{EXC_C14N}"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod><ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference></ds:SignedInfo>"#
    )
}

fn rsa_sha256(key: &PKey<Private>, msg: &[u8]) -> Result<Vec<u8>, DsigError> {
    openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key)
        .and_then(|mut s| {
            s.update(msg)?;
            s.sign_to_vec()
        })
        .map_err(|e| DsigError::Sign(e.to_string()))
}

/// Signing keys decoded once, by their PKCS#8 DER. Decoding the DER and setting up a new
/// RSA object (its blinding and Montgomery values) costs three times the signature itself;
/// an OpenSSL key is safe to share between threads. The DER is the key's identity, so the
/// callers (the IdP's `Credential`, the upstream client's SP key) keep passing bytes. Keys
/// change only on rotation; the map is emptied if it ever holds more than a few.
fn loaded_key(der: &[u8]) -> Result<PKey<Private>, DsigError> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, RwLock};
    static LOADED: LazyLock<RwLock<HashMap<Vec<u8>, PKey<Private>>>> =
        LazyLock::new(Default::default);
    const MAX_KEYS: usize = 16;
    if let Some(k) = LOADED.read().ok().and_then(|m| m.get(der).cloned()) {
        return Ok(k);
    }
    let key = PKey::private_key_from_pkcs8(der).map_err(|e| DsigError::Sign(e.to_string()))?;
    if key.rsa().is_err() {
        return Err(DsigError::Sign("not an RSA key".into()));
    }
    let mut m = match LOADED.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if m.len() >= MAX_KEYS {
        m.clear();
    }
    m.insert(der.to_vec(), key.clone());
    Ok(key)
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

/// The only signature shape accepted on a message we verify, checked with our own reader
/// before libxmlsec1 sees the document: libxmlsec1 runs every Reference's transforms (XPath,
/// XSLT included) and dereferences KeyInfo before it checks the SignatureValue, so an
/// unauthenticated sender could otherwise make it do unbounded work.
///
/// Exactly one ds:Signature in the document, a child of the root; one Reference, to `#` + the
/// root's ID; transforms enveloped-signature then exclusive c14n (optionally with
/// InclusiveNamespaces); no Manifest, no Object; KeyInfo only with inline data. Anything else
/// is refused as a bad signature.
pub fn precheck(root: &Element) -> Result<(), DsigError> {
    let mut found = Vec::new();
    root.descendants(DS, "Signature", &mut found);
    if found.len() != 1 {
        return Err(DsigError::Invalid);
    }
    no_indirection(root)?;
    precheck_signature_of(root)
}

/// No ds:Manifest, ds:Object or ds:RetrievalMethod anywhere in the document: nothing that
/// makes libxmlsec1 dereference or verify more than the one Reference.
pub fn no_indirection(root: &Element) -> Result<(), DsigError> {
    for name in ["Manifest", "Object", "RetrievalMethod"] {
        let mut v = Vec::new();
        root.descendants(DS, name, &mut v);
        if !v.is_empty() {
            return Err(DsigError::Invalid);
        }
    }
    Ok(())
}

/// The shape `precheck` accepts, for the ds:Signature that is a direct child of `signed`
/// (exactly one): one Reference, to `#` + `signed`'s ID, the two fixed transforms, inline
/// keys only. For a document with more than one signed element (a Response and its
/// Assertion), the caller counts the signatures and checks each signed element with this.
pub fn precheck_signature_of(root: &Element) -> Result<(), DsigError> {
    let bad = || DsigError::Invalid;
    if root.children(DS, "Signature").count() != 1 {
        return Err(bad());
    }
    let sig = root.child(DS, "Signature").ok_or_else(bad)?;
    let only = |el: &Element, allowed: &[&str]| {
        el.children
            .iter()
            .all(|c| c.ns == DS && allowed.contains(&c.name.as_str()))
    };
    if !only(sig, &["SignedInfo", "SignatureValue", "KeyInfo"])
        || sig.children(DS, "SignedInfo").count() != 1
    {
        return Err(bad());
    }
    let info = sig.child(DS, "SignedInfo").ok_or_else(bad)?;
    if !only(
        info,
        &["CanonicalizationMethod", "SignatureMethod", "Reference"],
    ) || info.children(DS, "Reference").count() != 1
    {
        return Err(bad());
    }
    let reference = info.child(DS, "Reference").ok_or_else(bad)?;
    let id = root.attr("ID").filter(|i| !i.is_empty()).ok_or_else(bad)?;
    if reference.attr("URI") != Some(format!("#{id}").as_str())
        || !only(reference, &["Transforms", "DigestMethod", "DigestValue"])
        || reference.children(DS, "Transforms").count() != 1
    {
        return Err(bad());
    }
    let transforms = &reference.child(DS, "Transforms").ok_or_else(bad)?.children;
    let [enveloped, c14n] = transforms.as_slice() else {
        return Err(bad());
    };
    let transform_ok =
        |t: &Element, alg: &str| t.is(DS, "Transform") && t.attr("Algorithm") == Some(alg);
    let inclusive_ok = match c14n.children.as_slice() {
        [] => true,
        [n] => n.is(EXC_C14N, "InclusiveNamespaces") && n.children.is_empty(),
        _ => false,
    };
    if !transform_ok(enveloped, ENVELOPED)
        || !enveloped.children.is_empty()
        || !transform_ok(c14n, EXC_C14N)
        || !inclusive_ok
    {
        return Err(bad());
    }
    if let Some(key_info) = sig.child(DS, "KeyInfo") {
        // Inline keys only: nothing that points elsewhere (a URI) for libxmlsec1 to fetch.
        if !only(key_info, &["X509Data", "KeyName", "KeyValue"]) || has_uri(key_info) {
            return Err(bad());
        }
    }
    Ok(())
}

fn has_uri(el: &Element) -> bool {
    el.attr("URI").is_some() || el.children.iter().any(has_uri)
}

/// At most `limit` verifications run at once, at most `queue` wait for a slot; beyond that,
/// or after waiting too long, a message is refused at once rather than piling up.
pub struct Gate {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
}

/// No verification slot: the message is refused (an error page).
#[derive(Debug)]
pub struct Busy;

/// How long a message may wait for a slot.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Gate {
    pub fn new(limit: usize, queue: usize) -> Self {
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(limit.max(1))),
            waiting: Default::default(),
            queue,
        }
    }

    /// Runs `f` (libxmlsec1 work) on a blocking thread once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        use std::sync::atomic::Ordering;
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Busy);
                }
                let p = tokio::time::timeout(GATE_WAIT, self.slots.clone().acquire_owned()).await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match p {
                    Ok(Ok(p)) => p,
                    _ => return Err(Busy),
                }
            }
        };
        // The slot stays taken until libxmlsec1 is done, even if the client went away.
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| Busy)
    }
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

/// An HTTP-Redirect query, parsed once: the (name, value) pairs exactly as received. The
/// signature check and the handler both read the message, RelayState, SigAlg and Signature
/// from here, so they cannot see different parameters.
#[derive(Debug, Clone, Default)]
pub struct RedirectQuery {
    pairs: Vec<(String, String)>,
}

impl RedirectQuery {
    /// None for a query with a percent-encoded (or `+`) parameter name or a name given twice:
    /// a decoding reader and a raw one would disagree on which value is meant. None too for
    /// more than `MAX_PARAMS` parameters: the binding defines four, and the cap keeps the
    /// duplicate check cheap for a hostile query of thousands.
    pub fn parse(raw: &str) -> Option<Self> {
        const MAX_PARAMS: usize = 16;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for kv in raw.split('&').filter(|kv| !kv.is_empty()) {
            let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
            if pairs.len() == MAX_PARAMS
                || name.contains(['%', '+'])
                || pairs.iter().any(|(n, _)| n == name)
            {
                return None;
            }
            pairs.push((name.to_string(), value.to_string()));
        }
        Some(Self { pairs })
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter's value, form-decoded.
    pub fn decoded(&self, name: &str) -> Option<String> {
        self.raw(name).map(|v| {
            url::form_urlencoded::parse(format!("a={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// The message parameter: exactly one of SAMLRequest and SAMLResponse, else None.
    pub fn message_param(&self) -> Option<&'static str> {
        match (self.has("SAMLRequest"), self.has("SAMLResponse")) {
            (true, false) => Some("SAMLRequest"),
            (false, true) => Some("SAMLResponse"),
            _ => None,
        }
    }
}

/// Verifies an HTTP-Redirect binding signature (SAML Bindings §3.4.4.1) over the query string
/// exactly as received: the raw message parameter (`RedirectQuery::message_param`, the one the
/// handler reads), `RelayState` and `SigAlg`, in that order, joined with `&`, without decoding
/// or re-encoding anything.
pub fn verify_redirect(query: &RedirectQuery, certs: &[Vec<u8>]) -> Result<(), DsigError> {
    let param = query.message_param().ok_or(DsigError::Invalid)?;
    let message = query.raw(param).ok_or(DsigError::Invalid)?;
    let sig_alg_raw = query.raw("SigAlg").ok_or(DsigError::Invalid)?;
    let sig_alg = query.decoded("SigAlg").unwrap_or_default();
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
    let signature = query
        .decoded("Signature")
        .and_then(|s| STANDARD.decode(s.as_bytes()).ok())
        .ok_or(DsigError::Invalid)?;
    let mut signed = format!("{param}={message}");
    if let Some(relay) = query.raw("RelayState") {
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
    let sig = rsa_sha256(&loaded_key(key_der)?, q.as_bytes())?;
    q.push_str("&Signature=");
    q.push_str(&enc(&STANDARD.encode(sig)));
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SignedInfo we sign is libxml2's canonical form of the SignedInfo the template
    /// carries once filled in (with an ID that needs escaping, which ours never do).
    #[test]
    fn signed_info_is_the_canonical_form_of_the_template() {
        for id in ["_abc123", "_a&b<\"c"] {
            let esc_id = super::super::xml::esc(id);
            let t = template(&esc_id, "AAAA").replace(
                "<ds:DigestValue></ds:DigestValue>",
                "<ds:DigestValue>ZGlnZXN0</ds:DigestValue>",
            );
            let from = t.find("<ds:SignedInfo>").unwrap();
            let to = t.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len();
            let alone = t[from..to].replacen(
                "<ds:SignedInfo>",
                &format!(r#"<ds:SignedInfo xmlns:ds="{DS}">"#),
                1,
            );
            assert_eq!(
                signed_info(id, "ZGlnZXN0"),
                super::super::c14n::libxml2_exclusive(&alone)
            );
        }
    }

    #[test]
    fn a_document_without_our_template_is_not_signed() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let der = key.private_key_to_pkcs8().unwrap();
        assert!(sign("<a ID=\"_x\"><b/></a>", &der).is_err());
        let nested = format!("<a ID=\"_x\"><b>{}</b></a>", template("_x", "AAAA"));
        assert!(sign(&nested, &der).is_err());
        let ok = format!("<a ID=\"_x\">{}<b/></a>", template("_x", "AAAA"));
        assert!(sign(&ok, &der).is_ok());
        assert!(sign(&ok, b"not a key").is_err());
    }

    #[test]
    fn declaration_is_stripped() {
        assert_eq!(strip_declaration("<?xml version=\"1.0\"?>\n<a/>\n"), "<a/>");
        assert_eq!(strip_declaration("<a/>"), "<a/>");
    }

    const ID: &str = "_r1";

    fn reference(transforms: &str) -> String {
        format!(
            r##"<ds:Reference URI="#{ID}"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue>AA==</ds:DigestValue></ds:Reference>"##
        )
    }

    fn good_transforms() -> String {
        format!(r#"<ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"/>"#)
    }

    fn signature(references: &str, extra: &str) -> String {
        format!(
            r#"<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{RSA_SHA256}"/>{references}</ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue>{extra}</ds:Signature>"#
        )
    }

    /// A request with `inside` as the root's content after the Issuer.
    fn doc(inside: &str) -> String {
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="{DS}" ID="{ID}"><saml:Issuer>sp</saml:Issuer>{inside}</samlp:AuthnRequest>"#
        )
    }

    fn check(xml_text: &str) -> bool {
        precheck(&crate::xmlsec::xml::parse(xml_text).unwrap()).is_ok()
    }

    #[test]
    fn the_precheck_accepts_our_own_template_shape() {
        assert!(check(&doc(&template(ID, "AAAA"))));
        assert!(check(&doc(&signature(&reference(&good_transforms()), ""))));
        let inclusive = format!(
            r#"<ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"><ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="xs"/></ds:Transform>"#
        );
        assert!(check(&doc(&signature(&reference(&inclusive), ""))));
    }

    #[test]
    fn the_precheck_refuses_every_other_shape() {
        let good = signature(&reference(&good_transforms()), "");
        // No signature, two signatures, one below the root.
        assert!(!check(&doc("")));
        assert!(!check(&doc(&format!("{good}{good}"))));
        assert!(!check(&doc(&format!(
            "<samlp:Extensions>{good}</samlp:Extensions>"
        ))));
        // Wrong, empty or missing Reference URI; two References.
        let r = reference(&good_transforms());
        let uri = "URI=\"#_r1\"";
        assert!(!check(&doc(&signature(&r.replace(uri, "URI=\"#_x\""), ""))));
        assert!(!check(&doc(&signature(&r.replace(uri, "URI=\"\""), ""))));
        assert!(!check(&doc(&signature(&r.replace(uri, ""), ""))));
        assert!(!check(&doc(&signature(&format!("{r}{r}"), ""))));
        // Transforms: an XPath or XSLT one before or after, the wrong order, one missing.
        let xpath = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>count(//. | //@* | //namespace::*)</ds:XPath></ds:Transform>"#;
        let xslt = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"/></ds:Transform>"#;
        for extra in [xpath, xslt] {
            let t = format!("{}{extra}", good_transforms());
            assert!(!check(&doc(&signature(&reference(&t), ""))));
            let t = format!("{extra}{}", good_transforms());
            assert!(!check(&doc(&signature(&reference(&t), ""))));
        }
        let swapped = format!(
            r#"<ds:Transform Algorithm="{EXC_C14N}"/><ds:Transform Algorithm="{ENVELOPED}"/>"#
        );
        assert!(!check(&doc(&signature(&reference(&swapped), ""))));
        let one = format!(r#"<ds:Transform Algorithm="{ENVELOPED}"/>"#);
        assert!(!check(&doc(&signature(&reference(&one), ""))));
        // Object, Manifest (in the signature or anywhere), KeyInfo that points elsewhere.
        assert!(!check(&doc(&signature(
            &r,
            "<ds:Object><ds:Manifest/></ds:Object>"
        ))));
        assert!(!check(&doc(&format!(
            "{good}<samlp:Extensions><ds:Manifest/></samlp:Extensions>"
        ))));
        let retrieval =
            r#"<ds:KeyInfo><ds:RetrievalMethod URI="http://evil.example/k"/></ds:KeyInfo>"#;
        assert!(!check(&doc(&signature(&r, retrieval))));
        let x509 = "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>AA==</ds:X509Certificate></ds:X509Data></ds:KeyInfo>";
        assert!(check(&doc(&signature(&r, x509))));
        // The root must carry the ID the Reference names.
        assert!(!check(&doc(&good).replace("ID=\"_r1\"", "ID=\"_r2\"")));
    }

    #[tokio::test]
    async fn the_gate_refuses_beyond_its_queue() {
        let gate = std::sync::Arc::new(Gate::new(1, 0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let g = gate.clone();
        let held = tokio::spawn(async move { g.run(move || rx.recv().ok()).await });
        while gate.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(gate.run(|| ()).await.is_err(), "no queue: refused at once");
        tx.send(()).unwrap();
        assert!(held.await.unwrap().is_ok());
        assert!(gate.run(|| ()).await.is_ok());
    }

    #[test]
    fn redirect_queries_with_encoded_or_repeated_names_are_refused() {
        assert!(RedirectQuery::parse("SAMLRequest=a&RelayState=b%20c").is_some());
        assert!(RedirectQuery::parse("%53AMLRequest=a").is_none());
        assert!(RedirectQuery::parse("SAMLRequest=a&Relay%53tate=b").is_none());
        assert!(RedirectQuery::parse("SAMLRequest=a&SAML+Request=b").is_none());
        assert!(RedirectQuery::parse("SAMLRequest=a&SAMLRequest=b").is_none());
        let many: Vec<String> = (0..17).map(|i| format!("p{i}=")).collect();
        assert!(RedirectQuery::parse(&many[..16].join("&")).is_some());
        assert!(RedirectQuery::parse(&many.join("&")).is_none());
        let q = RedirectQuery::parse("SAMLRequest=a%2Bb&RelayState=x+y").unwrap();
        assert_eq!(q.decoded("SAMLRequest").as_deref(), Some("a+b"));
        assert_eq!(q.decoded("RelayState").as_deref(), Some("x y"));
        assert_eq!(q.message_param(), Some("SAMLRequest"));
        let both = RedirectQuery::parse("SAMLRequest=a&SAMLResponse=b").unwrap();
        assert_eq!(both.message_param(), None);
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
