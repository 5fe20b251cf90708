//! Operating Portvakt: backup and restore, upgrading a database of the previous release,
//! the schema check of production mode, migration files that must never change, re-sealing
//! under a new KEK, and configuration errors that name the setting.

use crate::helpers::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Non-zero exit with exactly one line on standard error that contains every needle.
#[track_caller]
fn fails_with(out: &Output, needles: &[&str]) -> String {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "should fail: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} in {err}");
    }
    err
}

#[track_caller]
fn succeeds(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The portvakt binary with only these settings from the environment.
fn portvakt(env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    cmd.args(args).env_remove("PORTVAKT_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    bounded(cmd, stdin)
}

/// Runs `cmd` to its end, at most a minute (a `serve` that should have refused would
/// otherwise run for ever).
fn bounded(mut cmd: Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut si = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).unwrap();
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} still runs after a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The environment of a production instance on `url` with the KEK in `kek`.
fn production<'a>(url: &'a str, dir: &'a Path, kek: &'a Path) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PORTVAKT_MODE", "production"),
        ("PORTVAKT_ISSUER", "https://idp.example.se"),
        ("PORTVAKT_LISTEN", "127.0.0.1:0"),
        ("PORTVAKT_DATABASE_URL", url),
        ("PORTVAKT_DATA_DIR", dir.to_str().unwrap()),
        ("PORTVAKT_KEK_FILE", kek.to_str().unwrap()),
    ]
}

/// The key ids the JWKS publishes, sorted.
async fn kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = app
        .client()
        .get(app.url("/oidc/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-0008")
}

/// An SQLite URL for a file in `dir`, or a new PostgreSQL database.
async fn fresh_url(dir: &Path) -> String {
    if use_postgres() {
        fresh_pg_database().await
    } else {
        format!("sqlite://{}?mode=rwc", dir.join("portvakt.db").display())
    }
}

#[test]
fn applied_migration_files_are_never_edited() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let listed = std::fs::read_to_string(root.join("CHECKSUMS")).unwrap();
    let listed: std::collections::BTreeMap<&str, &str> = listed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (sum, file) = l
                .split_once("  ")
                .expect("`SHA256  FILE` (sha256sum's format)");
            (file, sum)
        })
        .collect();
    let mut seen = 0;
    for dialect in ["sqlite", "postgres"] {
        for entry in std::fs::read_dir(root.join(dialect)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{dialect}/{}", path.file_name().unwrap().to_str().unwrap());
            let digest =
                ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&path).unwrap());
            let sum: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            match listed.get(name.as_str()) {
                Some(l) => assert_eq!(
                    *l, sum,
                    "migrations/{name} changed after it was released: databases that applied \
                     it keep the old schema and sqlx refuses them; undo the edit and add a new \
                     migration instead"
                ),
                None => panic!(
                    "migrations/{name} is not in migrations/CHECKSUMS: once it is final, add \
                     the line `{sum}  {name}` (cd migrations && sha256sum {name} >> CHECKSUMS)"
                ),
            }
            seen += 1;
        }
    }
    assert_eq!(seen, listed.len(), "CHECKSUMS lists a file that is gone");
}

