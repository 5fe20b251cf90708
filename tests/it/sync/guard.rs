//! The guard: mass deactivations and emptied school units are held until approved or
//! rejected.

use super::*;

// ---------------------------------------------------------------------------------------
// 5. The guard.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_mass_deactivations_until_approved_or_rejected() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let n = persons.len();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);

    // Guardians only, so exactly these people are deactivated: > 5 %.
    let guardians: Vec<String> = children_by_guardian(&persons).into_keys().collect();
    let count = n * 6 / 100 + 1;
    let first: Vec<String> = guardians[..count].to_vec();
    let second: Vec<String> = guardians[count..2 * count].to_vec();
    for g in &first {
        reg.delete(Kind::Person, g);
    }
    let out = reg.sync(&app, &[]);
    let id = held_run_id(&out);
    let run = last_run(&app);
    assert_eq!(run["id"], id);
    assert_eq!(run["status"], "held");
    assert_eq!(run["counts"]["deactivations"], count, "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("deactivate"),
        "{run}"
    );
    for g in &first {
        assert!(active(&app, g).await, "nothing applied while held");
    }

    ok(&run_cli(&app, &["sync", "approve", &id.to_string()], None));
    for g in &first {
        assert!(!active(&app, g).await, "approved: deactivated");
    }
    assert_eq!(last_run(&app)["status"], "approved");
    // Approving twice is refused.
    assert!(
        !run_cli(&app, &["sync", "approve", &id.to_string()], None)
            .status
            .success()
    );

    // A second scenario, full this time, rejected.
    for g in &second {
        reg.delete(Kind::Person, g);
    }
    let out = reg.sync(&app, &["--full"]);
    let id2 = held_run_id(&out);
    assert_ne!(id, id2);
    ok(&run_cli(&app, &["sync", "reject", &id2.to_string()], None));
    for g in &second {
        assert!(active(&app, g).await, "rejected: still active");
    }
    let all = runs(&app);
    let statuses: BTreeMap<i64, String> = all
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(statuses[&id], "approved");
    assert_eq!(statuses[&id2], "rejected");
    // The register still says so: the next run is held again.
    let out = reg.sync(&app, &["--full"]);
    held_run_id(&out);
}

