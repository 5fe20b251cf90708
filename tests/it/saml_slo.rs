//! SSO and single logout across SAML SPs and OIDC clients, driven like SPs, a relying party
//! and a browser would: every logout message Portvakt sends is read only after its
//! Redirect-binding signature verifies against the certificate in /saml/metadata.

use crate::helpers::*;
use crate::negative::urlencode;
use crate::saml_sp::*;
use std::time::Duration;

const LOGIN: Option<(&str, &str)> = Some(("elev.anna", PASSWORD));

/// A back-channel logout receiver: its URI and the logout tokens it gets.
async fn bcl_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use axum::{Router, extract::Form, routing::post};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let receiver = Router::new().route(
        "/bcl",
        post(
            move |Form(f): Form<std::collections::HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(f.get("logout_token").cloned().unwrap_or_default());
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/bcl", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    (uri, rx)
}

/// Authorize in a browser that has an SSO session: the code must come at once (no login
/// page). Exchanges it and returns the token response.
async fn oidc_tokens_in(app: &TestApp, b: &Browser, client_id: &str) -> serde_json::Value {
    let (url, state, _, verifier) = app.authorize_url(client_id, &[]);
    let r = b.get(&url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location.unwrap();
    assert!(
        loc.starts_with(RP_REDIRECT),
        "SSO should answer at once: {loc}"
    );
    assert_eq!(query_param(&loc, "state"), Some(state));
    exchange(app, client_id, &loc, &verifier).await
}

/// The code in a redirect to the client, exchanged for tokens.
async fn exchange(
    app: &TestApp,
    client_id: &str,
    callback: &str,
    verifier: &str,
) -> serde_json::Value {
    let code = query_param(callback, "code").expect("a code");
    let (status, body) = app
        .token(
            client_id,
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A LogoutRequest the IdP sent to `sp`: signed (checked by `idp_redirect`), to its SLO
/// endpoint, from the IdP, naming exactly the subject the SP was told about.
fn assert_logout_request_to(sp: &TestSp, app: &TestApp, m: &IdpRedirect, told: &SpSubject) {
    assert_eq!(m.endpoint, sp.slo);
    assert_eq!(m.param, "SAMLRequest");
    assert!(m.root.is(SAMLP, "LogoutRequest"), "{}", m.xml);
    assert_eq!(
        m.root.child(SAML, "Issuer").unwrap().trimmed_text(),
        app.url("/saml/metadata")
    );
    let name_id = m.root.child(SAML, "NameID").expect("a NameID");
    assert_eq!(name_id.trimmed_text(), told.name_id);
    assert_eq!(name_id.attr("Format"), Some(told.format.as_str()));
    let indexes: Vec<&str> = m
        .root
        .children(SAMLP, "SessionIndex")
        .map(|i| i.trimmed_text())
        .collect();
    assert_eq!(indexes, vec![told.session_index.as_str()]);
    assert!(m.relay_state.is_some(), "the chain travels in RelayState");
}

/// A LogoutResponse the IdP sent to `sp`: signed, to its SLO endpoint, in response to
/// `in_response_to`, with the SP's RelayState back.
fn assert_logout_response_to(
    sp: &TestSp,
    app: &TestApp,
    m: &IdpRedirect,
    in_response_to: &str,
    relay: Option<&str>,
) {
    assert_eq!(m.endpoint, sp.slo);
    assert_eq!(m.param, "SAMLResponse");
    assert!(m.root.is(SAMLP, "LogoutResponse"), "{}", m.xml);
    assert_eq!(
        m.root.child(SAML, "Issuer").unwrap().trimmed_text(),
        app.url("/saml/metadata")
    );
    assert_eq!(m.root.attr("InResponseTo"), Some(in_response_to));
    assert_eq!(m.relay_state.as_deref(), relay);
}

/// The SP answers the IdP's LogoutRequest `m` through the browser; returns the IdP's answer.
async fn answer(app: &TestApp, b: &Browser, sp: &TestSp, m: &IdpRedirect, status: &str) -> Resp {
    let resp = sp.logout_response(app, m.id(), status);
    b.get(&sp.redirect_url(
        &app.url("/saml/slo"),
        "SAMLResponse",
        &resp,
        m.relay_state.as_deref(),
    ))
    .await
}

fn location(r: &Resp) -> String {
    assert_eq!(r.status, 303, "a redirect: {}", r.body);
    r.location.clone().unwrap()
}

/// Which of `sps` a message went to.
fn addressee<'a>(sps: &[&'a TestSp], m: &IdpRedirect) -> &'a TestSp {
    sps.iter()
        .find(|s| s.slo == m.endpoint)
        .copied()
        .unwrap_or_else(|| panic!("sent to an unknown endpoint {}", m.endpoint))
}

/// The session is gone on the server: even the old cookie, put back, gets a login page.
async fn assert_session_gone(
    app: &TestApp,
    b: &Browser,
    sp: &TestSp,
    old_cookies: std::collections::HashMap<String, String>,
) {
    assert!(!b.has_sso(), "the SSO cookie is cleared");
    *b.cookies.lock().unwrap() = old_cookies;
    assert!(
        !sp.answered_without_login(app, b).await,
        "the ended session must not answer an AuthnRequest"
    );
}

#[tokio::test]
async fn an_oidc_login_answers_a_saml_sp_and_a_saml_login_answers_an_oidc_client() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let sp = TestSp::new("https://sp-a.example.se").signing();
    sp.register(&app, &["--release", "mail"]);

    // OIDC first: the SAML SP's AuthnRequest is answered without the login page.
    let (b, _, _, _) = app.login_code("one", "elev.anna").await;
    let told = sp.log_in(&app, &b, None).await;
    assert!(!told.name_id.is_empty());

    // SAML first: the OIDC client gets a code without the login page, for the same person.
    let b = app.browser();
    sp.log_in(&app, &b, LOGIN).await;
    let t = oidc_tokens_in(&app, &b, "one").await;
    let (status, info) = app.userinfo(t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "elev.anna@example.se");
}

