//! The people pages: search (folded names, usernames, school unit and class, protected
//! identities) and the search keys; a person's page, revealing a civic number, ending
//! sessions and the Chromium test are in `people/person.rs`.

mod person;

use super::admin_browser;
use crate::helpers::{TestApp, spawn_app};
use crate::upstream::sql;
use portvakt::directory::{self, NewPerson, Role};
use portvakt::storage;

/// A person with these names (and the test password when `password`).
pub(super) async fn named(
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

pub(super) fn people_url(app: &TestApp, query: &[(&str, &str)]) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    app.url(&format!("/admin/people?{q}"))
}

pub(super) fn person_url(app: &TestApp, id: &str) -> String {
    app.url(&format!("/admin/person?id={id}"))
}

pub(super) async fn audit_kinds(app: &TestApp) -> Vec<(String, String, String)> {
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
