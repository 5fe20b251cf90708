//! The admin web UI, driven over HTTP like a browser: access (this file), and one file per
//! area. The Chromium tests of the admin UI are in `browser.rs`.

mod access;
pub mod browser;
mod local;
mod passwords;
mod people;
mod policy;
mod services_oidc;
mod services_saml;

use crate::helpers::{Browser, PASSWORD, Resp, TestApp, hidden};

/// Logs `username` in to the admin UI from scratch: /admin → /admin/login → the login page
/// → password → /admin/resume. Returns the resume's answer (303 to /admin when let in).
pub async fn log_in(app: &TestApp, browser: &Browser, username: &str) -> Resp {
    let r = browser.get(&app.url("/admin")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to_admin_login = r.location.unwrap();
    assert!(
        to_admin_login.contains("/admin/login?next="),
        "{to_admin_login}"
    );
    let r = browser.get(&to_admin_login).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let login = r.location.unwrap();
    assert!(login.contains("/login?tx="), "{login}");
    let page = browser.get(&login).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = browser
        .post_login(
            app,
            &hidden(&page.body, "tx"),
            &hidden(&page.body, "csrf"),
            username,
            PASSWORD,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let resume = r.location.unwrap();
    assert!(resume.contains("/admin/resume?tx="), "{resume}");
    browser.get(&resume).await
}

/// A browser logged in to the admin UI as a new person with `roles`.
pub async fn admin_browser(app: &TestApp, username: &str, roles: &[&str]) -> Browser {
    app.add_person(username, roles).await;
    let browser = app.browser();
    let r = log_in(app, &browser, username).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.as_deref().unwrap().ends_with("/admin"));
    browser
}

/// The CSRF token of the admin session, read off a page's logout form.
pub fn csrf(page: &str) -> String {
    hidden(page, "csrf")
}
