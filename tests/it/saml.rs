//! The SAML2 IdP, driven like an SP and a browser would.

use crate::helpers::{Browser, PASSWORD, TestApp, cli, spawn_app};
use crate::saml_sp::*;
use portvakt::saml::xml;

const ANNA: &str = "elev.anna";
const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
const VERSION_MISMATCH: &str = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch";
const INVALID_NAMEID_POLICY: &str = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// An app with elev.anna and one SP registered with `flags`.
async fn app_and_sp(flags: &[&str]) -> (TestApp, TestSp) {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student@EKS"]).await;
    let sp = TestSp::new("https://sp.example.se");
    sp.register(&app, flags);
    (app, sp)
}

/// A fresh AuthnRequest: (ID, XML).
fn request(app: &TestApp, sp: &TestSp, attrs: &str, extra: &str) -> (String, String) {
    let id = fresh_id();
    let xml = sp.authn_request(app, &id, attrs, extra);
    (id, xml)
}

/// A browser logged in as `user` through one SSO with `sp`.
async fn logged_in(app: &TestApp, sp: &TestSp, user: &str) -> Browser {
    let b = app.browser();
    let (_, req) = request(app, sp, "", "");
    let a = redirect_sso(&b, app, sp, &req, Some(user)).await;
    assert_eq!(a.status().0, SUCCESS);
    b
}

/// One full login (new browser) and the verified assertion.
async fn login_assertion(app: &TestApp, sp: &TestSp, user: &str, extra: &str) -> xml::Element {
    let b = app.browser();
    let (_, req) = request(app, sp, "", extra);
    let a = redirect_sso(&b, app, sp, &req, Some(user)).await;
    assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
    verified_assertion(&a.xml, &idp_cert(app).await)
}

fn requested_context(level: &str) -> String {
    format!(
        r#"<samlp:RequestedAuthnContext Comparison="exact"><saml:AuthnContextClassRef>{level}</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>"#
    )
}

