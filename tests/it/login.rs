//! The login page, SSO across relying parties, and what authorize asks of a session.

use crate::helpers::*;

#[tokio::test]
async fn a_second_relying_party_gets_a_code_without_a_password_prompt() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    app.add_client("two", |_| {}).await;
    let (browser, _, _, _) = app.login_code("one", "elev.anna").await;
    let (url, state, _, _) = app.authorize_url("two", &[]);
    let r = browser.get(&url).await;
    assert_eq!(r.status, 303);
    let loc = r.location.unwrap();
    assert!(
        loc.starts_with(RP_REDIRECT),
        "SSO should answer at once: {loc}"
    );
    assert_eq!(query_param(&loc, "state"), Some(state));
    assert!(query_param(&loc, "code").is_some());
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login_and_prompt_none_never_shows_a_page() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let fresh = Browser::new();
    let (url, state, _, _) = app.authorize_url("one", &[("prompt", "none")]);
    let r = fresh.get(&url).await;
    let loc = r.location.unwrap();
    assert!(loc.starts_with(RP_REDIRECT));
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&loc, "state"), Some(state));
    assert_eq!(query_param(&loc, "iss"), Some(app.base.clone()));

    let (browser, _, _, _) = app.login_code("one", "elev.anna").await;
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let (url, _, _, _) = app.authorize_url("one", &[extra]);
        app.clock.advance(1);
        let r = browser.get(&url).await;
        assert!(
            r.location.unwrap().contains("/login?tx="),
            "{extra:?} must show the login page"
        );
    }
    let (url, _, _, _) = app.authorize_url("one", &[("max_age", "3600")]);
    assert!(
        browser
            .get(&url)
            .await
            .location
            .unwrap()
            .starts_with(RP_REDIRECT)
    );
    // A level the session lacks asks for a login; a login that cannot reach it still
    // completes (acr_values is voluntary) and says what was reached.
    let two_fa = "http://id.skolfederation.se/loa/2fa";
    let (url, _, _, verifier) = app.authorize_url("one", &[("acr_values", two_fa)]);
    assert!(
        browser
            .get(&url)
            .await
            .location
            .unwrap()
            .contains("/login?tx=")
    );
    let cb = browser.login(&app, &url, "elev.anna", PASSWORD).await;
    let code = query_param(&cb, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", RP_REDIRECT),
        ("code_verifier", &verifier),
    ];
    let (_, t) = app.token("one", SECRET, &form).await;
    assert_eq!(
        jwt_claims(t["id_token"].as_str().unwrap())["acr"],
        "http://id.skolfederation.se/loa/bas"
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let mut answers = Vec::new();
    for (user, pw) in [("elev.anna", "wrong"), ("nobody.here", "wrong")] {
        let b = Browser::new();
        let (url, _, _, _) = app.authorize_url("one", &[]);
        let (tx, csrf, _) = b.open_login(&url).await;
        let r = b.post_login(&app, &tx, &csrf, user, pw).await;
        assert!(!b.has_sso(), "no session on failure");
        let body = r
            .body
            .replace(&tx, "TX")
            .replace(&csrf, "CSRF")
            .replace(user, "USER");
        answers.push((r.status, body));
    }
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].1.contains("Fel användarnamn eller lösenord"));
    assert!(
        answers[0].1.contains("aria-invalid=\"true\""),
        "error tied to the fields"
    );
}

