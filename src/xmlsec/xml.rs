//! A small namespace-aware XML reader (for SAML messages and SP metadata) and the escaping
//! used by everything that writes XML.
//!
//! samael's serde structs ignore namespaces and drop some fields (a LogoutRequest's
//! SessionIndex), so messages are read here: element names are matched by namespace URI and
//! local name, a DOCTYPE is refused outright (no entity expansion, no XXE), and depth and size
//! are bounded.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const MDUI: &str = "urn:oasis:names:tc:SAML:metadata:ui";

const MAX_DEPTH: usize = 48;
const MAX_ELEMENTS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("the document has a DOCTYPE")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("the document is nested too deeply or too large")]
    TooLarge,
}

/// One element: namespace URI, local name, attributes (unprefixed ones by local name,
/// `xml:lang` as written), children and the concatenated text content.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    pub fn children<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Every descendant (depth first) with this name.
    pub fn descendants<'a>(&'a self, ns: &'a str, name: &'a str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.is(ns, name) {
                out.push(c);
            }
            c.descendants(ns, name, out);
        }
    }

    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// Parses a document into its root element.
pub fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let mut root = None;
    let bad = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(|e| bad(&e))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(ref s) | Event::Empty(ref s) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooLarge);
                }
                let ns = match resolved {
                    ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(XmlError::Malformed(format!(
                            "unknown prefix {}",
                            String::from_utf8_lossy(&p)
                        )));
                    }
                };
                let mut el = Element {
                    ns,
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    ..Default::default()
                };
                for a in s.attributes() {
                    let a = a.map_err(|e| bad(&e))?;
                    let key = a.key.as_ref();
                    if key.starts_with(b"xmlns") {
                        continue;
                    }
                    let name = if key.starts_with(b"xml:") {
                        String::from_utf8_lossy(key).into_owned()
                    } else {
                        String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned()
                    };
                    let value = a
                        .decoded_and_normalized_value(
                            quick_xml::XmlVersion::Implicit1_0,
                            reader.decoder(),
                        )
                        .map_err(|e| bad(&e))?;
                    el.attrs.push((name, value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| bad(&"unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content().map_err(|e| bad(&e))?);
                }
            }
            Event::GeneralRef(r) => {
                // Only the five predefined entities and character references exist without a DTD.
                let name = r.decode().map_err(|e| bad(&e))?;
                let ch = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(&format!("unknown entity &{name};")))?
                        .to_string(),
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&ch);
                }
            }
            Event::CData(c) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if root.is_some() && stack.is_empty() {
            // Anything after the root element other than whitespace, comments or PIs is an error
            // the reader reports on the next read; we stop at the root.
            break;
        }
    }
    root.ok_or_else(|| bad(&"no root element"))
}

/// The one entity of a SAML metadata document and its role descriptor.
pub struct Entity<'a> {
    pub entity_id: String,
    /// The EntityDescriptor's `role` descriptor (IDPSSODescriptor, SPSSODescriptor) that supports SAML 2.0.
    pub role: &'a Element,
    /// The earliest validUntil of the document, the entity and the role.
    pub valid_until: Option<i64>,
}

/// Reads the one entity of a metadata document: an EntityDescriptor, or an
/// EntitiesDescriptor holding exactly one, with an entityID and a `role` descriptor that
/// supports SAML 2.0, not past its validUntil. The error is a sentence for the admin.
pub fn metadata_entity<'a>(
    root: &'a Element,
    role: &'a str,
    now: i64,
) -> Result<Entity<'a>, String> {
    let descriptor = if root.is(MD, "EntityDescriptor") {
        root
    } else if root.is(MD, "EntitiesDescriptor") {
        let mut eds = root.children(MD, "EntityDescriptor");
        match (eds.next(), eds.next()) {
            (Some(e), None) => e,
            _ => return Err("expected exactly one EntityDescriptor".into()),
        }
    } else {
        return Err("the root element is not a SAML 2.0 md:EntityDescriptor".into());
    };
    let entity_id = descriptor
        .attr("entityID")
        .filter(|e| !e.is_empty() && e.len() <= 1024)
        .ok_or("entityID is missing")?
        .to_string();
    let role_el = descriptor
        .children(MD, role)
        .find(|d| {
            d.attr("protocolSupportEnumeration")
                .is_some_and(|p| p.split_whitespace().any(|p| p == SAMLP))
        })
        .ok_or_else(|| format!("no {role} supporting SAML 2.0"))?;
    let valid_until = [
        descriptor.attr("validUntil"),
        root.attr("validUntil"),
        role_el.attr("validUntil"),
    ]
    .into_iter()
    .flatten()
    .filter_map(parse_instant)
    .min();
    if valid_until.is_some_and(|v| v <= now) {
        return Err("its validUntil has passed".into());
    }
    Ok(Entity {
        entity_id,
        role: role_el,
        valid_until,
    })
}

/// Escapes text and attribute values (`<`, `>`, `&`, `'`, `"`).
pub fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// `2026-11-27T18:34:51Z`: the xs:dateTime form SAML uses.
pub fn instant(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses an xs:dateTime (with or without fractional seconds) into unix seconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

/// A fresh message or assertion ID: an NCName with 128 random bits.
pub fn new_id() -> String {
    let b = crate::keys::random_bytes::<16>();
    let mut s = String::with_capacity(33);
    s.push('_');
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_not_prefixes_decide() {
        let e = parse(r#"<x:AuthnRequest xmlns:x="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"><i:Issuer xmlns:i="urn:oasis:names:tc:SAML:2.0:assertion">sp &amp; co</i:Issuer></x:AuthnRequest>"#).unwrap();
        assert!(e.is(SAMLP, "AuthnRequest"));
        assert_eq!(e.child(SAML, "Issuer").unwrap().text, "sp & co");
        let fake = parse(r#"<samlp:AuthnRequest xmlns:samlp="urn:evil"/>"#).unwrap();
        assert!(!fake.is(SAMLP, "AuthnRequest"));
    }

    #[test]
    fn doctype_refused() {
        let x = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>"#;
        assert!(matches!(parse(x), Err(XmlError::Doctype)));
    }

    #[test]
    fn escape_and_instants() {
        assert_eq!(esc("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
        assert_eq!(instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_instant("1970-01-01T00:00:10.123Z"), Some(10));
    }
}
