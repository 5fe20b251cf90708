//! BankID orders that do not end in a login: cancelled in the app or on the page, never
//! picked up or too slow, an unknown personal number, a second order for the same
//! person, BankID out of reach, and the limit of orders per login.

use super::*;

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
