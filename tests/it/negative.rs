//! The token endpoint and authorization endpoint refusing what they must refuse.

use crate::helpers::*;

fn code_form<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", RP_REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client_with_401() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, code, verifier, _) = app.login_code("one", "elev.anna").await;
    let res = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth("one", Some("not-the-secret-but-long-enough"))
        .form(&code_form(&code, &verifier))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // client_secret_post works with the right secret.
    let mut form = code_form(&code, &verifier);
    form.push(("client_id", "one"));
    form.push(("client_secret", SECRET));
    assert_eq!(app.token_without_basic(&form).await.0, 200);
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, code, verifier, _) = app.login_code("one", "elev.anna").await;
    let (s1, first) = app.token("one", SECRET, &code_form(&code, &verifier)).await;
    assert_eq!(s1, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.0, 200);
    let (s2, second) = app.token("one", SECRET, &code_form(&code, &verifier)).await;
    assert_eq!(s2, 400);
    assert_eq!(second["error"], "invalid_grant");
    assert_eq!(
        app.userinfo(access).await.0,
        401,
        "the access token from the code is revoked"
    );
    let (s3, third) = app
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        (s3, third["error"].as_str()),
        (400, Some("invalid_grant")),
        "refresh token revoked too"
    );
}

/// A stolen code presented by another client (one with a secret of its own, and a public
/// one) is refused and left alone: the client it was issued to still redeems it, and
/// nothing it was issued is revoked as a "replay".
#[tokio::test]
async fn another_client_cannot_burn_a_code() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    app.add_client("thief", |_| {}).await;
    app.add_client("spa", |s| {
        s.secret = None;
        s.public = true;
    })
    .await;
    let (_, code, verifier, _) = app.login_code("one", "elev.anna").await;

    let (s, body) = app
        .token("thief", SECRET, &code_form(&code, &verifier))
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let mut form = code_form(&code, &verifier);
    form.push(("client_id", "spa"));
    let (s, body) = app.token_without_basic(&form).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    let (s, tokens) = app.token("one", SECRET, &code_form(&code, &verifier)).await;
    assert_eq!(s, 200, "the right client still redeems its code: {tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    // A "replay" by another client after that revokes nothing of the right client's.
    let (s, _) = app
        .token("thief", SECRET, &code_form(&code, &verifier))
        .await;
    assert_eq!(s, 400);
    assert_eq!(app.userinfo(access).await.0, 200);
}

#[tokio::test]
async fn a_pkce_verifier_mismatch_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, code, _, _) = app.login_code("one", "elev.anna").await;
    let wrong = portvakt::keys::random_token();
    let (s, body) = app.token("one", SECRET, &code_form(&code, &wrong)).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn no_pkce_downgrade_in_either_direction() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    // Issued with a challenge: the verifier is required.
    let (_, code, _, _) = app.login_code("one", "elev.anna").await;
    let (s, body) = app
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
            ],
        )
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // Issued without a challenge: a verifier is refused.
    let b = Browser::new();
    let url = app.url(&format!(
        "/oidc/authorize?client_id=one&redirect_uri={}&response_type=code&scope=openid&state=s",
        urlencode(RP_REDIRECT)
    ));
    let cb = b.login(&app, &url, "elev.anna", PASSWORD).await;
    let code = query_param(&cb, "code").unwrap();
    let verifier = portvakt::keys::random_token();
    let (s, body) = app.token("one", SECRET, &code_form(&code, &verifier)).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // plain is refused at the authorization endpoint.
    let r = b
        .get(&app.url(&format!(
            "/oidc/authorize?client_id=one&redirect_uri={}&response_type=code&scope=openid&code_challenge={}&code_challenge_method=plain",
            urlencode(RP_REDIRECT),
            "a".repeat(43)
        )))
        .await;
    assert_eq!(
        query_param(r.location.as_deref().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn public_clients_must_use_pkce() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("spa", |s| {
        s.secret = None;
        s.public = true;
    })
    .await;
    let b = Browser::new();
    let r = b
        .get(&app.url(&format!(
            "/oidc/authorize?client_id=spa&redirect_uri={}&response_type=code&scope=openid",
            urlencode(RP_REDIRECT)
        )))
        .await;
    assert_eq!(
        query_param(r.location.as_deref().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    // With PKCE a public client redeems its code with client_id alone.
    let (url, _, _, verifier) = app.authorize_url("spa", &[]);
    let cb = b.login(&app, &url, "elev.anna", PASSWORD).await;
    let code = query_param(&cb, "code").unwrap();
    let mut form = code_form(&code, &verifier);
    form.push(("client_id", "spa"));
    assert_eq!(app.token_without_basic(&form).await.0, 200);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_client_gets_a_page_never_a_redirect() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let b = Browser::new();
    for (client, uri) in [
        ("one", "https://evil.example/cb"),
        ("one", "http://127.0.0.1:9/cb/extra"),
        ("nobody", RP_REDIRECT),
    ] {
        let r = b
            .get(&app.url(&format!(
                "/oidc/authorize?client_id={client}&redirect_uri={}&response_type=code&scope=openid&state=x",
                urlencode(uri)
            )))
            .await;
        assert_eq!(r.status, 400, "{client} {uri}");
        assert!(r.location.is_none(), "no redirect for {client} {uri}");
        assert!(r.body.contains("<h1>"), "an error page");
    }
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app_with(|c| c.tokens.code_ttl = 1).await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, code, verifier, _) = app.login_code("one", "elev.anna").await;
    app.clock.advance(2);
    let (s, body) = app.token("one", SECRET, &code_form(&code, &verifier)).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_whole_family() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, t) = app.login_tokens("one", "elev.anna").await;
    let r1 = t["refresh_token"].as_str().unwrap();
    let (s, t2) = app
        .token(
            "one",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", r1)],
        )
        .await;
    assert_eq!(s, 200);
    let r2 = t2["refresh_token"].as_str().unwrap();
    let (s, body) = app
        .token(
            "one",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", r1)],
        )
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, _) = app
        .token(
            "one",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", r2)],
        )
        .await;
    assert_eq!(s, 400, "the rotated token dies with its family");
}

