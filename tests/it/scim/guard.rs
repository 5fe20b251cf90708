//! The guard holds pushed deletes beyond the share in its rolling window; the client hears
//! 503 with Retry-After until an administrator approves; a push source's changes are
//! recorded in one run per time window.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_beyond_the_windows_share_are_held_until_approved() {
    let (app, p) = scim_app().await;
    // 30 students (and 30 guardians without roles, inactive): one delete is 3.3 %.
    let s = School::push(&p, "24681357", 30).await;
    let pushed = runs_of(&app, SOURCE);
    assert_eq!(
        pushed.len(),
        1,
        "one run for the window's pushes: {pushed:?}"
    );
    assert_eq!(pushed[0]["kind"], "push");
    assert_eq!(pushed[0]["status"], "applied");
    assert_eq!(pushed[0]["counts"]["persons_created"], 61);

    let first = format!("Users/{}", s.students[0]);
    assert_eq!(p.delete(&first).await.status, 204);
    assert_eq!(person_of(&app, &s.students[0])["active"], false);

    // The second delete in the window makes 2 of 30: beyond 5 %.
    let second = format!("Users/{}", s.students[1]);
    let a = p.delete(&second).await;
    a.assert_error(503, None);
    assert_eq!(a.header("retry-after"), Some("3600"));
    let detail = a.body["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("held") && detail.contains("sync approve"),
        "{detail}"
    );
    let held: Vec<Value> = runs_of(&app, SOURCE)
        .into_iter()
        .filter(|r| r["status"] == "held")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    let run = held[0]["id"].as_i64().unwrap();
    assert!(detail.contains(&format!("run {run}")), "{detail}");
    assert!(
        held[0]["reason"]
            .as_str()
            .unwrap()
            .contains("last 24 hours"),
        "{held:?}"
    );
    // Still there, and still active.
    assert_eq!(p.get(&second).await.status, 200);
    assert_eq!(person_of(&app, &s.students[1])["active"], true);
    // Sent again, it waits for the same run; other changes go on meanwhile.
    let again = p.delete(&second).await;
    again.assert_error(503, None);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("run {run}"))
    );
    let renamed = user(
        &s.students[2],
        "s24681357x2@edu.example.se",
        "Elev",
        "Omdöpt",
        &[(&s.unit, 7)],
        &[&s.guardians[2]],
    );
    let a = p.put(&format!("Users/{}", s.students[2]), &renamed).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(person_of(&app, &s.students[2])["family_name"], "Omdöpt");
    assert_eq!(
        runs_of(&app, SOURCE)
            .iter()
            .filter(|r| r["status"] == "held")
            .count(),
        1
    );

    // An administrator approves: the delete takes effect, the resource is gone.
    ok(&run_cli(&app, &["sync", "approve", &run.to_string()], None));
    assert_eq!(person_of(&app, &s.students[1])["active"], false);
    p.get(&second).await.assert_error(404, None);
    // EGIL reads a 404 on delete as "already gone".
    p.delete(&second).await.assert_error(404, None);

    // A third delete is held again (the window still holds the first two) and rejected.
    let third = format!("Users/{}", s.students[3]);
    p.delete(&third).await.assert_error(503, None);
    let run3 = runs_of(&app, SOURCE)
        .into_iter()
        .find(|r| r["status"] == "held")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    ok(&run_cli(&app, &["sync", "reject", &run3.to_string()], None));
    assert_eq!(p.get(&third).await.status, 200);
    let refused = p.delete(&third).await;
    refused.assert_error(409, None);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("rejected"),
        "{}",
        refused.body
    );
    assert_eq!(person_of(&app, &s.students[3])["active"], true);

    // A day later the window is empty again.
    app.clock.advance(25 * 3600);
    assert_eq!(p.delete(&third).await.status, 204);
    assert_eq!(person_of(&app, &s.students[3])["active"], false);
    // Pushes of a new window start a new run.
    let applied: Vec<Value> = runs_of(&app, SOURCE)
        .into_iter()
        .filter(|r| r["status"] == "applied")
        .collect();
    assert_eq!(applied.len(), 2, "{applied:?}");
}
