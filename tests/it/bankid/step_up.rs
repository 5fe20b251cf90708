//! Step-up with BankID (naming the person; a concurrent one already in progress) and the
//! password reset after a fresh BankID login.

use super::*;

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
async fn password_reset_ends_the_persons_other_sessions_and_their_refresh_tokens() {
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    // Somewhere else, erik is signed in with his (old) password and the RP holds a refresh
    // token.
    let elsewhere = app.browser();
    let (url, _, _, verifier) = app.authorize_url("rp", &[]);
    let cb = elsewhere.login(&app, &url, "erik", PASSWORD).await;
    let old = tokens(&app, &cb, &verifier).await;
    assert!(elsewhere.has_sso());

    let b = app.browser();
    let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
    let tx = hidden(&page.body, "tx");
    let reset = b.get(&app.url(&format!("/login?tx={tx}&reset=1"))).await;
    let csrf = new_password_form(&b, &app, &reset).await;
    let new = "ett helt nytt lösenord";
    let r = post_password(&b, &app, &tx, &csrf, new, new).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let resume = r.location.unwrap();

    // The other session is over, and so is its refresh token, at once.
    let (s, body) = app
        .token(
            "rp",
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", old["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (url, _, _, _) = app.authorize_url("rp", &[("prompt", "none")]);
    let r = elsewhere.get(&url).await;
    let to = r.location.unwrap_or_default();
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("login_required"),
        "{to}"
    );
    // The browser that reset the password keeps its session and goes on to the relying party.
    assert!(b.has_sso());
    let r = b.get(&resume).await;
    assert_eq!(r.status, 303);
    assert!(query_param(&r.location.unwrap(), "code").is_some());
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
    let r = post_password(&b, &app, &tx, &csrf, new, "något annat").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("inte likadana"));
    let r = post_password(&b, &app, &tx, &csrf, "kort", "kort").await;
    assert_eq!(r.status, 400);
    let r = post_password(&b, &app, &tx, "forged", new, new).await;
    assert_eq!(r.status, 403);
    let r = post_password(&b, &app, &tx, &csrf, new, new).await;
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
    let csrf = new_password_form(&b, &app, &page).await;
    let new = "ett helt nytt lösenord";
    let r = post_password(&b, &app, &tx, &csrf, new, new).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Ditt nya lösenord är sparat"));
}

/// Posts the new-password form of transaction `tx`.
async fn post_password(
    b: &Browser,
    app: &TestApp,
    tx: &str,
    csrf: &str,
    password: &str,
    repeat: &str,
) -> Resp {
    let form = [
        ("tx", tx),
        ("csrf", csrf),
        ("password", password),
        ("repeat", repeat),
    ];
    b.post(&app.url("/password"), &form).await
}

/// From a login page offering BankID: a reset order approved by Erik's BankID, then the
/// new-password form; its CSRF token.
async fn new_password_form(b: &Browser, app: &TestApp, page: &Resp) -> String {
    let (order, _) = start(b, app, page, "other", "password").await;
    let v = by_qr(b, app, &order, "approve", ERIK).await;
    let form = b.get(&app.url(v["next"].as_str().unwrap())).await;
    hidden(&form.body, "csrf")
}
