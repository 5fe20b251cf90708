//! Signatures of a shape we do not accept are refused before libxmlsec1 runs their
//! transforms (an unauthenticated sender could otherwise keep a core busy), in every binding
//! and at both endpoints.

use crate::helpers::{TestApp, spawn_app};
use crate::saml_sp::*;
use std::time::{Duration, Instant};

/// An XPath filter whose cost grows with the cube of the document's size.
const XPATH: &str = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>count(//*[count(//*[count(//*) &gt; 0]) &gt; 0]) &gt; 0</ds:XPath></ds:Transform>"#;
/// An XSLT transform (libxslt, when libxmlsec1 is built with it).
const XSLT: &str = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/"><xsl:for-each select="//*"><xsl:for-each select="//*"><xsl:for-each select="//*"><xsl:value-of select="name()"/></xsl:for-each></xsl:for-each></xsl:for-each></xsl:template></xsl:stylesheet></ds:Transform>"#;

const FAST: Duration = Duration::from_secs(1);

/// Many elements for the transform to chew on.
fn padding() -> String {
    let mut s = String::from("<samlp:Extensions>");
    for i in 0..400 {
        s.push_str(&format!(r#"<x:e xmlns:x="urn:x" n="{i}"/>"#));
    }
    s.push_str("</samlp:Extensions>");
    s
}

/// A signed message with `transform` spliced in before the legitimate transforms (the
/// signature value no longer matters: libxmlsec1 would run the transform before checking it).
fn with_transform(signed: &str, transform: &str) -> String {
    let at = signed.find("<ds:Transform ").expect("a Transform");
    let out = format!("{}{transform}{}", &signed[..at], &signed[at..]);
    assert!(out.contains(transform));
    out
}

async fn app_with_signing_sp() -> (TestApp, TestSp) {
    let app = spawn_app().await;
    let sp = TestSp::new("https://signing.example.se").signing();
    sp.register(&app, &[]);
    (app, sp)
}

#[tokio::test]
async fn post_authn_requests_with_xpath_or_xslt_transforms_are_refused_at_once() {
    let (app, sp) = app_with_signing_sp().await;
    let b = app.browser();
    for (name, transform) in [("XPath", XPATH), ("XSLT", XSLT)] {
        let id = fresh_id();
        let req = sp.authn_request(&app, &id, "", &padding());
        let evil = with_transform(&sp.sign_xml(&req, &id), transform);
        let started = Instant::now();
        let r = post_request(&b, &app, &evil, Some("rs")).await;
        let took = started.elapsed();
        eprintln!("POST AuthnRequest with an {name} transform refused in {took:?}");
        assert_error_page(&r);
        assert!(took < FAST, "{name}: {took:?}");
    }
}

#[tokio::test]
async fn an_embedded_signature_in_a_redirect_request_never_reaches_libxmlsec1() {
    let (app, sp) = app_with_signing_sp().await;
    let b = app.browser();
    let sso = app.url("/saml/sso");
    for transform in [XPATH, XSLT] {
        let id = fresh_id();
        let req = sp.authn_request(&app, &id, "", &padding());
        let evil = with_transform(&sp.sign_xml(&req, &id), transform);
        // Signed over the query (verified as such; the embedded signature is not read) ...
        let started = Instant::now();
        let r = b
            .get(&sp.redirect_url(&sso, "SAMLRequest", &evil, None))
            .await;
        let took = started.elapsed();
        eprintln!("Redirect (query signed) with an embedded signature answered in {took:?}");
        assert!(took < FAST, "{took:?}");
        assert!(r.status < 500, "{}", r.body);
        // ... and without a query signature, for an SP that must sign: refused.
        let started = Instant::now();
        let r = b
            .get(&redirect_url_signed_by(
                &sso,
                "SAMLRequest",
                &evil,
                None,
                None,
            ))
            .await;
        let took = started.elapsed();
        eprintln!("Redirect (unsigned query) with an embedded signature refused in {took:?}");
        assert_error_page(&r);
        assert!(took < FAST, "{took:?}");
    }
}

#[tokio::test]
async fn logout_messages_with_such_transforms_are_refused_at_once() {
    let (app, sp) = app_with_signing_sp().await;
    let b = app.browser();
    let slo = app.url("/saml/slo");
    let id = fresh_id();
    let req = sp.logout_request_for(
        &app,
        &id,
        "someone",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "_s",
    );
    let req = req.replace("</samlp:LogoutRequest>", "") + &padding() + "</samlp:LogoutRequest>";
    for (name, transform) in [("XPath", XPATH), ("XSLT", XSLT)] {
        let evil = with_transform(&sp.sign_xml(&req, &id), transform);
        let msg = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &evil);
        let started = Instant::now();
        let r = b.post(&slo, &[("SAMLRequest", msg.as_str())]).await;
        let took = started.elapsed();
        eprintln!("POST LogoutRequest with an {name} transform refused in {took:?}");
        assert_error_page(&r);
        assert!(took < FAST, "{name}: {took:?}");
    }
}

/// The attack: a Redirect-binding query of thousands of distinct parameters, whose duplicate
/// check was quadratic on an async thread before any signature was looked at. The binding
/// defines four parameters; past sixteen the query is refused as malformed.
#[tokio::test]
async fn a_redirect_query_of_thousands_of_parameters_is_refused() {
    let (app, sp) = app_with_signing_sp().await;
    let b = app.browser();
    let id = fresh_id();
    let req = sp.authn_request(&app, &id, "", "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    let flood: String = (0..8_000).map(|i| format!("&p{i:x}")).collect();
    let started = Instant::now();
    let r = b.get(&format!("{url}{flood}")).await;
    eprintln!(
        "a Redirect query of 8000 parameters refused in {:?}",
        started.elapsed()
    );
    assert_error_page(&r);
    assert_eq!(r.status, 400);
    // The same request without the flood is read: on to the login page, not an error.
    let r = b.get(&url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.as_deref().unwrap_or("").contains("/login?tx="));
}
