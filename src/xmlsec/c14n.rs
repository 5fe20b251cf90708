//! Exclusive XML canonicalization 1.0 without comments (the transform our signatures name),
//! for the documents Portvakt writes and signs itself: the IdP's assertions, Responses,
//! logout messages and metadata. Never used on received documents: those are verified by
//! libxmlsec1 over its own canonical form (`dsig::verify_and_reduce`).
//!
//! The text we send is the text we wrote; only the digest is taken over the canonical form,
//! so a namespace that exc-c14n leaves out (`xmlns:xs`, used only inside `xsi:type` values)
//! is still declared in what the SP reads. Tests compare the output with libxml2's
//! `xmlC14NDocDumpMemory` on every value shape the attribute release can produce.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use std::ops::Range;

use super::xml::DS;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalize: {0}")]
pub struct C14nError(String);

fn bad(e: impl std::fmt::Display) -> C14nError {
    C14nError(e.to_string())
}

/// The canonical form of a document's root element.
pub struct Canonical {
    pub bytes: Vec<u8>,
    /// The root's `ID` attribute, as the Reference names it.
    pub root_id: Option<String>,
    /// Where the root's ds:Signature child is in the input, when it was left out.
    pub signature: Option<Range<usize>>,
}

/// Canonicalizes the root element of `xml`; with `enveloped`, leaves out the first
/// ds:Signature child of the root (the enveloped-signature transform) and reports where it is.
pub fn exclusive(xml: &str, enveloped: bool) -> Result<Canonical, C14nError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;
    let mut out = Vec::with_capacity(xml.len());
    // In-scope declarations of the input and those already rendered, one frame per open
    // element (the rendered frame is empty for elements inside the left-out signature).
    let mut declared: Vec<Vec<(String, String)>> = Vec::new();
    let mut rendered: Vec<Vec<(String, String)>> = Vec::new();
    let mut root_id = None;
    let mut signature: Option<Range<usize>> = None;
    let mut skip_from: Option<(usize, usize)> = None;
    let mut root_done = false;
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(bad)?;
        let depth = declared.len();
        let skipping = skip_from.is_some();
        match event {
            Event::Eof => break,
            Event::Comment(_) => {}
            Event::Decl(_) if depth == 0 => {}
            Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {
                return Err(bad("unexpected declaration, DOCTYPE or PI"));
            }
            Event::Start(s) => {
                if root_done {
                    return Err(bad("content after the root"));
                }
                let frame = declarations(&s)?;
                declared.push(frame);
                if skipping {
                    rendered.push(Vec::new());
                    continue;
                }
                let name = s.name();
                let (prefix, _) = split(name.as_ref())?;
                if enveloped
                    && depth == 1
                    && signature.is_none()
                    && lookup(&declared, prefix) == Some(DS)
                    && s.local_name().as_ref() == b"Signature"
                {
                    skip_from = Some((at, depth));
                    rendered.push(Vec::new());
                    continue;
                }
                let frame = start_tag(&s, &declared, &rendered, &mut out)?;
                if depth == 0 {
                    root_id = attribute(&s, b"ID")?;
                }
                rendered.push(frame);
            }
            Event::End(e) => {
                declared.pop();
                rendered.pop();
                match skip_from {
                    Some((from, d)) if d == declared.len() => {
                        signature = Some(from..reader.buffer_position() as usize);
                        skip_from = None;
                    }
                    Some(_) => {}
                    None => {
                        out.extend_from_slice(b"</");
                        out.extend_from_slice(e.name().as_ref());
                        out.push(b'>');
                        root_done |= declared.is_empty();
                    }
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(bad)?;
                if depth == 0 {
                    if !text.trim().is_empty() {
                        return Err(bad("text outside the root"));
                    }
                } else if !skipping {
                    escape_text(&text, &mut out);
                }
            }
            Event::CData(t) => {
                if depth == 0 {
                    return Err(bad("CDATA outside the root"));
                }
                if !skipping {
                    escape_text(&String::from_utf8_lossy(&t), &mut out);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(bad)?;
                let ch = match r.resolve_char_ref().map_err(bad)? {
                    Some(c) => c,
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .and_then(|s| s.chars().next())
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?,
                };
                if depth == 0 {
                    return Err(bad("a reference outside the root"));
                }
                if !skipping {
                    escape_text(ch.encode_utf8(&mut [0; 4]), &mut out);
                }
            }
            Event::Empty(_) => unreachable!("empty elements are expanded"),
        }
    }
    if !root_done {
        return Err(bad("no root element"));
    }
    Ok(Canonical {
        bytes: out,
        root_id,
        signature,
    })
}

