//! Validating a Response POSTed to our ACS (specs/upstream-idps.md §4.4), strictly.
//!
//! The order: decode with a size bound; read the whole document with our reader (no DTD);
//! refuse duplicate IDs and any shape but exactly one Assertion (or EncryptedAssertion) as a
//! direct child of the Response; check every ds:Signature's shape before libxmlsec1 sees it;
//! verify with the IdP's metadata certificates only; then read ONLY the signed, reduced
//! document libxmlsec1 returns.
//!
//! The Assertion itself must be signed (our metadata says WantAssertionsSigned): a signature
//! on the Response alone is not enough, so a signed Response wrapping an unsigned Assertion is
//! refused. A Response signature, when present, is checked too (libxmlsec1 verifies every
//! signature in the document) but never relied on. Reading exactly the verified Assertion:
//! the reduced document is rooted at the Assertion (only it was signed) or at the Response
//! (both were), and in the latter the one Assertion child is taken, and its ID must be the
//! ID the precheck saw carrying the signature. Response-level fields (Status, Destination,
//! InResponseTo) are read from the whole document only to refuse, never to accept.
//!
//! An EncryptedAssertion is decrypted first (`decrypt`), and the inner Assertion's own
//! signature is then checked and verified over the decrypted bytes as a document of its
//! own; a failure of either is the same `Refusal::Signature`.

use super::SpEndpoints;
use super::decrypt;
use super::metadata::IdpMetadata;
use crate::xmlsec::dsig;
use crate::xmlsec::xml::{self, DS, Element, SAML, SAMLP};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::collections::{BTreeMap, HashSet};

/// The largest SAMLResponse form value read (base64).
pub const MAX_RESPONSE_B64: usize = 512 * 1024;

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const SUBJECT_ID: &str = "urn:oasis:names:tc:SAML:attribute:subject-id";
const PAIRWISE_ID: &str = "urn:oasis:names:tc:SAML:attribute:pairwise-id";

/// Why a Response was refused. The page shows one message for all; the reason is logged
/// (none of them carries personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the SAMLResponse is not base64 XML within the size limit")]
    Encoding,
    #[error("the Response's structure is not accepted: {0}")]
    Shape(&'static str),
    #[error("the assertion's signature does not verify with the IdP's metadata certificates")]
    Signature,
    #[error("the IdP answered with status {0}")]
    Status(String),
    #[error("{0} does not match")]
    Mismatch(&'static str),
    #[error("the assertion is outside its validity window")]
    Expired,
    #[error("the assertion names no usable subject (persistent NameID, subject-id or pairwise-id)")]
    NoSubject,
    #[error("the assertion was already used")]
    Replayed,
    #[error("no verification slot is free")]
    Busy,
}

/// What the Response must match.
#[derive(Debug, Clone)]
pub struct Expect {
    pub idp: IdpMetadata,
    pub sp: SpEndpoints,
    /// The AuthnRequest ID stored with this browser's login transaction.
    pub in_response_to: String,
    pub now: i64,
    /// Clock skew allowed on every time check, seconds.
    pub skew: i64,
    /// When ForceAuthn was sent: the time of that request (AuthnInstant must not precede it).
    pub forced_since: Option<i64>,
}

/// A verified, checked assertion.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The stable subject: pairwise-id, else subject-id, else the persistent NameID.
    pub subject: String,
    /// Attributes by FriendlyName and by Name (first value), plus the flattened names the
    /// linking rules use (`email`, `email_verified`, `eppn`, `oid`, `tid`).
    pub claims: BTreeMap<String, String>,
    /// AuthnContextClassRef.
    pub level: Option<String>,
    /// For single logout towards the upstream.
    pub name_id: Option<(String, String)>,
    pub session_index: Option<String>,
    /// The assertion's ID and how long the replay cache must keep it.
    pub assertion_id: String,
    pub replay_until: i64,
}

impl Accepted {
    /// The replay-cache entry: (namespace, assertion ID, expiry). The namespace keeps
    /// upstream assertion IDs apart from the AuthnRequest IDs our IdP remembers.
    pub fn replay_key(&self, idp_entity_id: &str) -> (String, String, i64) {
        (
            format!("upstream-saml:{idp_entity_id}"),
            self.assertion_id.clone(),
            self.replay_until,
        )
    }

