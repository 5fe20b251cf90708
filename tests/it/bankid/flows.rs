//! The BankID login flows: on another device by QR code (to an OIDC code with amr
//! bankid and 2FA), on this device with the app returning to the browser that started,
//! which a phone and a computer are offered first, 2FA discovery, a SAML SP asking for
//! 2FA, and the pages without BankID configured.

use super::*;

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