/// (prefix, local name); the prefix is "" for an unprefixed name.
fn split(qname: &[u8]) -> Result<(&str, &str), C14nError> {
    let s = std::str::from_utf8(qname).map_err(bad)?;
    Ok(s.split_once(':').unwrap_or(("", s)))
}

/// The namespace declarations an element makes, in document order.
fn declarations(s: &BytesStart) -> Result<Vec<(String, String)>, C14nError> {
    let mut frame = Vec::new();
    for a in s.attributes().with_checks(true) {
        let a = a.map_err(bad)?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(bad)?;
        let prefix = match key.strip_prefix("xmlns") {
            Some("") => "",
            Some(p) if p.starts_with(':') => &p[1..],
            _ => continue,
        };
        let uri = a.normalized_value(XmlVersion::Implicit1_0).map_err(bad)?;
        frame.push((prefix.to_string(), uri.into_owned()));
    }
    Ok(frame)
}

fn lookup<'a>(frames: &'a [Vec<(String, String)>], prefix: &str) -> Option<&'a str> {
    if prefix == "xml" {
        return Some(XML_NS);
    }
    frames
        .iter()
        .rev()
        .flat_map(|f| f.iter())
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str())
}

fn attribute(s: &BytesStart, name: &[u8]) -> Result<Option<String>, C14nError> {
    for a in s.attributes() {
        let a = a.map_err(bad)?;
        if a.key.as_ref() == name {
            let v = a.normalized_value(XmlVersion::Implicit1_0).map_err(bad)?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// Writes the canonical start tag: the visibly utilized namespaces an output ancestor has not
/// rendered with the same value (sorted by prefix), then the attributes sorted by namespace
/// URI and local name. Returns the declarations rendered here.
fn start_tag(
    s: &BytesStart,
    declared: &[Vec<(String, String)>],
    rendered: &[Vec<(String, String)>],
    out: &mut Vec<u8>,
) -> Result<Vec<(String, String)>, C14nError> {
    let name = s.name();
    let (prefix, _) = split(name.as_ref())?;
    let mut used = vec![prefix.to_string()];
    let mut attrs: Vec<(&str, String, String, String)> = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(bad)?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(bad)?;
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let (p, local) = split(a.key.as_ref())?;
        let uri = if p.is_empty() {
            ""
        } else {
            used.push(p.to_string());
            lookup(declared, p).ok_or_else(|| bad(format!("unbound prefix {p}")))?
        };
        let value = a.normalized_value(XmlVersion::Implicit1_0).map_err(bad)?;
        attrs.push((uri, local.to_string(), key.to_string(), value.into_owned()));
    }
    used.sort();
    used.dedup();
    let mut frame = Vec::new();
    for p in used.iter().filter(|p| p.as_str() != "xml") {
        let uri = match lookup(declared, p) {
            Some(u) => u,
            None if p.is_empty() => "",
            None => return Err(bad(format!("unbound prefix {p}"))),
        };
        let shown = lookup(rendered, p).unwrap_or("");
        if shown != uri {
            frame.push((p.clone(), uri.to_string()));
        }
    }
    attrs.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out.push(b'<');
    out.extend_from_slice(s.name().as_ref());
    for (p, uri) in &frame {
        out.extend_from_slice(b" xmlns");
        if !p.is_empty() {
            out.push(b':');
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(b"=\"");
        escape_attr(uri, out);
        out.push(b'"');
    }
    for (_, _, qname, value) in &attrs {
        out.push(b' ');
        out.extend_from_slice(qname.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attr(value, out);
        out.push(b'"');
    }
    out.push(b'>');
    Ok(frame)
}

/// Text nodes: `&`, `<`, `>` and CR escaped (C14N 1.0 §2.3).
fn escape_text(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

/// Attribute values: `&`, `<`, `"`, TAB, LF and CR escaped (C14N 1.0 §2.3).
pub(super) fn escape_attr(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\t' => out.extend_from_slice(b"&#x9;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

/// Every value shape an attribute release (or a NameID, an SP's entity ID) can carry into
/// what we sign.
#[cfg(test)]
pub(crate) const VALUE_SHAPES: &[&str] = &[
    "",
    "plain",
    "åäö ÅÄÖ é ü",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀 (not in the BMP)",
    "a&b &amp; &#65;",
    "a<b",
    "a>b ]]>",
    "\"double\" quotes",
    "it's 'single'",
    "tab\there",
    "cr\rlf\ncrlf\r\nend",
    "  leading and trailing  ",
    "x</saml:AttributeValue><saml:Attribute Name=\"role\"><saml:AttributeValue>admin",
];

/// libxml2's exclusive canonical form (without comments) of a whole document: what
/// libxmlsec1 digests. For tests that check ours against it.
#[cfg(test)]
pub(crate) fn libxml2_exclusive(xml: &str) -> String {
    let doc = libxml::parser::Parser::default()
        .parse_string(xml)
        .expect("libxml2 parses it");
    let mut out: *mut u8 = std::ptr::null_mut();
    // SAFETY: a live document, no node set (the whole document), no prefix list; libxml2
    // allocates `out`, which is copied and then freed with its own allocator.
    unsafe {
        let n = libxml::bindings::xmlC14NDocDumpMemory(
            doc.doc_ptr(),
            std::ptr::null_mut(),
            libxml::bindings::xmlC14NMode_XML_C14N_EXCLUSIVE_1_0 as i32,
            std::ptr::null_mut(),
            0,
            &mut out,
        );
        assert!(n >= 0 && !out.is_null(), "libxml2 c14n failed");
        let bytes = std::slice::from_raw_parts(out, n as usize).to_vec();
        let free = libxml::bindings::xmlFree;
        if let Some(free) = free {
            free(out.cast());
        }
        String::from_utf8(bytes).expect("UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str) -> String {
        String::from_utf8(exclusive(xml, true).unwrap().bytes).unwrap()
    }

    #[test]
    fn namespaces_go_where_they_are_used() {
        let doc = r#"<a:R xmlns:a="urn:a" xmlns:b="urn:b" xmlns:x="urn:x" Z="1" ID="_i"><b:I/><b:J b:k="v" xml:lang="sv"/><a:C>t</a:C></a:R>"#;
        assert_eq!(
            c14n(doc),
            r#"<a:R xmlns:a="urn:a" ID="_i" Z="1"><b:I xmlns:b="urn:b"></b:I><b:J xmlns:b="urn:b" xml:lang="sv" b:k="v"></b:J><a:C>t</a:C></a:R>"#
        );
    }

    #[test]
    fn the_root_signature_is_left_out_and_located() {
        let sig = r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>"#;
        let doc = format!(
            r#"<?xml version="1.0"?><a:R xmlns:a="urn:a" ID="_i"><a:I>x</a:I>{sig}<a:C/></a:R>"#
        );
        let c = exclusive(&doc, true).unwrap();
        assert_eq!(
            String::from_utf8(c.bytes).unwrap(),
            r#"<a:R xmlns:a="urn:a" ID="_i"><a:I>x</a:I><a:C></a:C></a:R>"#
        );
        assert_eq!(&doc[c.signature.unwrap()], sig);
        assert_eq!(c.root_id.as_deref(), Some("_i"));
    }

    /// Ours and libxml2's agree, on the shapes above and on every value shape an attribute
    /// release can produce, as `esc` writes them (in text and in attributes).
    #[test]
    fn agrees_with_libxml2() {
        let mut docs = vec![
            r#"<a:R xmlns:a="urn:a" xmlns:b="urn:b" xmlns:x="urn:x" Z="1" ID="_i"><b:I/><b:J b:k="v" xml:lang="sv"/><a:C>t</a:C></a:R>"#.to_string(),
            "<a x=\"&quot;&apos;&lt;&gt;&amp;\t&#9;&#10;&#13;\r\n\"><!-- c -->&lt;&gt;&amp;&quot;&apos;\r\n&#13;\t</a>".to_string(),
            r#"<p:a xmlns:p="urn:p" xmlns="urn:d"><b xmlns=""><c/></b><p:d xmlns:p="urn:q"/><e/></p:a>"#.to_string(),
        ];
        for v in VALUE_SHAPES {
            let e = super::super::xml::esc(v);
            docs.push(format!(
                r#"<s:A xmlns:s="urn:s" xmlns:xs="urn:xs" xmlns:xsi="urn:xsi" N="{e}" F="{e}"><s:V xsi:type="xs:string">{e}</s:V><s:W>{e}</s:W></s:A>"#
            ));
        }
        for doc in &docs {
            assert_eq!(c14n(doc), libxml2_exclusive(doc), "{doc:?}");
        }
    }

    #[test]
    fn values_are_normalized_and_escaped_as_c14n_says() {
        let doc = "<a x=\"&quot;&apos;&lt;&gt;&amp;\t&#9;&#10;&#13;\r\n\"><!-- c -->&lt;&gt;&amp;&quot;&apos;\r\n&#13;\t</a>";
        assert_eq!(
            c14n(doc),
            "<a x=\"&quot;'&lt;>&amp; &#x9;&#xA;&#xD; \">&lt;&gt;&amp;\"'\n&#xD;\t</a>"
        );
    }
}
