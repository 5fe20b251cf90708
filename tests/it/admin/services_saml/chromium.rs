//! Registering an SP through the admin UI in Chromium, and a login at it.

use super::*;

/// An SP's ACS on another site (localhost, not 127.0.0.1) that keeps what is posted to it.
async fn acs_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<String>>> = Default::default();
    let keep = got.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let router = axum::Router::new().route(
        "/acs",
        axum::routing::post(
            move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                let keep = keep.clone();
                async move {
                    keep.lock()
                        .unwrap()
                        .push(f.get("SAMLResponse").cloned().unwrap_or_default());
                    axum::response::Html("<!doctype html><title>SP</title><p>received</p>")
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, got)
}

/// Waits until the page holds `text` (a form's answer has loaded).
async fn wait_for_text(browser: &crate::webdriver::Session, text: &str) -> String {
    for _ in 0..100 {
        let source = browser.source().await;
        if source.contains(text) {
            return source;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page never showed {text}: {}", browser.source().await);
}

#[tokio::test]
async fn an_admin_registers_an_sp_in_chromium_and_a_login_at_it_works() {
    use base64::Engine;
    let app = spawn_app().await;
    let (base, got) = acs_server().await;
    let sp = TestSp::new(&base);
    let (_driver, browser) =
        crate::admin::browser::admin_in_chromium(&app, "chrome-saml", &["admin"]).await;
    browser.goto(&app.url(&format!("{NEW}?lang=sv"))).await;
    browser.assert_accessible("the new SAML service form").await;
    browser
        .execute(
            "document.getElementById('metadata').value = arguments[0];",
            vec![serde_json::json!(metadata_with_requests(&sp))],
        )
        .await;
    let submit = browser.find("main form button[type=submit]").await;
    browser.click(&submit).await;
    wait_for_text(&browser, "Granska innan du sparar").await;
    assert!(registered(&app, &sp.entity_id).await.is_none());
    browser
        .assert_accessible("the preview of an SP's metadata")
        .await;
    browser
        .screenshot(&crate::admin::browser::screenshot_path(
            "admin-saml-preview",
        ))
        .await;
    let sign = browser.find("#sign_response").await;
    browser.click(&sign).await;
    let save = browser.find("main form button[type=submit]").await;
    browser.click(&save).await;
    browser
        .wait_for_url("the SP's page", |u| u.contains("done=added"))
        .await;
    let rec = registered(&app, &sp.entity_id).await.expect("registered");
    assert!(rec.policy.sign_response);
    browser.assert_accessible("the SP's page").await;
    browser
        .screenshot(&crate::admin::browser::screenshot_path("admin-saml-sp"))
        .await;
    let confirm = app.url(&format!(
        "/admin/services/saml/remove?id={}",
        enc(&sp.entity_id)
    ));
    browser.goto(&confirm).await;
    browser
        .assert_accessible("the removal's confirmation")
        .await;

    // The admin's SSO session answers the SP at once: the response reaches its ACS.
    let req = sp.authn_request(&app, "_chrome-saml", "", "");
    browser
        .goto(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    browser.wait_for_url("the SP's ACS", |u| u == sp.acs).await;
    wait_for_text(&browser, "received").await;
    let posted = got.lock().unwrap().clone();
    assert_eq!(posted.len(), 1);
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&posted[0])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status_of(&xml).0, SUCCESS, "{xml}");
    verified_assertion(&xml, &idp_cert(&app).await);
    browser.quit().await;
}