fn name_id_policy(format: &str) -> String {
    format!(r#"<samlp:NameIDPolicy Format="{format}" AllowCreate="true"/>"#)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// 1. Bindings.

#[tokio::test]
async fn sp_initiated_redirect_login_gives_a_signed_assertion() {
    let (app, sp) = app_and_sp(&[
        "--release",
        "givenName",
        "--release",
        "eduPersonAffiliation",
        "--nameid",
        "persistent",
    ])
    .await;
    let b = app.browser();
    let req = sp.authn_request(&app, "_req1", "", "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, Some("rs-1"));
    let first = b.get(&url).await;
    let page = sso_until_form(&b, &app, first, Some((ANNA, PASSWORD))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (action, xml, relay) = form_response(&page);
    assert_eq!(action, sp.acs);
    assert_eq!(relay.as_deref(), Some("rs-1"));
    assert_eq!(status_of(&xml).0, SUCCESS);
    let a = verified_assertion(&xml, &idp_cert(&app).await);
    let attrs = attributes(&a);
    assert_eq!(attrs["givenName"], vec!["Test"]);
    assert_eq!(attrs["eduPersonAffiliation"], vec!["member", "student"]);
    assert_eq!(attrs.len(), 2, "only released attributes: {attrs:?}");
    // The issuance is recorded: which attributes went to which SP.
    let person = portvakt::storage::persons::by_login_name(&app.db, "elev.anna")
        .await
        .unwrap()
        .unwrap();
    let records = portvakt::storage::records::releases_for_person(&app.db, &person.id)
        .await
        .unwrap();
    let saml: Vec<_> = records
        .iter()
        .filter(|r| r.artifact == "assertion")
        .collect();
    assert_eq!(saml.len(), 1);
    assert_eq!(saml[0].rp_id, sp.entity_id);
    assert_eq!(saml[0].claims, vec!["givenName", "eduPersonAffiliation"]);
}

#[tokio::test]
async fn sp_initiated_post_binding_answers_with_a_post_form_to_the_acs() {
    let (app, sp) = app_and_sp(&["--release", "givenName"]).await;
    let b = app.browser();
    let (id, req) = request(&app, &sp, "", "");
    let first = post_request(&b, &app, &req, Some("rs-post")).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let a = answer(&b, &app, first, Some(ANNA)).await;
    assert_eq!(a.action, sp.acs);
    assert_eq!(a.relay.as_deref(), Some("rs-post"));
    assert_eq!(a.status().0, SUCCESS);
    assert_eq!(in_response_to(&a.xml), Some(id));
    let assertion = verified_assertion(&a.xml, &idp_cert(&app).await);
    assert_eq!(attributes(&assertion)["givenName"], vec!["Test"]);
}

// 2. IdP-initiated.

#[tokio::test]
async fn idp_initiated_sso_only_for_sps_registered_for_it_and_without_in_response_to() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let open = TestSp::new("https://open.example.se");
    open.register(&app, &["--idp-initiated"]);
    let closed = TestSp::new("https://closed.example.se");
    closed.register(&app, &[]);
    let init = |sp: &TestSp| {
        app.url(&format!(
            "/saml/idp-init?sp={}&RelayState=x",
            enc(&sp.entity_id)
        ))
    };
    let b = app.browser();
    assert_error_page(&b.get(&init(&closed)).await);
    let a = answer(&b, &app, b.get(&init(&open)).await, Some(ANNA)).await;
    assert_eq!(a.action, open.acs);
    assert_eq!(a.relay.as_deref(), Some("x"));
    assert_eq!(a.status().0, SUCCESS);
    assert!(!a.xml.contains("InResponseTo"), "{}", a.xml);
    verified_assertion(&a.xml, &idp_cert(&app).await);
    // A live session does not open the other SP.
    assert_error_page(&b.get(&init(&closed)).await);
}

// 3. Signed requests.

#[tokio::test]
async fn signed_redirect_requests_are_checked_over_the_raw_query() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let mut sp = TestSp::new("https://signing.example.se").signing();
    sp.register(&app, &[]);
    let b = app.browser();
    let sso = app.url("/saml/sso");
    let (_, req) = request(&app, &sp, "", "");
    let url = sp.redirect_url(&sso, "SAMLRequest", &req, Some("rs-1"));
    let tampered = url.replace("RelayState=rs-1", "RelayState=rs-2");
    assert_ne!(tampered, url);
    assert_error_page(&b.get(&tampered).await);
    let a = answer(&b, &app, b.get(&url).await, Some(ANNA)).await;
    assert_eq!(
        (a.status().0, a.relay.as_deref()),
        (SUCCESS.into(), Some("rs-1"))
    );
    // The metadata says AuthnRequestsSigned: unsigned requests are refused in both bindings.
    sp.sign_requests = false;
    let (_, req) = request(&app, &sp, "", "");
    assert_error_page(
        &b.get(&sp.redirect_url(&sso, "SAMLRequest", &req, None))
            .await,
    );
    assert_error_page(&post_request(&b, &app, &req, None).await);
    // SHA-1 is refused even when the signature is right.
    sp.sign_requests = true;
    let (_, req) = request(&app, &sp, "", "");
    let sha1 = sp.redirect_url_with(&sso, "SAMLRequest", &req, None, RSA_SHA1);
    assert_error_page(&b.get(&sha1).await);
}

#[tokio::test]
async fn redirect_parameters_are_read_once_for_the_signature_and_the_message() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://signing.example.se").signing();
    sp.register(&app, &[]);
    let b = app.browser();
    let sso = app.url("/saml/sso");
    let query_of = |url: &str| url.split_once('?').unwrap().1.to_string();
    // A LogoutResponse the SP really signed, and a forged AuthnRequest beside it under a
    // percent-encoded name: a decoding reader would take the forgery, the raw signature check
    // the signed response.
    let signed_response = sp.redirect_url(
        &sso,
        "SAMLResponse",
        &sp.logout_response(&app, "_whatever", SUCCESS),
        None,
    );
    let (_, forged) = request(&app, &sp, "", "");
    let forged = redirect_url_signed_by(&sso, "SAMLRequest", &forged, None, None);
    let forged_value = query_of(&forged)
        .strip_prefix("SAMLRequest=")
        .unwrap()
        .to_string();
    let attack = format!(
        "{sso}?%53AMLRequest={forged_value}&{}",
        query_of(&signed_response)
    );
    assert_error_page(&b.get(&attack).await);
    // The signed response alone is not an AuthnRequest.
    assert_error_page(&b.get(&signed_response).await);
    // Both names at once, or one twice: refused.
    let both = format!(
        "{sso}?SAMLRequest={forged_value}&{}",
        query_of(&signed_response)
    );
    assert_error_page(&b.get(&both).await);
    // An encoded or repeated RelayState never replaces the signed one.
    let (_, req) = request(&app, &sp, "", "");
    let url = sp.redirect_url(&sso, "SAMLRequest", &req, Some("rs-1"));
    for extra in ["&Relay%53tate=evil", "&RelayState=evil"] {
        let r = b.get(&format!("{url}{extra}")).await;
        if r.status == 400 {
            assert_error_page(&r);
        } else {
            let a = answer(&b, &app, r, Some(ANNA)).await;
            assert_eq!(a.relay.as_deref(), Some("rs-1"));
        }
    }
    // The untouched request still works, with its RelayState.
    let a = answer(&b, &app, b.get(&url).await, Some(ANNA)).await;
    assert_eq!(
        (a.status().0, a.relay.as_deref()),
        (SUCCESS.into(), Some("rs-1"))
    );
}

#[tokio::test]
async fn signed_post_requests_are_accepted_and_sha1_is_refused() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://signing.example.se").signing();
    sp.register(&app, &[]);
    let b = app.browser();
    let (id, req) = request(&app, &sp, "", "");
    let sha1 = sp.sign_xml_sha1(&req, &id);
    assert!(sha1.contains("xmldsig#rsa-sha1") && sha1.contains("xmldsig#sha1"));
    assert_error_page(&post_request(&b, &app, &sha1, None).await);
    let (id, req) = request(&app, &sp, "", "");
    let signed = sp.sign_xml(&req, &id);
    let a = answer(
        &b,
        &app,
        post_request(&b, &app, &signed, None).await,
        Some(ANNA),
    )
    .await;
    assert_eq!(a.status().0, SUCCESS);
    assert_eq!(in_response_to(&a.xml), Some(id));
}

