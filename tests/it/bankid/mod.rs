//! BankID login end to end: the login page, Portvakt's own order polling, the built-in stub
//! (which speaks BankID's RP API v6) playing BankID, and its app page or JSON API playing
//! the phone; through to an OIDC code and a SAML Response.
//!
//! This module holds the shared helpers (also used by the browser and multi-instance
//! tests); the tests live in its submodules.

use crate::helpers::{
    Browser, PASSWORD, RP_REDIRECT, Resp, SECRET, TestApp, hidden, jwt_claims, query_param,
    spawn_app_with, status_json,
};
use crate::saml_sp::{self, TWO_FACTOR};
use portvakt::config::{BankIdEnvironment, Config};
use portvakt::directory::{CivicNo, NewPerson};
use serde_json::{Value, json};
use std::time::Duration;

mod flows;
mod logs;
mod refusals;
mod step_up;

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
