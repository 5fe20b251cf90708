//! RP-initiated logout (no open redirect, no logout CSRF) and back-channel logout.

use crate::helpers::*;
use crate::negative::urlencode;

#[tokio::test]
async fn end_session_with_an_unregistered_post_logout_uri_does_not_redirect() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (browser, t) = app.login_tokens("one", "elev.anna").await;
    let id_token = t["id_token"].as_str().unwrap();
    let r = browser
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            urlencode("https://evil.example/")
        )))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.location.is_none());
    assert!(browser.has_sso(), "not logged out by a bad request");
    // An invalid id_token_hint is refused too.
    let r = browser
        .get(&app.url("/oidc/logout?id_token_hint=x.y.z"))
        .await;
    assert_eq!(r.status, 400);
    // So is an access token of ours: only an ID token may skip the confirmation.
    let access = t["access_token"].as_str().unwrap();
    let r = browser
        .get(&app.url(&format!("/oidc/logout?id_token_hint={access}")))
        .await;
    assert_eq!(r.status, 400);
    assert!(browser.has_sso());
}

#[tokio::test]
async fn without_a_hint_the_person_confirms_in_a_form_with_a_csrf_token() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (browser, t) = app.login_tokens("one", "elev.anna").await;
    let url = app.url(&format!(
        "/oidc/logout?client_id=one&post_logout_redirect_uri={}&state=s1",
        urlencode(RP_LOGOUT)
    ));
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "a confirmation page, not a logout");
    assert!(page.body.contains("method=\"post\""));
    let csrf = hidden(&page.body, "csrf");
    // A cross-site POST without the token only shows the page again; a wrong token is refused.
    let again = browser
        .post(&app.url("/oidc/logout"), &[("client_id", "one")])
        .await;
    assert_eq!(again.status, 200);
    let forged = browser
        .post(
            &app.url("/oidc/logout"),
            &[("csrf", "forged"), ("client_id", "one")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        app.userinfo(t["access_token"].as_str().unwrap()).await.0,
        200
    );
    let done = browser
        .post(
            &app.url("/oidc/logout"),
            &[
                ("csrf", &csrf),
                ("client_id", "one"),
                ("post_logout_redirect_uri", RP_LOGOUT),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("{RP_LOGOUT}?state=s1").as_str())
    );
    assert!(!browser.has_sso());
    // The refresh tokens of the ended session were revoked with it: refused at once.
    assert_refresh_refused(&app, t["refresh_token"].as_str().unwrap()).await;
}

/// One refresh_token grant, no retry: it must be refused as `invalid_grant`.
async fn assert_refresh_refused(app: &TestApp, refresh: &str) {
    let (s, body) = app
        .token(
            "one",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

async fn logout_with_hint(app: &TestApp, browser: &Browser, id_token: &str) {
    let r = browser
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s",
            urlencode(RP_LOGOUT)
        )))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!browser.has_sso());
}

#[tokio::test]
async fn the_first_refresh_right_after_logout_is_refused() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (browser, t) = app.login_tokens("one", "elev.anna").await;
    logout_with_hint(&app, &browser, t["id_token"].as_str().unwrap()).await;
    assert_refresh_refused(&app, t["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn logout_after_logging_in_again_reaches_the_old_sessions_refresh_tokens() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (browser, first) = app.login_tokens("one", "elev.anna").await;
    // The same person logs in again in the same browser: a new session takes over.
    let (url, _, _, verifier) = app.authorize_url("one", &[("prompt", "login")]);
    let cb = browser.login(&app, &url, "elev.anna", PASSWORD).await;
    let code = query_param(&cb, "code").unwrap();
    let (s, second) = app
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(s, 200, "{second}");
    assert_ne!(
        jwt_claims(first["id_token"].as_str().unwrap())["sid"],
        jwt_claims(second["id_token"].as_str().unwrap())["sid"]
    );
    logout_with_hint(&app, &browser, second["id_token"].as_str().unwrap()).await;
    assert_refresh_refused(&app, first["refresh_token"].as_str().unwrap()).await;
    assert_refresh_refused(&app, second["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn logout_sends_back_channel_logout_tokens() {
    use axum::{Router, extract::Form, routing::post};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
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
    let bcl = format!("http://{}/bcl", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |s| s.backchannel_logout_uri = Some(bcl.clone()))
        .await;
    app.add_client("two", |_| {}).await;
    let (browser, t) = app.login_tokens("one", "elev.anna").await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    let r = browser
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={}",
            t["id_token"].as_str().unwrap()
        )))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some(app.url("/logged-out").as_str()));
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jwt_header(&token)["typ"], "logout+jwt");
    let c = jwt_claims(&token);
    assert_eq!(c["aud"], "one");
    assert_eq!(c["sub"], id["sub"]);
    assert_eq!(c["sid"], id["sid"]);
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(c.get("nonce").is_none());
    // Its signature verifies against the published keys.
    portvakt::keys::KeyStore::verify_jwt(&app.state.keys, &token, app.clock.now()).unwrap();
}

#[tokio::test]
async fn a_refresh_token_family_ends_at_the_sessions_absolute_lifetime() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_browser, t) = app.login_tokens("one", "elev.anna").await;
    let absolute = app.config.session.absolute_ttl;
    let refresh_ttl = app.config.tokens.refresh_ttl;
    assert!(
        refresh_ttl < absolute,
        "the test needs a family to outlive one token"
    );
    // Within the session's lifetime the family rotates as usual ...
    app.clock.advance(absolute - refresh_ttl + 60);
    let (s, rotated) = app
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, 200, "{rotated}");
    // ... and the new token, though not itself expired, ends with the session.
    app.clock.advance(refresh_ttl - 30);
    assert_refresh_refused(&app, rotated["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn ending_a_session_revokes_its_refresh_tokens_before_it_returns() {
    // The storage call alone, with no logout notifier: the revocation is part of ending the
    // session, not of some task that runs afterwards.
    use sqlx::{Connection, Row};
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_browser, t) = app.login_tokens("one", "elev.anna").await;
    let sid = jwt_claims(t["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let session = portvakt::storage::sessions::get_session_by_sid(&app.db, &sid)
        .await
        .unwrap()
        .unwrap();
    let ended =
        portvakt::storage::sessions::end_session(&app.db, &session.id, app.clock.now()).await;
    assert!(ended.unwrap());
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    let row = sqlx::query("SELECT revoked FROM refresh_tokens WHERE token_hash = $1")
        .bind(portvakt::keys::hash_token(
            t["refresh_token"].as_str().unwrap(),
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.try_get::<i64, _>("revoked").unwrap(), 1);
}
