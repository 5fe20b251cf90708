//! Held plans and the schedule: a held plan pauses its source until an administrator decides;
//! a rejected plan is not held again (the next different plan is); a held plan is sealed, so
//! the run records carry no civic number, and approving still works. The schedule's looks are
//! taken in-process on the app's clock, which the tests move.

use super::*;
use portvakt::sync::Scheduled;
use portvakt::sync::run::Status;

/// The register as a configured source named [`SOURCE`]. It is not given to the app, whose
/// own schedule would race the test: the test takes the schedule's looks itself.
fn configured(reg: &Register) -> portvakt::config::SourceConfig {
    toml::from_str(&format!(
        "base_url = \"{}\"\nusername_context = \"{USERNAME_CONTEXT}\"\n\
         incremental_every = 900\nfull_every = 86400\n",
        reg.url
    ))
    .unwrap()
}

/// One look of the schedule at the source.
async fn look(app: &TestApp, s: &portvakt::config::SourceConfig) -> Scheduled {
    portvakt::sync::scheduled(env(app), SOURCE, s)
        .await
        .unwrap()
}

fn ran(looked: Scheduled) -> portvakt::sync::run::Outcome {
    match looked {
        Scheduled::Ran(outcome) => *outcome,
        other => panic!("expected a run, the schedule did {other:?}"),
    }
}

/// Deletes more than 5 % of the register's people (guardians only, so exactly these are
/// deactivated); their register ids.
fn delete_many(reg: &Register, persons: &[Value]) -> Vec<String> {
    let guardians: Vec<String> = children_by_guardian(persons).into_keys().collect();
    let gone = guardians[..persons.len() * 6 / 100 + 1].to_vec();
    for g in &gone {
        reg.delete(Kind::Person, g);
    }
    gone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_plan_pauses_the_schedule_and_a_rejected_plan_is_not_held_again() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    let s = configured(&reg);

    // The first look runs a full sync; a minute later nothing is due.
    assert_eq!(ran(look(&app, &s).await).status, Status::Applied);
    app.clock.advance(60);
    assert!(matches!(look(&app, &s).await, Scheduled::NotDue));

    // The register loses many people: the next incremental run is held.
    let gone = delete_many(&reg, &persons);
    app.clock.advance(900);
    let out = ran(look(&app, &s).await);
    assert!(matches!(out.status, Status::Held(_)), "{:?}", out.status);
    let held = out.run_id;
    let recorded = runs(&app).len();

    // Paused: hours later the schedule reads nothing and records nothing.
    let requests = reg.mock.requests();
    for _ in 0..3 {
        app.clock.advance(3600);
        match look(&app, &s).await {
            Scheduled::Paused { run, .. } => assert_eq!(run, held),
            other => panic!("expected the pause, the schedule did {other:?}"),
        }
    }
    assert_eq!(reg.mock.requests(), requests, "a paused source is not read");
    assert_eq!(runs(&app).len(), recorded, "a paused source records no run");

    // Rejected: the same plan, read again, is skipped (no record, nothing applied) ...
    ok(&run_cli(&app, &["sync", "reject", &held.to_string()], None));
    app.clock.advance(60);
    let out = ran(look(&app, &s).await);
    assert_eq!(out.status, Status::Skipped(held));
    assert_eq!(
        runs(&app).len(),
        recorded,
        "a skipped plan leaves no run record"
    );
    assert_eq!(last_run(&app)["status"], "rejected");
    for g in &gone {
        assert!(active(&app, g).await, "a rejected plan is not applied");
    }
    // ... and the source is not read again before its interval.
    let requests = reg.mock.requests();
    app.clock.advance(600);
    assert!(matches!(look(&app, &s).await, Scheduled::NotDue));
    assert_eq!(reg.mock.requests(), requests);
    app.clock.advance(300);
    assert_eq!(ran(look(&app, &s).await).status, Status::Skipped(held));

    // The register changes again: a different plan is not skipped. It still deactivates
    // the same people, so the guard holds it, for a decision of its own.
    let student = persons.iter().find(|p| is_student(p)).unwrap();
    let mut renamed = student.clone();
    renamed["familyName"] = json!("Nyberg");
    reg.upsert(Kind::Person, renamed);
    app.clock.advance(900);
    let out = ran(look(&app, &s).await);
    assert!(matches!(out.status, Status::Held(_)), "{:?}", out.status);
    let again = out.run_id;
    assert_ne!(again, held);

    // Approved: applied, and the schedule resumes.
    ok(&run_cli(
        &app,
        &["sync", "approve", &again.to_string()],
        None,
    ));
    for g in &gone {
        assert!(!active(&app, g).await, "approved: deactivated");
    }
    let after = directory(&app).await;
    assert_eq!(after[&person_id(SOURCE, &id_of(student))].3, "Nyberg");
    app.clock.advance(900);
    assert_eq!(ran(look(&app, &s).await).status, Status::Applied);
}

