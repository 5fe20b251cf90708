//! No personal number reaches a log line, and the QR secret is stored sealed.

use super::*;

#[tokio::test]
async fn no_personal_number_reaches_a_log_line_and_the_qr_secret_is_stored_sealed() {
    // The suite's log capture (server_logs.rs) holds this process's other tests too, which
    // use the same personal numbers, so the check covers them as well.
    let app = bankid_app(|_| {}).await;
    person(&app, "erik", ERIK).await;
    for who in [ERIK, NOBODY] {
        let b = app.browser();
        let (page, _, _) = oidc_login_page(&app, &b, &[]).await;
        let (order, _) = start(&b, &app, &page, "other", "login").await;
        let rec = portvakt::storage::bankid::get(&app.db, &order, app.clock.now())
            .await
            .unwrap()
            .unwrap();
        assert!(
            uuid::Uuid::parse_str(&rec.qr_start_secret).is_err(),
            "the QR secret is sealed in the database"
        );
        by_qr(&b, &app, &order, "approve", who).await;
    }
    let log = crate::server_logs::read();
    assert!(
        log.contains("/login/bankid/status"),
        "the subscriber saw the requests"
    );
    assert!(log.contains("BankID login refused"), "and the refusal");
    for pn in [ERIK, NOBODY, TOLVAN] {
        assert!(!log.contains(pn), "a personal number in the log");
    }
}