#[tokio::test]
async fn the_login_form_requires_its_csrf_token() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let b = Browser::new();
    let (url, _, _, _) = app.authorize_url("one", &[]);
    let (tx, csrf, _) = b.open_login(&url).await;
    let no_token = b
        .post(
            &app.url("/login"),
            &[
                ("tx", &tx),
                ("username", "elev.anna"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(no_token.status, 403);
    let other_tx = b.open_login(&app.authorize_url("one", &[]).0).await.0;
    let wrong = b
        .post_login(&app, &other_tx, &csrf, "elev.anna", PASSWORD)
        .await;
    assert_eq!(wrong.status, 403, "a token is bound to its transaction");
    // A form fetched in another browser (an attacker's) cannot be posted from this one.
    let attacker = Browser::new();
    let (atx, acsrf, _) = attacker.open_login(&app.authorize_url("one", &[]).0).await;
    let csrf_login = b
        .post_login(&app, &atx, &acsrf, "elev.anna", PASSWORD)
        .await;
    assert_eq!(csrf_login.status, 403, "login CSRF refused");
    assert!(!b.has_sso());
    let ok = b.post_login(&app, &tx, &csrf, "elev.anna", PASSWORD).await;
    assert_eq!(ok.status, 303);
}

#[tokio::test]
async fn the_session_cookie_is_httponly_and_renewed_at_every_login() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let b = Browser::new();
    let (url, _, _, _) = app.authorize_url("one", &[]);
    let (tx, csrf, page) = b.open_login(&url).await;
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers.get("x-frame-options").unwrap(), "DENY");
    let r = b.post_login(&app, &tx, &csrf, "elev.anna", PASSWORD).await;
    let set = r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with("portvakt_sso="));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"));
    let first = b.cookies.lock().unwrap()["portvakt_sso"].clone();
    // A forced re-login issues a new session id (no fixation) and the old one stops working.
    let (url, _, _, _) = app.authorize_url("one", &[("prompt", "login")]);
    b.login(&app, &url, "elev.anna", PASSWORD).await;
    let second = b.cookies.lock().unwrap()["portvakt_sso"].clone();
    assert_ne!(first, second);
    let old = Browser::new();
    old.cookies
        .lock()
        .unwrap()
        .insert("portvakt_sso".into(), first);
    let (url, _, _, _) = app.authorize_url("one", &[("prompt", "none")]);
    let loc = old.get(&url).await.location.unwrap();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn repeated_failures_slow_down_one_account_from_one_address_only() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.throttle.free_attempts = 3;
        c.throttle.max_delay = 30;
    })
    .await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    // Open every login form first, so the posts follow each other within the delay.
    let plan = [
        ("192.0.2.10", "wrong", 401),
        ("192.0.2.10", "wrong", 401),
        ("192.0.2.10", "wrong", 401),
        // Now even the right password must wait, from that address...
        ("192.0.2.10", PASSWORD, 429),
        // ...but a classmate behind another address is not locked out.
        ("192.0.2.99", PASSWORD, 303),
    ];
    let mut forms = Vec::new();
    for (ip, _, _) in plan {
        let mut b = Browser::new();
        b.forwarded_for = Some(ip.into());
        let (tx, csrf, _) = b.open_login(&app.authorize_url("one", &[]).0).await;
        forms.push((b, tx, csrf));
    }
    for ((b, tx, csrf), (ip, pw, expected)) in forms.iter().zip(plan) {
        let form = [
            ("tx", tx.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "elev.anna"),
            ("password", pw),
        ];
        assert_eq!(
            b.post(&app.url("/login"), &form).await.status,
            expected,
            "{ip} {pw}"
        );
    }
}

#[tokio::test]
async fn the_login_page_speaks_swedish_first_and_english_on_request() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let b = Browser::new();
    let (url, _, _, _) = app.authorize_url("one", &[("login_hint", "elev.anna")]);
    let (tx, _, page) = b.open_login(&url).await;
    assert!(page.body.contains("<html lang=\"sv\">"));
    assert!(page.body.contains("Användarnamn"));
    assert!(
        page.body.contains("value=\"elev.anna\""),
        "login_hint prefills the username"
    );
    let en = b.get(&app.url(&format!("/login?tx={tx}&lang=en"))).await;
    assert!(en.body.contains("<html lang=\"en\">"));
    assert!(en.body.contains("Username"));
    assert!(en.body.contains("<label for=\"password\">Password</label>"));
    // The choice sticks: a failed login re-renders in English.
    let csrf = hidden(&en.body, "csrf");
    let r = b.post_login(&app, &tx, &csrf, "x", "y").await;
    assert!(r.body.contains("Wrong username or password"), "{}", r.body);
}