    /// The protocol-neutral identity.
    pub fn into_identity(self, upstream: &str) -> crate::upstream::Identity {
        crate::upstream::Identity {
            upstream: upstream.to_string(),
            subject: self.subject,
            claims: self.claims,
            level: self.level,
        }
    }
}

/// The shared replay cache (the database, so every instance sees every use).
pub trait ReplayCache {
    /// Records `id` under `namespace` until `expires_at`; false when it was seen before.
    fn first_use(
        &self,
        namespace: &str,
        id: &str,
        expires_at: i64,
    ) -> impl std::future::Future<Output = Result<bool, String>> + Send;
}

/// Validates through the verification gate (libxmlsec1 off the async threads, bounded), then
/// consults the replay cache. `decryption_key`: our SP encryption key (PKCS#8 DER).
pub async fn accept(
    gate: &dsig::Gate,
    saml_response: String,
    expect: Expect,
    decryption_key: Vec<u8>,
    replay: &impl ReplayCache,
) -> Result<Accepted, Refusal> {
    let entity = expect.idp.entity_id.clone();
    let accepted = gate
        .run(move || validate(&saml_response, &expect, &decryption_key))
        .await
        .map_err(|_| Refusal::Busy)??;
    let (ns, id, until) = accepted.replay_key(&entity);
    match replay.first_use(&ns, &id, until).await {
        Ok(true) => Ok(accepted),
        Ok(false) => Err(Refusal::Replayed),
        Err(e) => {
            tracing::error!("the replay cache failed: {e}");
            Err(Refusal::Busy)
        }
    }
}

/// Every check but the replay cache, synchronous (run it through the `Gate`).
pub fn validate(
    saml_response: &str,
    expect: &Expect,
    decryption_key: &[u8],
) -> Result<Accepted, Refusal> {
    let doc = decode(saml_response)?;
    let root = xml::parse(&doc).map_err(|_| Refusal::Encoding)?;
    if !root.is(SAMLP, "Response") || root.attr("Version") != Some("2.0") {
        return Err(Refusal::Shape("the root is not a SAML 2.0 Response"));
    }
    unique_ids(&root)?;
    check_response_fields(&root, expect)?;
    let assertion = match one_assertion(&root)? {
        Inner::Plain(a) => verified_plain(&doc, &root, a, &expect.idp)?,
        Inner::Encrypted(e) => verified_encrypted(e, decryption_key, &expect.idp)?,
    };
    check_assertion(&assertion, expect)
}

fn decode(b64: &str) -> Result<String, Refusal> {
    if b64.len() > MAX_RESPONSE_B64 {
        return Err(Refusal::Encoding);
    }
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = STANDARD.decode(compact).map_err(|_| Refusal::Encoding)?;
    String::from_utf8(raw).map_err(|_| Refusal::Encoding)
}

/// No ID (SAML `ID`, XML Encryption/DSig `Id`) given twice anywhere: a Reference to a
/// duplicated ID could resolve to a node other than the one read.
fn unique_ids(root: &Element) -> Result<(), Refusal> {
    fn walk<'a>(el: &'a Element, seen: &mut HashSet<&'a str>) -> bool {
        for (k, v) in &el.attrs {
            if matches!(k.as_str(), "ID" | "Id" | "id" | "xml:id") && !seen.insert(v.as_str()) {
                return false;
            }
        }
        el.children.iter().all(|c| walk(c, seen))
    }
    if walk(root, &mut HashSet::new()) {
        Ok(())
    } else {
        Err(Refusal::Shape("an ID is used twice"))
    }
}

/// Response-level fields, from the unverified document: they can only refuse.
fn check_response_fields(root: &Element, expect: &Expect) -> Result<(), Refusal> {
    let status = root
        .child(SAMLP, "Status")
        .and_then(|s| s.child(SAMLP, "StatusCode"))
        .and_then(|c| c.attr("Value"))
        .ok_or(Refusal::Shape("no Status"))?;
    if status != SUCCESS {
        let sub = root
            .child(SAMLP, "Status")
            .and_then(|s| s.child(SAMLP, "StatusCode"))
            .and_then(|c| c.child(SAMLP, "StatusCode"))
            .and_then(|c| c.attr("Value"))
            .unwrap_or(status);
        return Err(Refusal::Status(sub.chars().take(200).collect()));
    }
    if root.attr("Destination") != Some(expect.sp.acs.as_str()) {
        return Err(Refusal::Mismatch("the Response's Destination"));
    }
    if root
        .attr("InResponseTo")
        .is_some_and(|r| r != expect.in_response_to)
    {
        return Err(Refusal::Mismatch("the Response's InResponseTo"));
    }
    if let Some(issuer) = root.child(SAML, "Issuer")
        && issuer.text != expect.idp.entity_id
    {
        return Err(Refusal::Mismatch("the Response's Issuer"));
    }
    Ok(())
}