// 4. Signature wrapping.

#[tokio::test]
async fn a_signed_request_wrapped_in_an_unsigned_one_never_answers_the_attacker() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://signing.example.se").signing();
    sp.register(&app, &["--release", "givenName"]);
    let b = logged_in(&app, &sp, ANNA).await;
    let second_acs = format!("{}/second", sp.acs);
    for attacker_acs in ["https://evil.example/acs", second_acs.as_str()] {
        let (legit_id, legit) = request(&app, &sp, "", "");
        let signed = sp.sign_xml(&legit, &legit_id);
        let signed = &signed[signed.find("<samlp:AuthnRequest").unwrap()..];
        let inner = format!("<samlp:Extensions>{signed}</samlp:Extensions>");
        let (_, outer) = request(&app, &sp, "", &inner);
        let outer = set_attr(&outer, "AssertionConsumerServiceURL", attacker_acs);
        // Well-formed, with the signed request inside the attacker's.
        let parsed = xml::parse(&outer).unwrap();
        let mut wrapped = Vec::new();
        parsed.descendants(SAMLP, "AuthnRequest", &mut wrapped);
        assert_eq!(wrapped[0].attr("ID"), Some(legit_id.as_str()));
        assert_eq!(
            parsed.attr("AssertionConsumerServiceURL"),
            Some(attacker_acs)
        );
        let r = post_request(&b, &app, &outer, None).await;
        assert!(!r.body.contains("evil.example"), "{}", r.body);
        if r.body.contains("SAMLResponse") {
            let (action, xml, _) = form_response(&r);
            assert_eq!(action, sp.acs, "only the signed ACS may get an answer");
            assert_eq!(
                in_response_to(&xml),
                Some(legit_id),
                "only the signed request"
            );
        } else {
            assert_error_page(&r);
        }
    }
}

// 5. ForceAuthn, IsPassive, RequestedAuthnContext.

#[tokio::test]
async fn force_authn_asks_for_the_password_again_despite_a_session() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = logged_in(&app, &sp, ANNA).await;
    let (_, req) = request(&app, &sp, "", "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    assert_eq!(b.get(&url).await.status, 200, "the session answers at once");
    let (_, req) = request(&app, &sp, r#" ForceAuthn="true""#, "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    let r = b.get(&url).await;
    assert_eq!(r.status, 303);
    assert!(r.location.as_deref().unwrap().contains("/login?tx="));
    assert_eq!(answer(&b, &app, r, Some(ANNA)).await.status().0, SUCCESS);
}

#[tokio::test]
async fn is_passive_without_a_session_answers_no_passive() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = app.browser();
    let (id, req) = request(&app, &sp, r#" IsPassive="true""#, "");
    let a = redirect_sso(&b, &app, &sp, &req, None).await;
    assert_eq!(a.action, sp.acs);
    assert_eq!(a.status(), (REQUESTER.into(), Some(NO_PASSIVE.into())));
    assert_eq!(in_response_to(&a.xml), Some(id));
    assert!(!a.xml.contains("Assertion"));
}

#[tokio::test]
async fn requested_authn_context_2fa_is_refused_and_bas_is_stated() {
    let (app, sp) = app_and_sp(&["--release", "eduPersonAssurance"]).await;
    let b = app.browser();
    let (_, req) = request(&app, &sp, "", &requested_context(TWO_FACTOR));
    let a = redirect_sso(&b, &app, &sp, &req, None).await;
    assert_eq!(
        a.status(),
        (REQUESTER.into(), Some(NO_AUTHN_CONTEXT.into()))
    );
    let a = login_assertion(&app, &sp, ANNA, &requested_context(BAS)).await;
    assert_eq!(authn_context(&a), BAS);
    assert_eq!(attributes(&a)["eduPersonAssurance"], vec![BAS]);
}

// 6. Encrypted assertions.

#[tokio::test]
async fn an_encrypting_sp_gets_an_encrypted_assertion_that_xmlsec1_decrypts() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://enc.example.se").encrypting();
    sp.register(&app, &["--release", "givenName"]);
    let b = app.browser();
    let (_, req) = request(&app, &sp, "", "");
    let a = redirect_sso(&b, &app, &sp, &req, Some(ANNA)).await;
    assert_eq!(a.status().0, SUCCESS);
    let root = a.root();
    assert!(
        root.child(SAML, "EncryptedAssertion").is_some(),
        "{}",
        a.xml
    );
    assert!(root.child(SAML, "Assertion").is_none());
    assert!(!a.xml.contains("saml:Assertion "), "nothing in clear");
    let plain = decrypt_with_xmlsec1(&app, &sp, &a.xml);
    let assertion = verified_assertion(&plain, &idp_cert(&app).await);
    assert_eq!(attributes(&assertion)["givenName"], vec!["Test"]);
}