#[tokio::test]
async fn sp_initiated_logout_reaches_the_other_sp_and_the_oidc_client() {
    let (bcl, mut tokens) = bcl_receiver().await;
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |s| s.backchannel_logout_uri = Some(bcl.clone()))
        .await;
    let sp_a = TestSp::new("https://sp-a.example.se").signing();
    sp_a.register(&app, &[]);
    let sp_b = TestSp::new("https://sp-b.example.se").signing();
    sp_b.register(&app, &["--nameid", "persistent"]);
    let cert = idp_cert(&app).await;

    let b = app.browser();
    let told_a = sp_a.log_in(&app, &b, LOGIN).await;
    let told_b = sp_b.log_in(&app, &b, None).await;
    let t = oidc_tokens_in(&app, &b, "one").await;
    let sid = jwt_claims(t["id_token"].as_str().unwrap())["sid"].clone();
    let cookies = b.cookies.lock().unwrap().clone();

    // A asks; the browser is sent to B with a signed LogoutRequest for what B was told.
    let request = sp_a.logout_request(&app, "_slo-a-1", &told_a);
    let r = b
        .get(&sp_a.redirect_url(
            &app.url("/saml/slo"),
            "SAMLRequest",
            &request,
            Some("a-relay"),
        ))
        .await;
    let to_b = idp_redirect(&location(&r), &cert);
    assert_logout_request_to(&sp_b, &app, &to_b, &told_b);
    assert_ne!(to_b.relay_state.as_deref(), Some("a-relay"));

    // The check above is real: a RelayState changed on the way no longer verifies.
    let tampered = location(&r).replace("RelayState=", "RelayState=x");
    assert!(std::panic::catch_unwind(|| idp_redirect(&tampered, &cert)).is_err());

    // B confirms; A gets a signed Success for its request, with its RelayState.
    let r = answer(&app, &b, &sp_b, &to_b, SUCCESS).await;
    let to_a = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &to_a, "_slo-a-1", Some("a-relay"));
    assert_eq!(to_a.status(), (SUCCESS.to_string(), None));

    // The OIDC client got a logout token for the session.
    let token = tokio::time::timeout(Duration::from_secs(10), tokens.recv())
        .await
        .expect("a logout token in time")
        .unwrap();
    let c = jwt_claims(&token);
    assert_eq!(c["aud"], "one");
    assert_eq!(c["sid"], sid);
    portvakt::keys::KeyStore::verify_jwt(&app.state.keys, &token, app.clock.now()).unwrap();

    assert_session_gone(&app, &b, &sp_a, cookies).await;
}