enum Inner<'a> {
    Plain(&'a Element),
    Encrypted(&'a Element),
}

/// Exactly one Assertion or EncryptedAssertion in the whole document, and it is a direct
/// child of the Response: an assertion beside, inside or after another, or moved under
/// Extensions or a ds:Object, is refused here.
fn one_assertion(root: &Element) -> Result<Inner<'_>, Refusal> {
    let (mut plain, mut enc) = (Vec::new(), Vec::new());
    root.descendants(SAML, "Assertion", &mut plain);
    root.descendants(SAML, "EncryptedAssertion", &mut enc);
    if plain.len() + enc.len() != 1 {
        return Err(Refusal::Shape("not exactly one assertion"));
    }
    let direct = |name| root.children(SAML, name).count() == 1;
    match (plain.first(), enc.first()) {
        (Some(a), None) if direct("Assertion") => Ok(Inner::Plain(a)),
        (None, Some(e)) if direct("EncryptedAssertion") => Ok(Inner::Encrypted(e)),
        _ => Err(Refusal::Shape(
            "the assertion is not a child of the Response",
        )),
    }
}

/// The signatures' shape: the Assertion carries exactly one, referring to its own ID; the
/// Response at most one, referring to its ID; no other ds:Signature anywhere, nothing that
/// points elsewhere.
fn precheck(root: &Element, assertion: &Element) -> Result<(), Refusal> {
    let mut all = Vec::new();
    root.descendants(DS, "Signature", &mut all);
    let on_response = root.children(DS, "Signature").count();
    let on_assertion = assertion.children(DS, "Signature").count();
    if on_assertion != 1 || on_response > 1 || all.len() != on_response + on_assertion {
        return Err(Refusal::Signature);
    }
    dsig::no_indirection(root).map_err(|_| Refusal::Signature)?;
    dsig::precheck_signature_of(assertion).map_err(|_| Refusal::Signature)?;
    if on_response == 1 {
        dsig::precheck_signature_of(root).map_err(|_| Refusal::Signature)?;
    }
    Ok(())
}

/// Verifies the document and returns the Assertion as the reduced document has it.
fn verified_plain(
    doc: &str,
    root: &Element,
    assertion: &Element,
    idp: &IdpMetadata,
) -> Result<Element, Refusal> {
    precheck(root, assertion)?;
    let id = assertion.attr("ID").ok_or(Refusal::Signature)?;
    let reduced =
        dsig::verify_and_reduce(doc, &idp.signing_certs).map_err(|_| Refusal::Signature)?;
    let reduced = xml::parse(&reduced).map_err(|_| Refusal::Signature)?;
    take_verified(reduced, id)
}

/// The one Assertion of a reduced document, which must be the signed one (`id`).
fn take_verified(reduced: Element, id: &str) -> Result<Element, Refusal> {
    let assertion = if reduced.is(SAML, "Assertion") {
        reduced
    } else if reduced.is(SAMLP, "Response") {
        let mut found = reduced
            .children
            .into_iter()
            .filter(|c| c.is(SAML, "Assertion"));
        match (found.next(), found.next()) {
            (Some(a), None) => a,
            _ => return Err(Refusal::Signature),
        }
    } else {
        return Err(Refusal::Signature);
    };
    let mut nested = Vec::new();
    assertion.descendants(SAML, "Assertion", &mut nested);
    if assertion.attr("ID") != Some(id) || !nested.is_empty() {
        return Err(Refusal::Signature);
    }
    Ok(assertion)
}

