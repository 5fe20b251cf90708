//! Who gets into the admin UI, for how long, and what the pages promise every browser.

use super::{admin_browser, csrf, log_in};
use crate::helpers::{PASSWORD, hidden, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_admin_logs_in_through_the_login_page_and_gets_pages_that_are_never_cached_or_framed() {
    let app = spawn_app().await;
    let browser = admin_browser(&app, "it-admin", &["admin"]).await;
    let r = browser.get(&app.url("/admin")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Test it-admin"),
        "the admin's name is shown"
    );
    assert!(
        r.body.contains("admin.login"),
        "the login is the latest event"
    );
    let h = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("cache-control"), "no-store");
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(h("content-security-policy").contains("default-src 'none'"));
    assert_eq!(h("x-frame-options"), "DENY");
    // The admin cookie is HttpOnly and SameSite.
    let set = browser.set_cookies.lock().unwrap().clone();
    let admin_cookie = set
        .iter()
        .find(|c| c.starts_with("portvakt_admin="))
        .unwrap();
    assert!(admin_cookie.contains("HttpOnly") && admin_cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn the_admin_cookie_is_host_bound_and_secure_under_tls() {
    let app = crate::helpers::spawn_tls_app().await;
    let browser = admin_browser(&app, "tls-admin", &["admin"]).await;
    let set = browser.set_cookies.lock().unwrap().clone();
    let c = set
        .iter()
        .find(|c| c.starts_with("__Host-portvakt_admin="))
        .expect("a __Host- admin cookie");
    assert!(c.contains("Secure") && c.contains("HttpOnly"), "{c}");
}

#[tokio::test]
async fn someone_without_an_admin_role_is_refused_after_logging_in() {
    let app = spawn_app().await;
    app.add_person("teacher1", &["teacher"]).await;
    let browser = app.browser();
    let r = log_in(&app, &browser, "teacher1").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("saknar behörighet"), "{}", r.body);
    // Still no way in: the next request asks for a login again.
    let r = browser.get(&app.url("/admin")).await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().contains("/admin/login"));
}

#[tokio::test]
async fn a_readonly_admin_gets_in_and_is_shown_as_readonly() {
    let app = spawn_app().await;
    let browser = admin_browser(&app, "reader", &["admin-readonly"]).await;
    let r = browser.get(&app.url("/admin")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Endast läsbehörighet"), "{}", r.body);
}

#[tokio::test]
async fn an_admin_session_ends_after_its_idle_timeout_and_the_sso_session_does_not_renew_it() {
    let app = spawn_app_with(|c| c.admin.idle_timeout = 600).await;
    let browser = admin_browser(&app, "idle-admin", &["admin"]).await;
    app.clock.advance(590);
    assert_eq!(browser.get(&app.url("/admin")).await.status, 200);
    // Used then, so 580 s later it still lives; 620 s later it does not. The movable clock
    // runs on with real time, so the margins leave room for a slow machine.
    app.clock.advance(580);
    assert_eq!(browser.get(&app.url("/admin")).await.status, 200);
    app.clock.advance(620);
    let r = browser.get(&app.url("/admin?lang=sv")).await;
    assert_eq!(r.status, 303);
    let next = r.location.unwrap();
    assert!(
        next.ends_with("/admin/login?next=%2Fadmin%3Flang%3Dsv"),
        "{next}"
    );
    // The SSO session (8 h idle) is still live: /admin/login lets the admin straight back
    // in, to the page they asked for, without a password.
    let r = browser.get(&next).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().ends_with("/admin?lang=sv"));
}

