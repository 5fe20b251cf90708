//! The same register content through the three ways in (issue 17): the SS 12000 API, an SS
//! 12000 JSON dump (`sync run --file`) and EGIL SCIM pushes give the same `person show`
//! for a sample of people, apart from what is the source's own (ids, usernames, eppns).

use super::*;
use crate::scim::{self as push, Push, reference, sis};

/// What a `person show` says that does not depend on the way in.
fn facts(shown: &Value) -> Value {
    let sorted = |v: &Value| {
        let mut items: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(Value::to_string)
            .collect();
        items.sort();
        items
    };
    let groups: Vec<Value> = shown["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| json!([g["name"], g["kind"], g["school_unit_code"]]))
        .collect();
    let enrolments: Vec<Value> = shown["facts"]["enrolments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["school_unit_code"], e["school_type"], e["school_year"]]))
        .collect();
    let duties: Vec<Value> = shown["facts"]["duties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            json!([
                d["school_unit_code"],
                d["duty_role"],
                d["assignments"].as_array().unwrap().len()
            ])
        })
        .collect();
    let relations = |key: &str| -> Vec<Value> {
        shown["facts"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!([r["relation"], r["active"]]))
            .collect()
    };
    let r = &shown["release"];
    json!({
        "given_name": shown["given_name"], "family_name": shown["family_name"],
        "email": shown["email"], "civic_no": shown["civic_no"],
        "protected_identity": shown["protected_identity"], "active": shown["active"],
        "roles": sorted(&shown["roles"]), "groups": sorted(&json!(groups)),
        "enrolments": sorted(&json!(enrolments)), "duties": sorted(&json!(duties)),
        "guardians": sorted(&json!(relations("guardians"))),
        "guardian_of": sorted(&json!(relations("guardian_of"))),
        "affiliation": sorted(&r["eduPersonAffiliation"]),
        "units": sorted(&r["sisSchoolUnitCode"]), "grades": sorted(&r["sisSchoolGrade"]),
        "release_groups": sorted(&r["groups"]), "nin": r["norEduPersonNIN"],
    })
}

