//! Full and incremental runs over a generated municipality: a second full run changes
//! nothing; updates and deletions, down to a guardian whose only child is deleted.

use super::*;

// ---------------------------------------------------------------------------------------
// 2. A generated municipality: the first full run creates everyone, the next changes nothing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_municipality_syncs_and_a_second_full_run_changes_nothing() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let n = persons.len();
    assert!(n >= 290, "{n}");
    let reg = Register::start(data).await;

    reg.sync_ok(&app, &["--full"]);
    let run = last_run(&app);
    assert_eq!(run["kind"], "full");
    assert_eq!(run["status"], "applied");
    assert_eq!(run["counts"]["persons_created"], n, "{}", run["counts"]);
    assert_eq!(run["counts"]["deactivations"], 0);

    let first = directory(&app).await;
    assert_eq!(first.len(), n);
    for p in &persons {
        let (username, eppn, given, family, is_active) = &first[&person_id(SOURCE, &id_of(p))];
        assert_eq!(*username, username_of(p), "usernames from the register");
        assert_eq!(given, p["givenName"].as_str().unwrap());
        assert_eq!(family, p["familyName"].as_str().unwrap());
        assert!(*is_active, "{} should be active", username);
        assert_generated_eppn(eppn, &given.to_lowercase());
    }

    reg.sync_ok(&app, &["--full"]);
    let run = last_run(&app);
    assert_eq!(run["kind"], "full");
    assert_eq!(run["status"], "applied");
    let c = &run["counts"];
    assert_eq!(c["persons_unchanged"], n, "{c}");
    for zero in [
        "persons_created",
        "persons_updated",
        "deactivations",
        "reactivations",
        "groups_changed",
        "groups_removed",
        "duties_changed",
        "duties_removed",
        "organisations_changed",
        "organisations_removed",
    ] {
        assert_eq!(c[zero], 0, "{zero}: {c}");
    }
    assert_eq!(directory(&app).await, first);

    // With a watermark, the default is incremental, and nothing changed since.
    reg.sync_ok(&app, &[]);
    let run = last_run(&app);
    assert_eq!(run["kind"], "incremental");
    assert_eq!(run["counts"]["persons_updated"], 0, "{run}");
    assert_eq!(run["counts"]["persons_created"], 0, "{run}");
    assert_eq!(directory(&app).await, first);
}

// ---------------------------------------------------------------------------------------
// 3. Incremental: updates and deletions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_applies_updates_and_deletions() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let groups = records_of(&data, Kind::Group);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);

    // A staff member marries; a student whose guardians keep another child leaves; a
    // teaching group is dissolved.
    let by_guardian = children_by_guardian(&persons);
    let mut renamed = persons
        .iter()
        .find(|p| username_of(p).starts_with("pers"))
        .unwrap()
        .clone();
    renamed["familyName"] = json!("Åkerlund-Öst");
    let leaving = persons
        .iter()
        .find(|p| {
            is_student(p)
                && p["responsibles"].as_array().is_some_and(|rs| {
                    !rs.is_empty()
                        && rs.iter().all(|r| {
                            by_guardian
                                .get(r["person"]["id"].as_str().unwrap())
                                .is_some_and(|c| c.len() > 1)
                        })
                })
        })
        .expect("a student with siblings");
    let dissolved = groups
        .iter()
        .find(|g| g["groupType"] == "Undervisning")
        .unwrap();
    let dissolved_name = dissolved["displayName"].as_str().unwrap().to_string();
    let member = dissolved["groupMemberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["person"]["id"].as_str().unwrap().to_string())
        .find(|m| *m != id_of(leaving))
        .unwrap();
    assert!(group_names(&show(&app, &member)).contains(&dissolved_name));

    reg.upsert(Kind::Person, renamed.clone());
    reg.delete(Kind::Person, &id_of(leaving));
    reg.delete(Kind::Group, dissolved["id"].as_str().unwrap());
    reg.sync_ok(&app, &[]);

    let run = last_run(&app);
    assert_eq!(run["kind"], "incremental", "{run}");
    assert_eq!(run["status"], "applied", "{run}");
    let c = &run["counts"];
    assert_eq!(c["persons_updated"], 1, "{c}");
    assert_eq!(c["persons_created"], 0, "{c}");
    assert_eq!(c["deactivations"], 1, "{c}");
    assert_eq!(c["groups_removed"], 1, "{c}");

    let shown = show(&app, &username_of(&renamed));
    assert_eq!(shown["family_name"], "Åkerlund-Öst");
    assert_eq!(shown["active"], true);
    assert!(
        !active(&app, &id_of(leaving)).await,
        "the leaver is deactivated"
    );
    assert!(
        !group_names(&show(&app, &member)).contains(&dissolved_name),
        "the dissolved group is gone"
    );
    // Everyone else is untouched.
    let dir = directory(&app).await;
    let inactive: Vec<_> = dir.values().filter(|p| !p.4).collect();
    assert_eq!(inactive.len(), 1, "{inactive:?}");
}

/// A child's deletion read incrementally moves the guardian whose only child it was, as a
/// full run would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_deletion_of_an_only_child_deactivates_the_guardian() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let by_guardian = children_by_guardian(&persons);
    let referenced: BTreeSet<String> = persons
        .iter()
        .flat_map(|p| {
            p["responsibles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r["person"]["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    // A guardian with one child, named by no one else in any relation.
    let (guardian, child) = by_guardian
        .iter()
        .find(|(g, c)| {
            c.len() == 1
                && persons
                    .iter()
                    .filter(|p| {
                        p["responsibles"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|r| r["person"]["id"] == g.as_str())
                    })
                    .count()
                    == 1
        })
        .map(|(g, c)| (g.clone(), c[0].clone()))
        .expect("a guardian of one child");
    assert!(referenced.contains(&guardian));
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    assert!(active(&app, &guardian).await);

    reg.delete(Kind::Person, &child);
    reg.sync_ok(&app, &[]);
    assert_eq!(last_run(&app)["kind"], "incremental");
    assert!(!active(&app, &child).await);
    let incremental = active(&app, &guardian).await;

    // What a full run says about the same register.
    reg.sync_ok(&app, &["--full"]);
    let full = active(&app, &guardian).await;
    assert!(!full, "a full run deactivates the guardian of no child");
    assert_eq!(
        incremental, full,
        "the incremental run must agree with the full run about the guardian"
    );
}