// 7. Errors.

#[tokio::test]
async fn requests_that_cannot_be_answered_safely_get_an_error_page() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = logged_in(&app, &sp, ANNA).await;
    let stranger = TestSp::new("https://unknown.example.se");
    let (_, req) = request(&app, &stranger, "", "");
    let r = b
        .get(&stranger.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    assert_error_page(&r);
    assert!(r.body.contains("registrerad") || r.body.contains("registered"));
    let (_, req) = request(&app, &sp, "", "");
    let other = set_attr(
        &req,
        "AssertionConsumerServiceURL",
        "https://sp.example.se/other",
    );
    assert_error_page(&post_request(&b, &app, &other, None).await);
}

#[tokio::test]
async fn requests_that_fail_their_signature_get_an_error_page_and_nothing_signed() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://signing.example.se").signing();
    sp.register(&app, &[]);
    // A session, so that a request taken as genuine would be answered with an assertion.
    let b = logged_in(&app, &sp, ANNA).await;
    let sso = app.url("/saml/sso");
    // The same entity ID with another key: what anyone can make.
    let impostor = TestSp::new("https://signing.example.se").signing();
    let stale = xml::instant(app.clock.now() - 600);
    // Faults that a verified request would have answered with a signed SAML status.
    let faults: [(&str, &str); 4] = [
        ("", ""),
        ("Destination", "https://elsewhere.example/sso"),
        ("IssueInstant", stale.as_str()),
        ("Version", "1.1"),
    ];
    for (attr, value) in faults {
        let faulty = |xml: String| {
            if attr.is_empty() {
                xml
            } else {
                set_attr(&xml, attr, value)
            }
        };
        let (id, req) = request(&app, &sp, "", "");
        let req = faulty(req);
        let answers = [
            // Unsigned, in both bindings, from an SP whose metadata says it signs.
            b.get(&redirect_url_signed_by(
                &sso,
                "SAMLRequest",
                &req,
                None,
                None,
            ))
            .await,
            post_request(&b, &app, &req, None).await,
            // Signed with a key that is not the SP's.
            b.get(&impostor.redirect_url(&sso, "SAMLRequest", &req, None))
                .await,
            post_request(&b, &app, &impostor.sign_xml(&req, &id), None).await,
            // Signed by the SP, then altered.
            b.get(
                &sp.redirect_url(&sso, "SAMLRequest", &req, Some("rs"))
                    .replace("RelayState=rs", "RelayState=rt"),
            )
            .await,
            post_request(
                &b,
                &app,
                &sp.sign_xml(&req, &id).replacen(
                    "<samlp:AuthnRequest ",
                    "<samlp:AuthnRequest ForceAuthn=\"true\" ",
                    1,
                ),
                None,
            )
            .await,
        ];
        for (i, r) in answers.iter().enumerate() {
            assert_eq!(r.status, 400, "fault {attr:?}, case {i}");
            assert_error_page(r);
            assert!(
                r.body.contains("signatur") || r.body.contains("signature"),
                "fault {attr:?}, case {i}: {}",
                r.body
            );
        }
    }
    // An unknown sender's faulty request: an error page too.
    let stranger = TestSp::new("https://unknown.example.se").signing();
    let (_, req) = request(&app, &stranger, "", "");
    let r = b
        .get(&stranger.redirect_url(&sso, "SAMLRequest", &set_attr(&req, "Version", "1.1"), None))
        .await;
    assert_error_page(&r);
}

#[tokio::test]
async fn assertion_consumer_service_index_picks_the_metadata_endpoint() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = logged_in(&app, &sp, ANNA).await;
    let (_, req) = request(&app, &sp, r#" AssertionConsumerServiceIndex="1""#, "");
    let req = drop_attr(&req, "AssertionConsumerServiceURL");
    let a = redirect_sso(&b, &app, &sp, &req, None).await;
    assert_eq!(a.action, format!("{}/second", sp.acs));
    assert_eq!(a.status().0, SUCCESS);
}

