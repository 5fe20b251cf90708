//! The HTTP surface on a loopback port: the RP API's errors, the app page and its JSON API.

use super::*;

/// Serves the stub nested at `/bankid-stub` like Portvakt does (with the edge middleware);
/// the base URL.
async fn serve(f: &Fixture) -> String {
    let router = axum::Router::new()
        .nest(crate::web::paths::BANKID_STUB, f.stub.router())
        .layer(axum::middleware::from_fn_with_state(
            crate::web::EdgeConfig {
                trusted_proxies: Arc::new(Vec::new()),
                tls: false,
            },
            crate::web::edge,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/bankid-stub")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn error_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    (status, body["errorCode"].as_str().unwrap().to_string())
}

fn mounted() -> Fixture {
    Fixture::with(StubConfig {
        mount: crate::web::paths::BANKID_STUB.into(),
        suggestions: vec![(PN.into(), "Elev 1001 (elev1001)".into())],
        ..Default::default()
    })
}

#[tokio::test]
async fn the_rp_api_answers_errors_with_bankids_codes() {
    let f = mounted();
    let base = serve(&f).await;
    let api = format!("{base}/rp/v6.0/");
    let c = http();
    let post = |path: &str| c.post(format!("{api}{path}"));
    let r = post("payment")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (404, "notFound".into()));
    let r = post("").json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(error_of(r).await, (404, "notFound".into()));
    let r = c.get(format!("{api}auth")).send().await.unwrap();
    assert_eq!(error_of(r).await, (405, "methodNotAllowed".into()));
    let r = post("auth")
        .header("content-type", "text/plain")
        .body(r#"{"endUserIp":"127.0.0.1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (415, "unsupportedMediaType".into()));
    let r = post("auth")
        .header("content-type", "application/json; charset=UTF-8")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "invalidParameters".into()));
    let r = post("auth")
        .header("content-type", "application/json")
        .body(vec![b' '; BODY_LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post("collect")
        .json(&serde_json::json!({"orderRef": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "invalidParameters".into()));

    // sign and phone/sign over HTTP; cancel answers {}.
    let r = post("sign")
        .json(&serde_json::json!({"endUserIp": "127.0.0.1", "userVisibleData": STANDARD.encode("Jag godkänner")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let order: OrderResponse = r.json().await.unwrap();
    assert!(!order.qr_start_secret.is_empty());
    let r = post("phone/sign")
        .json(&serde_json::json!({"personalNumber": PN, "callInitiator": "user",
            "userVisibleData": STANDARD.encode("Avtal"), "userNonVisibleData": STANDARD.encode([0u8, 255])}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["orderRef"]
    );
    let r = post("cancel")
        .json(&serde_json::json!({"orderRef": order.order_ref}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn the_app_page_opens_by_autostart_and_returns_to_the_browser() {
    let f = mounted();
    let base = serve(&f).await;
    let c = http();
    let mut req = request(None);
    // Stored as the URL parser writes it, so it is always a valid Location header.
    req.return_url = Some("https://rp.example.se/bäck?nonce=1\n".into());
    req.user_visible_data = Some(STANDARD.encode("Logga in hos <Skolan>"));
    let o = f.auth(req).unwrap();

    // The start page: Swedish, a labelled field, no script.
    let page = c.get(format!("{base}/app")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<html lang="sv">"#));
    assert!(html.contains(r#"<label for="qr">"#));
    assert!(html.contains(r#"action="/bankid-stub/app""#));
    assert!(!html.contains("<script") && !html.contains("style="));

    // A wrong QR code: a clear page, 400.
    let bad = qr::qr_data(&o.qr_start_token, "wrong-secret", 0);
    let r = c
        .get(format!("{base}/app"))
        .query(&[("qr", &bad)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\"") && html.contains("kontrollkod"),
        "{html}"
    );

    // The autostart link opens it (started) and shows the order.
    let link = Stub::autostart_url(&base, &o.auto_start_token, None);
    let r = c
        .get(&link)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/bankid-stub/app?order="));
    assert_eq!(f.status(&o), pending(HintCode::Started));
    let origin = base.trim_end_matches("/bankid-stub");
    let html = c
        .get(format!("{origin}{location}"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(
        html.contains("Logga in hos &#60;Skolan&#62;")
            || html.contains("Logga in hos &lt;Skolan&gt;"),
        "{html}"
    );
    assert!(html.contains(r#"<option value="198003021238">Elev 1001 (elev1001)</option>"#));
    assert!(html.contains(r#"<label for="personal_number">"#));
    let field = |name: &str| {
        let start = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        html[start..].split('"').next().unwrap().to_string()
    };
    let (order, csrf) = (field("order"), field("csrf"));

    // A forged form is refused; a bad number shows the form again.
    let form = |csrf: &str, action: &str, pn: &str| {
        c.post(format!("{base}/app")).form(&[
            ("order", order.as_str()),
            ("csrf", csrf),
            ("action", action),
            ("personal_number", pn),
            ("given_name", "Erik"),
            ("surname", ""),
        ])
    };
    assert_eq!(
        form("forged", "approve", PN).send().await.unwrap().status(),
        400
    );
    let r = form(&csrf, "approve", "12345").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"aria-invalid="true""#) && html.contains("value=\"12345\""));
    assert_eq!(f.status(&o), pending(HintCode::Started));

    // Identify: back to the RP's returnUrl.
    let r = form(&csrf, "approve", PN).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "https://rp.example.se/b%C3%A4ck?nonce=1"
    );
    let c2 = f.collect(&o).unwrap();
    assert_eq!(c2.status, Status::Complete);
    assert_eq!(c2.completion_data.unwrap().user.name, "Erik");
}

#[tokio::test]
async fn the_app_page_cancels_and_the_json_api_drives_orders() {
    let f = mounted();
    let base = serve(&f).await;
    let c = http();
    let o = f.auth_ok();
    let qr_text = qr::qr_data(&o.qr_start_token, &o.qr_start_secret, 0);
    let r = c
        .get(format!("{base}/app"))
        .query(&[("qr", &qr_text)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let origin = base.trim_end_matches("/bankid-stub");
    let html = c
        .get(format!("{origin}{location}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| {
        let start = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        html[start..].split('"').next().unwrap().to_string()
    };
    let r = c
        .post(format!("{base}/app"))
        .form(&[
            ("order", field("order")),
            ("csrf", field("csrf")),
            ("action", "cancel".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Gå tillbaka till webbläsaren")
    );
    assert_eq!(f.status(&o), failed(HintCode::UserCancel));

    // The JSON API.
    let api = |action: &str, body: serde_json::Value| {
        c.post(format!("{base}/app/api/{action}"))
            .json(&body)
            .send()
    };
    let o = f.auth_ok();
    let r = api(
        "open",
        serde_json::json!({"autoStartToken": o.auto_start_token}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "pending", "hintCode": "started"})
    );
    let r = api(
        "approve",
        serde_json::json!({"autoStartToken": o.auto_start_token}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(r).await, (400, "invalidParameters".into()));
    let r = api("approve", serde_json::json!({"autoStartToken": o.auto_start_token, "personalNumber": PN, "name": "Ada Lind"})).await.unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "complete"})
    );
    assert_eq!(
        f.collect(&o).unwrap().completion_data.unwrap().user.surname,
        "Lind"
    );
    let r = api(
        "cancel",
        serde_json::json!({"autoStartToken": o.auto_start_token}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(r).await, (400, "invalidParameters".into()));
    let r = api(
        "open",
        serde_json::json!({"autoStartToken": "no-such-token"}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(r).await, (404, "notFound".into()));
    let r = api("other", serde_json::json!({})).await.unwrap();
    assert_eq!(error_of(r).await, (404, "notFound".into()));
    let r = api(
        "open",
        serde_json::json!({"qrData": qr::qr_data(&o.qr_start_token, "x", 0)}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(r).await, (400, "invalidParameters".into()));
    let p = f.phone_auth(OTHER_PN).unwrap();
    let r = api("cancel", serde_json::json!({"personalNumber": OTHER_PN}))
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "failed", "hintCode": "userDeclinedCall"})
    );
    assert_eq!(f.status(&p), failed(HintCode::UserDeclinedCall));
}