#[tokio::test]
async fn a_database_of_the_previous_release_is_migrated_by_the_migrate_command() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_url(dir.path()).await;
    let kek = dir.path().join("kek.hex");
    std::fs::copy(fixture().join("test-only-kek.hex"), &kek).unwrap();
    let prod = production(&url, dir.path(), &kek);

    // Production mode never creates or changes the schema by itself.
    let out = portvakt(&prod, &["user", "list"], None);
    fails_with(&out, &["no schema yet", "portvakt migrate"]);

    // The previous release's schema and data. Its migration files are this release's
    // 0001-0008: released files never change (CHECKSUMS, the test above).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let dialect = if use_postgres() { "postgres" } else { "sqlite" };
    let previous = tempfile::tempdir().unwrap();
    let released = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    for entry in std::fs::read_dir(&released).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() <= "0008_~" {
            std::fs::copy(&path, previous.path().join(&name)).unwrap();
        }
    }
    assert_eq!(std::fs::read_dir(previous.path()).unwrap().count(), 8);
    sqlx::migrate::Migrator::new(previous.path().to_path_buf())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let data = std::fs::read_to_string(fixture().join("data.sql")).unwrap();
    for stmt in data.lines().filter(|l| l.starts_with("INSERT")) {
        sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
            .execute(&pool)
            .await
            .unwrap();
    }

    // serve and the other commands refuse it, naming the command that upgrades.
    let err = fails_with(
        &portvakt(&prod, &["serve"], None),
        &["0008", "portvakt migrate"],
    );
    assert!(err.contains("portvakt backup"), "{err}");
    fails_with(
        &portvakt(&prod, &["user", "list"], None),
        &["portvakt migrate"],
    );
    let db = portvakt::storage::Db::connect(&url, 2).await.unwrap();
    assert!(matches!(
        db.schema().await.unwrap(),
        portvakt::storage::schema::Schema::Behind { applied: 8, .. }
    ));

    let out = succeeds(&portvakt(&prod, &["migrate"], None));
    assert!(out.contains("migrated from 0008 to"), "{out}");
    assert_eq!(
        db.schema().await.unwrap(),
        portvakt::storage::schema::Schema::Current
    );
    assert!(succeeds(&portvakt(&prod, &["migrate"], None)).contains("up to date"));
    // 0010 refolded the old search key: "asa oberg" finds Åsa Öberg.
    let found = succeeds(&portvakt(
        &prod,
        &["user", "list", "--search", "asa oberg", "--json"],
        None,
    ));
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found[0]["username"], "asa.oberg", "{found}");

    // The upgraded database serves: the old client, password and signing keys work.
    let app = spawn_instance(&url, dir.clone(), None, |c| c.kek_file = Some(kek.clone())).await;
    assert_eq!(
        kids(&app).await,
        [
            "HvoU1vYLDSskWEh1hhUQmvi-gY2k_2V5W8piA1gV9Vs",
            "ZoYMBXKAE-FjmQ3Gy6tM57zNMxEp2jVuDz5R24ZbsZw"
        ],
        "the keys of the previous release, no new ones"
    );
    let (_, tokens) = app.login_tokens("old-lms", "asa.oberg").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jwt_header(id_token)["kid"],
        "ZoYMBXKAE-FjmQ3Gy6tM57zNMxEp2jVuDz5R24ZbsZw"
    );
    assert_eq!(jwt_claims(id_token)["given_name"], "Åsa");

    // A released migration file that differs from what the database applied is refused.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 3")
        .bind(vec![0u8; 48])
        .execute(&pool)
        .await
        .unwrap();
    fails_with(
        &portvakt(&prod, &["serve"], None),
        &["migration 0003", "edited"],
    );
    fails_with(&portvakt(&prod, &["migrate"], None), &["migration 0003"]);
    pool.close().await;
    db.close().await;
}