/// Two school units; every role of unit A moves to unit B.
fn two_units() -> (Dataset, Vec<Value>) {
    let h = uid();
    let (a, b) = (uid(), uid());
    let mut persons = Vec::new();
    for (i, unit) in [&a, &a, &b, &b, &b].iter().enumerate() {
        persons.push(student(&uid(), &format!("elev{i}"), "Ek", unit, &[]));
    }
    let teacher = uid();
    persons.push(person(
        &teacher,
        "Lärar",
        "Ek",
        "larare",
        &civic("19800101", 321),
    ));
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&a, "Ekskolan", "11111111", &h),
            school_unit(&b, "Björkskolan", "22222222", &h),
        ],
        &persons,
        &[],
        &[duty(&uid(), &teacher, &b, "Lärare")],
    )
    .unwrap();
    // Unit A's students, moved to B.
    let moved = persons[..2]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["enrolments"] = json!([enrolment(&b, 5, -30, 200)]);
            p
        })
        .collect();
    (data, moved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_a_full_plan_that_empties_a_school_unit() {
    let app = spawn_app().await;
    let (data, moved) = two_units();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@11111111"]);
    for p in moved {
        reg.upsert(Kind::Person, p);
    }
    let out = reg.sync(&app, &["--full"]);
    let id = held_run_id(&out);
    let run = last_run(&app);
    assert_eq!(run["status"], "held");
    assert_eq!(run["counts"]["deactivations"], 0);
    assert!(
        run["reason"].as_str().unwrap().contains("11111111"),
        "{run}"
    );
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@11111111"]);
    ok(&run_cli(&app, &["sync", "approve", &id.to_string()], None));
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@22222222"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_an_incremental_plan_that_empties_a_school_unit() {
    let app = spawn_app().await;
    let (data, moved) = two_units();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    for p in moved {
        reg.upsert(Kind::Person, p);
    }
    let out = reg.sync(&app, &[]);
    assert_eq!(last_run(&app)["kind"], "incremental");
    let id = held_run_id(&out);
    assert!(id > 0);
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@11111111"]);
}

/// The register changes a synced person's civic number: the account now answers another
/// person's BankID. The change ends the person's sessions and is audited (the person, never
/// a number); many such changes count against the guard like deactivations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_civic_number_ends_sessions_is_audited_and_counts_against_the_guard() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);

    let students: Vec<&Value> = persons.iter().filter(|p| is_student(p)).collect();
    let first = students[0];
    let old_civic = first["civicNo"]["value"].as_str().unwrap().to_string();
    let person = portvakt::directory::by_key(&app.db, &id_of(first))
        .await
        .unwrap()
        .pop()
        .expect("the synced person");
    let now = app.clock.now();
    let method = portvakt::authn::MethodUse::new("bankid", portvakt::authn::acr::TWO_FACTOR, now);
    let (cookie, _) = app
        .state
        .authn
        .start_session(&person.id, method, None, now)
        .await
        .unwrap();

    let new_civic = civic("20140101", 9_001);
    let mut changed = first.clone();
    changed["civicNo"]["value"] = json!(new_civic);
    reg.upsert(Kind::Person, changed);
    reg.sync_ok(&app, &[]);
    let run = last_run(&app);
    assert_eq!(run["status"], "applied", "{run}");
    assert_eq!(run["counts"]["civic_changes"], 1, "{run}");
    assert!(
        app.state
            .authn
            .session(Some(&cookie), app.clock.now())
            .await
            .unwrap()
            .is_none(),
        "the session of the re-bound account ended"
    );
    let audit = portvakt::storage::records::recent_audit(&app.db, 50)
        .await
        .unwrap();
    let event = audit
        .iter()
        .find(|(_, kind, _, _)| kind == "person.civic_no_changed")
        .expect("an audit event");
    assert_eq!(event.3, person.id);
    for (_, _, actor, detail) in &audit {
        for number in [&old_civic, &new_civic] {
            assert!(!detail.contains(number.as_str()) && !actor.contains(number.as_str()));
        }
    }

    // More than 5 % re-bound at once waits for an administrator.
    let count = persons.len() * 6 / 100 + 1;
    for (i, p) in students[1..=count].iter().enumerate() {
        let mut changed = (*p).clone();
        changed["civicNo"]["value"] = json!(civic("20140101", 9_100 + i as u32));
        reg.upsert(Kind::Person, changed);
    }
    let id = held_run_id(&reg.sync(&app, &[]));
    let run = last_run(&app);
    assert_eq!(run["id"], id);
    assert_eq!(run["counts"]["civic_changes"], count, "{run}");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("change the civic number of {count}")),
        "{run}"
    );
}

/// Two runs of 4 % each cannot do together what one run of 8 % could not: the second waits
/// while the first is less than 24 hours old. A day later the same deactivations go ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_counts_the_deactivations_of_the_last_24_hours() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let n = persons.len();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    // A full run counts the active people exactly (an incremental one only as far as its
    // guard needs): the base the held run's message must name.
    reg.sync_ok(&app, &["--full"]);
    let active_before = last_run(&app)["counts"]["active_before"].as_u64().unwrap();
    assert!(active_before > 0);

    let guardians: Vec<String> = children_by_guardian(&persons).into_keys().collect();
    let count = n * 4 / 100;
    for g in &guardians[..count] {
        reg.delete(Kind::Person, g);
    }
    reg.sync_ok(&app, &[]);
    assert_eq!(last_run(&app)["counts"]["deactivations"], count);

    for g in &guardians[count..2 * count] {
        reg.delete(Kind::Person, g);
    }
    let id = held_run_id(&reg.sync(&app, &[]));
    let run = last_run(&app);
    assert_eq!(run["id"], id);
    let reason = run["reason"].as_str().unwrap();
    assert!(reason.contains("last 24 hours"), "{run}");
    assert!(
        reason.contains(&format!("{} of {active_before} people", 2 * count)),
        "the exact count, though the run counted only as far as its guard needed: {run}"
    );
    for g in &guardians[count..2 * count] {
        assert!(active(&app, g).await, "nothing applied while held");
    }
    ok(&run_cli(&app, &["sync", "reject", &id.to_string()], None));

    // A day later (the app's clock; the run in-process on it) the window has passed.
    app.clock.advance(25 * 3600);
    let client = reg.client(100, 0);
    let out = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .unwrap();
    assert!(
        matches!(out.status, portvakt::sync::run::Status::Applied),
        "{:?}",
        last_run(&app)
    );
    for g in &guardians[count..2 * count] {
        assert!(!active(&app, g).await, "deactivated a day later");
    }
}