fn verified_encrypted(
    encrypted: &Element,
    key: &[u8],
    idp: &IdpMetadata,
) -> Result<Element, Refusal> {
    // One error for every failure from here on: decryption and verification alike.
    let plain = decrypt::decrypt(encrypted, key).map_err(|_| Refusal::Signature)?;
    let inner = xml::parse(&plain).map_err(|_| Refusal::Signature)?;
    if !inner.is(SAML, "Assertion") || unique_ids(&inner).is_err() {
        return Err(Refusal::Signature);
    }
    dsig::precheck(&inner).map_err(|_| Refusal::Signature)?;
    let id = inner.attr("ID").ok_or(Refusal::Signature)?;
    let reduced =
        dsig::verify_and_reduce(&plain, &idp.signing_certs).map_err(|_| Refusal::Signature)?;
    take_verified(xml::parse(&reduced).map_err(|_| Refusal::Signature)?, id)
}

fn time(el: &Element, attr: &str) -> Result<Option<i64>, Refusal> {
    el.attr(attr)
        .map(|v| xml::parse_instant(v).ok_or(Refusal::Shape("a time is not an xs:dateTime")))
        .transpose()
}

/// The checks on the verified assertion (items 5–9 of §4.4) and the mapping.
fn check_assertion(a: &Element, expect: &Expect) -> Result<Accepted, Refusal> {
    let (now, skew) = (expect.now, expect.skew);
    if a.attr("Version") != Some("2.0") {
        return Err(Refusal::Shape("the assertion is not SAML 2.0"));
    }
    let issuer = a.child(SAML, "Issuer").map(|i| i.text.as_str());
    if issuer != Some(expect.idp.entity_id.as_str()) {
        return Err(Refusal::Mismatch("the assertion's Issuer"));
    }
    let subject = a
        .child(SAML, "Subject")
        .ok_or(Refusal::Shape("no Subject"))?;
    // A bearer confirmation for our ACS, this request, still valid.
    let mut confirmed_until = None;
    for sc in subject.children(SAML, "SubjectConfirmation") {
        if sc.attr("Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = sc.child(SAML, "SubjectConfirmationData") else {
            continue;
        };
        if data.attr("Recipient") != Some(expect.sp.acs.as_str()) {
            return Err(Refusal::Mismatch("the SubjectConfirmationData's Recipient"));
        }
        if data.attr("InResponseTo") != Some(expect.in_response_to.as_str()) {
            return Err(Refusal::Mismatch(
                "the SubjectConfirmationData's InResponseTo",
            ));
        }
        let until = time(data, "NotOnOrAfter")?.ok_or(Refusal::Shape(
            "the SubjectConfirmationData has no NotOnOrAfter",
        ))?;
        if now >= until + skew || time(data, "NotBefore")?.is_some_and(|t| now + skew < t) {
            return Err(Refusal::Expired);
        }
        confirmed_until = Some(until);
        break;
    }
    let confirmed_until = confirmed_until.ok_or(Refusal::Shape("no bearer SubjectConfirmation"))?;
    // Conditions: the window and our audience in every AudienceRestriction.
    let conditions = a
        .child(SAML, "Conditions")
        .ok_or(Refusal::Shape("no Conditions"))?;
    let not_after = time(conditions, "NotOnOrAfter")?;
    if time(conditions, "NotBefore")?.is_some_and(|t| now + skew < t)
        || not_after.is_some_and(|t| now >= t + skew)
    {
        return Err(Refusal::Expired);
    }
    let restrictions: Vec<&Element> = conditions.children(SAML, "AudienceRestriction").collect();
    if restrictions.is_empty()
        || !restrictions.iter().all(|r| {
            r.children(SAML, "Audience")
                .any(|au| au.trimmed_text() == expect.sp.entity_id)
        })
    {
        return Err(Refusal::Mismatch("the Audience"));
    }
    // An AuthnStatement, recent when we asked for a fresh login, with a session still open.
    let authn = a
        .child(SAML, "AuthnStatement")
        .ok_or(Refusal::Shape("no AuthnStatement"))?;
    let instant = time(authn, "AuthnInstant")?.ok_or(Refusal::Shape("no AuthnInstant"))?;
    if expect.forced_since.is_some_and(|t| instant + skew < t) {
        return Err(Refusal::Expired);
    }
    if time(authn, "SessionNotOnOrAfter")?.is_some_and(|t| now >= t + skew) {
        return Err(Refusal::Expired);
    }
    let level = authn
        .child(SAML, "AuthnContext")
        .and_then(|c| c.child(SAML, "AuthnContextClassRef"))
        .map(|r| r.trimmed_text().to_string())
        .filter(|r| !r.is_empty());
    let claims = claims(a);
    let name_id = subject.child(SAML, "NameID").map(|n| {
        (
            n.text.clone(),
            n.attr("Format").unwrap_or_default().to_string(),
        )
    });
    if subject
        .child(SAML, "NameID")
        .is_some_and(|n| !n.children.is_empty())
    {
        return Err(Refusal::Shape("the NameID has child elements"));
    }
    let subject_value = [PAIRWISE_ID, SUBJECT_ID]
        .iter()
        .find_map(|n| claims.get(*n).cloned())
        .or_else(|| {
            name_id
                .as_ref()
                .filter(|(v, f)| f == super::PERSISTENT && !v.is_empty())
                .map(|(v, _)| v.clone())
        })
        .ok_or(Refusal::NoSubject)?;
    let assertion_id = a
        .attr("ID")
        .ok_or(Refusal::Shape("the assertion has no ID"))?
        .to_string();
    Ok(Accepted {
        subject: subject_value,
        claims,
        level,
        name_id,
        session_index: authn.attr("SessionIndex").map(String::from),
        assertion_id,
        // Kept until nothing could accept it any more: the later of the two limits, plus skew.
        replay_until: confirmed_until.max(not_after.unwrap_or(confirmed_until)) + skew,
    })
}