/// Three signing SPs, each logged in to through one browser (A first, with the password):
/// what each was told about the subject.
struct ThreeSps {
    app: TestApp,
    sp_a: TestSp,
    sp_b: TestSp,
    sp_c: TestSp,
    cert: Vec<u8>,
    b: Browser,
    told_a: SpSubject,
    told_b: SpSubject,
    told_c: SpSubject,
}

impl ThreeSps {
    async fn logged_in() -> Self {
        let app = spawn_app().await;
        app.add_person("elev.anna", &["student"]).await;
        let sp_a = TestSp::new("https://sp-a.example.se").signing();
        let sp_b = TestSp::new("https://sp-b.example.se").signing();
        let sp_c = TestSp::new("https://sp-c.example.se").signing();
        for sp in [&sp_a, &sp_b, &sp_c] {
            sp.register(&app, &[]);
        }
        let cert = idp_cert(&app).await;
        let b = app.browser();
        let told_a = sp_a.log_in(&app, &b, LOGIN).await;
        let told_b = sp_b.log_in(&app, &b, None).await;
        let told_c = sp_c.log_in(&app, &b, None).await;
        Self {
            app,
            sp_a,
            sp_b,
            sp_c,
            cert,
            b,
            told_a,
            told_b,
            told_c,
        }
    }
}

/// Three SPs; the initiator's request ends the session, and the first SP visited fails in
/// the way `fail` says; the chain goes on to the last one and ends in PartialLogout.
async fn chain_with_a_failing_sp(fail: Failure) {
    let ThreeSps {
        app,
        sp_a,
        sp_b,
        sp_c,
        cert,
        b,
        told_a,
        told_b,
        told_c,
    } = ThreeSps::logged_in().await;
    let told = |sp: &TestSp| {
        if sp.entity_id == sp_b.entity_id {
            told_b.clone()
        } else {
            told_c.clone()
        }
    };
    let cookies = b.cookies.lock().unwrap().clone();

    let request = sp_a.logout_request(&app, "_slo-a-3", &told_a);
    let r = b
        .get(&sp_a.redirect_url(&app.url("/saml/slo"), "SAMLRequest", &request, Some("a3")))
        .await;
    let first = idp_redirect(&location(&r), &cert);
    let failing = addressee(&[&sp_b, &sp_c], &first);
    assert_logout_request_to(failing, &app, &first, &told(failing));

    let r = match fail {
        Failure::Responder => answer(&app, &b, failing, &first, RESPONDER).await,
        Failure::NoAnswer => {
            // The SP sends the browser back without a message.
            let chain = first.relay_state.clone().unwrap();
            b.get(&app.url(&format!("/saml/slo/next?id={}", urlencode(&chain))))
                .await
        }
        Failure::BadSignature => {
            let resp = failing.logout_response(&app, first.id(), SUCCESS);
            b.get(&redirect_url_signed_by(
                &app.url("/saml/slo"),
                "SAMLResponse",
                &resp,
                first.relay_state.as_deref(),
                Some(&stranger_key()),
            ))
            .await
        }
    };
    let second = idp_redirect(&location(&r), &cert);
    let last = addressee(&[&sp_b, &sp_c], &second);
    assert_ne!(last.entity_id, failing.entity_id, "the chain moved on");
    assert_logout_request_to(last, &app, &second, &told(last));
    assert_ne!(
        second.relay_state, first.relay_state,
        "a new single-use value for each step"
    );
    // A used step value is refused, even in the chain's own browser, and moves nothing:
    // neither at the next step nor as the RelayState of a LogoutResponse.
    let used = first.relay_state.clone().unwrap();
    let r = b
        .get(&app.url(&format!("/saml/slo/next?id={}", urlencode(&used))))
        .await;
    assert_eq!(r.status, 400, "a used step value: {}", r.body);
    let r = answer(&app, &b, failing, &first, SUCCESS).await;
    assert_eq!(r.status, 400, "a used step value: {}", r.body);

    let r = answer(&app, &b, last, &second, SUCCESS).await;
    let to_a = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &to_a, "_slo-a-3", Some("a3"));
    assert_eq!(
        to_a.status(),
        (SUCCESS.to_string(), Some(PARTIAL_LOGOUT.to_string()))
    );
    assert_session_gone(&app, &b, &sp_b, cookies).await;
}

