//! A bulk load (a first run creating at least 5,000 people): on SQLite the secondary indexes
//! on random keys (`persons_source_external`, `persons_civic`, `group_members_person`) are
//! dropped for it and built after it, exactly as the migrations made them; a run stopped
//! before building them leaves them to the next run, which builds them first.

use super::*;
use sqlx::{Connection, Row};

const DEFERRED: [&str; 3] = [
    "group_members_person",
    "persons_civic",
    "persons_source_external",
];

/// (name, SQL) of the deferrable indexes as stored in SQLite's schema.
async fn indexes(app: &TestApp) -> Vec<(String, String)> {
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN \
         ('group_members_person', 'persons_civic', 'persons_source_external') ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.iter().map(|r| (r.get("name"), r.get("sql"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_builds_its_indexes_after_it_and_a_stopped_one_is_completed() {
    let app = spawn_app().await;
    if app.db.backend() != portvakt::storage::Backend::Sqlite {
        return; // Only SQLite defers its indexes.
    }
    let before = indexes(&app).await;
    assert_eq!(
        before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        DEFERRED
    );
    let data = municipality(6_000);
    let people = data.len(Kind::Person) as u64;
    let reg = Register::start(data).await;
    let client = reg.client(1000, 0);
    let out = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .unwrap();
    assert_eq!(out.counts.persons_created, people);
    assert!(people >= 5_000, "{people} people: not a bulk load");
    assert_eq!(
        indexes(&app).await,
        before,
        "built again as the migrations made them"
    );

    // A run stopped between its bulk load and the index builds.
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    for name in DEFERRED {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    drop(conn);
    let out = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .unwrap();
    assert_eq!(out.counts.persons_unchanged, people);
    assert_eq!(
        indexes(&app).await,
        before,
        "the next run builds them first"
    );
}

/// On PostgreSQL a large apply ends with fresh statistics of the directory's tables, so the
/// next statements are not planned blind (a sequential scan per enrolment lookup) until
/// autovacuum comes round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_apply_refreshes_postgresqls_statistics() {
    let app = spawn_app().await;
    if app.db.backend() != portvakt::storage::Backend::Postgres {
        return; // SQLite's plans do not depend on gathered statistics here.
    }
    let analysed = |app: &TestApp| {
        let url = app.config.database_url.clone();
        async move {
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            sqlx::query(
                "SELECT relname::text AS relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL \
                 AND relname IN ('persons', 'enrolments', 'guardianships', 'duties', \
                 'school_groups', 'group_members') ORDER BY relname",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("relname"))
            .collect::<Vec<_>>()
        }
    };
    assert!(analysed(&app).await.is_empty(), "a new database");

    let data = municipality(6_000);
    let reg = Register::start(data).await;
    let out = run_in(
        env(&app),
        &reg.client(1000, 0),
        Some(USERNAME_CONTEXT),
        RunKind::Full,
    )
    .await
    .unwrap();
    assert!(out.counts.persons_created + out.counts.persons_updated >= 5_000);
    assert_eq!(
        analysed(&app).await,
        [
            "duties",
            "enrolments",
            "group_members",
            "guardianships",
            "persons",
            "school_groups"
        ]
    );
}
