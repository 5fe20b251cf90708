//! The SAML2 IdP, driven like an SP and a browser would.

use crate::helpers::{Browser, PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::saml_sp::*;
use portvakt::saml::xml;

pub(crate) const ANNA: &str = "elev.anna";
const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
const VERSION_MISMATCH: &str = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch";
const INVALID_NAMEID_POLICY: &str = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// An app with elev.anna and one SP registered with `flags`.
pub(crate) async fn app_and_sp(flags: &[&str]) -> (TestApp, TestSp) {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student@EKS"]).await;
    let sp = TestSp::new("https://sp.example.se");
    sp.register(&app, flags);
    (app, sp)
}

/// A fresh AuthnRequest: (ID, XML).
pub(crate) fn request(app: &TestApp, sp: &TestSp, attrs: &str, extra: &str) -> (String, String) {
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
pub(crate) async fn login_assertion(
    app: &TestApp,
    sp: &TestSp,
    user: &str,
    extra: &str,
) -> xml::Element {
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
async fn with_every_verification_slot_taken_unsigned_requests_are_answered_and_signed_ones_get_503()
{
    // One slot, no queue: a held slot means any signature to verify is refused as busy.
    let app = spawn_app_with(|c| {
        c.saml.max_concurrent_verifications = 1;
        c.saml.verification_queue = 0;
    })
    .await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://sp.example.se");
    sp.register(&app, &[]);
    let signing = TestSp::new("https://signing.example.se").signing();
    signing.register(&app, &[]);
    let b = logged_in(&app, &sp, ANNA).await;

    let (release, held) = std::sync::mpsc::channel::<()>();
    let (taken, slot_taken) = tokio::sync::oneshot::channel();
    let idp = app.state.idp.clone();
    let holder = tokio::spawn(async move {
        idp.verifications()
            .run(move || {
                let _ = taken.send(());
                let _ = held.recv();
            })
            .await
            .is_ok()
    });
    slot_taken.await.unwrap();

    // An unsigned request has nothing to verify: answered as usual (it was refused as busy
    // under load before).
    let (_, req) = request(&app, &sp, "", "");
    let a = redirect_sso(&b, &app, &sp, &req, None).await;
    assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
    // A signed one waits for a slot; none is free and the queue is full: 503, the server's
    // load, not the SP's fault.
    let (_, req) = request(&app, &signing, "", "");
    let url = signing.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    let page = b.get(&url).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(!page.body.contains("SAMLResponse"));

    release.send(()).unwrap();
    assert!(holder.await.unwrap());
    // With the slot free again the signed request is verified and answered.
    let (_, req) = request(&app, &signing, "", "");
    let a = redirect_sso(&b, &app, &signing, &req, None).await;
    assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
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