#[tokio::test]
async fn a_backup_of_a_running_server_restores_into_a_fresh_data_directory() {
    let app = spawn_app().await;
    app.add_person("elev.bo", &["student"]).await;
    app.add_client("lms", |_| {}).await;
    let (_, before) = app.login_tokens("lms", "elev.bo").await;
    let sub = jwt_claims(before["id_token"].as_str().unwrap())["sub"].clone();
    let keys_before = kids(&app).await;
    let backup = app.dir.path().join("backup.db");
    let restored_dir = Arc::new(tempfile::tempdir().unwrap());
    // The KEK goes along, kept apart from the database backup.
    std::fs::copy(
        app.dir.path().join("kek.hex"),
        restored_dir.path().join("kek.hex"),
    )
    .unwrap();

    let restored_url = if use_postgres() {
        // `portvakt backup` names the tool PostgreSQL has for it, and writes nothing.
        let out = cli(&app, &["backup", backup.to_str().unwrap()], None);
        fails_with(&out, &["pg_dump"]);
        assert!(!backup.exists());
        // The README's restore: pg_dump, then pg_restore into a new, empty database.
        let mut dump = Command::new("pg_dump");
        dump.arg("--format=custom")
            .arg(format!("--file={}", backup.display()))
            .arg(format!("--dbname={}", app.config.database_url));
        let dump = bounded(dump, None);
        assert!(dump.status.success(), "{}", text(&dump.stderr));
        let url = fresh_pg_database().await;
        let mut restore = Command::new("pg_restore");
        restore
            .arg("--no-owner")
            .arg(format!("--dbname={url}"))
            .arg(&backup);
        let restore = bounded(restore, None);
        assert!(restore.status.success(), "{}", text(&restore.stderr));
        url
    } else {
        let out = succeeds(&cli(&app, &["backup", backup.to_str().unwrap()], None));
        assert!(out.contains("kek_file"), "the KEK is named: {out}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "people's data is not world-readable");
        }
        // Never over an existing file.
        let len = std::fs::metadata(&backup).unwrap().len();
        let out = cli(&app, &["backup", backup.to_str().unwrap()], None);
        fails_with(&out, &["exists already"]);
        assert_eq!(std::fs::metadata(&backup).unwrap().len(), len);
        // A database that is not there is no backup (connecting would make it empty).
        let nowhere = format!("sqlite://{}", app.dir.path().join("none.db").display());
        let other = app.dir.path().join("other.db");
        let out = portvakt(
            &[("PORTVAKT_DATABASE_URL", &nowhere)],
            &["backup", other.to_str().unwrap()],
            None,
        );
        fails_with(&out, &["nothing to back up"]);
        assert!(!other.exists());
        // The README's restore: the copy becomes the new data directory's database.
        let db = restored_dir.path().join("portvakt.db");
        std::fs::copy(&backup, &db).unwrap();
        format!("sqlite://{}?mode=rwc", db.display())
    };
    if !use_postgres() {
        let (_, detail) = portvakt::storage::records::last_audit(&app.db, "backup", "")
            .await
            .unwrap()
            .expect("the backup is audited");
        assert_eq!(detail, backup.display().to_string());
    }

    let restored = spawn_instance(&restored_url, restored_dir, None, |_| {}).await;
    assert_eq!(kids(&restored).await, keys_before);
    let (_, after) = restored.login_tokens("lms", "elev.bo").await;
    assert_eq!(
        jwt_claims(after["id_token"].as_str().unwrap())["sub"],
        sub,
        "the same pairwise subject: the secrets came along"
    );
}

#[tokio::test]
async fn keys_rewrap_reseals_everything_under_a_new_kek() {
    let app = spawn_app().await;
    app.add_person("elev.cia", &["student"]).await;
    app.add_client("lms", |_| {}).await;
    succeeds(&cli(
        &app,
        &[
            "upstream",
            "add",
            "kommun",
            "--oidc",
            "https://idp.kommun.example",
            "--client-id",
            "portvakt",
            "--client-secret-stdin",
            "--link-on",
            "email=email",
            "--require-claim",
            "tid=kommun",
        ],
        Some("the-upstream-secret\n"),
    ));
    let (_, tokens) = app.login_tokens("lms", "elev.cia").await;
    let sub = jwt_claims(tokens["id_token"].as_str().unwrap())["sub"].clone();
    let keys_before = kids(&app).await;
    let (url, dir, issuer) = (
        app.config.database_url.clone(),
        app.dir.clone(),
        app.config.issuer.clone(),
    );
    // Every instance is stopped before a rewrap.
    drop(app);
    let old_kek = dir.path().join("kek.hex");
    let new_kek = dir.path().join("new-kek.hex");
    let env = |kek: &Path| {
        vec![
            ("PORTVAKT_DATABASE_URL", url.clone()),
            ("PORTVAKT_DATA_DIR", dir.path().display().to_string()),
            ("PORTVAKT_ISSUER", issuer.clone()),
            ("PORTVAKT_KEK_FILE", kek.display().to_string()),
            ("PORTVAKT_LISTEN", "127.0.0.1:0".to_string()),
        ]
    };
    let run = |kek: &Path, args: &[&str]| {
        let env = env(kek);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        portvakt(&env, args, None)
    };
    let rewrap = ["keys", "rewrap", "--new-kek", new_kek.to_str().unwrap()];
    // A held sync plan is sealed under the KEK too (it carries civic numbers).
    let db = portvakt::storage::Db::connect(&url, 2).await.unwrap();
    let run_id = held_plan(&db, &old_kek, b"{\"plan\": \"sealed\"}").await;
    db.close().await;

    let out = succeeds(&run(&old_kek, &rewrap));
    assert!(out.contains("created a new key-encryption key"), "{out}");
    assert!(out.contains("set kek_file"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_kek).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let db = portvakt::storage::Db::connect(&url, 2).await.unwrap();
    let (_, detail) = portvakt::storage::records::last_audit(&db, "keys.rewrap", "")
        .await
        .unwrap()
        .expect("the rewrap is audited");
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["resealed"]["signing_keys"], 2, "{detail}");
    assert_eq!(detail["resealed"]["upstream_secrets"], 1, "{detail}");
    assert!(detail["resealed"]["server_secrets"].as_u64().unwrap() >= 4);
    assert!(!detail.to_string().contains("the-upstream-secret"));
    assert_eq!(detail["resealed"]["held_plans"], 1, "{detail}");
    let (_, plan) = portvakt::storage::sync::run(&db, run_id)
        .await
        .unwrap()
        .unwrap();
    let label = portvakt::keys::kek::held_plan_label(&run_id.to_string());
    let new = portvakt::keys::Kek::load(&new_kek).unwrap();
    assert_eq!(
        new.open(&label, &plan.unwrap()).unwrap(),
        b"{\"plan\": \"sealed\"}",
        "the held plan opens with the new KEK"
    );

    // The old KEK opens nothing any more: a clear refusal, before serving.
    fails_with(
        &run(&old_kek, &["serve"]),
        &["does not open", "kek_file", old_kek.to_str().unwrap()],
    );
    // A rewrap from the wrong KEK changes nothing; nor does one to the current KEK.
    fails_with(&run(&old_kek, &rewrap), &["nothing was changed"]);
    fails_with(&run(&new_kek, &rewrap), &["is the current one"]);

    // Started with the new KEK, it is the same identity provider.
    let app = spawn_instance(&url, dir.clone(), None, |c| {
        c.kek_file = Some(new_kek.clone());
    })
    .await;
    assert_eq!(kids(&app).await, keys_before);
    let (_, tokens) = app.login_tokens("lms", "elev.cia").await;
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["sub"],
        sub,
        "the pairwise salt survived"
    );
    assert_eq!(
        app.state
            .authn
            .upstream_secret("kommun")
            .await
            .unwrap()
            .as_deref(),
        Some("the-upstream-secret")
    );
    db.close().await;
}