enum Failure {
    Responder,
    NoAnswer,
    BadSignature,
}

#[tokio::test]
async fn an_sp_answering_responder_does_not_stop_the_chain() {
    chain_with_a_failing_sp(Failure::Responder).await;
}

#[tokio::test]
async fn an_sp_that_never_answers_is_skipped_by_the_next_step() {
    chain_with_a_failing_sp(Failure::NoAnswer).await;
}

#[tokio::test]
async fn a_forged_logout_response_counts_as_a_failure_and_the_chain_goes_on() {
    chain_with_a_failing_sp(Failure::BadSignature).await;
}

#[tokio::test]
async fn rp_initiated_oidc_logout_goes_through_the_saml_sps() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let sp_a = TestSp::new("https://sp-a.example.se").signing();
    sp_a.register(&app, &[]);
    let sp_b = TestSp::new("https://sp-b.example.se").signing();
    sp_b.register(&app, &["--nameid", "persistent"]);
    let cert = idp_cert(&app).await;
    let b = app.browser();
    let told_a = sp_a.log_in(&app, &b, LOGIN).await;
    let told_b = sp_b.log_in(&app, &b, None).await;
    let t = oidc_tokens_in(&app, &b, "one").await;
    let cookies = b.cookies.lock().unwrap().clone();

    let r = b
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={}&post_logout_redirect_uri={}&state=s9",
            t["id_token"].as_str().unwrap(),
            urlencode(RP_LOGOUT)
        )))
        .await;
    let mut next = location(&r);
    assert!(
        next.starts_with(&app.base),
        "the SAML SPs come before the RP: {next}"
    );
    assert!(!b.has_sso(), "the SSO cookie is cleared at once");
    if !next.contains("SAMLRequest=") {
        next = location(&b.get(&next).await);
    }
    let mut visited = Vec::new();
    for _ in 0..2 {
        let m = idp_redirect(&next, &cert);
        let sp = addressee(&[&sp_a, &sp_b], &m);
        let told = if sp.entity_id == sp_a.entity_id {
            &told_a
        } else {
            &told_b
        };
        assert_logout_request_to(sp, &app, &m, told);
        visited.push(sp.entity_id.clone());
        next = location(&answer(&app, &b, sp, &m, SUCCESS).await);
    }
    visited.sort();
    assert_eq!(
        visited,
        vec![sp_a.entity_id.clone(), sp_b.entity_id.clone()]
    );
    assert_eq!(next, format!("{RP_LOGOUT}?state=s9"));
    assert_session_gone(&app, &b, &sp_a, cookies).await;
}

