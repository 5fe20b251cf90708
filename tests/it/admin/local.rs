//! Local accounts and local roles in the admin UI (what `user add` does on the command line).

use super::{admin_browser, csrf, log_in};
use crate::helpers::spawn_app;
use portvakt::storage;

async fn roles_of(app: &crate::helpers::TestApp, username: &str) -> Vec<String> {
    let p = storage::persons::by_login_name(&app.db, username)
        .await
        .unwrap()
        .unwrap();
    storage::persons::roles(&app.db, &p.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect()
}

#[tokio::test]
async fn an_admin_adds_a_local_account_with_roles_and_the_audit_event_holds_no_civic_number() {
    let app = spawn_app().await;
    storage::persons::upsert_school_unit(&app.db, "12345678", "Björkskolan", "local")
        .await
        .unwrap();
    let b = admin_browser(&app, "adder", &["admin"]).await;
    let page = b.get(&app.url("/admin/people/new")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Björkskolan"));
    let token = csrf(&page.body);
    let r = b
        .post(
            &app.url("/admin/people/new"),
            &[
                ("csrf", &token),
                ("username", "Vikarie.Anna"),
                ("given_name", "Anna"),
                ("family_name", "Ångström"),
                ("email", "anna@skola.example"),
                ("civic_no", "19800302-1238"),
                ("role", "teacher"),
                ("role", "admin-readonly"),
                ("unit", "12345678"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("/admin/person?id="));
    let mut roles = roles_of(&app, "vikarie.anna").await;
    roles.sort();
    assert_eq!(roles, ["admin-readonly", "teacher@12345678"]);
    let events = storage::records::recent_audit(&app.db, 5).await.unwrap();
    let (_, kind, actor, detail) = &events[0];
    assert_eq!(
        (kind.as_str(), actor.as_str()),
        ("person.added", "admin:adder")
    );
    assert!(detail.contains("vikarie.anna") && detail.contains("teacher@12345678"));
    assert!(
        !detail.contains("1238") && !detail.contains("198003"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_bad_or_taken_username_is_shown_on_the_form_and_nothing_is_added() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adder2", &["admin"]).await;
    let token = csrf(&b.get(&app.url("/admin/people/new")).await.body);
    let form = |u: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("username", u.to_string()),
            ("given_name", "A".to_string()),
            ("family_name", "B".to_string()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let b = &b;
        let app = &app;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post(&app.url("/admin/people/new"), &f).await
        }
    };
    let r = post(form("has space")).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("Användarnamnet får bara innehålla"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"has space\""),
        "what was typed is kept"
    );
    let r = post(form("adder2")).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("Det användarnamnet finns redan"),
        "{}",
        r.body
    );
    let r = post(vec![
        ("csrf", token.clone()),
        ("username", "civic".into()),
        ("given_name", "A".into()),
        ("family_name", "B".into()),
        ("civic_no", "19800302-1239".into()),
    ])
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("kontrollsiffra"), "{}", r.body);
    assert!(
        storage::persons::by_login_name(&app.db, "civic")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn granting_admin_readonly_lets_a_teacher_in_and_an_admin_cannot_drop_their_own_admin_role() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "granter", &["admin"]).await;
    let teacher = app.add_person("teacher1", &["teacher"]).await;
    let url = app.url(&format!("/admin/person/roles?id={}", teacher.id));
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = b
        .post(
            &url,
            &[
                ("csrf", &csrf(&page.body)),
                ("role", "teacher"),
                ("role", "admin-readonly"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut roles = roles_of(&app, "teacher1").await;
    roles.sort();
    assert_eq!(roles, ["admin-readonly", "teacher"]);
    let t = app.browser();
    let r = log_in(&app, &t, "teacher1").await;
    assert_eq!(r.status, 303, "the teacher now gets in: {}", r.body);

    let me = storage::persons::by_login_name(&app.db, "granter")
        .await
        .unwrap()
        .unwrap();
    let own = app.url(&format!("/admin/person/roles?id={}", me.id));
    let page = b.get(&own).await;
    let r = b
        .post(&own, &[("csrf", &csrf(&page.body)), ("role", "teacher")])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("din egen administratörsroll"), "{}", r.body);
    assert_eq!(roles_of(&app, "granter").await, ["admin"]);
}

#[tokio::test]
async fn readonly_and_forged_tokens_change_no_roles() {
    let app = spawn_app().await;
    let admin = admin_browser(&app, "real-admin", &["admin"]).await;
    let reader = admin_browser(&app, "reader2", &["admin-readonly"]).await;
    let target = app.add_person("target", &["teacher"]).await;
    let url = app.url(&format!("/admin/person/roles?id={}", target.id));
    let page = reader.get(&url).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("name=\"role\""),
        "no form for read-only"
    );
    let r = reader
        .post(&url, &[("csrf", &csrf(&page.body)), ("role", "admin")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = admin
        .post(&url, &[("csrf", "forged"), ("role", "admin")])
        .await;
    assert_eq!(r.status, 403);
    let r = reader
        .post(
            &app.url("/admin/people/new"),
            &[
                ("csrf", &csrf(&page.body)),
                ("username", "x"),
                ("given_name", "X"),
                ("family_name", "Y"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(roles_of(&app, "target").await, ["teacher"]);
    assert!(
        storage::persons::by_login_name(&app.db, "x")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn in_chromium_an_admin_adds_a_local_account_and_gives_it_a_role() {
    let app = spawn_app().await;
    let (_driver, browser) =
        super::browser::admin_in_chromium(&app, "chrome-local", &["admin"]).await;
    browser.goto(&app.url("/admin/people/new?lang=sv")).await;
    browser
        .assert_accessible("the new local account form")
        .await;
    // A refused form keeps its accessibility: the error is announced and tied to the field.
    let submit = browser.find("main form button[type=submit]").await;
    browser.click(&submit).await;
    browser
        .wait_for_url("the form again", |u| u.ends_with("/admin/people/new"))
        .await;
    assert!(
        browser
            .source()
            .await
            .contains("Användarnamnet får bara innehålla")
    );
    browser
        .assert_accessible("the new local account form with an error")
        .await;
    for (id, text) in [
        ("#username", "it.nils"),
        ("#given_name", "Nils"),
        ("#family_name", "Öst"),
    ] {
        let el = browser.find(id).await;
        browser.send_keys(&el, text).await;
    }
    let teacher = browser.find("input[name=role][value=teacher]").await;
    browser.click(&teacher).await;
    let submit = browser.find("main form button[type=submit]").await;
    browser.click(&submit).await;
    browser
        .wait_for_url("the new person's page", |u| u.contains("/admin/person?id="))
        .await;
    assert!(browser.source().await.contains("Nils Öst"));
    let roles = browser.find("a[href^='/admin/person/roles']").await;
    browser.click(&roles).await;
    browser
        .wait_for_url("the roles page", |u| u.contains("/admin/person/roles"))
        .await;
    browser.assert_accessible("the local roles page").await;
    let readonly = browser.find("input[name=role][value=admin-readonly]").await;
    browser.click(&readonly).await;
    let save = browser.find("main form button[type=submit]").await;
    browser.click(&save).await;
    browser
        .wait_for_url("the saved roles", |u| u.contains("saved=1"))
        .await;
    let mut roles = roles_of(&app, "it.nils").await;
    roles.sort();
    assert_eq!(roles, ["admin-readonly", "teacher"]);
}

#[tokio::test]
async fn the_language_switch_of_a_posts_answer_goes_to_its_section_not_to_the_post() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "switcher", &["admin"]).await;
    let page = b.get(&app.url("/admin/people/new?lang=sv")).await;
    assert!(page.body.contains("href=\"/admin/people/new?lang=en\""));
    let r = b
        .post(
            &app.url("/admin/people/new"),
            &[("csrf", &csrf(&page.body)), ("username", "")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("href=\"/admin/people?lang=en\""),
        "{}",
        r.body
    );
}
