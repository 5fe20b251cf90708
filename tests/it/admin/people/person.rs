//! A person's page: roles, groups, guardianships, links, sessions and releases; revealing
//! a civic number; ending one session or all; and the people pages in Chromium.

use super::{audit_kinds, named, person_url};
use crate::admin::{admin_browser, csrf};
use crate::helpers::{RP_REDIRECT, SECRET, TestApp, spawn_app};
use crate::upstream::sql;
use portvakt::directory::{CivicNo, Role};
use portvakt::storage;

#[tokio::test]
async fn a_persons_page_shows_roles_groups_guardianships_links_sessions_and_releases() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let pupil = app.add_person("elev1", &["student@SU9"]).await;
    let guardian = app.add_person("vh1", &["guardian"]).await;
    storage::persons::add_guardianship(&app.db, &guardian.id, &pupil.id)
        .await
        .unwrap();
    storage::persons::upsert_group(&app.db, "g-9c", "SU9", "9C", "local")
        .await
        .unwrap();
    storage::persons::add_group_member(&app.db, "g-9c", &pupil.id)
        .await
        .unwrap();
    app.login_tokens("one", "elev1").await;
    // After the login: the login page would offer this half-configured upstream.
    sql(
        &app,
        "INSERT INTO upstreams (name, kind, display_name, level, link_claim, link_field, \
         created_at, updated_at) VALUES ('skolfed', 'oidc', 'Skolfederation', 'loa2', 'sub', \
         'username', 0, 0)",
        &[],
    )
    .await;
    sql(
        &app,
        "INSERT INTO federated_links (upstream, subject, person_id, created_at, last_login_at) \
         VALUES ('skolfed', 'subject-4711', $1, 0, 0)",
        &[&pupil.id],
    )
    .await;
    let r = b.get(&person_url(&app, &pupil.id)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for text in [
        "Test elev1",
        "Elev, SU9 (SU9)",
        "9C",
        &format!("/admin/person?id={}", guardian.id),
        "vh1",
        "skolfed",
        "subject-4711",
        "Pågående inloggningar",
        "name=\"session\"",
        "<td>password</td>",
        "<td>one</td>",
    ] {
        assert!(r.body.contains(text), "{text}: {}", r.body);
    }
    assert!(r.body.contains("Senast lämnade uppgifter"));
    assert!(
        !r.body.contains("Inga uppgifter har lämnats"),
        "a release is listed"
    );
    // And from the guardian's side, the pupil.
    let r = b.get(&person_url(&app, &guardian.id)).await;
    assert!(
        r.body.contains(&format!("/admin/person?id={}", pupil.id)),
        "{}",
        r.body
    );
    // A protected child is named to nobody without the permission, and not linked.
    let secret_child = named(&app, "skyddat.barn", "Hemlig", "Barn", |n| {
        n.protected_identity = true
    })
    .await;
    storage::persons::add_guardianship(&app.db, &guardian.id, &secret_child.id)
        .await
        .unwrap();
    let r = b.get(&person_url(&app, &guardian.id)).await;
    assert!(
        r.body.contains("Person med skyddade personuppgifter"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("skyddat.barn") && !r.body.contains(&secret_child.id));
    // An unknown id is a page that says so.
    let r = b.get(&person_url(&app, "no-such-id")).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn a_civic_number_is_masked_until_revealed_and_the_reveal_is_audited_without_it() {
    let app = spawn_app().await;
    let person = named(&app, "pnr", "Per", "Nummer", |n| {
        n.civic_no = Some(CivicNo::parse("19121212-1212").unwrap())
    })
    .await;
    let ro = admin_browser(&app, "ro", &["admin-readonly"]).await;
    let page = ro.get(&person_url(&app, &person.id)).await;
    assert!(page.body.contains("19121212-XXXX"), "{}", page.body);
    assert!(!page.body.contains("19121212-1212"));
    let token = csrf(&page.body);
    // Forged or missing token: refused, nothing shown, nothing audited.
    for bad in ["forged", ""] {
        let r = ro
            .post(
                &app.url("/admin/person/reveal"),
                &[("csrf", bad), ("id", &person.id)],
            )
            .await;
        assert_eq!(r.status, 403);
        assert!(!r.body.contains("19121212-1212"));
    }
    assert!(
        !audit_kinds(&app)
            .await
            .iter()
            .any(|(k, _, _)| k == "person.civic_revealed")
    );
    // Read-only administrators may reveal: it changes nothing.
    let r = ro
        .post(
            &app.url("/admin/person/reveal"),
            &[("csrf", &token), ("id", &person.id)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("19121212-1212"), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("/admin/person?id={}&#38;lang=en", person.id)),
        "the language switch leads back to the page: {}",
        r.body
    );
    let events = audit_kinds(&app).await;
    let (_, actor, detail) = events
        .iter()
        .find(|(k, _, _)| k == "person.civic_revealed")
        .expect("the reveal is audited");
    assert_eq!(actor, "admin:ro");
    assert!(detail.contains(&person.id), "{detail}");
    assert!(
        !detail.contains("1212-1212") && !detail.contains("121212121212"),
        "{detail}"
    );
    // A GET afterwards is masked again.
    let page = ro.get(&person_url(&app, &person.id)).await;
    assert!(!page.body.contains("19121212-1212"));
}

/// Logs `username` in at client "one" in a browser of their own: (browser, token response).
async fn logged_in(app: &TestApp, username: &str) -> (crate::helpers::Browser, serde_json::Value) {
    app.login_tokens("one", username).await
}

/// Whether the person's browser gets a code at once (SSO) or is sent to log in.
async fn needs_login(app: &TestApp, browser: &crate::helpers::Browser) -> bool {
    let (url, _, _, _) = app.authorize_url("one", &[]);
    let r = browser.get(&url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    if to.starts_with(RP_REDIRECT) {
        return false;
    }
    assert!(to.contains("/login?tx="), "{to}");
    true
}

async fn refresh_status(app: &TestApp, tokens: &serde_json::Value) -> u16 {
    app.token(
        "one",
        SECRET,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await
    .0
}

#[tokio::test]
async fn ending_a_session_makes_the_next_request_log_in_and_revokes_its_refresh_token() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let person = app.add_person("elev2", &["student"]).await;
    let (first, first_tokens) = logged_in(&app, "elev2").await;
    let (second, second_tokens) = logged_in(&app, "elev2").await;
    assert!(first_tokens["refresh_token"].is_string(), "{first_tokens}");
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let ro = admin_browser(&app, "ro", &["admin-readonly"]).await;
    let page = b.get(&person_url(&app, &person.id)).await;
    assert_eq!(
        page.body.matches("name=\"session\"").count(),
        2,
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    let first_sid =
        portvakt::storage::sessions::live_for_person(&app.db, &person.id, "", app.clock.now())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.sid)
            .find(|sid| page.body.contains(sid.as_str()))
            .unwrap();

    // Read-only: refused, on the page no buttons; a forged token: refused. Both still live.
    let ro_page = ro.get(&person_url(&app, &person.id)).await;
    assert!(!ro_page.body.contains("end-session"), "{}", ro_page.body);
    let ro_token = csrf(&ro_page.body);
    for (who, token) in [(&ro, ro_token.as_str()), (&b, "forged"), (&b, "")] {
        for path in ["/admin/person/end-session", "/admin/person/end-sessions"] {
            let r = who
                .post(
                    &app.url(path),
                    &[("csrf", token), ("id", &person.id), ("session", &first_sid)],
                )
                .await;
            assert_eq!(r.status, 403, "{path}: {}", r.body);
        }
    }
    assert!(!needs_login(&app, &first).await);
    assert!(
        !audit_kinds(&app)
            .await
            .iter()
            .any(|(k, _, _)| k == "person.session_ended")
    );

    // End one: which session is whose browser is found by trying.
    let r = b
        .post(
            &app.url("/admin/person/end-session"),
            &[
                ("csrf", &token),
                ("id", &person.id),
                ("session", &first_sid),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("ended=1"));
    let ended_first = needs_login(&app, &first).await;
    let ended_second = needs_login(&app, &second).await;
    assert!(
        ended_first != ended_second,
        "exactly one browser was logged out"
    );
    let (ended_tokens, live_tokens) = if ended_first {
        (&first_tokens, &second_tokens)
    } else {
        (&second_tokens, &first_tokens)
    };
    assert_eq!(refresh_status(&app, ended_tokens).await, 400);
    assert_eq!(refresh_status(&app, live_tokens).await, 200);
    let events = audit_kinds(&app).await;
    let (_, actor, detail) = events
        .iter()
        .find(|(k, _, _)| k == "person.session_ended")
        .unwrap();
    assert_eq!(actor, "admin:adm");
    assert!(
        detail.contains(&person.id) && detail.contains(&first_sid),
        "{detail}"
    );
    for browser in [&first, &second] {
        for value in browser.cookies.lock().unwrap().values() {
            assert!(
                !detail.contains(value.as_str()),
                "no cookie value in {detail}"
            );
        }
    }
    // The same session again: it has ended.
    let r = b
        .post(
            &app.url("/admin/person/end-session"),
            &[
                ("csrf", &token),
                ("id", &person.id),
                ("session", &first_sid),
            ],
        )
        .await;
    assert_eq!(r.status, 404);

    // End all: the other browser too, and a third.
    let (third, _) = logged_in(&app, "elev2").await;
    let r = b
        .post(
            &app.url("/admin/person/end-sessions"),
            &[("csrf", &token), ("id", &person.id)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(needs_login(&app, &first).await);
    assert!(needs_login(&app, &second).await);
    assert!(needs_login(&app, &third).await);
    assert_eq!(refresh_status(&app, live_tokens).await, 400);
    let ended = audit_kinds(&app)
        .await
        .into_iter()
        .filter(|(k, _, _)| k == "person.session_ended")
        .count();
    assert_eq!(ended, 3);
    let page = b.get(&person_url(&app, &person.id)).await;
    assert!(
        page.body.contains("inte inloggad någonstans"),
        "{}",
        page.body
    );
    // The admin's own session is untouched.
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn in_chromium_an_admin_finds_a_person_opens_their_page_and_ends_their_session() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let asa = named(&app, "asa.oberg", "Åsa", "Öberg", |n| {
        n.roles = vec![Role::parse("student@SU1").unwrap()];
        n.civic_no = Some(
            CivicNo::parse("20100101-0007")
                .unwrap_or_else(|_| CivicNo::parse("19121212-1212").unwrap()),
        );
    })
    .await;
    storage::persons::upsert_school_unit(&app.db, "SU1", "Åkerby skola", "local")
        .await
        .unwrap();
    storage::persons::upsert_group(&app.db, "g-4b", "SU1", "4B", "local")
        .await
        .unwrap();
    storage::persons::add_group_member(&app.db, "g-4b", &asa.id)
        .await
        .unwrap();
    named(&app, "asa.aberg", "Åsa", "Åberg", |_| {}).await;
    app.state
        .authn
        .set_password(&asa.id, crate::helpers::PASSWORD.into(), app.clock.now())
        .await
        .unwrap();
    let (pupil, _) = logged_in(&app, "asa.oberg").await;

    let (_driver, browser) =
        crate::admin::browser::admin_in_chromium(&app, "chrome-adm", &["admin"]).await;
    browser.goto(&app.url("/admin/people?lang=sv")).await;
    browser.assert_accessible("the people search").await;
    let q = browser.find("#q").await;
    browser.send_keys(&q, "asa oberg").await;
    let submit = browser.find("form.search button[type=submit]").await;
    browser.click(&submit).await;
    browser
        .wait_for_url("the results", |u| u.contains("q=asa+oberg"))
        .await;
    let source = browser.source().await;
    assert!(
        source.contains("asa.oberg") && !source.contains("asa.aberg"),
        "{source}"
    );
    browser
        .assert_accessible("the people search with results")
        .await;
    browser
        .screenshot(&crate::admin::browser::screenshot_path("admin-people"))
        .await;

    let link = browser.find("table a[href^='/admin/person?id=']").await;
    browser.click(&link).await;
    browser
        .wait_for_url("the person's page", |u| u.contains("/admin/person?id="))
        .await;
    let source = browser.source().await;
    assert!(
        source.contains("Åsa Öberg") && source.contains("4B"),
        "{source}"
    );
    assert!(source.contains("-XXXX"), "masked: {source}");
    browser.assert_accessible("a person's page").await;
    browser
        .screenshot(&crate::admin::browser::screenshot_path("admin-person"))
        .await;

    let end = browser.find("button.end-session").await;
    browser.click(&end).await;
    browser
        .wait_for_url("the page after ending", |u| u.contains("ended=1"))
        .await;
    let source = browser.source().await;
    assert!(source.contains("Personen är utloggad"), "{source}");
    browser
        .assert_accessible("a person's page after ending a session")
        .await;
    // The pupil's next request needs a login.
    assert!(needs_login(&app, &pupil).await);
}