#[tokio::test]
async fn faulty_requests_from_a_known_sp_get_a_requester_status_at_its_acs() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = app.browser();
    let stale = xml::instant(app.clock.now() - 600);
    let faults = [
        ("Destination", "https://elsewhere.example/sso"),
        ("IssueInstant", stale.as_str()),
    ];
    for (attr, value) in faults {
        let (id, req) = request(&app, &sp, "", "");
        let a = redirect_sso(&b, &app, &sp, &set_attr(&req, attr, value), None).await;
        assert_eq!(a.action, sp.acs);
        assert_eq!(a.status().0, REQUESTER, "{attr}: {}", a.xml);
        assert_eq!(in_response_to(&a.xml), Some(id));
        assert!(!a.xml.contains("Assertion"));
    }
    let (_, req) = request(&app, &sp, "", "");
    let a = redirect_sso(&b, &app, &sp, &set_attr(&req, "Version", "1.1"), None).await;
    assert_eq!(a.status().0, VERSION_MISMATCH, "{}", a.xml);
}

// 8. Replay.

#[tokio::test]
async fn the_same_request_id_twice_is_denied() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = app.browser();
    let (_, req) = request(&app, &sp, "", "");
    assert_eq!(
        redirect_sso(&b, &app, &sp, &req, Some(ANNA))
            .await
            .status()
            .0,
        SUCCESS
    );
    let again = redirect_sso(&b, &app, &sp, &req, None).await;
    assert_eq!(
        again.status(),
        (REQUESTER.into(), Some(REQUEST_DENIED.into()))
    );
    assert!(!again.xml.contains("Assertion"));
}

// 9. Hostile XML.

#[tokio::test]
async fn a_doctype_or_an_oversized_request_is_refused() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = logged_in(&app, &sp, ANNA).await;
    let sso = app.url("/saml/sso");
    let (_, req) = request(&app, &sp, "", "");
    let doctype = format!(r#"<!DOCTYPE samlp:AuthnRequest [<!ENTITY x "x">]>{req}"#);
    assert_error_page(&post_request(&b, &app, &doctype, None).await);
    assert_error_page(
        &b.get(&sp.redirect_url(&sso, "SAMLRequest", &doctype, None))
            .await,
    );
    // Over 64 KiB once inflated, a few hundred bytes on the wire.
    let (_, req) = request(&app, &sp, "", "");
    let bomb = req.replacen(
        "<saml:Issuer>",
        &format!("{}<saml:Issuer>", " ".repeat(70 * 1024)),
        1,
    );
    let url = sp.redirect_url(&sso, "SAMLRequest", &bomb, None);
    assert!(url.len() < 2000);
    assert_error_page(&b.get(&url).await);
    // Over HTTP-POST the body limit (64 KiB) answers first.
    let r = post_request(&b, &app, &bomb, None).await;
    assert!(matches!(r.status, 400 | 413), "{}", r.status);
    assert!(!r.body.contains("SAMLResponse"));
}

// 10. Escaping.

#[tokio::test]
async fn markup_in_names_stays_text_in_the_signed_assertion() {
    let (app, sp) = app_and_sp(&["--release", "givenName", "--release", "sn"]).await;
    let given = r#"x</saml:AttributeValue></saml:Attribute><saml:Attribute Name="role"><saml:AttributeValue>admin"#;
    let mut p = new_person("elev.mallory");
    p.given_name = given.into();
    p.family_name = "a<b&c".into();
    add_person_as(&app, p).await;
    let a = login_assertion(&app, &sp, "elev.mallory", "").await;
    let attrs = attributes(&a);
    assert_eq!(attrs["givenName"], vec![given]);
    assert_eq!(attrs["sn"], vec!["a<b&c"]);
    let mut all = Vec::new();
    a.descendants(SAML, "Attribute", &mut all);
    assert!(all.iter().all(|at| at.attr("Name") != Some("role")));
    assert_eq!(all.len(), 2);
}

// 11. Any change breaks the signature.

#[tokio::test]
async fn changing_any_character_of_the_assertion_breaks_its_signature() {
    let (app, sp) = app_and_sp(&["--release", "givenName", "--nameid", "persistent"]).await;
    let b = app.browser();
    let (_, req) = request(&app, &sp, "", "");
    let a = redirect_sso(&b, &app, &sp, &req, Some(ANNA)).await;
    let cert = idp_cert(&app).await;
    verify(&a.xml, &cert).expect("the untouched response verifies");
    let after = |marker: &str, skip: usize| a.xml.find(marker).unwrap() + marker.len() + skip;
    let positions = [
        after("<saml:NameID ", 0) + a.xml[after("<saml:NameID ", 0)..].find('>').unwrap() + 3,
        after("<saml:AttributeValue xsi:type=\"xs:string\">", 1),
        after("<ds:SignatureValue>", 20),
        after("<ds:DigestValue>", 10),
        after("<saml:Audience>", 5),
        after("<saml:AuthnContextClassRef>", 12),
    ];
    for pos in positions {
        let mut bytes = a.xml.clone().into_bytes();
        bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert!(
            verify(&changed, &cert).is_err(),
            "a change at {pos} ({:?}) still verifies",
            &a.xml[pos.saturating_sub(20)..pos + 5]
        );
    }
}

// 12. NameID.

