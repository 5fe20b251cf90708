//! Bounded growth: housekeeping's purge (`app::retention::purge`) removes each kind of record
//! once it is older than its `[retention]` setting, in batches, and nothing younger. The
//! clock is moved, never waited for.

use crate::helpers::*;
use portvakt::storage::retention::{BATCH, Purged};

const DAY: i64 = 86_400;

async fn pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.config.database_url)
        .await
        .unwrap()
}

async fn count(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap();
    n
}

async fn exec(pool: &sqlx::AnyPool, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

async fn purge(app: &TestApp) -> Purged {
    portvakt::app::retention::purge(&app.db, &app.config.retention, app.clock.now())
        .await
        .unwrap()
}

#[tokio::test]
async fn records_are_purged_when_their_retention_has_passed_and_not_before() {
    let app = spawn_app().await;
    let keep = app.config.retention.clone();
    let r = &keep;
    let (login_days, audit_days) = (r.login_events_days, r.audit_events_days);
    assert!(r.ended_sessions_days < r.sync_details_days);
    assert!(r.sync_details_days < login_days && login_days < r.release_records_days);
    assert!(r.release_records_days <= keep.sync_runs_days && keep.sync_runs_days < audit_days);
    app.add_person("elev.kvar", &["student"]).await;
    app.add_client("rp", |_| {}).await;
    let t0 = app.clock.now();
    let db = pool(&app).await;

    // A login and its logout (a release record, login events, an ended session).
    let (browser, t) = app.login_tokens("rp", "elev.kvar").await;
    let hint = t["id_token"].as_str().unwrap();
    let r = browser
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
            crate::negative::urlencode(RP_LOGOUT)
        )))
        .await;
    assert_eq!(r.status, 303);
    // More login events than one batch deletes, and an administrative change.
    exec(
        &db,
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO audit_events (at, kind, actor, detail) \
             SELECT {t0}, 'login.success', 'p', 'rp=x' FROM n",
            2 * BATCH + 7
        ),
    )
    .await;
    exec(
        &db,
        format!(
            "INSERT INTO audit_events (at, kind, actor, detail) VALUES ({t0}, 'client.add', 'ops', 'rp')"
        ),
    )
    .await;
    // Sync runs of two sources: finished ones with their diff and plan, the newest
    // successful one of `s1`, and a held run of `s2` waiting for an administrator.
    for (source, status, finished) in [
        ("s1", "applied", Some(t0)),
        ("s1", "failed", Some(t0)),
        ("s1", "rejected", Some(t0)),
        ("s1", "applied", Some(t0 + 10)),
        ("s2", "held", None),
    ] {
        let finished = finished.map_or("NULL".to_string(), |f| f.to_string());
        exec(
            &db,
            format!(
                "INSERT INTO sync_runs (source, kind, status, started_at, finished_at, diff, plan) \
                 VALUES ('{source}', 'full', '{status}', {t0}, {finished}, '[{{\"op\":\"x\"}}]', '{{}}')"
            ),
        )
        .await;
    }
    let counts = async |db: &sqlx::AnyPool| {
        (
            count(db, "SELECT COUNT(*) FROM release_records").await,
            count(
                db,
                "SELECT COUNT(*) FROM audit_events WHERE kind LIKE 'login.%'",
            )
            .await,
            count(
                db,
                "SELECT COUNT(*) FROM audit_events WHERE kind NOT LIKE 'login.%'",
            )
            .await,
            count(db, "SELECT COUNT(*) FROM sync_runs").await,
            count(
                db,
                "SELECT COUNT(*) FROM sync_runs WHERE diff <> '[]' OR plan IS NOT NULL",
            )
            .await,
            count(db, "SELECT COUNT(*) FROM sso_sessions").await,
        )
    };
    let (releases, logins, others, _, _, sessions) = counts(&db).await;
    assert!(releases >= 1 && sessions == 1);
    assert!(logins > 2 * BATCH && others >= 1);

    // Nothing is due yet.
    assert_eq!(purge(&app).await, Purged::default());

    // A day and a half later a new session is made; at two days the first one (ended at
    // t0) has been over for more than a day, the new one not yet.
    app.clock.advance(DAY + DAY / 2);
    let (_b2, _) = app.login_tokens("rp", "elev.kvar").await;
    app.clock.advance(DAY / 2 + 60);
    let p = purge(&app).await;
    assert_eq!(
        p,
        Purged {
            sessions: 1,
            ..Default::default()
        }
    );
    assert_eq!(counts(&db).await.5, 1, "the recent session stays");

    // A month: the details of finished runs go, the held run keeps its plan.
    app.clock.advance(29 * DAY);
    let p = purge(&app).await;
    assert_eq!(p.sync_details, 4, "{p:?}");
    assert_eq!(
        p.sessions, 1,
        "the second session ended (expired) over a day ago"
    );
    let held_plan = count(
        &db,
        "SELECT COUNT(*) FROM sync_runs WHERE status = 'held' AND plan IS NOT NULL",
    )
    .await;
    assert_eq!(held_plan, 1);
    assert_eq!(counts(&db).await.4, 1, "only the held run keeps details");

    // The login events' retention (counted from the second login too): all of them, in
    // several batches; the change stays.
    app.clock.advance((login_days - 29) * DAY);
    let p = purge(&app).await;
    assert_eq!(
        p.login_events as i64,
        logins + 1,
        "{p:?} (the second login too)"
    );
    assert_eq!(p.audit_events, 0);
    let (_, logins_left, others_left, runs, _, _) = counts(&db).await;
    assert_eq!((logins_left, others_left), (0, others));
    assert_eq!(runs, 5);

    // A year: release records and finished runs, except the newest successful one of s1
    // and the held run.
    app.clock.advance((keep.sync_runs_days - login_days) * DAY);
    let releases = counts(&db).await.0;
    let p = purge(&app).await;
    assert_eq!(p.release_records as i64, releases, "{p:?}");
    assert_eq!(p.sync_runs, 3, "{p:?}");
    let kept: Vec<(String, String)> =
        sqlx::query_as("SELECT source, status FROM sync_runs ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        kept,
        [
            ("s1".into(), "applied".into()),
            ("s2".into(), "held".into())
        ]
    );
    assert_eq!(counts(&db).await.0, 0);

    // Two years: the administrative change.
    app.clock.advance((audit_days - keep.sync_runs_days) * DAY);
    let p = purge(&app).await;
    assert_eq!(p.audit_events as i64, others, "{p:?}");
    assert_eq!(purge(&app).await, Purged::default(), "idempotent");
    db.close().await;
}

#[tokio::test]
async fn retention_settings_are_checked_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "[retention]\nlogin_events_days = 0\n").unwrap();
    let err = portvakt::config::Config::load(Some(&path), |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("retention.login_events_days"), "{err}");
    let readme = include_str!("../../README.md");
    let example = include_str!("../../portvakt.example.toml");
    for key in [
        "release_records_days",
        "login_events_days",
        "audit_events_days",
        "sync_runs_days",
        "sync_details_days",
        "ended_sessions_days",
    ] {
        assert!(readme.contains(&format!("`{key}`")), "README: {key}");
        assert!(example.contains(&format!("{key} = ")), "example: {key}");
    }
}
