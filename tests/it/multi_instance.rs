//! Two instances on one PostgreSQL database behave as one IdP. These tests always use
//! PostgreSQL and fail when it cannot be reached.

use crate::helpers::*;

async fn pair() -> (TestApp, TestApp) {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_pg_database().await;
    let a = spawn_instance(&url, dir.clone(), None, |c| c.throttle.free_attempts = 2).await;
    let issuer = a.base.clone();
    let b = spawn_instance(&url, dir, Some(&issuer), |c| c.throttle.free_attempts = 2).await;
    (a, b)
}

#[tokio::test]
async fn a_code_from_one_instance_is_redeemed_at_the_other_and_sso_is_shared() {
    let (a, b) = pair().await;
    a.add_person("elev.anna", &["student"]).await;
    a.add_client("one", |_| {}).await;
    let (browser, code, verifier, _) = a.login_code("one", "elev.anna").await;
    let (s, t) = b
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
    assert_eq!(s, 200, "{t}");
    assert_eq!(a.userinfo(t["access_token"].as_str().unwrap()).await.0, 200);
    // The SSO session made at A is honoured at B.
    let (url, _, _, _) = a.authorize_url("one", &[]);
    let at_b = url.replace(&a.base, &b.base);
    let r = browser.get(&at_b).await;
    assert!(r.location.unwrap().starts_with(RP_REDIRECT));
    // Refresh at B with A's refresh token.
    let (s, _) = b
        .token(
            "one",
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn the_same_code_redeemed_concurrently_at_two_instances_succeeds_once() {
    let (a, b) = pair().await;
    a.add_person("elev.anna", &["student"]).await;
    a.add_client("one", |_| {}).await;
    for _ in 0..5 {
        let (_, code, verifier, _) = a.login_code("one", "elev.anna").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        let (ra, rb) = tokio::join!(a.token("one", SECRET, &form), b.token("one", SECRET, &form));
        let ok = [ra.0, rb.0].iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1, "exactly one redemption wins: {} {}", ra.0, rb.0);
    }
}

#[tokio::test]
async fn throttling_is_shared_between_instances() {
    let (a, b) = pair().await;
    a.add_person("elev.anna", &["student"]).await;
    a.add_client("one", |_| {}).await;
    // Open every login form first, so the posts follow each other within the delay.
    let mut forms = Vec::new();
    for app in [&a, &b, &a] {
        let br = Browser::new();
        let (tx, csrf, _) = br.open_login(&app.authorize_url("one", &[]).0).await;
        forms.push((app, br, tx, csrf));
    }
    let mut statuses = Vec::new();
    for ((app, br, tx, csrf), pw) in forms.iter().zip(["wrong", "wrong", PASSWORD]) {
        let form = [
            ("tx", tx.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "elev.anna"),
            ("password", pw),
        ];
        statuses.push(br.post(&app.url("/login"), &form).await.status);
    }
    assert_eq!(statuses, vec![401, 401, 429], "failures at B count at A");
}

#[tokio::test]
async fn a_saml_request_answered_at_one_instance_is_denied_at_the_other() {
    use crate::saml_sp::*;
    let (a, b) = pair().await;
    a.add_person("elev.anna", &["student"]).await;
    let sp = TestSp::new("https://sp.example.se");
    sp.register(&a, &[]);
    let browser = a.browser();
    let id = fresh_id();
    let req = sp.authn_request(&a, &id, "", "");
    let first = redirect_sso(&browser, &a, &sp, &req, Some("elev.anna")).await;
    assert_eq!(first.status().0, SUCCESS);
    // The same request at B (the IdP's one address is A's; the SP does not know there are two).
    let url = sp.redirect_url(&b.url("/saml/sso"), "SAMLRequest", &req, None);
    let again = answer(&browser, &b, browser.get(&url).await, None).await;
    assert_eq!(
        again.status(),
        (REQUESTER.into(), Some(REQUEST_DENIED.into()))
    );
}

#[tokio::test]
async fn a_bankid_login_started_at_one_instance_is_collected_and_finished_at_the_other() {
    use crate::bankid::*;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_pg_database().await;
    let a = spawn_instance(&url, dir.clone(), None, with_bankid).await;
    let issuer = a.base.clone();
    // Both instances talk to one BankID: the stub mounted at the issuer.
    let b = spawn_instance(&url, dir, Some(&issuer), with_bankid).await;
    person(&a, "erik", ERIK).await;
    a.add_client("rp", |_| {}).await;
    let browser = a.browser();
    let (page, _, verifier) = oidc_login_page(&a, &browser, &[]).await;
    let (order, _) = start(&browser, &a, &page, "other", "login").await;
    // The QR code and the collect come from B.
    let text = scan(&browser, &b, &order).await;
    let (s, v) = app_api(
        &a,
        "approve",
        serde_json::json!({"qrData": text, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let v = poll_until(&browser, &b, &order, done).await;
    assert_eq!(v["state"], "complete", "{v}");
    let r = browser.get(&b.url(v["next"].as_str().unwrap())).await;
    let cb = r.location.unwrap();
    tokens(&b, &cb, &verifier).await;
}
