//! A SCIM client we did not write (python-scim's scim2-client, tests/interop/scim_client.py)
//! discovers the server, then creates, replaces, reads, lists and deletes every EGIL
//! resource type through the models it built from our discovery documents.

use super::*;
use crate::helpers::interop_python;
use std::process::{Command, Stdio};

fn scim_client(app: &TestApp, code: &str, user_name: &str, keep: bool) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/scim_client.py");
    let mut cmd = Command::new(interop_python());
    cmd.arg(script)
        .args(["--base-url", &app.url("/scim/v2")])
        .args(["--school-unit-code", code, "--user-name", user_name])
        .env("PORTVAKT_SCIM_TOKEN", TOKEN)
        .stdin(Stdio::null());
    if keep {
        cmd.arg("--keep");
    }
    let out = tokio::task::block_in_place(|| cmd.output()).expect("run scim_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scim_client.py: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_client_creates_replaces_and_deletes_every_resource_type() {
    // Its deletes deactivate everyone it made: the guard is not the point here.
    let (app, _p) = scim_app_with(|c| {
        c.sync.max_deactivation_share = 1.0;
        c.sync.guard_emptied_units = false;
    })
    .await;
    let done = scim_client(&app, "31415926", "p31415926@edu.example.se", false);
    assert_eq!(
        done["discovered"]["resource_types"]
            .as_array()
            .unwrap()
            .len(),
        7,
        "{done}"
    );
    assert_eq!(done["discovered"]["etag"], true);
    assert_eq!(done["versions"]["created"], "W/\"1\"", "{done}");
    assert_eq!(done["versions"]["replaced"], "W/\"2\"", "{done}");
    assert_eq!(done["users"]["total"], 2, "{done}");
    assert_eq!(done["deleted"].as_array().unwrap().len(), 7, "{done}");
    assert_eq!(done["gone"]["status"], 404, "{done}");
    // What it deleted is gone from the store, and its people inactive.
    let student = done["ids"]["student"].as_str().unwrap();
    assert!(
        portvakt::storage::scim::get(&app.db, SOURCE, "User", student)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(person_of(&app, student)["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_scim2_client_pushed_is_in_the_directory() {
    let (app, _p) = scim_app().await;
    let done = scim_client(&app, "27182818", "p27182818@edu.example.se", true);
    let student = person_of(&app, done["ids"]["student"].as_str().unwrap());
    assert_eq!(student["active"], true, "{student}");
    assert_eq!(student["family_name"], done["student"]["familyName"]);
    assert_eq!(student["release"]["sisSchoolUnitCode"], json!(["27182818"]));
    let teacher = person_of(&app, done["ids"]["teacher"].as_str().unwrap());
    assert_eq!(
        teacher["facts"]["duties"][0]["duty_role"], "Lärare",
        "{teacher}"
    );
    assert_eq!(teacher["groups"].as_array().unwrap().len(), 1, "{teacher}");
}