#[tokio::test]
async fn logout_requests_that_do_not_verify_or_match_end_nothing() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    let sp_a = TestSp::new("https://sp-a.example.se").signing();
    sp_a.register(&app, &[]);
    let sp_b = TestSp::new("https://sp-b.example.se").signing();
    sp_b.register(&app, &[]);
    let cert = idp_cert(&app).await;
    let b = app.browser();
    let told = sp_a.log_in(&app, &b, LOGIN).await;
    let told_b = sp_b.log_in(&app, &b, None).await;
    let slo = app.url("/saml/slo");

    // Unsigned, from an SP whose metadata has a signing key: an error page.
    let req = sp_a.logout_request(&app, "_unsigned", &told);
    let r = b
        .get(&redirect_url_signed_by(
            &slo,
            "SAMLRequest",
            &req,
            None,
            None,
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location.is_none());
    assert!(b.has_sso());
    assert!(sp_a.answered_without_login(&app, &b).await);

    // Signed by a key that is not the SP's: an error page.
    let req = sp_a.logout_request(&app, "_stranger", &told);
    let r = b
        .get(&redirect_url_signed_by(
            &slo,
            "SAMLRequest",
            &req,
            None,
            Some(&stranger_key()),
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location.is_none());
    assert!(sp_a.answered_without_login(&app, &b).await);

    // Correctly signed but naming no live session: a signed non-success LogoutResponse.
    let refused = |id: &'static str, req: String| {
        let (b, app, cert, sp_a, slo) = (&b, &app, &cert, &sp_a, &slo);
        async move {
            let r = b
                .get(&sp_a.redirect_url(slo, "SAMLRequest", &req, Some("rs")))
                .await;
            let m = idp_redirect(&location(&r), cert);
            assert_logout_response_to(sp_a, app, &m, id, Some("rs"));
            let status = m.status();
            assert_eq!(status.0, REQUESTER, "{}", m.xml);
            assert!(b.has_sso(), "the cookie stays");
            assert!(sp_a.answered_without_login(app, b).await);
            status.1
        }
    };
    let wrong_name = sp_a.logout_request_for(
        &app,
        "_wrong-name",
        "someone-else",
        &told.format,
        &told.session_index,
    );
    assert_eq!(
        refused("_wrong-name", wrong_name).await.as_deref(),
        Some(UNKNOWN_PRINCIPAL)
    );
    let wrong_index = sp_a.logout_request_for(
        &app,
        "_wrong-index",
        &told.name_id,
        &told.format,
        "_0123456789abcdef0123456789abcdef",
    );
    assert_eq!(
        refused("_wrong-index", wrong_index).await.as_deref(),
        Some(UNKNOWN_PRINCIPAL)
    );
    // What SP B was told, asked for by SP A.
    let other_sp = sp_a.logout_request(&app, "_other-sp", &told_b);
    assert_eq!(
        refused("_other-sp", other_sp).await.as_deref(),
        Some(UNKNOWN_PRINCIPAL)
    );
    // A request ID seen before is refused even when the rest would match.
    let replayed = sp_a.logout_request(&app, "_wrong-name", &told);
    assert_eq!(
        refused("_wrong-name", replayed).await.as_deref(),
        Some(REQUEST_DENIED)
    );

    // The same request with a fresh ID ends the session (so the refusals above mattered);
    // replaying that one is refused too.
    let good = sp_a.logout_request(&app, "_good", &told);
    let r = b
        .get(&sp_a.redirect_url(&slo, "SAMLRequest", &good, None))
        .await;
    let to_b = idp_redirect(&location(&r), &cert);
    assert_logout_request_to(&sp_b, &app, &to_b, &told_b);
    assert!(!b.has_sso());
    let r = answer(&app, &b, &sp_b, &to_b, SUCCESS).await;
    let to_a = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &to_a, "_good", None);
    assert_eq!(to_a.status(), (SUCCESS.to_string(), None));

    sp_a.log_in(&app, &b, LOGIN).await;
    let r = b
        .get(&sp_a.redirect_url(&slo, "SAMLRequest", &good, None))
        .await;
    let m = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &m, "_good", None);
    assert_eq!(
        m.status(),
        (REQUESTER.to_string(), Some(REQUEST_DENIED.to_string()))
    );
    assert!(b.has_sso());
    assert!(sp_a.answered_without_login(&app, &b).await);
}

