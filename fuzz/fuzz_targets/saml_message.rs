//! The SAML message reader: the Redirect query, the binding decoder (base64, and the raw
//! DEFLATE inflater for Redirect, bounded before and after), the XML reader, the signature
//! shape pre-check, the issuer, and SP metadata.
//!
//! The first byte chooses what the rest is, so the fuzzer reaches each layer directly instead
//! of having to find valid base64 or DEFLATE before the XML reader sees anything.
#![no_main]

use base64::{Engine, engine::general_purpose::STANDARD};
use libfuzzer_sys::fuzz_target;
use portvakt::saml::sso::{Binding, decode, issuer_of};
use portvakt::saml::{dsig, sp, xml};

/// As `[saml] max_message_bytes` defaults.
const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        // A raw Redirect query, as the handler receives it.
        0 => {
            let Ok(raw) = std::str::from_utf8(rest) else {
                return;
            };
            if let Some(q) = dsig::RedirectQuery::parse(raw)
                && let Some(name) = q.message_param()
                && let Some(message) = q.decoded(name)
                && let Ok(text) = decode(Binding::Redirect, &message, MAX)
            {
                read(&text);
            }
        }
        // The bytes the inflater sees (any bytes, not only valid DEFLATE).
        1 => {
            if let Ok(text) = decode(Binding::Redirect, &STANDARD.encode(rest), MAX) {
                read(&text);
            }
        }
        // A POST binding value as sent (any text, whitespace included).
        2 => {
            if let Ok(s) = std::str::from_utf8(rest)
                && let Ok(text) = decode(Binding::Post, s, MAX)
            {
                read(&text);
            }
        }
        // The XML itself, through the POST decoder.
        3 => {
            if let Ok(text) = decode(Binding::Post, &STANDARD.encode(rest), MAX) {
                read(&text);
            }
        }
        // SP metadata, as fetched from an SP's metadata URL.
        _ => {
            if let Ok(doc) = std::str::from_utf8(rest)
                && let Ok(meta) = sp::parse_metadata(doc, 1_800_000_000)
            {
                assert!(!meta.entity_id.is_empty());
            }
        }
    }
});

fn read(text: &str) {
    // The decoder's promises: bounded, no DOCTYPE.
    assert!(text.len() <= MAX);
    assert!(!text.to_ascii_uppercase().contains("<!DOCTYPE"));
    let _ = issuer_of(text);
    if let Ok(root) = xml::parse(text) {
        if dsig::precheck(&root).is_ok() {
            // What reaches libxmlsec1 has one enveloped signature at the root.
            let mut sigs = Vec::new();
            root.descendants(xml::DS, "Signature", &mut sigs);
            assert_eq!(sigs.len(), 1);
        }
        let _ = root
            .attr("AssertionConsumerServiceIndex")
            .map(str::parse::<u32>);
        let _ = root.attr("IssueInstant").and_then(xml::parse_instant);
    }
}
