//! The admin UI in headless Chromium: the flows an administrator clicks through, every page
//! checked with axe-core (WCAG 2.1 AA), and the screenshots in docs/screenshots/.

use crate::helpers::{PASSWORD, TestApp, spawn_app};
use crate::webdriver::{Driver, Session};

/// Where the browser tests leave the screenshots the README links to.
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/screenshots")
        .join(format!("{name}.png"))
}

/// A Chromium window logged in to the admin UI as a new person with `roles`, on /admin.
pub async fn admin_in_chromium(app: &TestApp, username: &str, roles: &[&str]) -> (Driver, Session) {
    app.add_person(username, roles).await;
    let driver = Driver::start().await;
    let browser = driver.session().await;
    browser.window_size(1280, 900).await;
    browser.goto(&app.url("/admin")).await;
    browser
        .wait_for_url("the login page", |u| u.contains("/login?tx="))
        .await;
    browser
        .assert_accessible("the login page of an admin login")
        .await;
    let user = browser.find("#username").await;
    browser.send_keys(&user, username).await;
    let password = browser.find("#password").await;
    browser.send_keys(&password, PASSWORD).await;
    let submit = browser.find("form button[type=submit]").await;
    browser.click(&submit).await;
    browser
        .wait_for_url("the admin start page", |u| u.ends_with("/admin"))
        .await;
    (driver, browser)
}

#[tokio::test]
async fn the_admin_start_page_in_chromium_is_accessible_in_both_languages_and_on_a_phone() {
    let app = spawn_app().await;
    let (_driver, browser) = admin_in_chromium(&app, "chrome-admin", &["admin"]).await;
    // Swedish first, whatever language Chromium asks for.
    browser.goto(&app.url("/admin?lang=sv")).await;
    assert!(browser.source().await.contains("Översikt"));
    browser.assert_accessible("the admin start page").await;
    browser.screenshot(&screenshot_path("admin-home")).await;
    let switch = browser.find("a.lang").await;
    browser.click(&switch).await;
    browser
        .wait_for_url("the English page", |u| u.contains("lang=en"))
        .await;
    assert!(browser.source().await.contains("Overview"));
    browser
        .assert_accessible("the admin start page in English")
        .await;
    browser.window_size(390, 844).await;
    browser
        .assert_accessible("the admin start page on a phone")
        .await;
}