#[tokio::test]
async fn a_change_without_a_live_admin_session_is_refused_not_redirected() {
    let app = spawn_app().await;
    let browser = admin_browser(&app, "post-admin", &["admin"]).await;
    let page = browser.get(&app.url("/admin")).await.body;
    browser.cookies.lock().unwrap().remove("portvakt_admin");
    let r = browser
        .post(&app.url("/admin/logout"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn logout_needs_its_csrf_token_and_ends_the_admin_and_sso_sessions() {
    let app = spawn_app().await;
    let browser = admin_browser(&app, "out-admin", &["admin"]).await;
    let page = browser.get(&app.url("/admin")).await.body;
    let r = browser
        .post(&app.url("/admin/logout"), &[("csrf", "forged")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(browser.get(&app.url("/admin")).await.status, 200);
    let r = browser
        .post(&app.url("/admin/logout"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!browser.has_sso(), "the SSO cookie is cleared");
    // A token from the ended session is worth nothing in a new one.
    let r = super::log_in(&app, &browser, "out-admin").await;
    assert_eq!(r.status, 303);
    let r = browser
        .post(&app.url("/admin/logout"), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn taking_the_admin_role_away_ends_access_at_the_next_request() {
    let app = spawn_app().await;
    let browser = admin_browser(&app, "demoted", &["admin"]).await;
    assert_eq!(browser.get(&app.url("/admin")).await.status, 200);
    crate::upstream::sql(
        &app,
        "DELETE FROM person_roles WHERE person_id = (SELECT id FROM persons WHERE username = $1)",
        &["demoted"],
    )
    .await;
    let r = browser.get(&app.url("/admin")).await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn the_admin_policy_decides_the_methods_a_password_is_refused_when_only_bankid_is_allowed() {
    let app = spawn_app_with(|c| {
        crate::bankid::with_bankid(c);
        c.admin.methods = vec!["bankid".into()];
    })
    .await;
    app.add_person("strict-admin", &["admin"]).await;
    let browser = app.browser();
    let r = browser.get(&app.url("/admin/login")).await;
    let login = r.location.unwrap();
    let page = browser.get(&login).await;
    assert!(
        !page.body.contains("name=\"password\""),
        "no password form is offered"
    );
    let r = browser
        .post_login(
            &app,
            &hidden(&page.body, "tx"),
            &hidden(&page.body, "csrf"),
            "strict-admin",
            PASSWORD,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn next_never_leaves_the_admin_ui() {
    let app = spawn_app().await;
    let browser = admin_browser(&app, "next-admin", &["admin"]).await;
    for bad in [
        "//evil.example/",
        "https://evil.example/admin",
        "/oidc/logout",
    ] {
        let q: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let r = browser
            .get(&app.url(&format!("/admin/login?next={q}")))
            .await;
        assert_eq!(r.status, 303);
        assert_eq!(r.location.unwrap(), app.url("/admin"), "{bad}");
    }
}

#[tokio::test]
async fn an_admin_min_level_no_allowed_method_reaches_leaves_no_way_in() {
    let app = spawn_app_with(|c| {
        c.admin.methods = vec!["password".into()];
        c.admin.min_level = Some("http://id.skolfederation.se/loa/2fa".into());
    })
    .await;
    app.add_person("lvl-admin", &["admin"]).await;
    let browser = app.browser();
    let r = browser.get(&app.url("/admin/login")).await;
    let page = browser.get(&r.location.unwrap()).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(!page.body.contains("name=\"password\""));
}

/// Posts a form the UI does not offer from the current page (a form built in the page and
/// submitted, as a forged or tampered page would; the admin CSP forbids fetch()), and
/// returns the source of the page the browser lands on.
async fn post_from_page(
    browser: &crate::webdriver::Session,
    path: &str,
    fields: &[(&str, &str)],
) -> String {
    let fields: Vec<serde_json::Value> = fields
        .iter()
        .map(|(k, v)| serde_json::json!([k, v]))
        .collect();
    // The form stays in the old document: once it is gone, the answer has loaded.
    let script = "const f = document.createElement('form');\n\
        f.id = 'pv-forged'; f.method = 'post'; f.action = arguments[0];\n\
        for (const [k, v] of arguments[1]) {\n\
          const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;\n\
          f.appendChild(i);\n\
        }\n\
        document.body.appendChild(f); f.submit();";
    browser
        .execute(script, vec![path.into(), serde_json::Value::Array(fields)])
        .await;
    for _ in 0..150 {
        let old = browser
            .execute("return !!document.getElementById('pv-forged');", vec![])
            .await;
        if old == serde_json::Value::Bool(false) {
            return browser.source().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the POST to {path} did not answer");
}

#[tokio::test]
async fn in_chromium_a_non_admin_and_a_readonly_admin_are_refused_and_a_post_without_csrf_too() {
    use crate::admin::browser::admin_in_chromium;
    let app = spawn_app().await;
    app.add_client("lms", |s| s.name = Some("Lärplattformen".into()))
        .await;

    // A teacher logs in at /admin and gets the refusal page, which is accessible too.
    app.add_person("chrome-teacher", &["teacher"]).await;
    let driver = crate::webdriver::Driver::start().await;
    let teacher = driver.session().await;
    teacher.goto(&app.url("/admin?lang=sv")).await;
    teacher
        .wait_for_url("the login page", |u| u.contains("/login?tx="))
        .await;
    for (id, text) in [("#username", "chrome-teacher"), ("#password", PASSWORD)] {
        let el = teacher.find(id).await;
        teacher.send_keys(&el, text).await;
    }
    let submit = teacher.find("form button[type=submit]").await;
    teacher.click(&submit).await;
    teacher
        .wait_for_url("the refusal", |u| u.contains("/admin/resume"))
        .await;
    assert!(teacher.source().await.contains("saknar behörighet"));
    teacher.assert_accessible("the refusal page").await;
    teacher.quit().await;

    // A read-only admin sees the client, but its form is not offered, and a change posted
    // from the page anyway is refused.
    let (_d, reader) = admin_in_chromium(&app, "chrome-reader", &["admin-readonly"]).await;
    reader
        .goto(&app.url("/admin/services/oidc?id=lms&lang=sv"))
        .await;
    let page = reader.source().await;
    assert!(page.contains("Lärplattformen"));
    reader
        .assert_accessible("a client's page for a read-only admin")
        .await;
    let csrf = super::csrf(&page);
    let answer = post_from_page(
        &reader,
        "/admin/services/oidc/disable",
        &[("csrf", &csrf), ("id", "lms")],
    )
    .await;
    assert!(answer.contains("bara läsbehörighet"), "{answer}");

    // An admin's POST without its CSRF token is refused; with it, the same change works.
    let (_d2, admin) = admin_in_chromium(&app, "chrome-writer", &["admin"]).await;
    admin
        .goto(&app.url("/admin/services/oidc?id=lms&lang=sv"))
        .await;
    let csrf = super::csrf(&admin.source().await);
    let answer = post_from_page(&admin, "/admin/services/oidc/disable", &[("id", "lms")]).await;
    assert!(answer.contains("Formuläret har gått ut"), "{answer}");
    let client = portvakt::storage::clients::get(&app.db, "lms")
        .await
        .unwrap();
    assert!(!client.unwrap().disabled, "nothing changed");
    admin
        .goto(&app.url("/admin/services/oidc?id=lms&lang=sv"))
        .await;
    let answer = post_from_page(
        &admin,
        "/admin/services/oidc/disable",
        &[("csrf", &csrf), ("id", "lms")],
    )
    .await;
    assert!(!answer.contains("Formuläret har gått ut"), "{answer}");
    let client = portvakt::storage::clients::get(&app.db, "lms")
        .await
        .unwrap();
    assert!(client.unwrap().disabled);
}
