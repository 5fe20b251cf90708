//! Runs that fail (at a source page, after they started, in an approval's apply) change
//! nothing or are recorded failed with the reason, and release their lease.

use super::*;

// ---------------------------------------------------------------------------------------
// 4. A failing source changes nothing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_at_a_page_changes_nothing_and_is_recorded_failed() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    let before = directory(&app).await;

    let mut renamed = persons[3].clone();
    renamed["familyName"] = json!("Bytt");
    reg.upsert(Kind::Person, renamed.clone());
    let gone = persons.iter().rev().find(|p| !is_student(p)).unwrap();
    reg.delete(Kind::Person, &id_of(gone));

    // The CLI: the groups fail with a 400 (not retried) after the persons were read.
    reg.mock.fail_page("/groups", 1, 400, 1);
    let out = reg.sync(&app, &[]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("nothing was changed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(directory(&app).await, before);
    let run = last_run(&app);
    assert_eq!(run["status"], "failed", "{run}");

    // A full read with small pages whose third page of persons keeps failing (503, retried
    // until the client gives up).
    reg.mock.fail_page("/persons", 3, 503, 10);
    let client = reg.client(50, 2);
    let err = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .expect_err("the run fails");
    assert!(
        matches!(err, portvakt::sync::run::SyncError::Source(_)),
        "{err}"
    );
    assert_eq!(directory(&app).await, before);
    let all = runs(&app);
    assert_eq!(all[0]["status"], "failed");
    assert_eq!(all[0]["kind"], "full");
    assert_eq!(all[1]["status"], "failed");

    // Once the register answers again, the changes arrive.
    let out = reg.sync(&app, &[]);
    ok(&out);
    let after = directory(&app).await;
    assert_eq!(after[&person_id(SOURCE, &id_of(&renamed))].3, "Bytt");
    assert!(!after[&person_id(SOURCE, &id_of(gone))].4);
}

/// One statement on the app's database, on a connection of its own.
async fn execute(app: &TestApp, statement: &'static str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The database fails a read after the run was recorded (here: the duties table is away
/// when the directory's state is loaded, which a full run does while it reads the
/// register). The run is recorded `failed` with the reason, not left `running`, and its
/// lease is released so the next run goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_after_it_started_is_recorded_failed_with_the_reason() {
    let app = spawn_app().await;
    let reg = Register::start(municipality(50)).await;
    let client = reg.client(100, 0);
    let mut runner = portvakt::sync::run::Runner::new(env(&app), SOURCE);
    runner.username_context = Some(USERNAME_CONTEXT);
    execute(&app, "ALTER TABLE duties RENAME TO duties_away")
        .await
        .unwrap();
    let err = runner
        .run(
            RunKind::Full,
            |_| async move {
                let snapshot = client.snapshot(&|_| {}).await.map_err(|e| e.to_string())?;
                Ok(portvakt::sync::run::Fetched::Full(snapshot))
            },
            &|_| {},
            std::future::pending(),
        )
        .await
        .expect_err("the run fails");
    assert!(
        matches!(err, portvakt::sync::run::SyncError::Storage(_)),
        "{err}"
    );
    execute(&app, "ALTER TABLE duties_away RENAME TO duties")
        .await
        .unwrap();

    let run = last_run(&app);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["finished_at"].is_i64(), "{run}");
    let reason = run["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("duties"), "{run}");
    assert!(directory(&app).await.is_empty(), "nothing was applied");

    // The lease is free: the next run goes ahead and applies.
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(last_run(&app)["status"], "applied");
}

/// An approval whose apply stops part-way (here: the refresh-token table is away when the
/// deactivations revoke tokens) is recorded `failed` with the reason, not left `approving`
/// for ever, and its lease is released so the next run goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_failing_in_the_apply_is_recorded_failed_with_the_reason() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    let guardians: Vec<String> = children_by_guardian(&persons).into_keys().collect();
    for g in &guardians[..persons.len() * 6 / 100 + 1] {
        reg.delete(Kind::Person, g);
    }
    let id = held_run_id(&reg.sync(&app, &[]));

    execute(
        &app,
        "ALTER TABLE refresh_tokens RENAME TO refresh_tokens_away",
    )
    .await
    .unwrap();
    let out = run_cli(&app, &["sync", "approve", &id.to_string()], None);
    execute(
        &app,
        "ALTER TABLE refresh_tokens_away RENAME TO refresh_tokens",
    )
    .await
    .unwrap();
    assert!(!out.status.success(), "the approval fails");
    let run = last_run(&app);
    assert_eq!(run["id"], id, "{run}");
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("applying stopped") && reason.contains("refresh_tokens"),
        "{run}"
    );

    // The lease is free and the plan is made again: held again, then approved.
    let again = held_run_id(&reg.sync(&app, &[]));
    assert_ne!(again, id);
    ok(&run_cli(
        &app,
        &["sync", "approve", &again.to_string()],
        None,
    ));
    assert_eq!(last_run(&app)["status"], "approved");
}
