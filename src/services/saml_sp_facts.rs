//! What an administrator reads about an SP's metadata before trusting it: its certificates
//! (what they are for, whose they are, when they expire) and its requested attributes with
//! whether it requires them. Read from the same document `saml_sp::parse_metadata` takes.

use super::saml_sp::SpMetadata;
use crate::xmlsec::xml::{self, MD};

/// Certificates that expire within this many seconds are flagged.
pub const EXPIRING_WITHIN: i64 = 30 * 86_400;

/// One certificate of the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// "signing" or "encryption".
    pub usage: &'static str,
    pub subject: String,
    pub issuer: String,
    /// notAfter, Unix seconds (None when it cannot be read).
    pub not_after: Option<i64>,
    /// SHA-256 fingerprint, hex with colons, as certificate tools print it.
    pub sha256: String,
}

impl CertFacts {
    pub fn expired(&self, now: i64) -> bool {
        self.not_after.is_some_and(|t| t <= now)
    }

    pub fn expiring(&self, now: i64) -> bool {
        !self.expired(now) && self.not_after.is_some_and(|t| t - now <= EXPIRING_WITHIN)
    }
}

fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Facts of one DER certificate.
pub fn cert_facts(usage: &'static str, der: &[u8]) -> Option<CertFacts> {
    let cert = openssl::x509::X509::from_der(der).ok()?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let not_after = epoch
        .diff(cert.not_after())
        .ok()
        .map(|d| i64::from(d.days) * 86_400 + i64::from(d.secs));
    let sha256 = cert
        .digest(openssl::hash::MessageDigest::sha256())
        .ok()?
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Some(CertFacts {
        usage,
        subject: name_text(cert.subject_name()),
        issuer: name_text(cert.issuer_name()),
        not_after,
        sha256,
    })
}

/// The metadata's certificates: signing ones, then the encryption one.
pub fn certificates(meta: &SpMetadata) -> Vec<CertFacts> {
    meta.signing_certs
        .iter()
        .filter_map(|c| cert_facts("signing", c))
        .chain(
            meta.encryption
                .iter()
                .filter_map(|(c, _)| cert_facts("encryption", c)),
        )
        .collect()
}

/// A requested attribute: Name, FriendlyName and isRequired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub name: String,
    pub friendly_name: Option<String>,
    pub required: bool,
}

/// The RequestedAttributes of the SP's AttributeConsumingServices, with isRequired (which
/// `SpMetadata` leaves out: release does not depend on it). `doc` parsed already once by
/// `parse_metadata`, so a parse error here is an empty list.
pub fn requested_attributes(doc: &str) -> Vec<Requested> {
    let Ok(root) = xml::parse(doc) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    root.descendants(MD, "RequestedAttribute", &mut found);
    found
        .into_iter()
        .filter_map(|ra| {
            Some(Requested {
                name: ra.attr("Name")?.to_string(),
                friendly_name: ra.attr("FriendlyName").map(String::from),
                required: matches!(ra.attr("isRequired"), Some("true") | Some("1")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(days: u32) -> Vec<u8> {
        use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sp.example.se").unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(i64::from(days) * 86_400).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn expiry_is_read_and_flagged() {
        let c = cert_facts("signing", &cert(100)).unwrap();
        assert_eq!(c.not_after, Some(100 * 86_400));
        assert_eq!(c.subject, "CN=sp.example.se");
        assert!(!c.expired(0) && !c.expiring(0));
        assert!(c.expiring(80 * 86_400) && !c.expired(80 * 86_400));
        assert!(c.expired(100 * 86_400));
    }

    #[test]
    fn requested_attributes_with_is_required() {
        let doc = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSODescriptor><md:AttributeConsumingService index="0">
<md:RequestedAttribute FriendlyName="mail" Name="urn:oid:0.9.2342.19200300.100.1.3" isRequired="true"/>
<md:RequestedAttribute Name="urn:oid:2.5.4.42"/></md:AttributeConsumingService></md:SPSSODescriptor></md:EntityDescriptor>"#;
        let r = requested_attributes(doc);
        assert_eq!(r.len(), 2);
        assert!(r[0].required && r[0].friendly_name.as_deref() == Some("mail"));
        assert!(!r[1].required && r[1].friendly_name.is_none());
    }
}