/// Every civic number in the register, in the forms a store might hold (12 and 10 digits).
fn civic_numbers(persons: &[Value]) -> Vec<String> {
    persons
        .iter()
        .filter_map(|p| p["civicNo"]["value"].as_str())
        .flat_map(|c| [c.to_string(), c[2..].to_string()])
        .collect()
}

/// The stored text of a run record's columns.
async fn stored_run(app: &TestApp, id: i64) -> BTreeMap<&'static str, String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    let row = sqlx::query(
        "SELECT plan, plan_hash, diff, counts, report, reason FROM sync_runs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    ["plan", "plan_hash", "diff", "counts", "report", "reason"]
        .into_iter()
        .map(|c| {
            let v: Option<String> = row.try_get(c).unwrap();
            (c, v.unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_plan_is_sealed_and_carries_no_civic_number() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    let gone = delete_many(&reg, &persons);
    // A new pupil too, so the held plan holds a civic number to write.
    let mut newcomer = persons.iter().find(|p| is_student(p)).unwrap().clone();
    newcomer["id"] = json!(uid());
    newcomer["externalIdentifiers"][0]["value"] = json!("elevny");
    newcomer["familyName"] = json!("Nykomling");
    newcomer["civicNo"]["value"] = json!(civic("20140303", 777));
    // Stamped as changed now by the register.
    newcomer.as_object_mut().unwrap().remove("meta");
    reg.upsert(Kind::Person, newcomer.clone());
    let mut all = persons.clone();
    all.push(newcomer.clone());
    let id = held_run_id(&reg.sync(&app, &[]));

    let stored = stored_run(&app, id).await;
    assert!(
        stored["plan"].len() > 1000,
        "the plan is kept: {}",
        stored["plan"].len()
    );
    assert!(
        serde_json::from_str::<Value>(&stored["plan"]).is_err(),
        "the held plan is not readable JSON"
    );
    assert_eq!(stored["plan_hash"].len(), 64);
    let numbers = civic_numbers(&all);
    assert!(numbers.len() > 300);
    for (column, text) in &stored {
        for n in &numbers {
            assert!(
                !text.contains(n.as_str()),
                "sync_runs.{column} holds a civic number"
            );
        }
    }

    // Another KEK cannot open it: the approval is refused and the run stays held.
    let other_kek = app.dir.path().join("other-kek.hex");
    std::fs::write(&other_kek, "11".repeat(32)).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"));
    cmd.args(["sync", "approve", &id.to_string()])
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_KEK_FILE", &other_kek)
        .env_remove("PORTVAKT_CONFIG");
    let refused = tokio::task::block_in_place(|| cmd.output().unwrap());
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains(&format!("held plan of run {id} cannot be opened")),
        "{err}"
    );
    assert_eq!(last_run(&app)["status"], "held");

    // With the right one, approving works.
    ok(&run_cli(&app, &["sync", "approve", &id.to_string()], None));
    assert_eq!(last_run(&app)["status"], "approved");
    for g in &gone {
        assert!(!active(&app, g).await);
    }
    let after = directory(&app).await;
    assert_eq!(after[&person_id(SOURCE, &id_of(&newcomer))].3, "Nykomling");
    assert_eq!(
        stored_run(&app, id).await["plan"],
        "",
        "a decided plan is not kept"
    );
}