#[tokio::test]
async fn after_a_forced_new_login_the_first_sps_logout_request_still_ends_the_session() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    let sp_a = TestSp::new("https://sp-a.example.se").signing();
    sp_a.register(&app, &[]);
    let sp_b = TestSp::new("https://sp-b.example.se").signing();
    sp_b.register(&app, &[]);
    let cert = idp_cert(&app).await;
    let b = app.browser();
    let told_a = sp_a.log_in(&app, &b, LOGIN).await;

    // B wants a fresh login: the browser gets a new SSO session for the same person.
    let req = sp_b.authn_request(&app, "_force", r#" ForceAuthn="true""#, "");
    let first = b
        .get(&sp_b.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    assert!(
        location(&first).contains("/login?tx="),
        "ForceAuthn asks for a login"
    );
    let page = sso_until_form(&b, &app, first, LOGIN).await;
    let (_, response, _) = form_response(&page);
    let told_b = subject_of(&verified_assertion(&response, &cert));
    let cookies = b.cookies.lock().unwrap().clone();

    // A still names the session by what it was told; that ends the browser's session and
    // reaches B.
    let request = sp_a.logout_request(&app, "_slo-after-force", &told_a);
    let r = b
        .get(&sp_a.redirect_url(&app.url("/saml/slo"), "SAMLRequest", &request, None))
        .await;
    let to_b = idp_redirect(&location(&r), &cert);
    assert_eq!(
        to_b.param, "SAMLRequest",
        "not an error answer: {}",
        to_b.xml
    );
    assert_logout_request_to(&sp_b, &app, &to_b, &told_b);
    let r = answer(&app, &b, &sp_b, &to_b, SUCCESS).await;
    let to_a = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &to_a, "_slo-after-force", None);
    assert_eq!(to_a.status(), (SUCCESS.to_string(), None));
    assert_session_gone(&app, &b, &sp_a, cookies).await;
}

#[tokio::test]
async fn after_prompt_login_rp_initiated_logout_still_visits_the_saml_sp() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let sp = TestSp::new("https://sp-a.example.se").signing();
    sp.register(&app, &[]);
    let cert = idp_cert(&app).await;
    let b = app.browser();
    let told = sp.log_in(&app, &b, LOGIN).await;

    // The client forces a new login: a new SSO session for the same person.
    let (url, _, _, verifier) = app.authorize_url("one", &[("prompt", "login")]);
    let callback = b.login(&app, &url, "elev.anna", PASSWORD).await;
    let t = exchange(&app, "one", &callback, &verifier).await;
    let cookies = b.cookies.lock().unwrap().clone();

    let r = b
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={}&post_logout_redirect_uri={}&state=s10",
            t["id_token"].as_str().unwrap(),
            urlencode(RP_LOGOUT)
        )))
        .await;
    let mut next = location(&r);
    assert!(
        next.starts_with(&app.base),
        "the SAML SP is visited first: {next}"
    );
    if !next.contains("SAMLRequest=") {
        next = location(&b.get(&next).await);
    }
    let m = idp_redirect(&next, &cert);
    assert_logout_request_to(&sp, &app, &m, &told);
    let r = answer(&app, &b, &sp, &m, SUCCESS).await;
    assert_eq!(location(&r), format!("{RP_LOGOUT}?state=s10"));
    assert_session_gone(&app, &b, &sp, cookies).await;
}

