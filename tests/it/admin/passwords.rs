//! Passwords in the admin UI: one person's new password shown once, and a class's new
//! passwords on a print sheet; each logs in, the old ones do not, and the audit events hold
//! no password.

use super::{admin_browser, csrf};
use crate::helpers::{Browser, PASSWORD, Resp, TestApp, spawn_app};
use crate::upstream::sql;
use portvakt::storage;

/// Whether `username` logs in with `password` at the OIDC client `rp`, in a fresh browser.
async fn logs_in(app: &TestApp, username: &str, password: &str) -> bool {
    let b = app.browser();
    let (url, ..) = app.authorize_url("rp", &[]);
    let (tx, csrf, _) = b.open_login(&url).await;
    let r = b.post_login(app, &tx, &csrf, username, password).await;
    if r.status != 303 {
        return false;
    }
    // All the way to the client's callback with a code.
    let resume = r.location.unwrap();
    let r = b.get(&resume).await;
    r.status == 303
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with(crate::helpers::RP_REDIRECT) && l.contains("code="))
}

/// The text of the element with `marker` (e.g. `id="new-password">`) up to the next tag.
fn text_after<'a>(html: &'a str, marker: &str) -> Option<&'a str> {
    let start = html.find(marker)? + marker.len();
    html[start..].split('<').next().map(str::trim)
}

