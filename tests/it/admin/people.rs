//! The people pages: search (folded names, usernames, school unit and class, protected
//! identities), a person's page, revealing a civic number, ending sessions; and the same in
//! Chromium.

use super::{admin_browser, csrf};
use crate::helpers::{RP_REDIRECT, SECRET, TestApp, spawn_app};
use crate::upstream::sql;
use portvakt::directory::{self, CivicNo, NewPerson, Role};
use portvakt::storage;

/// A person with these names (and the test password when `password`).
async fn named(
    app: &TestApp,
    username: &str,
    given: &str,
    family: &str,
    tune: impl FnOnce(&mut NewPerson),
) -> directory::Person {
    let mut new = NewPerson {
        username: username.into(),
        given_name: given.into(),
        family_name: family.into(),
        email: None,
        civic_no: None,
        protected_identity: false,
        roles: Vec::new(),
        source: "local".into(),
    };
    tune(&mut new);
    for r in &new.roles {
        if let Some(u) = &r.school_unit_code {
            storage::persons::upsert_school_unit(&app.db, u, &format!("{u} skola"), "local")
                .await
                .unwrap();
        }
    }
    directory::add_person(&app.db, &new, "test.example", app.clock.now())
        .await
        .unwrap()
}

fn people_url(app: &TestApp, query: &[(&str, &str)]) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    app.url(&format!("/admin/people?{q}"))
}

fn person_url(app: &TestApp, id: &str) -> String {
    app.url(&format!("/admin/person?id={id}"))
}

async fn audit_kinds(app: &TestApp) -> Vec<(String, String, String)> {
    storage::records::recent_audit(&app.db, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, kind, actor, detail)| (kind, actor, detail))
        .collect()
}

#[tokio::test]
async fn a_name_search_folds_diacritics_and_takes_words_in_any_order() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let asa = named(&app, "aoberg", "Åsa", "Öberg", |_| {}).await;
    named(&app, "aaberg", "Åsa", "Åberg", |_| {}).await;
    named(&app, "rmuller", "Renée", "Müller", |_| {}).await;
    named(&app, "saero", "Søren", "Ærø", |_| {}).await;
    for (text, expect, not) in [
        ("asa oberg", "aoberg", "aaberg"),
        ("oberg asa", "aoberg", "aaberg"),
        ("ÅSA ÖBERG", "aoberg", "aaberg"),
        ("Åsa Öb", "aoberg", "aaberg"),
        ("renee muller", "rmuller", "aoberg"),
        ("MÜLLER", "rmuller", "saero"),
        ("soren aero", "saero", "rmuller"),
    ] {
        let r = b.get(&people_url(&app, &[("q", text)])).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.contains(&format!("<td>{expect}</td>")),
            "{text}: {}",
            r.body
        );
        assert!(
            !r.body.contains(&format!("<td>{not}</td>")),
            "{text}: {}",
            r.body
        );
    }
    // The row links to the person's page.
    let r = b.get(&people_url(&app, &[("q", "asa oberg")])).await;
    assert!(
        r.body.contains(&format!("/admin/person?id={}", asa.id)),
        "{}",
        r.body
    );
    // `user list --search` folds the same way.
    let found = directory::search(&app.db, "asa oberg", false, 10)
        .await
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|p| p.username.as_str())
            .collect::<Vec<_>>(),
        ["aoberg"]
    );
    // Nothing typed, nothing chosen: no search, no list of everyone.
    let r = b.get(&app.url("/admin/people")).await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("<td>aoberg</td>"), "{}", r.body);
    let r = b.get(&people_url(&app, &[("q", "nobody like this")])).await;
    assert!(r.body.contains("Ingen person matchar"), "{}", r.body);
}

