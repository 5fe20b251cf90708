//! BankID login end to end: the login page, Portvakt's own order polling, the built-in stub
//! (which speaks BankID's RP API v6) playing BankID, and its app page or JSON API playing
//! the phone; through to an OIDC code and a SAML Response.

use crate::helpers::{
    Browser, PASSWORD, RP_REDIRECT, Resp, SECRET, TestApp, hidden, jwt_claims, query_param,
    spawn_app_with, status_json,
};
use crate::saml_sp::{self, TWO_FACTOR};
use portvakt::config::{BankIdEnvironment, Config};
use portvakt::directory::{CivicNo, NewPerson};
use serde_json::{Value, json};
use std::time::Duration;

/// Luhn-valid personal numbers (specs/bankid.md §11).
pub(crate) const ERIK: &str = "198003021238";
const TOLVAN: &str = "191212121212";
const NOBODY: &str = "201205142381";

pub(crate) fn with_bankid(c: &mut Config) {
    c.bankid.enabled = true;
    c.bankid.environment = BankIdEnvironment::Stub;
}

async fn bankid_app(tune: impl FnOnce(&mut Config)) -> TestApp {
    let app = spawn_app_with(|c| {
        with_bankid(c);
        tune(c);
    })
    .await;
    app.add_client("rp", |_| {}).await;
    app
}

/// A local person with a civic number and the test password.
pub(crate) async fn person(
    app: &TestApp,
    username: &str,
    civic: &str,
) -> portvakt::directory::Person {
    let mut new: NewPerson = saml_sp::new_person(username);
    new.civic_no = Some(CivicNo::parse(civic).unwrap());
    saml_sp::add_person_as(app, new).await
}