/// Pushes a register's content the way an EGIL client would, in EGIL's send order.
async fn push_register(p: &Push, data: &Dataset) {
    let id = |v: &Value| v.as_str().unwrap().to_string();
    let mut orgs = records_of(data, Kind::Organisation);
    orgs.sort_by_key(|o| o["organisationType"] == "Skolenhet");
    for o in orgs {
        let body = if o["organisationType"] == "Skolenhet" {
            json!({
                "schemas": [sis("SchoolUnit")], "externalId": o["id"],
                "displayName": o["displayName"], "schoolUnitCode": o["schoolUnitCode"],
                "schoolTypes": o["schoolTypes"],
                "organisation": reference("Organisations", &id(&o["parentOrganisation"]["id"])),
            })
        } else {
            json!({ "schemas": [sis("Organisation")], "externalId": o["id"], "displayName": o["displayName"] })
        };
        let endpoint = if o["organisationType"] == "Skolenhet" {
            "SchoolUnits"
        } else {
            "Organisations"
        };
        p.created(endpoint, &body).await;
    }
    // Guardians before the children naming them.
    let mut persons = persons_of(data);
    persons.sort_by_key(|p| p["responsibles"].as_array().is_some_and(|r| !r.is_empty()));
    for person in &persons {
        let enrolments: Vec<Value> = person["enrolments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| json!({
                "value": e["enroledAt"]["id"], "$ref": format!("SchoolUnits/{}", id(&e["enroledAt"]["id"])),
                "schoolYear": e["schoolYear"], "schoolType": e["schoolType"],
            }))
            .collect();
        let relations: Vec<Value> = person["responsibles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| json!({ "value": r["person"]["id"], "relationType": r["relationType"] }))
            .collect();
        let body = json!({
            "schemas": [push::USER, push::USER_EXT],
            "externalId": person["id"],
            "userName": format!("{}@push.example.se", username_of(person)),
            "displayName": format!("{} {}", id(&person["givenName"]), id(&person["familyName"])),
            "name": { "givenName": person["givenName"], "familyName": person["familyName"] },
            "emails": person["emails"].as_array().cloned().unwrap_or_default(),
            push::USER_EXT: {
                "civicNo": person["civicNo"]["value"],
                "securityMarking": person["securityMarking"] != "Ingen",
                "enrolments": enrolments,
                "userRelations": relations,
            },
        });
        p.created("Users", &body).await;
    }
    let duties = records_of(data, Kind::Duty);
    for d in &duties {
        p.created(
            "Employments",
            &json!({
                "schemas": [sis("Employment")], "externalId": d["id"],
                "employedAt": reference("SchoolUnits", &id(&d["dutyAt"]["id"])),
                "user": reference("Users", &id(&d["person"]["id"])),
                "employmentRole": d["dutyRole"],
            }),
        )
        .await;
    }
    for g in records_of(data, Kind::Group) {
        let members: Vec<Value> = g["groupMemberships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| reference("Users", &id(&m["person"]["id"])))
            .collect();
        p.created(
            "StudentGroups",
            &json!({
                "schemas": [sis("StudentGroup")], "externalId": g["id"],
                "displayName": g["displayName"], "studentGroupType": g["groupType"],
                "schoolType": g["schoolType"],
                "owner": reference("SchoolUnits", &id(&g["organisation"]["id"])),
                "studentMemberships": members,
            }),
        )
        .await;
    }
    // A teacher's assignment to a group is an Activity naming the employment.
    for d in &duties {
        for a in d["assignmentRole"].as_array().into_iter().flatten() {
            p.created(
                "Activities",
                &json!({
                    "schemas": [sis("Activity")], "externalId": uid(),
                    "displayName": "Mentorstid",
                    "owner": reference("SchoolUnits", &id(&d["dutyAt"]["id"])),
                    "groups": [reference("StudentGroups", &id(&a["group"]["id"]))],
                    "teachers": [reference("Employments", &id(&d["id"]))],
                }),
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_a_file_and_scim_pushes_give_the_same_people() {
    const N: usize = 120;
    let data = municipality(N);
    let persons = persons_of(&data);

    // The SS 12000 API.
    let api = spawn_app().await;
    let reg = Register::start(municipality(N)).await;
    reg.sync_ok(&api, &["--full"]);

    // The same content as one JSON dump.
    let file_app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("register.json");
    std::fs::write(
        &dump,
        json!({
            "organisations": records_of(&data, Kind::Organisation),
            "persons": persons,
            "groups": records_of(&data, Kind::Group),
            "duties": records_of(&data, Kind::Duty),
        })
        .to_string(),
    )
    .unwrap();
    ok(&run_cli(
        &file_app,
        &[
            "sync",
            "run",
            "--file",
            dump.to_str().unwrap(),
            "--username-context",
            USERNAME_CONTEXT,
        ],
        None,
    ));

    // The same content pushed over EGIL SCIM.
    let (scim_app, p) = push::scim_app().await;
    push_register(&p, &data).await;

    // Every fifth person, and everyone with a duty (few, and the Activities' side).
    let staff_ids: BTreeSet<String> = records_of(&data, Kind::Duty)
        .iter()
        .map(|d| d["person"]["id"].as_str().unwrap().to_string())
        .collect();
    let sample = persons
        .iter()
        .enumerate()
        .filter(|(i, p)| i % 5 == 0 || staff_ids.contains(&id_of(p)))
        .map(|(_, p)| p);
    let (mut students, mut staff, mut guardians) = (0, 0, 0);
    for person in sample {
        let from_api = show(&api, &username_of(person));
        let from_file = show(&file_app, &username_of(person));
        let pushed = push::person_of(&scim_app, &id_of(person));
        let expected = facts(&from_api);
        assert_eq!(
            facts(&from_file),
            expected,
            "file vs API for {}",
            id_of(person)
        );
        assert_eq!(
            facts(&pushed),
            expected,
            "SCIM vs API for {}",
            id_of(person)
        );
        let roles = strings(&from_api["roles"]).join(" ");
        students += usize::from(roles.contains("student"));
        staff += usize::from(roles.contains("teacher") || roles.contains("principal"));
        guardians += usize::from(roles.contains("guardian"));
    }
    assert!(
        students > 0 && staff > 0 && guardians > 0,
        "{students} {staff} {guardians}"
    );
}