/// The chain is the browser's: an SP's server (or any client without the browser's SLO
/// cookie) holding the RelayState it was sent cannot move the chain on, so it never sees the
/// LogoutRequests for the other SPs; the browser still can.
#[tokio::test]
async fn an_sp_cannot_walk_the_chain_without_the_browser() {
    let ThreeSps {
        app,
        sp_a,
        sp_b,
        sp_c,
        cert,
        b,
        told_a,
        told_b,
        told_c,
    } = ThreeSps::logged_in().await;
    let told = |sp: &TestSp| {
        if sp.entity_id == sp_b.entity_id {
            told_b.clone()
        } else {
            told_c.clone()
        }
    };

    let request = sp_a.logout_request(&app, "_slo-a-7", &told_a);
    let r = b
        .get(&sp_a.redirect_url(&app.url("/saml/slo"), "SAMLRequest", &request, Some("a7")))
        .await;
    let first = idp_redirect(&location(&r), &cert);
    let hostile = addressee(&[&sp_b, &sp_c], &first);
    assert_logout_request_to(hostile, &app, &first, &told(hostile));
    let relay = first.relay_state.clone().unwrap();

    // The hostile SP's server: no cookies of the browser.
    let next_url = app.url(&format!("/saml/slo/next?id={}", urlencode(&relay)));
    let r = app.client().get(&next_url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let body = r.text().await.unwrap();
    assert!(!body.contains("SAMLRequest"), "{body}");
    // Nor from another browser, nor with its own LogoutResponse carrying the RelayState.
    let other = app.browser();
    let r = other.get(&next_url).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location.is_none());
    let r = answer(&app, &other, hostile, &first, SUCCESS).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location.is_none());

    // None of that used the step up: the browser goes on to the other SP, then back to A.
    let r = answer(&app, &b, hostile, &first, SUCCESS).await;
    let second = idp_redirect(&location(&r), &cert);
    let last = addressee(&[&sp_b, &sp_c], &second);
    assert_ne!(last.entity_id, hostile.entity_id);
    assert_logout_request_to(last, &app, &second, &told(last));
    let r = answer(&app, &b, last, &second, SUCCESS).await;
    let to_a = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &to_a, "_slo-a-7", Some("a7"));
    assert_eq!(to_a.status(), (SUCCESS.to_string(), None));
}

/// An SP's LogoutRequest that arrives without the session's browser (here from a client
/// with no cookies) ends the session but is answered towards that SP alone: no chain
/// through the other SPs, and PartialLogout since they were not told.
#[tokio::test]
async fn a_logout_request_without_the_browser_is_answered_to_its_sp_only() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    let sp_a = TestSp::new("https://sp-a.example.se").signing();
    sp_a.register(&app, &[]);
    let sp_b = TestSp::new("https://sp-b.example.se").signing();
    sp_b.register(&app, &[]);
    let cert = idp_cert(&app).await;
    let b = app.browser();
    let told_a = sp_a.log_in(&app, &b, LOGIN).await;
    sp_b.log_in(&app, &b, None).await;

    let server = app.browser();
    let request = sp_a.logout_request(&app, "_slo-a-8", &told_a);
    let r = server
        .get(&sp_a.redirect_url(&app.url("/saml/slo"), "SAMLRequest", &request, Some("a8")))
        .await;
    let to_a = idp_redirect(&location(&r), &cert);
    assert_logout_response_to(&sp_a, &app, &to_a, "_slo-a-8", Some("a8"));
    assert_eq!(
        to_a.status(),
        (SUCCESS.to_string(), Some(PARTIAL_LOGOUT.to_string()))
    );
    assert!(
        !r.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().contains("portvakt_slo")),
        "no chain is bound to a client that is not the session's browser"
    );
    // The session has ended all the same.
    assert!(
        !sp_b.answered_without_login(&app, &b).await,
        "the ended session must not answer an AuthnRequest"
    );
}