/// From the login page, starts a BankID order on `device` ("this" or "other"); returns the
/// wait page and our order id.
pub(crate) async fn start(
    b: &Browser,
    app: &TestApp,
    login_page: &Resp,
    device: &str,
    purpose: &str,
) -> (String, Resp) {
    let tx = hidden(&login_page.body, "tx");
    let csrf = hidden(&login_page.body, "csrf");
    let r = b
        .post(
            &app.url("/login/bankid"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("device", device),
                ("purpose", purpose),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let wait = r.location.unwrap();
    let order = query_param(&wait, "o").unwrap();
    let page = b.get(&wait).await;
    assert_eq!(page.status, 200, "{}", page.body);
    (order, page)
}

/// An OIDC login page for the client `rp`, with extra authorize parameters.
pub(crate) async fn oidc_login_page(
    app: &TestApp,
    b: &Browser,
    extra: &[(&str, &str)],
) -> (Resp, String, String) {
    let (url, state, _nonce, verifier) = app.authorize_url("rp", extra);
    let r = b.get(&url).await;
    assert_eq!(r.status, 303);
    let page = b.get(&r.location.unwrap()).await;
    assert_eq!(page.status, 200);
    (page, state, verifier)
}

/// The wait page's "open the BankID app" link.
fn autostart_link(wait_page: &str) -> String {
    wait_page
        .split("id=\"bankid-open\" href=\"")
        .nth(1)
        .expect("an app link")
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// The stub app's JSON API: `action` is open, approve or cancel.
pub(crate) async fn app_api(app: &TestApp, action: &str, body: Value) -> (u16, Value) {
    let res = app
        .client()
        .post(app.url(&format!("/bankid-stub/app/api/{action}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

/// "Scans" the QR code on the wait page: the text it holds right now.
pub(crate) async fn scan(b: &Browser, app: &TestApp, order: &str) -> String {
    let r = b
        .get(&app.url(&format!("/login/bankid/stub-scan?o={order}")))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(to.contains("/bankid-stub/app?"), "{to}");
    query_param(&to, "qr").unwrap()
}

/// Polls Portvakt's status endpoint until the state is not pending or the message is
/// `until` (pending), at most 15 s.
pub(crate) async fn poll_until(
    b: &Browser,
    app: &TestApp,
    order: &str,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let url = app.url(&format!("/login/bankid/status?o={order}"));
    for _ in 0..60 {
        let r = b.get(&url).await;
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if until(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the order never reached the expected state");
}

/// Scans the order's QR code, has the stub app `open`, `approve` or `cancel` it for
/// `personal_number`, and polls until the order is no longer pending.
pub(crate) async fn by_qr(
    b: &Browser,
    app: &TestApp,
    order: &str,
    action: &str,
    personal_number: &str,
) -> Value {
    let text = scan(b, app, order).await;
    let (s, v) = app_api(
        app,
        action,
        json!({"qrData": text, "personalNumber": personal_number}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    poll_until(b, app, order, done).await
}

pub(crate) fn done(v: &Value) -> bool {
    v["state"] != "pending"
}

/// Exchanges a code for tokens.
pub(crate) async fn tokens(app: &TestApp, cb: &str, verifier: &str) -> Value {
    let code = query_param(cb, "code").expect("code in redirect");
    let (status, body) = app
        .token(
            "rp",
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

#[tokio::test]
async fn bankid_on_another_device_gives_an_oidc_code_with_amr_bankid_and_2fa() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (page, state, verifier) = oidc_login_page(&app, &b, &[]).await;
    assert!(page.body.contains("BankID på annan enhet"), "{}", page.body);
    assert!(page.body.contains("BankID på den här enheten"));
    let (order, wait) = start(&b, &app, &page, "other", "login").await;
    assert!(wait.body.contains("/login/bankid/qr?o="), "{}", wait.body);
    assert!(
        wait.body.contains("Starta BankID-appen"),
        "RFA1: {}",
        wait.body
    );
    // The wait page may run its script; the rest of the site may not.
    let csp = wait.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // The QR image is an SVG that changes every second.
    let qr = b
        .get(&app.url(&format!("/login/bankid/qr?o={order}")))
        .await;
    assert_eq!(qr.status, 200);
    assert_eq!(qr.headers["content-type"], "image/svg+xml");
    assert!(qr.body.contains("<svg"));
    app.clock.advance(1);
    let qr2 = b
        .get(&app.url(&format!("/login/bankid/qr?o={order}")))
        .await;
    assert_ne!(qr.body, qr2.body, "the QR code is renewed every second");

    // Another browser knows nothing of the order.
    let stranger = app.browser();
    let r = stranger
        .get(&app.url(&format!("/login/bankid/status?o={order}")))
        .await;
    assert_eq!(r.status, 404);
    let r = stranger
        .get(&app.url(&format!("/login/bankid/qr?o={order}")))
        .await;
    assert_eq!(r.status, 400);

    let text = scan(&b, &app, &order).await;
    assert!(text.starts_with("bankid."), "{text}");
    let (s, v) = app_api(
        &app,
        "open",
        json!({"qrData": text, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let v = poll_until(&b, &app, &order, |v| {
        v["message"].as_str().unwrap_or("").contains("säkerhetskod")
    })
    .await;
    assert_eq!(v["qr"], false, "no QR once the app has the order");
    let (s, v) = app_api(
        &app,
        "approve",
        json!({"qrData": text, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let v = poll_until(&b, &app, &order, done).await;
    assert_eq!(v["state"], "complete", "{v}");
    // The browser's view of the login never holds BankID's order reference or secrets.
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["message", "next", "qr", "state"]);
    assert!(b.has_sso());
    let next = app.url(v["next"].as_str().unwrap());
    assert!(next.contains("/oidc/authorize/resume?tx="), "{next}");
    let r = b.get(&next).await;
    assert_eq!(r.status, 303);
    let cb = r.location.unwrap();
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
    let t = tokens(&app, &cb, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["bankid"]));
    assert_eq!(id["acr"], TWO_FACTOR);
    let sub = id["sub"].as_str().unwrap();
    let (status, info) = app.userinfo(t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(info["email"], "erik@example.se", "{info}");
    assert_eq!(info["sub"], sub);
    // The order is gone: the same completion cannot log in twice.
    let r = b
        .get(&app.url(&format!("/login/bankid/status?o={order}")))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn phones_get_bankid_on_this_device_first_and_computers_the_qr_code() {
    let app = bankid_app(|_| {}).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let first =
        |body: &str| body.split("name=\"device\" value=\"").nth(1).unwrap()[..5].to_string();
    assert_eq!(first(&page.body), "other", "a computer: the QR code first");
    let tx = hidden(&page.body, "tx");
    let phone = app
        .client()
        .get(app.url(&format!("/login?tx={tx}")))
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        first(&phone),
        "this\"",
        "a phone: BankID on this device first"
    );
}

#[tokio::test]
async fn discovery_offers_2fa_and_a_2fa_request_gets_bankid_only() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let d: Value = app
        .client()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["acr_values_supported"],
        json!(["http://id.skolfederation.se/loa/bas", TWO_FACTOR])
    );
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[("acr_values", TWO_FACTOR)]).await;
    assert!(
        page.body.contains("kräver inloggning med BankID"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("name=\"password\""), "no password form");
    // Posting a password anyway is refused.
    let tx = hidden(&page.body, "tx");
    let csrf = hidden(&page.body, "csrf");
    let r = b.post_login(&app, &tx, &csrf, "erik", PASSWORD).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!b.has_sso());
}

#[tokio::test]
async fn cancel_in_the_app_and_cancel_on_the_page() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let (order, wait) = start(&b, &app, &page, "this", "login").await;
    // Same device: the app link (the stub's app page in demo mode), no QR code.
    let link = autostart_link(&wait.body);
    assert!(link.contains("/bankid-stub/app?autostarttoken="), "{link}");
    assert!(!wait.body.contains("/login/bankid/qr?o="));
    assert!(
        wait.body.contains("Försöker starta BankID-appen"),
        "RFA13: {}",
        wait.body
    );
    let token = query_param(&link, "autostarttoken").unwrap();
    let (s, v) = app_api(&app, "cancel", json!({"autoStartToken": token})).await;
    assert_eq!(s, 200, "{v}");
    let v = poll_until(&b, &app, &order, done).await;
    assert_eq!(v["state"], "failed");
    assert_eq!(v["message"], "Åtgärden avbruten.", "RFA6");
    let r = b.get(&app.url(&format!("/login/bankid?o={order}"))).await;
    assert!(r.body.contains("Försök igen"), "{}", r.body);
    assert!(!b.has_sso());

    // The person cancels on the wait page: back to the login page, the order forgotten.
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let (order, wait) = start(&b, &app, &page, "other", "login").await;
    let csrf = wait
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = b
        .post(
            &app.url("/login/bankid/cancel"),
            &[("o", &order), ("csrf", "forged")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post(
            &app.url("/login/bankid/cancel"),
            &[("o", &order), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().contains("/login?tx="));
    let r = b
        .get(&app.url(&format!("/login/bankid/status?o={order}")))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn an_order_nobody_picks_up_fails_with_start_failed_and_a_slow_one_expires() {
    let app = bankid_app(|c| {
        c.bankid.stub_start_timeout = 2;
        c.bankid.stub_order_lifetime = 5;
    })
    .await;
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    // The start timeout passes: the clock moves instead of the test polling for 2 s.
    app.clock.advance(2);
    let v = poll_until(&b, &app, &order, done).await;
    assert_eq!(v["state"], "failed");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Misslyckades att läsa av QR-koden"),
        "RFA17B: {v}"
    );

    // Picked up in time, but never approved: expiredTransaction.
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    // `by_qr` with "open", and the order's lifetime passing before the poll.
    let text = scan(&b, &app, &order).await;
    let (s, v) = app_api(
        &app,
        "open",
        json!({"qrData": text, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    app.clock.advance(5);
    let v = poll_until(&b, &app, &order, done).await;
    assert_eq!(v["state"], "failed");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("BankID-appen svarar inte"),
        "RFA8: {v}"
    );
    assert!(!b.has_sso());
}

#[tokio::test]
async fn an_unknown_personal_number_is_refused_and_audited() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let v = by_qr(&b, &app, &order, "approve", NOBODY).await;
    assert_eq!(v["state"], "failed");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("hör inte till något aktivt konto"),
        "{v}"
    );
    assert!(!b.has_sso());
    let audit = portvakt::storage::records::recent_audit(&app.db, 5)
        .await
        .unwrap();
    let refused: Vec<_> = audit
        .iter()
        .filter(|a| a.1 == "login.bankid_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{audit:?}");
    assert!(
        !refused[0].3.contains(NOBODY),
        "the audit names no personal number"
    );

    // Two active people with one number: which one is meant cannot be known.
    person(&app, "erik.dubblett", ERIK).await;
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    assert_eq!(v["state"], "failed", "{v}");
    assert!(!b.has_sso());
    let audit = portvakt::storage::records::recent_audit(&app.db, 5)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.3 == "2 active people share the personal number"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_second_order_for_the_same_person_cancels_the_first() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let (b1, b2) = (app.browser(), app.browser());
    let (p1, _, _) = oidc_login_page(&app, &b1, &[]).await;
    let (p2, _, _) = oidc_login_page(&app, &b2, &[]).await;
    let (o1, _) = start(&b1, &app, &p1, "other", "login").await;
    let (o2, _) = start(&b2, &app, &p2, "other", "login").await;
    let t1 = scan(&b1, &app, &o1).await;
    let t2 = scan(&b2, &app, &o2).await;
    app_api(&app, "open", json!({"qrData": t1, "personalNumber": ERIK})).await;
    app_api(&app, "open", json!({"qrData": t2, "personalNumber": ERIK})).await;
    let v = poll_until(&b1, &app, &o1, done).await;
    assert_eq!(v["message"], "Åtgärden avbruten. Försök igen.", "RFA3: {v}");
    let (s, _) = app_api(
        &app,
        "approve",
        json!({"qrData": t2, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200);
    let v = poll_until(&b2, &app, &o2, done).await;
    assert_eq!(v["state"], "complete", "{v}");
}

#[tokio::test]
async fn step_up_names_the_person_and_a_concurrent_one_is_already_in_progress() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    person(&app, "tolvan", TOLVAN).await;
    // A password session first; then the relying party asks for 2fa, twice at once.
    let b = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    b.login(&app, &url, "erik", PASSWORD).await;
    let (p1, _, _) = oidc_login_page(&app, &b, &[("acr_values", TWO_FACTOR)]).await;
    let (p2, _, _) = oidc_login_page(&app, &b, &[("acr_values", TWO_FACTOR)]).await;
    let (o1, _) = start(&b, &app, &p1, "other", "login").await;
    let tx = hidden(&p2.body, "tx");
    let csrf = hidden(&p2.body, "csrf");
    let r = b
        .post(
            &app.url("/login/bankid"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("device", "other"),
                ("purpose", "login"),
            ],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("redan påbörjad"), "RFA4: {}", r.body);
    // BankID cancels the first order too.
    let v = poll_until(&b, &app, &o1, done).await;
    assert_eq!(v["message"], "Åtgärden avbruten. Försök igen.", "{v}");

    // The step-up order is for erik: someone else's BankID cannot answer it.
    let (p3, _, _) = oidc_login_page(&app, &b, &[("acr_values", TWO_FACTOR)]).await;
    let (o3, _) = start(&b, &app, &p3, "other", "login").await;
    let text = scan(&b, &app, &o3).await;
    let (s, _) = app_api(
        &app,
        "approve",
        json!({"qrData": text, "personalNumber": TOLVAN}),
    )
    .await;
    assert_eq!(
        s, 400,
        "the stub refuses another person's BankID for this order"
    );
    let (s, _) = app_api(
        &app,
        "approve",
        json!({"qrData": scan(&b, &app, &o3).await, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200);
    let v = poll_until(&b, &app, &o3, done).await;
    assert_eq!(v["state"], "complete", "{v}");
}

#[tokio::test]
async fn bankid_answers_a_saml_sp_asking_for_2fa() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let sp = saml_sp::TestSp::new("https://sp.example.se");
    sp.register(&app, &["--release", "eduPersonAssurance"]);
    let b = app.browser();
    let id = saml_sp::fresh_id();
    let ctx = format!(
        r#"<samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>{TWO_FACTOR}</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>"#
    );
    let req = sp.authn_request(&app, &id, "", &ctx);
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    let r = b.get(&url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&r.location.unwrap()).await;
    assert!(!page.body.contains("name=\"password\""), "BankID only");
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    assert_eq!(v["state"], "complete", "{v}");
    let form = b.get(&app.url(v["next"].as_str().unwrap())).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let (action, xml, _) = saml_sp::form_response(&form);
    assert_eq!(action, sp.acs);
    assert_eq!(saml_sp::status_of(&xml).0, saml_sp::SUCCESS);
    let a = saml_sp::verified_assertion(&xml, &saml_sp::idp_cert(&app).await);
    assert_eq!(saml_sp::authn_context(&a), TWO_FACTOR);
    assert_eq!(
        saml_sp::attributes(&a)["eduPersonAssurance"],
        vec![TWO_FACTOR]
    );
}

#[tokio::test]
async fn password_reset_after_bankid_then_on_to_the_relying_party() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (page, state, verifier) = oidc_login_page(&app, &b, &[]).await;
    let tx = hidden(&page.body, "tx");
    assert!(page.body.contains("Glömt lösenordet?"));
    let reset = b.get(&app.url(&format!("/login?tx={tx}&reset=1"))).await;
    assert!(reset.body.contains("Välj ett nytt lösenord"));
    assert!(!reset.body.contains("name=\"password\""));
    let (order, _) = start(&b, &app, &reset, "other", "password").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    let next = v["next"].as_str().unwrap();
    assert!(next.starts_with("/password?tx="), "{v}");
    let form = b.get(&app.url(next)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("erik"));
    let csrf = hidden(&form.body, "csrf");
    let new = "ett helt nytt lösenord";
    let r = b
        .post(
            &app.url("/password"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("password", new),
                ("repeat", "något annat"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("inte likadana"));
    let r = b
        .post(
            &app.url("/password"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("password", "kort"),
                ("repeat", "kort"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = b
        .post(
            &app.url("/password"),
            &[
                ("tx", &tx),
                ("csrf", "forged"),
                ("password", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post(
            &app.url("/password"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("password", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location.unwrap()).await;
    let cb = r.location.unwrap();
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
    tokens(&app, &cb, &verifier).await;

    // The new password works, the old one no longer does.
    let b2 = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let (tx, csrf, _) = b2.open_login(&url).await;
    let r = b2.post_login(&app, &tx, &csrf, "erik", PASSWORD).await;
    assert_eq!(r.status, 401);
    let r = b2.post_login(&app, &tx, &csrf, "erik", new).await;
    assert_eq!(r.status, 303);
    let audit = portvakt::storage::records::recent_audit(&app.db, 10)
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.1 == "user.password_reset"));
}

#[tokio::test]
async fn the_password_page_alone_needs_a_fresh_bankid_login() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    // A password session is not enough.
    let b = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    b.login(&app, &url, "erik", PASSWORD).await;
    let r = b.get(&app.url("/password")).await;
    assert_eq!(r.status, 303);
    let login = r.location.unwrap();
    assert!(
        login.contains("/login?tx=") && login.contains("reset=1"),
        "{login}"
    );
    let page = b.get(&login).await;
    assert!(!page.body.contains("name=\"password\""));
    let tx = hidden(&page.body, "tx");
    let r = b.get(&app.url(&format!("/password?tx={tx}"))).await;
    assert_eq!(r.status, 303, "no form without BankID");
    let (order, _) = start(&b, &app, &page, "other", "password").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    let form = b.get(&app.url(v["next"].as_str().unwrap())).await;
    let csrf = hidden(&form.body, "csrf");
    let new = "ett helt nytt lösenord";
    let r = b
        .post(
            &app.url("/password"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("password", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Ditt nya lösenord är sparat"));
}

/// Every log line of this test process at TRACE level, kept for the assertion below.
static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_personal_number_reaches_a_log_line_and_the_qr_secret_is_stored_sealed() {
    // The only test that installs a subscriber: it sees this process's other tests too,
    // which use the same personal numbers, so the check covers them as well.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(|| LogWriter)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    for who in [ERIK, NOBODY] {
        let b = app.browser();
        let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
        let (order, _) = start(&b, &app, &page, "other", "login").await;
        let rec = portvakt::storage::bankid::get(&app.db, &order, app.clock.now())
            .await
            .unwrap()
            .unwrap();
        assert!(
            uuid::Uuid::parse_str(&rec.qr_start_secret).is_err(),
            "the QR secret is sealed in the database"
        );
        by_qr(&b, &app, &order, "approve", who).await;
    }
    let log = String::from_utf8_lossy(&LOG.lock().unwrap()).to_string();
    assert!(
        log.contains("/login/bankid/status"),
        "the subscriber saw the requests"
    );
    assert!(log.contains("BankID login refused"), "and the refusal");
    for pn in [ERIK, NOBODY, TOLVAN] {
        assert!(!log.contains(pn), "a personal number in the log");
    }
}

#[tokio::test]
async fn same_device_the_app_returns_to_the_browser_that_started_with_the_returnurl_nonce() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (page, state, verifier) = oidc_login_page(&app, &b, &[]).await;
    let (order, wait) = start(&b, &app, &page, "this", "login").await;
    let link = autostart_link(&wait.body);
    // The wait page speaks English too.
    let en = b
        .get(&app.url(&format!("/login/bankid?o={order}&lang=en")))
        .await;
    assert!(
        en.body.contains("Trying to start your BankID app."),
        "{}",
        en.body
    );
    assert!(en.body.contains("På svenska"));
    // The "phone": the stub's app page, opened by the autostart link.
    let phone = Browser::new();
    let mut r = phone.get(&link).await;
    while r.status == 303 {
        r = phone.get(&r.location.unwrap()).await;
    }
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Logga in i skolans tjänst"),
        "userVisibleData: {}",
        r.body
    );
    let form = [
        ("order", hidden(&r.body, "order")),
        ("csrf", hidden(&r.body, "csrf")),
        ("personal_number", ERIK.to_string()),
        ("given_name", "Erik".to_string()),
        ("surname", "Sandberg".to_string()),
        ("action", "approve".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = phone.post(&app.url("/bankid-stub/app"), &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let return_url = r.location.unwrap();
    assert!(
        return_url.starts_with(&app.url("/login/bankid/return?o=")),
        "{return_url}"
    );

    // Another browser cannot use the returnUrl, nor can this one with another nonce.
    let other = app.browser();
    assert_eq!(other.get(&return_url).await.status, 400);
    let wrong = format!("{}x", return_url);
    assert_eq!(b.get(&wrong).await.status, 400);

    let r = b.get(&return_url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let wait = r.location.unwrap();
    assert!(
        wait.ends_with(&format!("/login/bankid?o={order}")),
        "{wait}"
    );
    // The wait page collects and, once complete, goes on to the relying party.
    let mut r = b.get(&wait).await;
    for _ in 0..20 {
        if r.status == 303 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        r = b.get(&wait).await;
    }
    assert_eq!(r.status, 303, "{}", r.body);
    let resume = r.location.unwrap();
    let r = b.get(&resume).await;
    let cb = r.location.unwrap();
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
    let t = tokens(&app, &cb, &verifier).await;
    assert_eq!(
        jwt_claims(t["id_token"].as_str().unwrap())["amr"],
        json!(["bankid"])
    );
}

#[tokio::test]
async fn bankid_out_of_reach_gives_the_login_page_with_try_again_later() {
    // Port 9 (discard) on loopback: nothing listens.
    let app = bankid_app(|c| c.bankid.url = "http://127.0.0.1:9/rp/v6.0/".into()).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let tx = hidden(&page.body, "tx");
    let csrf = hidden(&page.body, "csrf");
    let r = b
        .post(
            &app.url("/login/bankid"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("device", "other"),
                ("purpose", "login"),
            ],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("Internt tekniskt fel. Försök igen."),
        "RFA5: {}",
        r.body
    );
    assert!(
        r.body.contains("name=\"password\""),
        "the password form is still there"
    );
    // A forged CSRF token never reaches BankID.
    let r = b
        .post(
            &app.url("/login/bankid"),
            &[("tx", &tx), ("csrf", "forged"), ("device", "other")],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn one_login_may_start_ten_orders() {
    let app = bankid_app(|_| {}).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let tx = hidden(&page.body, "tx");
    let csrf = hidden(&page.body, "csrf");
    let form = [
        ("tx", tx.as_str()),
        ("csrf", &csrf),
        ("device", "other"),
        ("purpose", "login"),
    ];
    for _ in 0..10 {
        assert_eq!(b.post(&app.url("/login/bankid"), &form).await.status, 303);
    }
    let r = b.post(&app.url("/login/bankid"), &form).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("För många försök"), "{}", r.body);
    // Another login is not affected.
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    start(&b, &app, &page, "other", "login").await;
}

#[tokio::test]
async fn without_bankid_the_pages_do_not_exist_and_the_login_page_is_as_before() {
    let app = spawn_app_with(|_| {}).await;
    app.add_client("rp", |_| {}).await;
    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    assert!(!page.body.contains("BankID"));
    assert!(page.body.contains("name=\"password\""));
    let tx = hidden(&page.body, "tx");
    let csrf = hidden(&page.body, "csrf");
    let r = b
        .post(
            &app.url("/login/bankid"),
            &[("tx", &tx), ("csrf", &csrf), ("device", "other")],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(b.get(&app.url("/password")).await.status, 404);
    assert_eq!(b.get(&app.url("/bankid-stub/app")).await.status, 404);
}