#[tokio::test]
async fn an_expired_or_unknown_login_transaction_is_a_clear_error() {
    let app = spawn_app().await;
    let b = Browser::new();
    let r = b.get(&app.url("/login?tx=does-not-exist")).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Inloggningen tog för lång tid"));
    assert!(
        r.body.contains("Felkod"),
        "the error page shows the request id"
    );
}

/// The login page names the relying party as the protocol front registered it: an OIDC
/// client by its name, a SAML SP by its entity ID when its metadata has no display name.
#[tokio::test]
async fn the_login_page_names_the_relying_party_the_login_is_for() {
    let app = spawn_app().await;
    app.add_client("lms", |c| c.name = Some("Lärplattformen <Vklass>".into()))
        .await;
    let (url, _, _, _) = app.authorize_url("lms", &[]);
    let (_, _, page) = Browser::new().open_login(&url).await;
    assert!(
        page.body
            .contains("<strong>Lärplattformen &#60;Vklass&#62;</strong>")
            || page
                .body
                .contains("<strong>Lärplattformen &lt;Vklass&gt;</strong>"),
        "the client's name, escaped: {}",
        page.body
    );

    let sp = crate::saml_sp::TestSp::new("https://sp.example.se");
    sp.register(&app, &[]);
    let req = sp.authn_request(&app, "_r1", "", "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    let b = Browser::new();
    let r = b.get(&url).await;
    let login = r.location.expect("a login first");
    let page = b.get(&login).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("<strong>{}</strong>", sp.entity_id)),
        "{}",
        page.body
    );
}

/// Posts one login form per browser, all at once; returns (status, Retry-After, ms taken).
async fn post_all_at_once(
    app: &TestApp,
    forms: Vec<(Browser, String, String, String, String)>,
) -> Vec<(u16, Option<String>, u128)> {
    let url = app.url("/login");
    let mut set = tokio::task::JoinSet::new();
    for (b, tx, csrf, user, pw) in forms {
        let url = url.clone();
        set.spawn(async move {
            let form = [
                ("tx", tx.as_str()),
                ("csrf", csrf.as_str()),
                ("username", user.as_str()),
                ("password", pw.as_str()),
            ];
            let started = std::time::Instant::now();
            let r = b.post(&url, &form).await;
            let retry = r
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status, retry, started.elapsed().as_millis())
        });
    }
    set.join_all().await
}

async fn open_forms(
    app: &TestApp,
    ip: &str,
    logins: &[(&str, &str)],
) -> Vec<(Browser, String, String, String, String)> {
    let mut forms = Vec::new();
    for (user, pw) in logins {
        let mut b = Browser::new();
        b.forwarded_for = Some(ip.into());
        let (tx, csrf, _) = b.open_login(&app.authorize_url("one", &[]).0).await;
        forms.push((b, tx, csrf, user.to_string(), pw.to_string()));
    }
    forms
}

#[tokio::test]
async fn parallel_guesses_at_one_account_reach_the_hasher_only_a_few_times() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let free = app.config.throttle.free_attempts;
    app.add_person("elev.anna", &["student"]).await;
    app.add_person("elev.bo", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let ip = "192.0.2.10";
    let forms = open_forms(&app, ip, &[("elev.anna", "wrong"); 50]).await;
    let hasher = app.state.authn.hasher();
    let before = hasher.hashes_computed();
    let answers = post_all_at_once(&app, forms).await;
    let hashed = hasher.hashes_computed() - before;
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    let wrong = answers.iter().filter(|a| a.0 == 401).count();
    assert_eq!(refused.len() + wrong, 50, "{answers:?}");
    // One attempt in flight per account, then the delay after `free` failures.
    assert!(
        hashed as usize == wrong && hashed <= free as u64 + 1,
        "{hashed} hashes"
    );
    assert!(
        refused.iter().all(|a| a.1.is_some()),
        "429 without Retry-After"
    );
    let slowest = refused.iter().map(|a| a.2).max().unwrap();
    eprintln!("{hashed} hashes for 50 parallel guesses; a refusal took at most {slowest} ms");

    // A classmate behind the same address is not held up by the guessing at anna.
    let forms = open_forms(&app, ip, &[("elev.bo", PASSWORD)]).await;
    assert_eq!(post_all_at_once(&app, forms).await[0].0, 303);

    // Anna herself, behind that address, gets in once the delay has passed.
    app.clock.advance(app.config.throttle.max_delay + 1);
    let forms = open_forms(&app, ip, &[("ELEV.ANNA", PASSWORD)]).await;
    assert_eq!(post_all_at_once(&app, forms).await[0].0, 303);
}