#[tokio::test]
async fn config_errors_name_the_setting_and_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let data = dir.path().to_str().unwrap().to_string();
    let check = |config: Option<&str>, env: &[(&str, &str)], needles: &[&str]| {
        let mut args = vec![];
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        args.push("migrate");
        let mut env = env.to_vec();
        env.push(("PORTVAKT_DATA_DIR", &data));
        let out = portvakt(&env, &args, None);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        fails_with(&out, needles);
    };
    // A misspelt key: the line, the section, and where the valid keys are listed.
    let typo = file(
        "typo.toml",
        "listen = \"127.0.0.1:0\"\n[server]\nheadr_timeout = 3\n",
    );
    check(
        Some(&typo),
        &[],
        &[
            "line 3",
            "[server] headr_timeout",
            "header_timeout",
            "portvakt.example.toml",
        ],
    );
    // A value of the wrong type.
    let ty = file("type.toml", "[tokens]\naccess_ttl = \"ten minutes\"\n");
    check(
        Some(&ty),
        &[],
        &["line 2", "[tokens] access_ttl", "invalid type"],
    );
    // A refused value: the setting, and what to set.
    let zero = file("zero.toml", "[tokens]\naccess_ttl = 0\n");
    check(
        Some(&zero),
        &[],
        &[
            "[tokens] access_ttl",
            "must be positive",
            "600 (the default)",
        ],
    );
    let share = file("share.toml", "[sync]\nmax_deactivation_share = 5.0\n");
    check(
        Some(&share),
        &[],
        &["[sync] max_deactivation_share", "between 0 and 1", "0.05"],
    );
    let argon = file("argon.toml", "[password]\nmemory_kib = 4\n");
    check(Some(&argon), &[], &["[password] memory_kib", "19456"]);
    // An environment override names the variable and its setting.
    check(
        None,
        &[("PORTVAKT_MODE", "prod")],
        &["PORTVAKT_MODE (mode)", "production"],
    );
    // Production: the issuer must be https, and says how.
    check(
        None,
        &[("PORTVAKT_MODE", "production")],
        &["issuer", "https://", "production mode"],
    );
    // A database URL of another kind: the fix, never the URL (it may hold a password).
    check(
        None,
        &[("PORTVAKT_DATABASE_URL", "mysql://root:hemligt@db/portvakt")],
        &["database_url", "sqlite://"],
    );
    let out = portvakt(
        &[("PORTVAKT_DATABASE_URL", "mysql://root:hemligt@db/portvakt")],
        &["migrate"],
        None,
    );
    assert!(!text(&out.stderr).contains("hemligt"));
    // A file that is not there.
    check(
        Some("/nonexistent/portvakt.toml"),
        &[],
        &["/nonexistent/portvakt.toml", "--config"],
    );
    // Files the settings name, read when the server starts.
    let kek = dir.path().join("kek.hex");
    let prod = [
        ("PORTVAKT_MODE", "production"),
        ("PORTVAKT_ISSUER", "https://idp.example.se"),
        ("PORTVAKT_KEK_FILE", kek.to_str().unwrap()),
        ("PORTVAKT_LISTEN", "127.0.0.1:0"),
        ("PORTVAKT_DATA_DIR", &data),
    ];
    let out = portvakt(&prod, &["serve"], None);
    fails_with(
        &out,
        &["invalid setting kek_file", "does not exist", "openssl rand"],
    );
    assert!(!kek.exists(), "production never makes a KEK");
    let tls = file(
        "tls.toml",
        "[tls]\ncert = \"/nonexistent/tls.pem\"\nkey = \"/nonexistent/tls.key\"\n",
    );
    let out = portvakt(
        &[
            ("PORTVAKT_LISTEN", "127.0.0.1:0"),
            ("PORTVAKT_DATA_DIR", &data),
            // Not the development KEK's creation notice: only the error.
            ("PORTVAKT_LOG", "error"),
        ],
        &["--config", &tls, "serve"],
        None,
    );
    fails_with(&out, &["[tls] cert", "/nonexistent/tls.pem"]);
}