#[tokio::test]
async fn a_username_is_found_exactly_and_by_its_beginning_and_many_hits_ask_to_refine() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    named(&app, "kalle.anka", "Karl", "Anka", |_| {}).await;
    named(&app, "kalle.ankeborg", "Kalle", "Ankeborg", |_| {}).await;
    named(&app, "musse", "Musse", "Pigg", |_| {}).await;
    let r = b.get(&people_url(&app, &[("q", "Kalle.Anka")])).await;
    assert!(r.body.contains("<td>kalle.anka</td>"), "{}", r.body);
    let r = b.get(&people_url(&app, &[("q", "kalle.ank")])).await;
    assert!(r.body.contains("<td>kalle.anka</td>"));
    assert!(r.body.contains("<td>kalle.ankeborg</td>"));
    assert!(!r.body.contains("<td>musse</td>"));
    // A wildcard typed is a character, not a wildcard.
    let r = b.get(&people_url(&app, &[("q", "%")])).await;
    assert!(!r.body.contains("<td>musse</td>"), "{}", r.body);
    assert!(!r.body.contains("Fler än 100"));
    for i in 0..101 {
        named(
            &app,
            &format!("many{i:03}"),
            "Många",
            &format!("Efternamn{i}"),
            |_| {},
        )
        .await;
    }
    let r = b.get(&people_url(&app, &[("q", "manga")])).await;
    assert!(r.body.contains("Fler än 100"), "{}", r.body);
    assert_eq!(r.body.matches("/admin/person?id=").count(), 100);
}

