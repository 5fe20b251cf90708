//! What a run keeps and ends over time: the summer (a returning student kept, a leaver
//! ended), local people never touched, and the purge after the retention period with
//! identifiers never reused.

use super::sample::HUVUDMAN;
use super::*;

// ---------------------------------------------------------------------------------------
// 6. The summer.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summer_keeps_a_returning_student_and_ends_a_leaver() {
    let app = spawn_app().await;
    let h = uid();
    let (a, b) = (uid(), uid());
    let mut persons: Vec<Value> = (0..25)
        .map(|i| student(&uid(), &format!("elev{i}"), "Ek", &a, &[]))
        .collect();
    let (returning, leaver) = (uid(), uid());
    persons.push(student(&returning, "sommar", "Sommar", &a, &[]));
    persons.push(student(&leaver, "slutat", "Slutat", &a, &[]));
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&a, "Ekskolan", "11111111", &h),
            school_unit(&b, "Björkskolan", "22222222", &h),
        ],
        &persons,
        &[],
        &[],
    )
    .unwrap();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    assert!(active(&app, &returning).await && active(&app, &leaver).await);

    // Ended 30 days ago at A, the next year starts in 20 days at B.
    let mut p = persons[25].clone();
    p["enrolments"] = json!([enrolment(&a, 5, -300, -30), enrolment(&b, 6, 20, 300)]);
    reg.upsert(Kind::Person, p);
    // Ended 100 days ago, nothing next.
    let mut p = persons[26].clone();
    p["enrolments"] = json!([enrolment(&a, 5, -400, -100)]);
    reg.upsert(Kind::Person, p);

    for extra in [&[][..], &["--full"][..]] {
        reg.sync_ok(&app, extra);
        let run = last_run(&app);
        assert_eq!(run["status"], "applied", "{run}");
        let summer = show(&app, "sommar");
        assert_eq!(summer["active"], true, "{summer}");
        assert_eq!(
            strings(&summer["roles"]),
            ["student@11111111"],
            "last year's school over the summer, not yet the next: {summer}"
        );
        assert_eq!(strings(&summer["release"]["sisSchoolGrade"]), ["5"]);
        let gone = show(&app, "slutat");
        assert_eq!(gone["active"], false, "{gone}");
        assert!(strings(&gone["roles"]).is_empty(), "{gone}");
    }
    // The first (incremental) run did the deactivation; the full one agrees.
    let all = runs(&app);
    assert_eq!(all[1]["kind"], "incremental");
    assert_eq!(all[1]["counts"]["deactivations"], 1, "{}", all[1]);
    assert_eq!(all[0]["counts"]["deactivations"], 0, "{}", all[0]);
}

// ---------------------------------------------------------------------------------------
// 7. Local people are never touched.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_admin_survives_full_syncs_and_still_logs_in() {
    let app = spawn_app().await;
    ok(&run_cli(
        &app,
        &[
            "user",
            "add",
            "--username",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(PASSWORD),
    ));
    let before = show(&app, "admin");
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    // A second full run after a few people left the register (under the guard's limit).
    for p in persons.iter().filter(|p| !is_student(p)).take(3) {
        reg.delete(Kind::Person, &id_of(p));
    }
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(last_run(&app)["status"], "applied");

    let after = show(&app, "admin");
    assert_eq!(after, before, "a sync never touches a local person");
    assert_eq!(after["active"], true);
    assert_eq!(after["source"], "local");
    assert_eq!(strings(&after["roles"]), ["admin"]);
    app.add_client("rp", |_| {}).await;
    let (_, tokens) = app.login_tokens("rp", "admin").await;
    let (s, info) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{info}");
}

// ---------------------------------------------------------------------------------------
// Purge after the retention period; identifiers never reused.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_left_are_purged_after_retention_and_their_identifiers_stay_reserved() {
    let app = spawn_app().await;
    let config = app.dir.path().join("purge.toml");
    std::fs::write(&config, "[sync]\nretention_days = 0\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let unit = uid();
    let (leaver, stayer) = (uid(), uid());
    let pupils: Vec<Value> = (0..30)
        .map(|i| {
            let id = match i {
                0 => leaver.clone(),
                1 => stayer.clone(),
                _ => uid(),
            };
            student(&id, &format!("elevp{i}"), "Berg", &unit, &[])
        })
        .collect();
    let data = Dataset::from_values(
        &[
            huvudman(HUVUDMAN, "Grönköpings kommun"),
            school_unit(&unit, "Ekskolan", "11112222", HUVUDMAN),
        ],
        &pupils,
        &[],
        &[],
    )
    .unwrap();
    let register = Register::start(data).await;
    register.sync_ok(&app, &["--config", &config]);
    let gone = show(&app, "elevp0");
    let gone_eppn = gone["eppn"].as_str().unwrap().to_string();

    // The register drops the pupil: deactivated now, purged by a run after the retention
    // period (0 days: the next run a second later).
    register.delete(Kind::Person, &leaver);
    register.sync_ok(&app, &["--config", &config]);
    assert!(!active(&app, &leaver).await);
    assert_eq!(show(&app, "elevp0")["active"], false);
    // A second later (the clock moves; no sleep): the same full run as
    // `sync run --ss12000 URL --username-context CTX --config purge.toml --full`, in-process
    // on the app's clock, with the configuration that command would load.
    app.clock.advance(1);
    let cli_config =
        portvakt::config::Config::load(Some(std::path::Path::new(&config)), |k| match k {
            "PORTVAKT_DATABASE_URL" => Some(app.config.database_url.clone()),
            "PORTVAKT_DATA_DIR" => Some(app.config.data_dir.display().to_string()),
            "PORTVAKT_ISSUER" => Some(app.config.issuer.clone()),
            _ => None,
        })
        .unwrap();
    let client = portvakt::sync::ad_hoc_client(&register.url, None).unwrap();
    let outcome = run_in(
        env_with(&app, &cli_config),
        &client,
        Some(&register.context),
        RunKind::Full,
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, portvakt::sync::run::Status::Applied);
    let out = run_cli(&app, &["person", "show", "elevp0", "--json"], None);
    assert!(!out.status.success(), "the purged person is gone");
    assert!(
        text(&out.stderr).contains("no person"),
        "{}",
        text(&out.stderr)
    );
    assert!(show(&app, "elevp1")["active"] == true, "the others stay");

    // A newcomer whose register username is the purged one gets a generated username and
    // eppn: identifiers are never given to someone else.
    let newcomer = uid();
    let mut fresh = student(&newcomer, "elevp0", "Ny", &unit, &[]);
    // Without meta.modified the mock stamps it now, so the incremental run sees it.
    fresh.as_object_mut().unwrap().remove("meta");
    register.upsert(Kind::Person, fresh);
    let out = register.sync_ok(&app, &["--config", &config]);
    assert!(out.contains("1 created"), "{out}");
    let stored = directory(&app).await;
    let (username, eppn, ..) = &stored[&person_id(SOURCE, &newcomer)];
    assert_ne!(username, "elevp0");
    assert_ne!(eppn, &gone_eppn);
    assert!(
        username.starts_with('u') && username.len() == 9,
        "{username}"
    );
}
