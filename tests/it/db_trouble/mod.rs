//! Database trouble (issue 15): a request fails fast with a 503 page when no database
//! connection can be had within `[database] acquire_timeout`; the keys already loaded keep
//! serving the JWKS and signing when a reload fails; PostgreSQL restarted under load, the
//! server recovers by itself and a session made before still works (`restart.rs`, a private
//! cluster); SQLite's writers do not trip over each other while a full sync applies beside
//! logins and refreshes (`concurrent.rs`).

use crate::helpers::*;
use crate::saml_sp::{TestSp, fresh_id};
use std::time::{Duration, Instant};

mod concurrent;
mod restart;

/// The Swedish and English text of the 503 page (`error.unavailable`).
const UNAVAILABLE_SV: &str = "Tjänsten är tillfälligt otillgänglig";
const UNAVAILABLE_EN: &str = "The service is temporarily unavailable";

/// One password login through the code flow with a fresh browser, without panicking: Ok, or
/// the failing step's status, how long that request took and its body.
pub(super) async fn try_login(
    app: &TestApp,
    client_id: &str,
    username: &str,
) -> Result<(), (u16, Duration, String)> {
    let b = app.browser();
    let (url, _, _, _) = app.authorize_url(client_id, &[]);
    let check = |r: &Resp, started: Instant, want: u16| {
        if r.status == want {
            Ok(())
        } else {
            Err((r.status, started.elapsed(), r.body.clone()))
        }
    };
    let t = Instant::now();
    let r = b.get(&url).await;
    check(&r, t, 303)?;
    let t = Instant::now();
    let page = b.get(r.location.as_deref().unwrap_or_default()).await;
    check(&page, t, 200)?;
    let (tx, csrf) = (hidden(&page.body, "tx"), hidden(&page.body, "csrf"));
    let t = Instant::now();
    let r = b.post_login(app, &tx, &csrf, username, PASSWORD).await;
    check(&r, t, 303)?;
    let t = Instant::now();
    let r = b.get(r.location.as_deref().unwrap_or_default()).await;
    check(&r, t, 303)?;
    match r.location.as_deref().and_then(|l| query_param(l, "code")) {
        Some(_) => Ok(()),
        None => Err((r.status, t.elapsed(), format!("no code: {:?}", r.location))),
    }
}

/// An app whose requests wait at most a second for a database connection, with the login
/// throttle's address limit out of the way (the loops log in many times from 127.0.0.1).
pub(super) async fn spawn_impatient_app(
    tune: impl FnOnce(&mut portvakt::config::Config),
) -> TestApp {
    spawn_app_with(|c| {
        c.database.acquire_timeout = 1;
        c.throttle.address_attempts = 1_000_000;
        tune(c);
    })
    .await
}

/// The key ids of a JWKS response.
fn kids(jwks: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = jwks["keys"]
        .as_array()
        .expect("a JWKS has keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn get_timed(app: &TestApp, path: &str, lang: &str) -> (reqwest::Response, Duration) {
    let t = Instant::now();
    let r = app
        .client()
        .get(app.url(path))
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    (r, t.elapsed())
}

/// Every connection of the pool is taken (as when the database does not answer): pages,
/// the token endpoint and the SAML front answer 503 "temporarily unavailable" after the
/// acquire timeout, not 30 s; the JWKS, the SAML metadata and signing go on with the keys
/// loaded before, even when a reload is due and fails; once a connection is free again
/// everything works, the session and refresh token made before included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_database_connection_pages_are_503_at_once_and_loaded_keys_keep_serving() {
    let app = spawn_impatient_app(|c| {
        // One connection, so the test can take all of them; keys reload every minute.
        c.database.max_connections = 1;
        c.keys.reload_interval = 60;
    })
    .await;
    app.add_client("rp", |_| {}).await;
    app.add_person("elev1", &["student@SU1"]).await;
    let (browser, tokens) = app.login_tokens("rp", "elev1").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (r, _) = get_timed(&app, "/oidc/jwks", "sv").await;
    let jwks_before = kids(&r.json().await.unwrap());
    assert_eq!(jwks_before.len(), 2, "{jwks_before:?}");
    let sp = TestSp::new("https://sp.example.se");
    sp.register(&app, &[]);
    let (r, _) = get_timed(&app, "/saml/metadata", "").await;
    assert_eq!(r.status(), 200);
    let metadata_before = r.text().await.unwrap();

    let held = app.db.begin().await.unwrap();

    // A page that needs the database: 503 within the timeout (1 s), Swedish by default.
    let (r, took) = get_timed(&app, "/login?tx=nothing-such", "").await;
    assert_eq!(r.status(), 503);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(r.headers()["retry-after"], "5");
    let body = r.text().await.unwrap();
    assert!(body.contains(UNAVAILABLE_SV), "{body}");
    let (r, _) = get_timed(&app, "/login?tx=nothing-such", "en").await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains(UNAVAILABLE_EN));

    // The authorize endpoint with the SSO session (its client is read from the database).
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let t = Instant::now();
    let r = browser.get(&url).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains(UNAVAILABLE_SV), "{}", r.body);
    assert!(t.elapsed() < Duration::from_secs(4));

    // The token endpoint: OAuth's JSON error, 503 with Retry-After.
    let t = Instant::now();
    let res = app
        .client()
        .post(app.url("/oidc/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(4));
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    let (_, body) = status_json(res).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    // The SAML front: an AuthnRequest needs its SP from the database.
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    let t = Instant::now();
    let r = browser
        .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains(UNAVAILABLE_SV), "{}", r.body);
    assert!(t.elapsed() < Duration::from_secs(4));

    // A key reload is due and fails: the JWKS still has the same keys, and the next
    // request does not wait for the database again.
    app.clock.advance(120);
    let (r, took) = get_timed(&app, "/oidc/jwks", "").await;
    assert_eq!(r.status(), 200);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(kids(&r.json().await.unwrap()), jwks_before);
    let (r, took) = get_timed(&app, "/oidc/jwks", "").await;
    assert_eq!(r.status(), 200);
    assert!(
        took < Duration::from_millis(500),
        "retried the reload: {took:?}"
    );
    let (r, _) = get_timed(&app, "/saml/metadata", "").await;
    assert_eq!(
        r.status(),
        200,
        "the SAML metadata is signed with the loaded key"
    );
    assert_eq!(r.text().await.unwrap(), metadata_before);
    // Signing goes on with the loaded keys.
    let now = app.clock.now();
    let jwt = app
        .state
        .keys
        .sign_jwt(
            portvakt::keys::Alg::Es256,
            "JWT",
            &serde_json::json!({ "sub": "x", "iat": now }),
            now,
        )
        .expect("signing needs no database");
    app.state.keys.verify_jwt(&jwt, now).unwrap();

    // The database answers again: the same session and refresh token work.
    held.commit().await.unwrap();
    let r = browser.get(&url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.location.unwrap();
    assert!(
        back.starts_with(RP_REDIRECT) && back.contains("code="),
        "{back}"
    );
    let (s, body) = app
        .token(
            "rp",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (r, _) = get_timed(&app, "/login?tx=nothing-such", "").await;
    assert_ne!(r.status(), 503);
}
