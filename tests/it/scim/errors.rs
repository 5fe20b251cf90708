//! Every error the SCIM server answers, as RFC 7644 §3.12 bodies: who may push, malformed
//! bodies, unknown schemas, missing attributes, conflicts, dangling references, another
//! source's resources.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_without_the_sources_token_is_refused() {
    let (app, p) = scim_app().await;
    let body = organisation(&uid(), "Kommun");
    for token in ["", "wrong-token-0123456789abcdef0123456789ab"] {
        let a = p.as_token(token).post("Organisations", &body).await;
        a.assert_error(401, None);
        assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
        p.as_token(token)
            .get("ServiceProviderConfig")
            .await
            .assert_error(401, None);
    }
    let none = reqwest::Client::new()
        .get(app.url("/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(
        portvakt::storage::scim::list(&app.db, SOURCE, "Organisation", 0, 10)
            .await
            .unwrap()
            .1
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_named_with_their_scim_type() {
    let (app, p) = scim_app().await;
    let org = uid();
    p.created("Organisations", &organisation(&org, "Kommun"))
        .await;
    let unit = uid();
    p.created(
        "SchoolUnits",
        &school_unit(&unit, "Skolan", "11112222", &org),
    )
    .await;

    // Malformed JSON.
    let a = p
        .send(reqwest::Method::POST, "Users", Some("{\"schemas\": ["), &[])
        .await;
    a.assert_error(400, Some("invalidSyntax"));
    // A schema the server does not know.
    let mut b = user(&uid(), "u1@edu.example.se", "A", "B", &[], &[]);
    b["schemas"] = json!([USER, "urn:example:params:scim:schemas:extension:unknown"]);
    let a = p.post("Users", &b).await;
    a.assert_error(400, Some("invalidSyntax"));
    assert!(
        a.body["detail"].as_str().unwrap().contains("urn:example"),
        "{}",
        a.body
    );
    // Missing required attributes (those the reference server requires).
    for (endpoint, mut body, attr) in [
        (
            "Users",
            user(&uid(), "u2@edu.example.se", "A", "B", &[], &[]),
            "userName",
        ),
        (
            "Users",
            user(&uid(), "u3@edu.example.se", "A", "B", &[], &[]),
            "displayName",
        ),
        (
            "Users",
            user(&uid(), "u4@edu.example.se", "A", "B", &[], &[]),
            "externalId",
        ),
        (
            "SchoolUnits",
            school_unit(&uid(), "S", "33334444", &org),
            "schoolUnitCode",
        ),
        (
            "Employments",
            employment(&uid(), &uid(), &unit, "Lärare"),
            "employmentRole",
        ),
        (
            "StudentGroups",
            student_group(&uid(), "7B", &unit, &[]),
            "owner",
        ),
        (
            "Activities",
            activity(&uid(), "Ma", &unit, &[], &[]),
            "displayName",
        ),
    ] {
        body.as_object_mut().unwrap().remove(attr);
        let a = p.post(endpoint, &body).await;
        a.assert_error(400, Some("invalidValue"));
        assert!(
            a.body["detail"].as_str().unwrap().contains(attr),
            "{attr}: {}",
            a.body
        );
    }
    let mut nameless = user(&uid(), "u5@edu.example.se", "A", "B", &[], &[]);
    nameless["name"]
        .as_object_mut()
        .unwrap()
        .remove("familyName");
    p.post("Users", &nameless)
        .await
        .assert_error(400, Some("invalidValue"));
    // A reference to something the source has not pushed.
    let a = p
        .post(
            "Users",
            &user(&uid(), "u6@edu.example.se", "A", "B", &[(&uid(), 7)], &[]),
        )
        .await;
    a.assert_error(400, Some("invalidValue"));
    assert!(
        a.body["detail"].as_str().unwrap().contains("SchoolUnits/"),
        "{}",
        a.body
    );
    p.post("Employments", &employment(&uid(), &uid(), &unit, "Lärare"))
        .await
        .assert_error(400, Some("invalidValue"));
    // A filter is not supported, and says so.
    p.get("Users?filter=userName%20eq%20%22x%22")
        .await
        .assert_error(400, Some("invalidFilter"));
    // A body of another media type.
    let a = p
        .http
        .post(format!("{}/Organisations", p.base))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(organisation(&uid(), "K").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 415);
    // Nothing of it reached the directory or the store.
    assert_eq!(p.get("Users").await.body["totalResults"], 0);
    let people = portvakt::storage::persons::list(&app.db).await.unwrap();
    assert!(people.iter().all(|x| x.source != SOURCE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uniqueness_conflicts_are_409() {
    let (app, p) = scim_app().await;
    let org = uid();
    p.created("Organisations", &organisation(&org, "Kommun"))
        .await;
    // The same id twice.
    p.post("Organisations", &organisation(&org, "Kommun"))
        .await
        .assert_error(409, Some("uniqueness"));
    // The same school unit code.
    p.created("SchoolUnits", &school_unit(&uid(), "A", "55556666", &org))
        .await;
    p.post("SchoolUnits", &school_unit(&uid(), "B", "55556666", &org))
        .await
        .assert_error(409, Some("uniqueness"));
    // The same userName, in any case.
    p.created(
        "Users",
        &user(&uid(), "same@edu.example.se", "A", "B", &[], &[]),
    )
    .await;
    p.post(
        "Users",
        &user(&uid(), "SAME@edu.example.se", "C", "D", &[], &[]),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    // A userName that is already another person's login name.
    ok(&run_cli(
        &app,
        &[
            "user",
            "add",
            "--username",
            "lokal.admin",
            "--given-name",
            "Lo",
            "--family-name",
            "Kal",
            "--password-stdin",
        ],
        Some(PASSWORD),
    ));
    let a = p
        .post("Users", &user(&uid(), "lokal.admin", "E", "F", &[], &[]))
        .await;
    a.assert_error(409, Some("uniqueness"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_cannot_touch_another_sources_resources() {
    let (app, p) = scim_app().await;
    let other = p.as_token(OTHER_TOKEN);
    let s = School::push(&p, "77778888", 1).await;
    let student = &s.students[0];
    let path = format!("Users/{student}");
    let before = p.get(&path).await.body;
    // The other source reads, replaces, deletes and re-creates it: 403 each time.
    other.get(&path).await.assert_error(403, None);
    let mut body = before.clone();
    body["name"]["familyName"] = json!("Kapad");
    body.as_object_mut().unwrap().remove("meta");
    other.put(&path, &body).await.assert_error(403, None);
    other.delete(&path).await.assert_error(403, None);
    other.post("Users", &body).await.assert_error(403, None);
    // Nothing changed.
    let after = p.get(&path).await.body;
    assert_eq!(after, before);
    let shown = person_of(&app, student);
    assert_eq!(shown["active"], true, "{shown}");
    assert_eq!(shown["family_name"], "Nummer0");
    assert_eq!(other.get("Users").await.body["totalResults"], 0);
}
