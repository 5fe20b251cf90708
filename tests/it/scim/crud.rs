//! Create, read, list, replace and delete for every resource type; ETags; the EGIL PUT
//! without an id in the path; the discovery endpoints.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_type_is_created_read_listed_replaced_and_deleted() {
    // The deletes deactivate everyone: the guard is not the point here.
    let (app, p) = scim_app_with(|c| {
        c.sync.max_deactivation_share = 1.0;
        c.sync.guard_emptied_units = false;
    })
    .await;
    let (org, group, unit) = (uid(), uid(), uid());
    let (teacher, student, emp, class, act) = (uid(), uid(), uid(), uid(), uid());
    let mut unit_body = school_unit(&unit, "Gröntorpsskolan", "12345678", &org);
    unit_body["schoolUnitGroup"] = reference("SchoolUnitGroups", &group);
    // In EGIL's send order, each with what it refers to before it.
    let resources = [
        (
            "Organisations",
            org.clone(),
            organisation(&org, "Grönköpings kommun"),
            "Organisation",
        ),
        (
            "SchoolUnitGroups",
            group.clone(),
            unit_group(&group, "Gröntorp"),
            "SchoolUnitGroup",
        ),
        ("SchoolUnits", unit.clone(), unit_body, "SchoolUnit"),
        (
            "Users",
            teacher.clone(),
            user(
                &teacher,
                "erik.t1@edu.example.se",
                "Erik",
                "Lärarsson",
                &[],
                &[],
            ),
            "User",
        ),
        (
            "Users",
            student.clone(),
            user(
                &student,
                "p7a25@edu.example.se",
                "Alva",
                "Lindqvist",
                &[(&unit, 7)],
                &[],
            ),
            "User",
        ),
        (
            "Employments",
            emp.clone(),
            employment(&emp, &teacher, &unit, "Lärare"),
            "Employment",
        ),
        (
            "StudentGroups",
            class.clone(),
            student_group(&class, "7A", &unit, &[&student]),
            "StudentGroup",
        ),
        (
            "Activities",
            act.clone(),
            activity(&act, "Ma 7A", &unit, &[&class], &[&emp]),
            "Activity",
        ),
    ];
    for (endpoint, id, body, kind) in &resources {
        let a = p.post(endpoint, body).await;
        assert_eq!(a.status, 201, "POST {endpoint}: {}", a.body);
        assert_eq!(a.header("content-type"), Some("application/scim+json"));
        assert_eq!(a.body["id"], *id, "id = externalId: {}", a.body);
        assert_eq!(a.body["externalId"], *id);
        assert_eq!(a.body["meta"]["resourceType"], *kind);
        assert_eq!(a.body["meta"]["version"], "W/\"1\"");
        assert_eq!(a.header("etag"), Some("W/\"1\""));
        let location = app.url(&format!("/scim/v2/{endpoint}/{id}"));
        assert_eq!(a.header("location"), Some(location.as_str()));
        assert_eq!(a.body["meta"]["location"], location);
        // What was sent comes back.
        for (k, v) in body.as_object().unwrap() {
            assert_eq!(&a.body[k], v, "{endpoint}.{k}");
        }
        let got = p.get(&format!("{endpoint}/{id}")).await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(got.body, a.body);
        assert_eq!(got.header("etag"), Some("W/\"1\""));
    }

    // Lists page with startIndex (1-based) and count, in id order.
    let mut users = [teacher.clone(), student.clone()];
    users.sort();
    let page = p.get("Users?startIndex=2&count=1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(page.body["totalResults"], 2);
    assert_eq!(page.body["itemsPerPage"], 1);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["Resources"][0]["id"], users[1]);
    let all = p.get("Users").await;
    assert_eq!(all.body["totalResults"], 2);
    assert_eq!(all.body["Resources"].as_array().unwrap().len(), 2);
    let none = p.get("Users?count=0").await;
    assert_eq!(none.body["totalResults"], 2);
    assert_eq!(none.body["Resources"], json!([]));
    for (endpoint, _, _, _) in &resources {
        let l = p.get(endpoint).await;
        assert!(
            l.body["totalResults"].as_i64().unwrap() >= 1,
            "{endpoint}: {}",
            l.body
        );
    }

    // Replace (PUT with the id), then EGIL's PUT without it; each is a new version.
    for (endpoint, id, body, _) in &resources {
        let mut changed = body.clone();
        if changed.get("displayName").is_some() {
            changed["displayName"] = json!("Nytt namn");
        } else {
            changed["employmentRole"] = json!("Rektor");
        }
        let a = p.put(&format!("{endpoint}/{id}"), &changed).await;
        assert_eq!(a.status, 200, "PUT {endpoint}/{id}: {}", a.body);
        assert_eq!(a.header("etag"), Some("W/\"2\""));
        assert_eq!(a.body["meta"]["version"], "W/\"2\"");
        let again = p.put(endpoint, &changed).await;
        assert_eq!(again.status, 200, "PUT {endpoint} (EGIL): {}", again.body);
        assert_eq!(again.body["meta"]["version"], "W/\"3\"");
        let got = p.get(&format!("{endpoint}/{id}")).await;
        assert_eq!(got.body["meta"]["version"], "W/\"3\"");
        assert_ne!(got.body["meta"]["created"], Value::Null);
    }
    let shown = person_of(&app, &teacher);
    assert_eq!(shown["roles"].as_array().unwrap().len(), 1, "{shown}");
    assert!(
        shown["roles"][0].as_str().unwrap().starts_with("principal"),
        "Rektor: {shown}"
    );

    // Deleted in EGIL's reverse order; a second delete and a read find nothing.
    for (endpoint, id, _, _) in resources.iter().rev() {
        let a = p.delete(&format!("{endpoint}/{id}")).await;
        assert_eq!(a.status, 204, "DELETE {endpoint}/{id}: {}", a.body);
        p.get(&format!("{endpoint}/{id}"))
            .await
            .assert_error(404, None);
        p.delete(&format!("{endpoint}/{id}"))
            .await
            .assert_error(404, None);
    }
    assert_eq!(p.get("Users").await.body["totalResults"], 0);
    assert_eq!(person_of(&app, &student)["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_guard_replaces_and_deletes_and_save_a_read() {
    let (_app, p) = scim_app().await;
    let org = uid();
    p.created("Organisations", &organisation(&org, "Kommun"))
        .await;
    let path = format!("Organisations/{org}");
    let body = organisation(&org, "Kommunen");
    // A stale version is refused, the current one taken.
    let stale = p
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&body.to_string()),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    stale.assert_error(412, None);
    let fresh = p
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&body.to_string()),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.header("etag"), Some("W/\"2\""));
    // A read of the version the client has: 304, no body.
    let same = p
        .send(
            reqwest::Method::GET,
            &path,
            None,
            &[("if-none-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(same.status, 304);
    let older = p
        .send(
            reqwest::Method::GET,
            &path,
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(older.status, 200);
    let del = p
        .send(
            reqwest::Method::DELETE,
            &path,
            None,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    del.assert_error(412, None);
    let del = p
        .send(
            reqwest::Method::DELETE,
            &path,
            None,
            &[("if-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(del.status, 204);
    // PATCH is not supported, and says so.
    let patch = p.send(reqwest::Method::PATCH, &path, Some("{}"), &[]).await;
    patch.assert_error(501, None);
    // Plain JSON is taken too.
    let org2 = uid();
    let a = p
        .http
        .post(format!("{}/Organisations", p.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(organisation(&org2, "Kommun 2").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_describes_what_is_supported() {
    let (app, p) = scim_app().await;
    let spc = p.get("ServiceProviderConfig").await;
    assert_eq!(spc.status, 200, "{}", spc.body);
    assert_eq!(spc.body["patch"]["supported"], false);
    assert_eq!(spc.body["bulk"]["supported"], false);
    assert_eq!(spc.body["filter"]["supported"], false);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(
        spc.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
    let types = p.get("ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 7, "{}", types.body);
    let endpoints: Vec<&str> = types.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["endpoint"].as_str().unwrap())
        .collect();
    for e in [
        "/Organisations",
        "/SchoolUnitGroups",
        "/SchoolUnits",
        "/Users",
        "/Employments",
        "/StudentGroups",
        "/Activities",
    ] {
        assert!(endpoints.contains(&e), "{e} in {endpoints:?}");
    }
    let user = p.get("ResourceTypes/User").await;
    assert_eq!(user.body["schema"], USER);
    assert_eq!(user.body["schemaExtensions"][0]["schema"], USER_EXT);
    assert_eq!(
        user.body["meta"]["location"],
        app.url("/scim/v2/ResourceTypes/User")
    );
    let schemas = p.get("Schemas").await;
    assert_eq!(schemas.body["totalResults"], 8, "{}", schemas.body);
    let ext = p.get(&format!("Schemas/{USER_EXT}")).await;
    assert_eq!(ext.status, 200);
    let names: Vec<&str> = ext.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"enrolments") && names.contains(&"userRelations"),
        "{names:?}"
    );
    p.get("Schemas/urn:example:none")
        .await
        .assert_error(404, None);
    p.get("Unicorns").await.assert_error(404, None);
}