#[tokio::test]
async fn the_school_unit_and_class_filters_narrow_the_search() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let ada = named(&app, "ada", "Ada", "Berg", |n| {
        n.roles = vec![Role::parse("student@SU1").unwrap()]
    })
    .await;
    let bea = named(&app, "bea", "Bea", "Berg", |n| {
        n.roles = vec![Role::parse("student@SU1").unwrap()]
    })
    .await;
    named(&app, "cia", "Cia", "Berg", |n| {
        n.roles = vec![Role::parse("student@SU2").unwrap()]
    })
    .await;
    // A synced pupil: enrolled (no local role) at SU2.
    let dan = named(&app, "dan", "Dan", "Berg", |_| {}).await;
    sql(
        &app,
        "INSERT INTO enrolments (person_id, seq, school_unit_code) VALUES ($1, 0, $2)",
        &[&dan.id, "SU2"],
    )
    .await;
    storage::persons::upsert_group(&app.db, "g-7a", "SU1", "7A", "local")
        .await
        .unwrap();
    storage::persons::upsert_group(&app.db, "g-7b", "SU1", "7B", "local")
        .await
        .unwrap();
    storage::persons::add_group_member(&app.db, "g-7a", &ada.id)
        .await
        .unwrap();
    storage::persons::add_group_member(&app.db, "g-7b", &bea.id)
        .await
        .unwrap();

    let r = b
        .get(&people_url(&app, &[("q", "berg"), ("unit", "SU1")]))
        .await;
    assert!(r.body.contains("<td>ada</td>") && r.body.contains("<td>bea</td>"));
    assert!(!r.body.contains("<td>cia</td>") && !r.body.contains("<td>dan</td>"));
    // The unit's classes are offered once the unit is chosen; the row names its class.
    assert!(
        r.body.contains("<option value=\"g-7a\">7A</option>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("SU1 skola, 7A"), "{}", r.body);
    let r = b.get(&people_url(&app, &[("unit", "SU2")])).await;
    assert!(r.body.contains("<td>cia</td>") && r.body.contains("<td>dan</td>"));
    assert!(!r.body.contains("<td>ada</td>"));
    let r = b
        .get(&people_url(
            &app,
            &[("q", ""), ("unit", "SU1"), ("class", "g-7a")],
        ))
        .await;
    assert!(r.body.contains("<td>ada</td>"), "{}", r.body);
    assert!(!r.body.contains("<td>bea</td>"));
    // A class of another unit is ignored, not trusted.
    let r = b
        .get(&people_url(&app, &[("unit", "SU2"), ("class", "g-7a")]))
        .await;
    assert!(r.body.contains("<td>cia</td>"), "{}", r.body);
}

#[tokio::test]
async fn protected_identities_are_hidden_without_the_permission_and_audited_with_it() {
    let app = spawn_app().await;
    let hidden_person = named(&app, "skyddad", "Sara", "Skydd", |n| {
        n.protected_identity = true
    })
    .await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let r = b.get(&people_url(&app, &[("q", "sara skydd")])).await;
    assert!(!r.body.contains("skyddad"), "{}", r.body);
    let r = b.get(&people_url(&app, &[("q", "skyddad")])).await;
    assert!(!r.body.contains("<td>skyddad</td>"));
    let r = b.get(&person_url(&app, &hidden_person.id)).await;
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("Sara"));
    assert!(
        !audit_kinds(&app)
            .await
            .iter()
            .any(|(k, _, _)| k == "person.view_protected")
    );

    let p = admin_browser(&app, "padm", &["admin-readonly", "admin-protected"]).await;
    let r = p.get(&people_url(&app, &[("q", "sara skydd")])).await;
    assert!(r.body.contains("<td>skyddad</td>"), "{}", r.body);
    assert!(r.body.contains("Skyddade personuppgifter"));
    let r = p.get(&person_url(&app, &hidden_person.id)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let views: Vec<_> = audit_kinds(&app)
        .await
        .into_iter()
        .filter(|(k, _, _)| k == "person.view_protected")
        .collect();
    assert_eq!(views.len(), 2, "the search and the page: {views:?}");
    for (_, actor, detail) in views {
        assert_eq!(actor, "admin:padm");
        assert!(detail.contains(&hidden_person.id), "{detail}");
    }
}

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
        super::browser::admin_in_chromium(&app, "chrome-adm", &["admin"]).await;
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
        .screenshot(&super::browser::screenshot_path("admin-people"))
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
        .screenshot(&super::browser::screenshot_path("admin-person"))
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

#[tokio::test]
async fn migration_0010_folds_the_search_keys_already_stored() {
    let app = spawn_app().await;
    let p = named(&app, "gammal", "Åsa", "Öberg", |_| {}).await;
    // A key as the casefold before 0010 stored it, and one as 0003's lower() left it.
    sql(
        &app,
        "UPDATE persons SET search_name = 'åsa öberg Ængström', sync_hash = 'h' WHERE id = $1",
        &[&p.id],
    )
    .await;
    let migration = if crate::helpers::use_postgres() {
        include_str!("../../../migrations/postgres/0010_person_search.sql")
    } else {
        include_str!("../../../migrations/sqlite/0010_person_search.sql")
    };
    let statements: Vec<String> = migration
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(statements.len(), 2);
    for s in &statements {
        sql(&app, s, &[]).await;
    }
    let found = directory::search(&app.db, "asa oberg aengstrom", false, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "refolded");
    // Fully folded now: its sync hash is kept.
    let hash: Option<String> = {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&app.config.database_url)
            .await
            .unwrap();
        let row: (Option<String>,) = sqlx::query_as("SELECT sync_hash FROM persons WHERE id = $1")
            .bind(&p.id)
            .fetch_one(&pool)
            .await
            .unwrap();
        row.0
    };
    assert_eq!(hash.as_deref(), Some("h"));
    // A letter outside the migration's table: the next sync rewrites the key.
    sql(
        &app,
        "UPDATE persons SET search_name = 'łukasz', sync_hash = 'h' WHERE id = $1",
        &[&p.id],
    )
    .await;
    for s in &statements {
        sql(&app, s, &[]).await;
    }
    let pool = sqlx::AnyPool::connect(&app.config.database_url)
        .await
        .unwrap();
    let row: (Option<String>,) = sqlx::query_as("SELECT sync_hash FROM persons WHERE id = $1")
        .bind(&p.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.0, None);
}