/// The (username, password) of every card on a print sheet, in order.
fn cards(sheet: &str) -> Vec<(String, String)> {
    sheet
        .split("<li class=\"card\">")
        .skip(1)
        .map(|card| {
            (
                text_after(card, "<dd class=\"username\">")
                    .unwrap()
                    .to_string(),
                text_after(card, "<dd class=\"password\">")
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

async fn hash(app: &TestApp, person_id: &str) -> Option<String> {
    storage::persons::password_hash(&app.db, person_id)
        .await
        .unwrap()
}

async fn audit(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    storage::records::recent_audit(&app.db, 200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.1 == kind)
        .map(|(_, _, actor, detail)| (actor, detail))
        .collect()
}

async fn passwords_page(app: &TestApp, b: &Browser) -> Resp {
    let page = b.get(&app.url("/admin/passwords")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

#[tokio::test]
async fn a_new_password_is_shown_once_logs_in_and_ends_the_old_one_and_its_sessions() {
    let app = spawn_app().await;
    app.add_client("rp", |_| {}).await;
    let pupil = app.add_person("elev.nils", &["student@U1"]).await;
    // Nils is logged in somewhere: the new password must end that session.
    let (nils_browser, _) = app.login_tokens("rp", "elev.nils").await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = passwords_page(&app, &b).await;
    assert!(
        page.body.contains("Nytt lösenord för en person"),
        "{}",
        page.body
    );

    let r = b
        .post(
            &app.url("/admin/passwords/person"),
            &[("csrf", &csrf(&page.body)), ("username", "Elev.Nils")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let password = text_after(&r.body, "id=\"new-password\">")
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 11, "{password}");
    assert!(logs_in(&app, "elev.nils", &password).await);
    assert!(!logs_in(&app, "elev.nils", PASSWORD).await);

    // Nils's earlier session is over: the next authorize asks for a login.
    let (url, ..) = app.authorize_url("rp", &[]);
    let again = nils_browser.get(&url).await;
    assert_eq!(again.status, 303);
    assert!(
        again.location.as_deref().unwrap().contains("/login?tx="),
        "{:?}",
        again.location
    );

    let events = audit(&app, "person.password_reset").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (actor, detail) = &events[0];
    assert_eq!(actor, "admin:adm");
    assert!(detail.contains(&pupil.id), "{detail}");
    assert!(!detail.contains(&password), "{detail}");
    assert!(!detail.contains("argon2"), "{detail}");

    // Nothing shows it again: the page of passwords has no trace of it.
    let page = passwords_page(&app, &b).await;
    assert!(!page.body.contains(&password));
}

#[tokio::test]
async fn the_person_form_is_filled_in_from_the_person_page_and_refuses_unknown_and_protected_people()
 {
    let app = spawn_app().await;
    let pupil = app.add_person("elev.ada", &["student@U1"]).await;
    let hidden = app.add_person("elev.skyddad", &["student@U1"]).await;
    sql(
        &app,
        "UPDATE persons SET protected_identity = 1 WHERE id = $1",
        &[&hidden.id],
    )
    .await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = b
        .get(&app.url(&format!("/admin/passwords?person={}", pupil.id)))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("value=\"elev.ada\""), "{}", page.body);
    // A protected identity is not filled in for an admin who may not see it.
    let page = b
        .get(&app.url(&format!("/admin/passwords?person={}", hidden.id)))
        .await;
    assert!(!page.body.contains("elev.skyddad"), "{}", page.body);

    let before = hash(&app, &hidden.id).await;
    for name in ["elev.skyddad", "nobody.here", ""] {
        let r = b
            .post(
                &app.url("/admin/passwords/person"),
                &[("csrf", &csrf(&page.body)), ("username", name)],
            )
            .await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert!(r.body.contains("aria-invalid=\"true\""), "{}", r.body);
        assert!(!r.body.contains("id=\"new-password\""));
    }
    assert_eq!(hash(&app, &hidden.id).await, before);

    // With admin-protected, the protected identity may be given a new password.
    let b = admin_browser(&app, "adm-skydd", &["admin", "admin-protected"]).await;
    let page = passwords_page(&app, &b).await;
    let r = b
        .post(
            &app.url("/admin/passwords/person"),
            &[("csrf", &csrf(&page.body)), ("username", "elev.skyddad")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(hash(&app, &hidden.id).await, before);
}

#[tokio::test]
async fn readonly_admins_and_forged_tokens_change_no_password() {
    let app = spawn_app().await;
    let pupil = app.add_person("elev.olle", &["student@U1"]).await;
    sql(
        &app,
        "INSERT INTO school_groups (id, school_unit_code, name) VALUES ('g1', 'U1', '3A')",
        &[],
    )
    .await;
    sql(
        &app,
        "INSERT INTO group_members (group_id, person_id) VALUES ('g1', $1)",
        &[&pupil.id],
    )
    .await;
    let before = hash(&app, &pupil.id).await;
    let ro = admin_browser(&app, "las", &["admin-readonly"]).await;
    let page = passwords_page(&app, &ro).await;
    let token = csrf(&page.body);
    let r = ro
        .post(
            &app.url("/admin/passwords/person"),
            &[("csrf", &token), ("username", "elev.olle")],
        )
        .await;
    assert_eq!(r.status, 403);
    for confirm in ["", "yes"] {
        let r = ro
            .post(
                &app.url("/admin/passwords/generate"),
                &[
                    ("csrf", &token),
                    ("unit", "U1"),
                    ("class", "g1"),
                    ("confirm", confirm),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
    }

    let b = admin_browser(&app, "adm", &["admin"]).await;
    let r = b
        .post(
            &app.url("/admin/passwords/person"),
            &[("csrf", "forged"), ("username", "elev.olle")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post(
            &app.url("/admin/passwords/person"),
            &[("username", "elev.olle")],
        )
        .await;
    assert_eq!(r.status, 403);
    // Another admin session's token is no token for this one.
    let r = b
        .post(
            &app.url("/admin/passwords/generate"),
            &[
                ("csrf", &token),
                ("unit", "U1"),
                ("class", "g1"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post(
            &app.url("/admin/passwords/generate"),
            &[("unit", "U1"), ("class", "g1"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 403);

    assert_eq!(hash(&app, &pupil.id).await, before);
    assert!(audit(&app, "person.password_reset").await.is_empty());
    assert!(audit(&app, "person.password_generated").await.is_empty());
}

/// A school unit U1 with class 3A (g1): Ada and Bo are pupils by a local role, Cecilia by an
/// enrolment from the register, all three members of 3A; the teacher is a member too; Dan
/// is a pupil of U1 outside 3A; Eva is a protected pupil of 3A. Returns the people.
async fn class_3a(app: &TestApp) -> Vec<portvakt::directory::Person> {
    let mut people = Vec::new();
    for (username, roles) in [
        ("elev.bo", &["student@U1"][..]),
        ("elev.ada", &["student@U1"][..]),
        ("elev.cecilia", &[][..]),
        ("larare.lisa", &["teacher@U1"][..]),
        ("elev.dan", &["student@U1"][..]),
        ("elev.eva", &["student@U1"][..]),
    ] {
        people.push(app.add_person(username, roles).await);
    }
    // Family names out of username order: the sheet sorts by family name.
    for (id, family) in [
        (&people[0].id, "Åberg"),
        (&people[1].id, "Berg"),
        (&people[2].id, "Andersson"),
    ] {
        sql(
            app,
            "UPDATE persons SET family_name = $1 WHERE id = $2",
            &[family, id],
        )
        .await;
    }
    sql(
        app,
        "INSERT INTO enrolments (person_id, seq, school_unit_code) VALUES ($1, 0, 'U1')",
        &[&people[2].id],
    )
    .await;
    sql(
        app,
        "UPDATE persons SET protected_identity = 1 WHERE id = $1",
        &[&people[5].id],
    )
    .await;
    sql(
        app,
        "UPDATE school_units SET name = 'Solbackens skola' WHERE code = 'U1'",
        &[],
    )
    .await;
    sql(
        app,
        "INSERT INTO school_groups (id, school_unit_code, name) VALUES ('g1', 'U1', '3A')",
        &[],
    )
    .await;
    sql(
        app,
        "INSERT INTO school_groups (id, school_unit_code, name) VALUES ('g2', 'U1', '4B')",
        &[],
    )
    .await;
    for (i, p) in people.iter().enumerate() {
        let group = if i == 4 { "g2" } else { "g1" };
        sql(
            app,
            "INSERT INTO group_members (group_id, person_id) VALUES ($1, $2)",
            &[group, &p.id],
        )
        .await;
    }
    people
}

#[tokio::test]
async fn a_class_gets_new_passwords_on_a_sheet_after_a_confirmation_that_changes_nothing() {
    let app = spawn_app().await;
    app.add_client("rp", |_| {}).await;
    let people = class_3a(&app).await;
    let hashes_before = {
        let mut v = Vec::new();
        for p in &people {
            v.push(hash(&app, &p.id).await);
        }
        v
    };
    let b = admin_browser(&app, "adm", &["admin"]).await;

    // Step 1: the unit's classes.
    let page = b.get(&app.url("/admin/passwords?unit=U1")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<option value=\"g1\">3A</option>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("4B"));
    let token = csrf(&page.body);

    // Step 2: the confirmation, which changes nothing.
    let form = [("csrf", token.as_str()), ("unit", "U1"), ("class", "g1")];
    let confirm = b.post(&app.url("/admin/passwords/generate"), &form).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert_eq!(
        text_after(&confirm.body, "id=\"pupil-count\">"),
        Some("3"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    for (p, before) in people.iter().zip(&hashes_before) {
        assert_eq!(&hash(&app, &p.id).await, before, "{}", p.username);
    }
    assert!(audit(&app, "person.password_generated").await.is_empty());

    // Step 3: the sheet.
    let form = [
        ("csrf", token.as_str()),
        ("unit", "U1"),
        ("class", "g1"),
        ("confirm", "yes"),
    ];
    let sheet = b.post(&app.url("/admin/passwords/generate"), &form).await;
    assert_eq!(sheet.status, 200, "{}", sheet.body);
    assert!(
        sheet.body.contains("Solbackens skola, 3A"),
        "{}",
        sheet.body
    );
    assert!(
        sheet.body.contains("data-print=\"Skriv ut\""),
        "{}",
        sheet.body
    );
    let cards = cards(&sheet.body);
    let names: Vec<&str> = cards.iter().map(|c| c.0.as_str()).collect();
    // Andersson, Berg, Åberg.
    assert_eq!(
        names,
        ["elev.cecilia", "elev.ada", "elev.bo"],
        "{}",
        sheet.body
    );
    for (username, password) in &cards {
        assert_eq!(password.len(), 11);
        assert!(logs_in(&app, username, password).await, "{username}");
        assert!(!logs_in(&app, username, PASSWORD).await, "{username}");
    }
    // The teacher, the pupil of another class and the protected pupil keep theirs.
    for i in 3..6 {
        assert_eq!(
            hash(&app, &people[i].id).await,
            hashes_before[i],
            "{}",
            people[i].username
        );
    }
    assert!(logs_in(&app, "larare.lisa", PASSWORD).await);

    let events = audit(&app, "person.password_generated").await;
    assert_eq!(events.len(), 3, "{events:?}");
    for p in &people[..3] {
        let (actor, detail) = events
            .iter()
            .find(|(_, d)| d.contains(&p.id))
            .unwrap_or_else(|| panic!("no event for {}", p.username));
        assert_eq!(actor, "admin:adm");
        assert!(detail.contains("\"class\":\"g1\""), "{detail}");
        for (_, password) in &cards {
            assert!(!detail.contains(password.as_str()), "{detail}");
        }
    }

    // The sheet is gone: nothing on a GET shows a password again.
    let page = b.get(&app.url("/admin/passwords?unit=U1")).await;
    for (_, password) in &cards {
        assert!(!page.body.contains(password.as_str()));
    }
}

#[tokio::test]
async fn a_whole_unit_includes_every_class_and_protected_pupils_only_for_admin_protected() {
    let app = spawn_app().await;
    let people = class_3a(&app).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = passwords_page(&app, &b).await;
    let form = [
        ("csrf", csrf(&page.body)),
        ("unit", "U1".into()),
        ("class", String::new()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let confirm = b.post(&app.url("/admin/passwords/generate"), &form).await;
    assert_eq!(text_after(&confirm.body, "id=\"pupil-count\">"), Some("4"));

    let b = admin_browser(&app, "adm-skydd", &["admin", "admin-protected"]).await;
    let page = passwords_page(&app, &b).await;
    let token = csrf(&page.body);
    let confirm = b
        .post(
            &app.url("/admin/passwords/generate"),
            &[("csrf", &token), ("unit", "U1"), ("class", "")],
        )
        .await;
    assert_eq!(text_after(&confirm.body, "id=\"pupil-count\">"), Some("5"));
    let sheet = b
        .post(
            &app.url("/admin/passwords/generate"),
            &[
                ("csrf", &token),
                ("unit", "U1"),
                ("class", ""),
                ("confirm", "yes"),
            ],
        )
        .await;
    let usernames: Vec<String> = cards(&sheet.body).into_iter().map(|c| c.0).collect();
    assert_eq!(usernames.len(), 5, "{}", sheet.body);
    assert!(usernames.contains(&people[5].username));
    assert!(!usernames.contains(&people[3].username));

    // A class of another unit or an unknown unit is refused with the form again.
    for (unit, class) in [("U1", "nope"), ("U9", "")] {
        let r = b
            .post(
                &app.url("/admin/passwords/generate"),
                &[("csrf", &token), ("unit", unit), ("class", class)],
            )
            .await;
        assert_eq!(r.status, 400, "{unit} {class}");
        assert!(r.body.contains("id=\"batch-error\""));
    }
}

#[tokio::test]
async fn resetting_a_class_in_chromium_prints_a_sheet_whose_password_logs_in() {
    use super::browser::{admin_in_chromium, screenshot_path};
    let app = spawn_app().await;
    let rp_cb = app.url("/test-rp/cb");
    app.add_client("chrome-rp", |s| s.redirect_uris = vec![rp_cb.clone()])
        .await;
    class_3a(&app).await;
    let (_driver, browser) = admin_in_chromium(&app, "chrome-adm", &["admin"]).await;
    browser.goto(&app.url("/admin/passwords?lang=sv")).await;
    browser.assert_accessible("the passwords page").await;
    browser
        .screenshot(&screenshot_path("admin-passwords"))
        .await;

    let unit = browser.find("#unit option[value=U1]").await;
    browser.click(&unit).await;
    let show = browser.find("form[method=get] button[type=submit]").await;
    browser.click(&show).await;
    browser
        .wait_for_url("the unit's classes", |u| u.contains("unit=U1"))
        .await;
    browser
        .assert_accessible("the passwords page with a unit's classes")
        .await;
    let class = browser.find("#class option[value=g1]").await;
    browser.click(&class).await;
    let next = browser
        .find("form[action='/admin/passwords/generate'] button[type=submit]")
        .await;
    browser.click(&next).await;
    browser
        .wait_for_url("the confirmation", |u| {
            u.ends_with("/admin/passwords/generate")
        })
        .await;
    let source = browser.source().await;
    assert!(source.contains("Bekräfta nya lösenord"), "{source}");
    browser.assert_accessible("the confirmation").await;
    // The confirmation's own button; admin.js adds no dialog to it.
    let confirm = browser.find("button.danger").await;
    browser.click(&confirm).await;
    let mut sheet = String::new();
    for _ in 0..100 {
        sheet = browser.source().await;
        if sheet.contains("class=\"card\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let cards = cards(&sheet);
    assert_eq!(cards.len(), 3, "{sheet}");
    // admin.js turned the placeholder into a print button.
    assert!(sheet.contains(">Skriv ut</button>"), "{sheet}");
    browser.assert_accessible("the password sheet").await;
    browser
        .screenshot(&screenshot_path("admin-password-sheet"))
        .await;

    // The pupil logs in at an OIDC client in a browser of their own.
    let (username, password) = &cards[0];
    let pupil_driver = crate::webdriver::Driver::start().await;
    let pupil = pupil_driver.session().await;
    let (url, ..) = app.authorize_url("chrome-rp", &[]);
    // The client's callback is on the test app (a 404 there, but its URL carries the code).
    let mut url = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" {
                rp_cb.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let url = url.to_string();
    pupil.goto(&url).await;
    pupil
        .wait_for_url("the login page", |u| u.contains("/login?tx="))
        .await;
    let user = pupil.find("#username").await;
    pupil.send_keys(&user, username).await;
    let pw = pupil.find("#password").await;
    pupil.send_keys(&pw, password).await;
    let submit = pupil.find("form button[type=submit]").await;
    pupil.click(&submit).await;
    let cb = pupil
        .wait_for_url("the client's callback", |u| u.starts_with(&rp_cb))
        .await;
    assert!(cb.contains("code="), "{cb}");
}
