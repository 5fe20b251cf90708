//! The OIDC client pages in headless Chromium: a client added through the form, its secret
//! read off the page, a login at it; axe-core on every page and the screenshots.

use super::client;
use crate::helpers::{query_param, spawn_app};

/// A relying party's callback on loopback for Chromium to land on: it only answers.
async fn callback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::get(|| async {
            axum::response::Html(
                "<!doctype html><html lang=\"en\"><title>RP</title><main><h1>RP</h1></main></html>",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/cb")
}

/// Waits until the page's source holds `marker` (a form's answer keeps its URL).
async fn wait_for_source(browser: &crate::webdriver::Session, marker: &str) -> String {
    for _ in 0..150 {
        let source = browser.source().await;
        if source.contains(marker) {
            return source;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {marker} in {}", browser.source().await);
}

#[tokio::test]
async fn an_admin_adds_an_oidc_client_in_chromium_and_a_login_at_it_works() {
    let app = spawn_app().await;
    app.add_client("lms", |s| s.name = Some("Lärplattformen".into()))
        .await;
    let sp = crate::saml_sp::TestSp::new("https://bibliotek.example");
    portvakt::services::saml_sp::add(
        &app.db,
        &sp.metadata(),
        None,
        &Default::default(),
        app.clock.now(),
    )
    .await
    .unwrap();
    let cb = callback_server().await;
    let (_driver, browser) =
        crate::admin::browser::admin_in_chromium(&app, "chrome-admin", &["admin"]).await;
    browser.goto(&app.url("/admin/services?lang=sv")).await;
    browser.assert_accessible("the services list").await;
    let new = browser.find("a[href='/admin/services/oidc/new']").await;
    browser.click(&new).await;
    browser
        .wait_for_url("the new client form", |u| {
            u.ends_with("/admin/services/oidc/new")
        })
        .await;
    browser.assert_accessible("the new OIDC client form").await;
    // Sent empty: the form comes back with the registry's message.
    let submit = browser
        .find("form[action='/admin/services/oidc/new'] button[type=submit]")
        .await;
    browser.click(&submit).await;
    wait_for_source(&browser, "id=\"form-error\"").await;
    browser
        .assert_accessible("the new OIDC client form with an error")
        .await;
    for (css, text) in [
        ("#client_id", "chrome-portal"),
        ("#name", "Skolportalen i Chromium"),
        ("#redirect_uris", cb.as_str()),
    ] {
        let el = browser.find(css).await;
        browser.send_keys(&el, text).await;
    }
    for css in [
        "input[name=scope][value=offline_access]",
        "input[name=subject][value=public]",
        "#alg option[value=RS256]",
    ] {
        let el = browser.find(css).await;
        browser.click(&el).await;
    }
    let submit = browser
        .find("form[action='/admin/services/oidc/new'] button[type=submit]")
        .await;
    browser.click(&submit).await;
    wait_for_source(&browser, "id=\"client-secret\"").await;
    browser.assert_accessible("the new secret's page").await;
    let secret = browser
        .execute(
            "return document.getElementById('client-secret').textContent;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    let stored = client(&app, "chrome-portal").await.unwrap();
    assert_eq!(stored.redirect_uris, [cb.as_str()]);
    assert_eq!(stored.subject_type, "public");
    assert_eq!(stored.id_token_alg, "RS256");
    assert!(stored.scopes.iter().any(|s| s == "offline_access"));

    let to_client = browser
        .find("main a[href^='/admin/services/oidc?id=']")
        .await;
    browser.click(&to_client).await;
    browser
        .wait_for_url("the client's page", |u| {
            u.contains("/admin/services/oidc?id=chrome-portal")
        })
        .await;
    assert!(!browser.source().await.contains(&secret));
    browser.assert_accessible("the OIDC client's page").await;
    browser
        .goto(&app.url("/admin/services/oidc/remove?id=chrome-portal"))
        .await;
    browser
        .assert_accessible("the removal's confirmation")
        .await;
    browser
        .goto(&app.url("/admin/services/oidc?id=chrome-portal&lang=sv"))
        .await;
    browser
        .screenshot(&crate::admin::browser::screenshot_path("admin-oidc-client"))
        .await;

    // A login at the new client: the admin's SSO session answers, the code goes to the
    // callback, and the secret read off the page exchanges it.
    let verifier = portvakt::keys::random_token();
    let mut url = url::Url::parse(&app.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "chrome-portal")
        .append_pair("redirect_uri", &cb)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "chrome-state")
        .append_pair("code_challenge", &crate::helpers::pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    browser.goto(url.as_str()).await;
    let back = browser
        .wait_for_url("the callback", |u| u.starts_with(&cb))
        .await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("chrome-state"));
    let code = query_param(&back, "code").expect("a code");
    let (status, body) = app
        .token(
            "chrome-portal",
            &secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &cb),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        crate::helpers::jwt_header(body["id_token"].as_str().unwrap())["alg"],
        "RS256"
    );

    // The list shows the login.
    browser.goto(&app.url("/admin/services?lang=sv")).await;
    let row = browser
        .execute(
            "return [...document.querySelectorAll('tbody tr')].find(r => r.textContent.includes('chrome-portal')).textContent;",
            vec![],
        )
        .await;
    assert!(!row.as_str().unwrap().contains("Aldrig"), "{row}");
    browser
        .screenshot(&crate::admin::browser::screenshot_path("admin-services"))
        .await;
}