/// Names a linking rule may use for well-known attributes (`--link-on email=email`).
const ALIASES: [(&str, &str); 6] = [
    ("mail", "email"),
    ("urn:oid:0.9.2342.19200300.100.1.3", "email"),
    ("eduPersonPrincipalName", "eppn"),
    ("urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "eppn"),
    (
        "http://schemas.microsoft.com/identity/claims/objectidentifier",
        "oid",
    ),
    (
        "http://schemas.microsoft.com/identity/claims/tenantid",
        "tid",
    ),
];

/// Attributes by FriendlyName and Name, first value, the first attribute of a name winning;
/// then the aliases. A mail attribute counts as verified: the IdP is pinned by its metadata
/// and asserts it for its own user.
fn claims(a: &Element) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in a.children(SAML, "AttributeStatement") {
        for attr in statement.children(SAML, "Attribute") {
            let Some(value) = attr.child(SAML, "AttributeValue") else {
                continue;
            };
            if !value.children.is_empty() {
                continue;
            }
            for key in [attr.attr("FriendlyName"), attr.attr("Name")]
                .into_iter()
                .flatten()
            {
                out.entry(key.to_string())
                    .or_insert_with(|| value.text.clone());
            }
        }
    }
    for (from, to) in ALIASES {
        if let Some(v) = out.get(from).cloned() {
            out.entry(to.to_string()).or_insert(v);
        }
    }
    if out.contains_key("email") {
        out.insert("email_verified".into(), "true".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ids_anywhere_are_refused() {
        let r = xml::parse(r#"<a ID="x"><b><c Id="x"/></b></a>"#).unwrap();
        assert!(unique_ids(&r).is_err());
        let ok = xml::parse(r#"<a ID="x"><b><c Id="y"/></b></a>"#).unwrap();
        assert!(unique_ids(&ok).is_ok());
    }

    #[test]
    fn claims_by_friendly_name_and_name_with_aliases() {
        let a = xml::parse(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:AttributeStatement>
<saml:Attribute Name="urn:oid:0.9.2342.19200300.100.1.3" FriendlyName="mail"><saml:AttributeValue>a@b.se</saml:AttributeValue><saml:AttributeValue>c@d.se</saml:AttributeValue></saml:Attribute>
<saml:Attribute Name="http://schemas.microsoft.com/identity/claims/tenantid"><saml:AttributeValue>t1</saml:AttributeValue></saml:Attribute>
</saml:AttributeStatement></saml:Assertion>"#,
        )
        .unwrap();
        let c = claims(&a);
        assert_eq!(c["mail"], "a@b.se");
        assert_eq!(c["urn:oid:0.9.2342.19200300.100.1.3"], "a@b.se");
        assert_eq!(c["email"], "a@b.se");
        assert_eq!(c["email_verified"], "true");
        assert_eq!(c["tid"], "t1");
    }
}
