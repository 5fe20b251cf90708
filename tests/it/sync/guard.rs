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