#[tokio::test]
async fn persistent_name_ids_are_stable_per_sp_and_differ_between_sps() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let one = TestSp::new("https://one.example.se");
    one.register(&app, &["--nameid", "persistent"]);
    let two = TestSp::new("https://two.example.se");
    two.register(&app, &["--nameid", "persistent"]);
    let first = name_id(&login_assertion(&app, &one, ANNA, "").await);
    let again = name_id(&login_assertion(&app, &one, ANNA, "").await);
    let other = name_id(&login_assertion(&app, &two, ANNA, "").await);
    assert_eq!(first.0, PERSISTENT);
    assert_eq!(first, again);
    assert_ne!(first.1, other.1);
}

#[tokio::test]
async fn transient_name_ids_differ_per_login() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student@EKS"]).await;
    // Metadata that names no format: the configured default decides.
    let mut sp = TestSp::new("https://sp.example.se");
    sp.name_id_formats.clear();
    sp.register(&app, &["--nameid", "transient"]);
    let first = name_id(&login_assertion(&app, &sp, ANNA, "").await);
    let again = name_id(&login_assertion(&app, &sp, ANNA, "").await);
    assert_eq!(first.0, TRANSIENT);
    assert_ne!(first.1, again.1);
}

#[tokio::test]
async fn email_name_id_only_for_an_sp_configured_for_it() {
    let (app, sp) = app_and_sp(&[]).await;
    let b = app.browser();
    let (_, req) = request(&app, &sp, "", &name_id_policy(EMAIL));
    let a = redirect_sso(&b, &app, &sp, &req, None).await;
    assert_eq!(
        a.status(),
        (REQUESTER.into(), Some(INVALID_NAMEID_POLICY.into()))
    );
    // Metadata listing persistent and emailAddress, configured for emailAddress=mail (as for
    // Google Workspace): the configured format among those listed is the default.
    let mut mail = TestSp::new("https://mail.example.se");
    mail.name_id_formats.push(EMAIL.to_string());
    mail.register(&app, &["--nameid", "emailAddress=mail"]);
    let asked = name_id(&login_assertion(&app, &mail, ANNA, &name_id_policy(EMAIL)).await);
    assert_eq!(asked, (EMAIL.into(), format!("{ANNA}@example.se")));
    let default = name_id(&login_assertion(&app, &mail, ANNA, "").await);
    assert_eq!(
        default, asked,
        "the configured NameID is the default among those listed"
    );
    // The metadata's format comes before a configured default it does not list.
    let listed = TestSp::new("https://listed.example.se");
    listed.register(&app, &["--nameid", "transient"]);
    let from_metadata = name_id(&login_assertion(&app, &listed, ANNA, "").await);
    assert_eq!(
        from_metadata.0,
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
}

// 13. Attribute release.

#[tokio::test]
async fn nothing_is_released_by_default() {
    let (app, sp) = app_and_sp(&[]).await;
    let a = login_assertion(&app, &sp, ANNA, "").await;
    assert!(a.child(SAML, "AttributeStatement").is_none());
    assert!(attributes(&a).is_empty());
}

#[tokio::test]
async fn only_listed_attributes_are_released_and_multi_values_are_separate() {
    let app = spawn_app().await;
    app.add_person("larare.lisa", &["teacher@EKS"]).await;
    let sp = TestSp::new("https://sp.example.se");
    let names = [
        "mail",
        "eduPersonAffiliation",
        "eduPersonScopedAffiliation",
        "schacHomeOrganization",
    ];
    let flags: Vec<&str> = names.iter().flat_map(|n| ["--release", n]).collect();
    sp.register(&app, &flags);
    let attrs = attributes(&login_assertion(&app, &sp, "larare.lisa", "").await);
    assert_eq!(attrs.keys().collect::<Vec<_>>(), {
        let mut n = names.to_vec();
        n.sort();
        n
    });
    let scope = &attrs["schacHomeOrganization"][0];
    let scoped: Vec<String> = attrs["eduPersonAffiliation"]
        .iter()
        .map(|a| format!("{a}@{scope}"))
        .collect();
    assert_eq!(attrs["eduPersonScopedAffiliation"], scoped);
    assert_eq!(scoped.len(), 3, "faculty, employee, member: {scoped:?}");
}

#[tokio::test]
async fn a_protected_identity_never_releases_the_civic_number() {
    let (app, sp) = app_and_sp(&["--release", "norEduPersonNIN", "--release", "givenName"]).await;
    let civic = portvakt::directory::CivicNo::parse("19121212-1212").unwrap();
    for (user, protected) in [("elev.open", false), ("elev.hidden", true)] {
        let mut p = new_person(user);
        p.civic_no = Some(civic.clone());
        p.protected_identity = protected;
        add_person_as(&app, p).await;
        let attrs = attributes(&login_assertion(&app, &sp, user, "").await);
        assert_eq!(attrs["givenName"], vec!["Test"]);
        match protected {
            false => assert_eq!(attrs["norEduPersonNIN"], vec!["191212121212"]),
            true => assert!(!attrs.contains_key("norEduPersonNIN"), "{attrs:?}"),
        }
    }
}

// 14. Metadata.

async fn idp_metadata(app: &TestApp) -> xml::Element {
    let r = app
        .client()
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    xml::parse(&r.text().await.unwrap()).unwrap()
}

fn signing_keys(md: &xml::Element) -> usize {
    let mut kds = Vec::new();
    md.descendants(xml::MD, "KeyDescriptor", &mut kds);
    kds.iter()
        .filter(|k| k.attr("use") == Some("signing"))
        .count()
}

#[tokio::test]
async fn metadata_describes_the_idp_and_lists_the_next_key_after_rotation() {
    let app = spawn_app().await;
    let md = idp_metadata(&app).await;
    assert_eq!(
        md.attr("entityID"),
        Some(app.url("/saml/metadata").as_str())
    );
    assert_eq!(signing_keys(&md), 1);
    let idp = md.child(xml::MD, "IDPSSODescriptor").unwrap();
    let bindings: Vec<&str> = idp
        .children(xml::MD, "SingleSignOnService")
        .map(|s| s.attr("Binding").unwrap())
        .collect();
    assert!(bindings.iter().any(|b| b.ends_with("HTTP-Redirect")));
    assert!(bindings.iter().any(|b| b.ends_with("HTTP-POST")));
    assert!(idp.child(xml::MD, "SingleLogoutService").is_some());
    assert!(idp.children(xml::MD, "NameIDFormat").count() >= 2);
    let mut found = Vec::new();
    idp.descendants("urn:mace:shibboleth:metadata:1.0", "Scope", &mut found);
    assert_eq!(found.len(), 1);
    let mut names = Vec::new();
    idp.descendants(xml::MDUI, "DisplayName", &mut names);
    let langs: Vec<&str> = names.iter().filter_map(|n| n.attr("xml:lang")).collect();
    assert_eq!(langs, vec!["sv", "en"]);
    let out = cli(&app, &["keys", "rotate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(signing_keys(&idp_metadata(&app).await), 2);
}

/// Signed metadata is signed once per key set: every request gets the same bytes (so no
/// one can make the IdP sign at will), until a rotation publishes another key.
#[tokio::test]
async fn signed_metadata_is_signed_once_per_key_set() {
    let app = crate::helpers::spawn_app_with(|c| c.saml.sign_metadata = true).await;
    let fetch = || async {
        let r = app
            .client()
            .get(app.url("/saml/metadata"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let first = fetch().await;
    assert!(first.contains("SignatureValue"), "{first}");
    assert_eq!(fetch().await, first, "the same signed bytes");
    let out = cli(&app, &["keys", "rotate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = fetch().await;
    assert_ne!(rotated, first, "a new key set, a new document");
    assert_eq!(signing_keys(&xml::parse(&rotated).unwrap()), 2);
    assert_eq!(fetch().await, rotated);
}

// 15. The CLI.

fn stderr_line(out: &std::process::Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

fn write_metadata(app: &TestApp, doc: &str) -> String {
    let path = app
        .dir
        .path()
        .join(format!("md-{}.xml", portvakt::keys::random_token()));
    std::fs::write(&path, doc).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn sp_add_refuses_bad_or_expired_metadata_with_one_line() {
    let app = spawn_app().await;
    let bad = write_metadata(&app, "<x/>");
    let out = cli(&app, &["sp", "add", "--metadata", &bad], None);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("metadata"));
    let sp = TestSp::new("https://old.example.se");
    let expired = sp.metadata().replacen(
        " entityID=",
        r#" validUntil="2001-01-01T00:00:00Z" entityID="#,
        1,
    );
    let out = cli(
        &app,
        &["sp", "add", "--metadata", &write_metadata(&app, &expired)],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("validUntil"));
    let list = cli(&app, &["sp", "list", "--json"], None);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn sp_list_update_and_remove_take_effect_at_the_next_login() {
    let (app, sp) = app_and_sp(&["--release", "givenName", "--release", "sn"]).await;
    let list = cli(&app, &["sp", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["entity_id"], sp.entity_id.as_str());
    assert_eq!(v[0]["release"], serde_json::json!(["givenName", "sn"]));
    let attrs = attributes(&login_assertion(&app, &sp, ANNA, "").await);
    assert_eq!(attrs.len(), 2);

    let out = cli(
        &app,
        &["sp", "update", &sp.entity_id, "--release", "mail"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attrs = attributes(&login_assertion(&app, &sp, ANNA, "").await);
    assert_eq!(attrs.keys().collect::<Vec<_>>(), vec!["mail"]);

    let out = cli(&app, &["sp", "remove", &sp.entity_id], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, req) = request(&app, &sp, "", "");
    let b = app.browser();
    let r = b
        .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    assert_error_page(&r);
    assert!(r.body.contains("registrerad") || r.body.contains("registered"));
}

/// Serves `doc` at http://127.0.0.1:PORT/md.xml from a thread of its own (the CLI call blocks
/// the test's runtime).
fn serve_metadata(doc: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/md.xml", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let router = axum::Router::new()
                .route("/md.xml", axum::routing::get(move || async move { doc }));
            axum::serve(listener, router).await
        })
    });
    url
}

#[tokio::test]
async fn sp_add_takes_metadata_from_a_url() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://fetched.example.se");
    let doc = sp.metadata();
    let url = serve_metadata(doc);
    let out = cli(&app, &["sp", "add", "--metadata", &url], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = cli(&app, &["sp", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["metadata_url"], url.as_str());
    assert_eq!(
        login_assertion(&app, &sp, ANNA, "").await.attr("Version"),
        Some("2.0")
    );
}

/// Serves whatever `doc` holds at the time of each request (a metadata URL that changes).
fn serve_changing_metadata(doc: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/md.xml", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let router = axum::Router::new().route(
                "/md.xml",
                axum::routing::get(move || async move { doc.lock().unwrap().clone() }),
            );
            axum::serve(listener, router).await
        })
    });
    url
}

/// `doc` with an ID on its root, signed (enveloped, as a federation signs) by `signer`.
fn signed_metadata(doc: &str, signer: &TestSp) -> String {
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(&signer.cert_der);
    let root_end = doc.find('>').unwrap();
    let xml = format!(
        "{} ID=\"_md1\">{}{}",
        &doc[..root_end],
        portvakt::saml::dsig::template("_md1", &cert),
        &doc[root_end + 1..]
    );
    portvakt::saml::dsig::sign(&xml, &signer.key_pkcs8).unwrap()
}

/// Metadata from a URL: plain http only in development, the body bounded while it streams,
/// a pinned signing certificate enforced, and a refresh that changes the ACS URLs or the
/// certificates audited and shown by `sp list`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_metadata_from_a_url_is_bounded_pinned_and_its_changes_are_audited() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let refused = portvakt::saml::sp::load_source(&http, "http://127.0.0.1:9/md.xml", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("https"), "{refused}");

    // 2 MiB of metadata: refused while it streams.
    let huge = format!(
        "{}{}",
        TestSp::new("https://huge.example.se").metadata(),
        " ".repeat(2 << 20)
    );
    let url = serve_metadata(huge);
    let out = tokio::task::block_in_place(|| cli(&app, &["sp", "add", "--metadata", &url], None));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 1 MiB"));

    // A pinned federation certificate: unsigned and foreign-signed metadata are refused.
    let federation = TestSp::new("https://federation.example.se");
    let stranger = TestSp::new("https://stranger.example.se");
    let pem = openssl::x509::X509::from_der(&federation.cert_der)
        .unwrap()
        .to_pem()
        .unwrap();
    let pem_path = app.dir.path().join("federation.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let pin = ["--metadata-signing-cert", pem_path.to_str().unwrap()];
    let sp = TestSp::new("https://pinned.example.se");
    let doc = std::sync::Arc::new(std::sync::Mutex::new(sp.metadata()));
    let url = serve_changing_metadata(doc.clone());
    let add = |extra: &[&str]| {
        let mut args = vec!["sp", "add", "--metadata", url.as_str()];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| cli(&app, &args, None))
    };
    for served in [sp.metadata(), signed_metadata(&sp.metadata(), &stranger)] {
        *doc.lock().unwrap() = served;
        let out = add(&pin);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not signed by the pinned certificate"),
            "{err}"
        );
    }
    *doc.lock().unwrap() = signed_metadata(&sp.metadata(), &federation);
    let out = add(&pin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The SP moves its ACS: the refresh takes it, audits it and `sp list` shows it.
    let mut moved = TestSp::new("https://pinned.example.se");
    moved.cert_der = sp.cert_der.clone();
    moved.acs = format!("{}/moved", sp.acs);
    *doc.lock().unwrap() = signed_metadata(&moved.metadata(), &federation);
    let now = app.clock.now();
    let n = portvakt::saml::sp::refresh_due(&app.db, &http, 0, true, now)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let list = tokio::task::block_in_place(|| cli(&app, &["sp", "list", "--json"], None));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["metadata_changed"]["what"], "ACS URLs", "{v}");
    assert_eq!(v[0]["metadata_signing_cert_pinned"], true);
    let text = tokio::task::block_in_place(|| cli(&app, &["sp", "list"], None));
    assert!(String::from_utf8_lossy(&text.stdout).contains("metadata changed at"));
    // Unsigned metadata at the next refresh is not taken: the moved ACS stays.
    *doc.lock().unwrap() = sp.metadata();
    let n = portvakt::saml::sp::refresh_due(&app.db, &http, 0, true, now)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let list = tokio::task::block_in_place(|| cli(&app, &["sp", "list", "--json"], None));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(v[0]["acs"].to_string().contains("/moved"), "{v}");
}