#[tokio::test]
async fn spraying_from_one_address_is_capped_but_a_school_logs_in_thirty_pupils_a_minute() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.throttle.address_attempts = 40;
        // Room for every guess in the queue: this test is about the address's limit.
        c.password.max_queued = 64;
    })
    .await;
    app.add_client("one", |_| {}).await;
    let pupils: Vec<String> = (0..30).map(|i| format!("elev.{i}")).collect();
    for p in &pupils {
        app.add_person(p, &["student"]).await;
    }
    let ip = "2001:db8:5:6::1";
    let logins: Vec<_> = pupils.iter().map(|p| (p.as_str(), PASSWORD)).collect();
    // One after the other within the minute (the clock does not move).
    for form in open_forms(&app, ip, &logins).await {
        let answer = &post_all_at_once(&app, vec![form]).await[0];
        assert_eq!(answer.0, 303, "{answer:?}");
    }
    // Spraying other names from the same /64 stops at the address's limit.
    let names: Vec<String> = (0..20).map(|i| format!("gissning.{i}")).collect();
    let logins: Vec<_> = names.iter().map(|n| (n.as_str(), "Sommar2026")).collect();
    let forms = open_forms(&app, "2001:db8:5:6::2", &logins).await;
    let answers = post_all_at_once(&app, forms).await;
    assert_eq!(
        answers.iter().filter(|a| a.0 == 401).count(),
        10,
        "{answers:?}"
    );
    assert!(answers.iter().filter(|a| a.0 == 429).all(|a| a.1.is_some()));
}

#[tokio::test]
async fn a_flood_of_logins_is_answered_503_when_the_hashing_queue_is_full() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.throttle.address_attempts = 10_000;
        // A slow hash, one thread and two places in the queue: a flood must overflow it.
        c.password.memory_kib = 32 * 1024;
        c.password.iterations = 2;
        c.password.max_concurrent = 1;
        c.password.max_queued = 2;
    })
    .await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let names: Vec<String> = (0..60).map(|i| format!("okand.{i}")).collect();
    let logins: Vec<_> = names.iter().map(|n| (n.as_str(), "gissning")).collect();
    let forms = open_forms(&app, "192.0.2.20", &logins).await;
    let hasher = app.state.authn.hasher();
    let before = hasher.hashes_computed();
    let answers = post_all_at_once(&app, forms).await;
    let hashed = hasher.hashes_computed() - before;
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    let wrong = answers.iter().filter(|a| a.0 == 401).count();
    assert_eq!(busy.len() + wrong, 60, "{answers:?}");
    assert!(!busy.is_empty(), "the queue never filled: {answers:?}");
    assert!(
        busy.iter().all(|a| a.1.is_some()),
        "503 without Retry-After"
    );
    // Only the logins that found room were hashed.
    assert_eq!(hashed as usize, wrong);
    let slowest = busy.iter().map(|a| a.2).max().unwrap();
    eprintln!(
        "{hashed} hashes, {} refused with 503 in at most {slowest} ms",
        busy.len()
    );

    let forms = open_forms(&app, "192.0.2.20", &[("elev.anna", PASSWORD)]).await;
    assert_eq!(post_all_at_once(&app, forms).await[0].0, 303);
}

#[tokio::test]
async fn a_password_over_a_kibibyte_is_refused_before_hashing() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let long = "x".repeat(1025);
    let forms = open_forms(&app, "192.0.2.30", &[("elev.anna", long.as_str())]).await;
    let before = app.state.authn.hasher().hashes_computed();
    assert_eq!(post_all_at_once(&app, forms).await[0].0, 400);
    assert_eq!(app.state.authn.hasher().hashes_computed(), before);
}