/// A held run whose plan `plain` is sealed under the KEK in `kek` (as `sync::held` seals it).
async fn held_plan(db: &portvakt::storage::Db, kek: &Path, plain: &[u8]) -> i64 {
    use portvakt::storage::sync as store;
    let id = store::start_run(db, "register", "full", 1).await.unwrap();
    let label = portvakt::keys::kek::held_plan_label(&id.to_string());
    let sealed = portvakt::keys::Kek::load(kek)
        .unwrap()
        .seal(&label, plain)
        .unwrap();
    let empty = serde_json::json!({});
    let update = store::RunUpdate {
        status: "held",
        counts: &empty,
        report: &empty,
        diff: &serde_json::json!([]),
        reason: Some("test"),
        plan: Some(&sealed),
        plan_hash: None,
        watermark: None,
        finished: false,
    };
    store::update_run(db, id, &update, 2).await.unwrap();
    id
}

/// On SQLite, a write reaches the database file within seconds though nothing else commits:
/// `serve` checkpoints the WAL from a task every second, so the requests' commits need not
/// (each connection's own threshold is 20,000 pages). PostgreSQL has no such task.
#[tokio::test]
async fn sqlite_writes_reach_the_database_file_from_the_checkpoint_task() {
    let app = spawn_app().await;
    let tasks = &app.state.ops.tasks;
    // Housekeeping checkpoints once at start, then every minute: its first round is over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tasks.starts("housekeeping") < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "housekeeping did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if use_postgres() {
        assert_eq!(tasks.starts("wal_checkpoint"), 0);
        return;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let key = format!("wal-test-{}", portvakt::keys::random_token());
    portvakt::storage::throttle::record_failure(&app.db, &key, app.clock.now())
        .await
        .unwrap();
    // The database file alone, without its WAL: a copy opened as a database of its own
    // holds the row only once a checkpoint has moved it there.
    let file = app.dir.path().join("portvakt.db");
    let copy = app.dir.path().join("copy.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let _ = std::fs::remove_file(copy.with_extension("db-wal"));
        std::fs::copy(&file, &copy).unwrap();
        let url = format!("sqlite://{}?mode=rw", copy.display());
        let found = async {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await.ok()?;
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM login_throttle WHERE throttle_key = ?",
            )
            .bind(&key)
            .fetch_one(&mut c)
            .await
            .ok()
        }
        .await;
        if found == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the write stayed in the WAL: no checkpoint moved it into the database file"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
