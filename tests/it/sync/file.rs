//! File import (issue 17): an SS 12000 JSON dump through `sync run --file`, planned, guarded
//! and applied like a run of the API.

use super::*;

/// The register's list responses, page by page, saved as files (`persons-001.json`, …) in
/// `dir`: a dump as an administrator would make it.
async fn dump_to(reg: &Register, dir: &std::path::Path, limit: usize) {
    let http = reqwest::Client::new();
    for plural in ["organisations", "persons", "groups", "duties"] {
        let mut token: Option<String> = None;
        for n in 1.. {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let body = http
                .get(format!("{}{plural}", reg.url))
                .query(&query)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let page: Value = serde_json::from_str(&body).unwrap();
            std::fs::write(dir.join(format!("{plural}-{n:03}.json")), &body).unwrap();
            token = page["pageToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(String::from);
            if token.is_none() {
                break;
            }
        }
    }
}

/// One document with a record per line: record `i` of list `k` is on a line the test can
/// name (see [`line_of`]).
fn document(lists: &[(&str, &[Value])]) -> String {
    let mut s = String::from("{\n");
    for (k, (name, records)) in lists.iter().enumerate() {
        s += &format!("\"{name}\": [\n");
        let lines: Vec<String> = records.iter().map(Value::to_string).collect();
        s += &lines.join(",\n");
        s += if k + 1 < lists.len() {
            "\n],\n"
        } else {
            "\n]\n"
        };
    }
    s + "}\n"
}

/// The line of record `i` of list `k` in a [`document`] of lists of these lengths.
fn line_of(lengths: &[usize], k: usize, i: usize) -> usize {
    // "{", then per list: its opening line, its records, its closing line.
    1 + lengths[..k].iter().map(|n| n + 2).sum::<usize>() + 1 + i + 1
}

fn import(app: &TestApp, path: &std::path::Path, extra: &[&str]) -> Output {
    let path = path.to_str().unwrap();
    let mut args = vec![
        "sync",
        "run",
        "--file",
        path,
        "--username-context",
        USERNAME_CONTEXT,
    ];
    args.extend_from_slice(extra);
    run_cli(app, &args, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apis_list_responses_saved_as_files_import_as_the_api_reads_them() {
    let data = municipality(60);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    let dir = tempfile::tempdir().unwrap();
    // Small pages: several files per collection, read in name order.
    dump_to(&reg, dir.path(), 25).await;
    assert!(dir.path().join("persons-002.json").exists());

    let api = spawn_app().await;
    reg.sync_ok(&api, &["--full"]);
    let from_file = spawn_app().await;
    // Under the API's source name, so internal ids and generated identifiers are the same.
    let out = ok(&import(&from_file, dir.path(), &["--source", SOURCE]));
    assert!(
        out.contains(&format!("{} created, 0 updated", persons.len())),
        "{out}"
    );
    for p in persons.iter().step_by(7) {
        let key = id_of(p);
        assert_eq!(show(&from_file, &key), show(&api, &key), "{key}");
    }
    assert_eq!(last_run(&from_file)["kind"], "full");

    // The same files again change nothing.
    let again = ok(&import(&from_file, dir.path(), &["--source", SOURCE]));
    assert!(
        again.contains(&format!(
            "0 created, 0 updated, {} unchanged, 0 deactivated",
            persons.len()
        )),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_named_by_file_and_line_and_stop_the_import_unless_skipped() {
    let app = spawn_app().await;
    let data = municipality(40);
    let orgs = records_of(&data, Kind::Organisation);
    let groups = records_of(&data, Kind::Group);
    let duties = records_of(&data, Kind::Duty);
    let mut persons = persons_of(&data);
    // A person without an id, and a student whose enrolment has a date nobody can read.
    let no_id = persons
        .iter()
        .position(|p| p["enrolments"].as_array().is_none_or(|e| e.is_empty()))
        .unwrap();
    persons[no_id].as_object_mut().unwrap().remove("id");
    let bad_date = persons
        .iter()
        .position(|p| p["enrolments"].as_array().is_some_and(|e| !e.is_empty()))
        .unwrap();
    persons[bad_date]["enrolments"][0]["startDate"] = json!("2024-13-45");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("register.json");
    let lists: [(&str, &[Value]); 4] = [
        ("organisations", &orgs),
        ("persons", &persons),
        ("groups", &groups),
        ("duties", &duties),
    ];
    std::fs::write(&path, document(&lists)).unwrap();
    let lengths: Vec<usize> = lists.iter().map(|(_, r)| r.len()).collect();
    let shown = path.display().to_string();

    let refused = import(&app, &path, &[]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains(&format!(
            "{shown}:{}: Person: missing id",
            line_of(&lengths, 1, no_id)
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{shown}:{}: Person:",
            line_of(&lengths, 1, bad_date)
        )),
        "{err}"
    );
    assert!(
        err.contains("2 bad records") && err.contains("nothing was applied"),
        "{err}"
    );
    assert!(runs(&app).is_empty(), "no run was started");
    assert!(
        portvakt::storage::persons::list(&app.db)
            .await
            .unwrap()
            .is_empty()
    );

    let out = import(&app, &path, &["--skip-bad-rows"]);
    let applied = ok(&out);
    assert!(
        applied.contains(&format!("{} created", persons.len() - 2)),
        "{applied}"
    );
    // Still named, and counted in the run's report.
    assert!(text(&out.stderr).contains("Person: missing id"));
    let run = last_run(&app);
    assert_eq!(run["source"], portvakt::sync::file::FILE_SOURCE);
    assert_eq!(run["report"]["skipped"]["Person: missing id"], 1, "{run}");

    let again = ok(&import(&app, &path, &["--skip-bad-rows"]));
    assert!(again.contains("0 created, 0 updated"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_a_file_that_drops_too_many_people() {
    let app = spawn_app().await;
    let data = municipality(120);
    let orgs = records_of(&data, Kind::Organisation);
    let persons = persons_of(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("register.json");
    let write = |persons: &[Value]| {
        std::fs::write(
            &path,
            document(&[("organisations", &orgs), ("persons", persons)]),
        )
        .unwrap()
    };
    write(&persons);
    ok(&import(&app, &path, &[]));

    // Guardians leave (children stay, so only they are deactivated): more than 5 %.
    let guardians: BTreeSet<String> = children_by_guardian(&persons).into_keys().collect();
    let gone: BTreeSet<String> = guardians
        .into_iter()
        .take(persons.len() * 6 / 100 + 1)
        .collect();
    let kept: Vec<Value> = persons
        .iter()
        .filter(|p| !gone.contains(&id_of(p)))
        .cloned()
        .collect();
    write(&kept);
    let out = import(&app, &path, &[]);
    let id = held_run_id(&out);
    let run = last_run(&app);
    assert_eq!(
        (run["id"].as_i64(), run["status"].as_str()),
        (Some(id), Some("held"))
    );
    assert_eq!(run["counts"]["deactivations"], gone.len(), "{run}");
    let stored = portvakt::storage::persons::list(&app.db).await.unwrap();
    assert!(
        stored
            .iter()
            .filter(|p| gone.contains(p.external_id.as_deref().unwrap_or_default()))
            .all(|p| p.active),
        "nothing applied while held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cannot_take_over_a_configured_register_source() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portvakt.toml");
    std::fs::write(
        &config,
        "[sync.sources.kommunen]\nbase_url = \"http://127.0.0.1:9/v2.0/\"\n",
    )
    .unwrap();
    let file = dir.path().join("persons.json");
    std::fs::write(&file, r#"{"data": []}"#).unwrap();
    let (config, file) = (config.to_str().unwrap(), file.to_str().unwrap());
    let out = run_cli(
        &app,
        &[
            "--config", config, "sync", "run", "--file", file, "--source", "kommunen",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("kommunen is configured to read the SS 12000 API"),
        "{}",
        text(&out.stderr)
    );
    // A configured source keeps its own username context.
    let out = run_cli(
        &app,
        &[
            "--config",
            config,
            "sync",
            "run",
            "--source",
            "kommunen",
            "--username-context",
            "urn:other",
        ],
        None,
    );
    assert!(
        text(&out.stderr).contains("--username-context goes with --ss12000 or --file"),
        "{}",
        text(&out.stderr)
    );
    // Flags that belong to another input are refused before anything is read.
    for args in [
        &[
            "sync",
            "run",
            "--file",
            file,
            "--ss12000",
            "http://127.0.0.1:9/",
        ][..],
        &["sync", "run", "--source", "kommunen", "--skip-bad-rows"][..],
    ] {
        let out = run_cli(&app, args, None);
        assert!(!out.status.success(), "{args:?}");
    }
    assert!(runs(&app).is_empty());
}