#[tokio::test]
async fn a_refresh_cannot_widen_the_scope() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, t) = app.login_tokens("one", "elev.anna").await;
    let r1 = t["refresh_token"].as_str().unwrap();
    let (s, narrowed) = app
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "openid profile"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(narrowed["scope"], "openid profile");
    let r2 = narrowed["refresh_token"].as_str().unwrap();
    let (s, body) = app
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r2),
                ("scope", "openid email"),
            ],
        )
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
}

#[tokio::test]
async fn introspection_of_another_clients_token_says_inactive() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    app.add_client("two", |_| {}).await;
    let (_, t) = app.login_tokens("one", "elev.anna").await;
    for token in [
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    ] {
        let ask = |client: &'static str| {
            let url = app.url("/oidc/introspect");
            async move {
                let r = reqwest::Client::new()
                    .post(url)
                    .basic_auth(client, Some(SECRET))
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap();
                r.json::<serde_json::Value>().await.unwrap()
            }
        };
        assert_eq!(ask("one").await["active"], true);
        assert_eq!(ask("two").await, serde_json::json!({"active": false}));
    }
    // Revocation by another client does nothing.
    reqwest::Client::new()
        .post(app.url("/oidc/revoke"))
        .basic_auth("two", Some(SECRET))
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.userinfo(t["access_token"].as_str().unwrap()).await.0,
        200
    );
}

#[tokio::test]
async fn grant_types_the_client_is_not_registered_for_are_refused() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let (s, body) = app
        .token("one", SECRET, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (s, body) = app
        .token("one", SECRET, &[("grant_type", "password")])
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, body) = app.token("one", SECRET, &[]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn userinfo_needs_a_valid_bearer_token() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .get(app.url("/oidc/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(app.userinfo("not.a.token").await.0, 401);
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The attack: a form of thousands of distinct parameters, once made the duplicate
/// check quadratic on an async thread before the client was authenticated. Now a request of
/// more than 100 parameters is refused as malformed, before any client lookup.
#[tokio::test]
async fn a_flood_of_parameters_is_refused_before_anything_else() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    // 8000 parameters, 55 KB: under the 64 KiB body limit.
    let flood: String = (0..8_000).map(|i| format!("&p{i:x}=")).collect();
    let res = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth("one", Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials{flood}"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(body["error_description"], "more than 100 parameters");

    // At the authorization endpoint the error goes back to the (registered) redirect_uri.
    let b = Browser::new();
    let r = b
        .get(&app.url(&format!(
            "/oidc/authorize?client_id=one&redirect_uri={}&response_type=code&scope=openid&state=x{}",
            urlencode(RP_REDIRECT),
            &flood[..4000]
        )))
        .await;
    let location = r.location.expect("an error redirect");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query_param(&location, "error_description").as_deref(),
        Some("more than 100 parameters")
    );
}
