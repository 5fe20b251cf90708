//! The samples of specs/ss12000.md §9 and the tolerance rules.

use super::*;
use chrono::NaiveDate;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn ts(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

const ORGANISATIONS: &str = r#"{
  "data": [
    {
      "id": "957809cb-9934-4389-98d4-5060032485a0",
      "meta": { "created": "2023-08-01T06:00:00+02:00", "modified": "2025-01-10T14:12:03+01:00" },
      "displayName": "Gröntorpsskolan 7-9",
      "organisationType": "Skolenhet",
      "organisationCode": "GTS79",
      "schoolUnitCode": "12345678",
      "schoolTypes": ["GR"],
      "municipalityCode": "9999",
      "parentOrganisation": { "id": "7c1113d7-9cd7-4235-92d2-c1e2b318fae4", "displayName": "Grönköpings kommun" },
      "email": "grontorpsskolan@gronkoping.se",
      "startDate": "2023-08-01"
    }
  ],
  "pageToken": null
}"#;

const PERSON: &str = r#"{
  "id": "cf21d41c-076c-4968-b3d9-ebba52cf86f5",
  "meta": { "created": "2023-08-01T06:00:00+02:00", "modified": "2025-08-12T09:30:00+02:00" },
  "givenName": "Alva",
  "familyName": "Lindqvist",
  "eduPersonPrincipalNames": ["alva.l7a25@edu.gronkoping.se"],
  "externalIdentifiers": [
    { "value": "alvlin0514", "context": "https://gronkoping.se/ad/sAMAccountName", "globallyUnique": false }
  ],
  "civicNo": { "value": "201205142381", "nationality": "SE" },
  "birthDate": "2012-05-14",
  "securityMarking": "Ingen",
  "personStatus": "Aktiv",
  "emails": [ { "value": "alva.lindqvist@elev.gronkoping.se", "type": "Skola elev" } ],
  "enrolments": [
    {
      "enroledAt": { "id": "957809cb-9934-4389-98d4-5060032485a0" },
      "schoolType": "GR",
      "schoolYear": 7,
      "startDate": "2025-08-18",
      "endDate": "2026-06-12"
    }
  ],
  "responsibles": [
    { "person": { "id": "a355483c-dc95-4bad-86ae-8b5d6c6284e9" }, "relationType": "Vårdnadshavare" }
  ]
}"#;

const DUTY: &str = r#"{
  "id": "b65b4c62-66c7-4bf9-aa9c-7daec46514f1",
  "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2025-08-05T08:00:00+02:00" },
  "person": { "id": "3d97c9c7-68ea-4203-a1c6-954cf6c79e04" },
  "dutyAt": { "id": "957809cb-9934-4389-98d4-5060032485a0" },
  "dutyRole": "Lärare",
  "signature": "EKS",
  "dutyPercent": 100,
  "startDate": "2024-08-01",
  "assignmentRole": [
    {
      "group": { "id": "01def972-a15d-47ae-a16b-ec67e3e7e146" },
      "assignmentRoleType": "Mentor",
      "startDate": "2025-08-18",
      "endDate": "2026-06-12"
    }
  ],
  "_embedded": {
    "person": {
      "id": "3d97c9c7-68ea-4203-a1c6-954cf6c79e04",
      "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2024-06-20T10:00:00+02:00" },
      "givenName": "Erik",
      "familyName": "Sandberg",
      "civicNo": { "value": "198003021238" },
      "eduPersonPrincipalNames": ["erik.sandberg@edu.gronkoping.se"],
      "emails": [ { "value": "erik.sandberg@gronkoping.se", "type": "Skola personal" } ]
    }
  }
}"#;

const GROUPS: &str = r#"{
  "data": [
    {
      "id": "01def972-a15d-47ae-a16b-ec67e3e7e146",
      "meta": { "created": "2025-06-01T12:00:00+02:00", "modified": "2025-08-19T07:45:10+02:00" },
      "displayName": "7A",
      "groupType": "Klass",
      "schoolType": "GR",
      "organisation": { "id": "957809cb-9934-4389-98d4-5060032485a0" },
      "startDate": "2025-08-18",
      "endDate": "2026-06-12",
      "groupMemberships": [
        { "person": { "id": "cf21d41c-076c-4968-b3d9-ebba52cf86f5" }, "startDate": "2025-08-18" },
        { "person": { "id": "f0d60e62-54cd-45ff-ab1d-01b37023236a" }, "startDate": "2025-08-18", "endDate": "2025-12-19" }
      ]
    }
  ],
  "pageToken": "eyJvZmZzZXQiOjUwfQ"
}"#;

/// The §9 person and duty inside a list envelope (the spec shows them bare).
fn envelope(item: &str) -> String {
    format!(r#"{{"data": [{item}], "pageToken": null}}"#)
}

#[test]
fn spec_organisation() {
    let mut r = ParseReport::default();
    let p = page::<Organisation>(ORGANISATIONS.as_bytes(), &mut r).unwrap();
    assert_eq!(p.page_token, None);
    assert_eq!(
        p.items,
        vec![Organisation {
            id: "957809cb-9934-4389-98d4-5060032485a0".into(),
            display_name: "Gröntorpsskolan 7-9".into(),
            organisation_type: "Skolenhet".into(),
            school_unit_code: Some("12345678".into()),
            organisation_code: Some("GTS79".into()),
            organisation_number: None,
            parent: Some("7c1113d7-9cd7-4235-92d2-c1e2b318fae4".into()),
            school_types: vec!["GR".into()],
            start_date: Some(d("2023-08-01")),
            end_date: None,
            modified: ts("2025-01-10T14:12:03+01:00"),
        }]
    );
    assert_eq!(r, ParseReport::default());
}

#[test]
fn spec_person() {
    let mut r = ParseReport::default();
    let p = page::<Person>(envelope(PERSON).as_bytes(), &mut r).unwrap();
    assert_eq!(
        p.items,
        vec![Person {
            id: "cf21d41c-076c-4968-b3d9-ebba52cf86f5".into(),
            given_name: "Alva".into(),
            family_name: "Lindqvist".into(),
            civic_no: Some("201205142381".into()),
            eppns: vec!["alva.l7a25@edu.gronkoping.se".into()],
            external_identifiers: vec![ExternalIdentifier {
                value: "alvlin0514".into(),
                context: "https://gronkoping.se/ad/sAMAccountName".into(),
                globally_unique: false,
            }],
            security_marking: Some("Ingen".into()),
            person_status: Some("Aktiv".into()),
            emails: vec![Email {
                value: "alva.lindqvist@elev.gronkoping.se".into(),
                kind: "Skola elev".into(),
            }],
            enrolments: vec![Enrolment {
                enroled_at: "957809cb-9934-4389-98d4-5060032485a0".into(),
                school_type: Some("GR".into()),
                school_year: Some(7),
                start_date: Some(d("2025-08-18")),
                end_date: Some(d("2026-06-12")),
                cancelled: false,
            }],
            responsibles: vec![Responsible {
                person: "a355483c-dc95-4bad-86ae-8b5d6c6284e9".into(),
                relation_type: Some("Vårdnadshavare".into()),
            }],
            modified: ts("2025-08-12T09:30:00+02:00"),
        }]
    );
    assert_eq!(r, ParseReport::default());
}

#[test]
fn spec_duty_with_embedded_person() {
    let mut r = ParseReport::default();
    let p = page::<Duty>(envelope(DUTY).as_bytes(), &mut r).unwrap();
    assert_eq!(
        p.items,
        vec![Duty {
            id: "b65b4c62-66c7-4bf9-aa9c-7daec46514f1".into(),
            person: Some("3d97c9c7-68ea-4203-a1c6-954cf6c79e04".into()),
            duty_at: "957809cb-9934-4389-98d4-5060032485a0".into(),
            duty_role: "Lärare".into(),
            start_date: Some(d("2024-08-01")),
            end_date: None,
            assignment_roles: vec![AssignmentRole {
                group: "01def972-a15d-47ae-a16b-ec67e3e7e146".into(),
                kind: "Mentor".into(),
                start_date: Some(d("2025-08-18")),
                end_date: Some(d("2026-06-12")),
            }],
            modified: ts("2025-08-05T08:00:00+02:00"),
        }]
    );
    // `_embedded` is a known field, not an unknown one.
    assert_eq!(r, ParseReport::default());
}

#[test]
fn spec_group_with_page_token() {
    let mut r = ParseReport::default();
    let p = page::<Group>(GROUPS.as_bytes(), &mut r).unwrap();
    assert_eq!(p.page_token.as_deref(), Some("eyJvZmZzZXQiOjUwfQ"));
    assert_eq!(p.items.len(), 1);
    let g = &p.items[0];
    assert_eq!(g.display_name, "7A");
    assert_eq!(g.group_type, "Klass");
    assert_eq!(g.school_type.as_deref(), Some("GR"));
    assert_eq!(g.organisation, "957809cb-9934-4389-98d4-5060032485a0");
    assert_eq!(
        (g.start_date, g.end_date),
        (Some(d("2025-08-18")), Some(d("2026-06-12")))
    );
    assert_eq!(
        g.memberships,
        vec![
            Membership {
                person: "cf21d41c-076c-4968-b3d9-ebba52cf86f5".into(),
                start_date: Some(d("2025-08-18")),
                end_date: None,
            },
            Membership {
                person: "f0d60e62-54cd-45ff-ab1d-01b37023236a".into(),
                start_date: Some(d("2025-08-18")),
                end_date: Some(d("2025-12-19")),
            },
        ]
    );
    assert_eq!(g.modified, ts("2025-08-19T07:45:10+02:00"));
    assert_eq!(r, ParseReport::default());
}

#[test]
fn spec_deleted_entities() {
    let body = r#"{ "data": { "persons": ["f0d60e62-54cd-45ff-ab1d-01b37023236a"], "groups": [], "duties": [], "activitites": ["x"] }, "pageToken": null }"#;
    let mut r = ParseReport::default();
    let p = deleted_page(body.as_bytes(), &mut r).unwrap();
    assert_eq!(p.page_token, None);
    assert_eq!(
        p.items,
        vec![Deleted {
            persons: vec!["f0d60e62-54cd-45ff-ab1d-01b37023236a".into()],
            ..Deleted::default()
        }]
    );
    assert_eq!(r, ParseReport::default());
}

#[test]
fn reference_api_envelope_and_empty_page_token() {
    let body = ORGANISATIONS
        .replacen("\"data\"", "\"organisations\"", 1)
        .replace("\"pageToken\": null", "\"pageToken\": \"\"");
    let mut r = ParseReport::default();
    let p = page::<Organisation>(body.as_bytes(), &mut r).unwrap();
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.page_token, None);
    // The type-named key only counts for its own type.
    assert_eq!(
        page::<Person>(body.as_bytes(), &mut r).unwrap_err(),
        ParseError::NoData("persons")
    );
}

#[test]
fn unknown_fields_and_values_are_counted_and_kept() {
    let person = PERSON
        .replace("\"Ingen\"", "\"Hemlig\"")
        .replace(
            "\"givenName\"",
            "\"favouriteColour\": \"blå\", \"givenName\"",
        )
        .replace("\"Vårdnadshavare\"", "\"Farmor\"")
        .replace(
            "\"schoolType\": \"GR\"",
            "\"schoolType\": \"GR\", \"house\": 3",
        );
    let body = format!(r#"{{"data": [{person}, {person}]}}"#);
    let mut r = ParseReport::default();
    let p = page::<Person>(body.as_bytes(), &mut r).unwrap();
    assert_eq!(p.items.len(), 2);
    assert_eq!(p.items[0].security_marking.as_deref(), Some("Hemlig"));
    assert_eq!(
        p.items[0].responsibles[0].relation_type.as_deref(),
        Some("Farmor")
    );
    assert_eq!(r.unknown_fields.get("Person.favouriteColour"), Some(&2));
    assert_eq!(r.unknown_fields.get("Person.enrolments.house"), Some(&2));
    assert_eq!(
        r.unknown_values.get("Person.securityMarking=Hemlig"),
        Some(&2)
    );
    assert_eq!(
        r.unknown_values
            .get("Person.responsibles.relationType=Farmor"),
        Some(&2)
    );
    assert!(r.skipped.is_empty());
}

#[test]
fn known_enum_values_are_not_counted() {
    let mut r = ParseReport::default();
    for role in known::DUTY_ROLE {
        let duty = DUTY.replace("\"Lärare\"", &format!("\"{role}\""));
        assert_eq!(
            page::<Duty>(envelope(&duty).as_bytes(), &mut r)
                .unwrap()
                .items
                .len(),
            1
        );
    }
    for rel in known::RELATION_TYPE {
        let p = PERSON.replace("\"Vårdnadshavare\"", &format!("\"{rel}\""));
        assert_eq!(
            page::<Person>(envelope(&p).as_bytes(), &mut r)
                .unwrap()
                .items
                .len(),
            1
        );
    }
    assert_eq!(known::DUTY_ROLE.len(), 19);
    assert_eq!(r, ParseReport::default());
}

#[test]
fn records_without_required_fields_are_skipped() {
    let no_duty_at = DUTY.replace("\"dutyAt\"", "\"dutyAtt\"");
    let no_role = DUTY.replace("\"dutyRole\": \"Lärare\",", "");
    let body = format!(r#"{{"data": [{no_duty_at}, {no_role}, {DUTY}, 17]}}"#);
    let mut r = ParseReport::default();
    let p = page::<Duty>(body.as_bytes(), &mut r).unwrap();
    assert_eq!(p.items.len(), 1);
    assert_eq!(r.skipped.get("Duty: missing dutyAt"), Some(&1));
    assert_eq!(r.skipped.get("Duty: missing dutyRole"), Some(&1));
    assert_eq!(r.skipped.get("Duty: not an object"), Some(&1));

    let nameless = PERSON.replace("\"givenName\": \"Alva\",", "");
    let bad_date = PERSON.replace("2025-08-18", "18/8 2025");
    let bad_meta = PERSON.replace("2025-08-12T09:30:00+02:00", "igår");
    let no_unit = PERSON.replace(
        "\"enroledAt\": { \"id\": \"957809cb-9934-4389-98d4-5060032485a0\" },",
        "",
    );
    let body = format!(r#"{{"data": [{nameless}, {bad_date}, {bad_meta}, {no_unit}]}}"#);
    let p = page::<Person>(body.as_bytes(), &mut r).unwrap();
    assert!(p.items.is_empty());
    assert_eq!(r.skipped.get("Person: missing givenName"), Some(&1));
    assert_eq!(
        r.skipped.get("Person: unparsable enrolments.startDate"),
        Some(&1)
    );
    assert_eq!(r.skipped.get("Person: unparsable meta.modified"), Some(&1));
    assert_eq!(
        r.skipped.get("Person: missing enrolments.enroledAt"),
        Some(&1)
    );

    let g = r#"{"id": "g1", "displayName": "7B", "groupType": "Klass"}"#;
    let o = r#"{"id": "o1", "organisationType": "Skolenhet"}"#;
    page::<Group>(envelope(g).as_bytes(), &mut r).unwrap();
    page::<Organisation>(envelope(o).as_bytes(), &mut r).unwrap();
    assert_eq!(r.skipped.get("Group: missing organisation"), Some(&1));
    assert_eq!(r.skipped.get("Organisation: missing displayName"), Some(&1));
}

#[test]
fn missing_meta_is_zero_and_not_a_list_is_an_error() {
    let mut r = ParseReport::default();
    let o = r#"{"id": "o1", "displayName": "X", "organisationType": "Huvudman"}"#;
    let p = page::<Organisation>(envelope(o).as_bytes(), &mut r).unwrap();
    assert_eq!(p.items[0].modified, 0);
    assert!(matches!(
        page::<Organisation>(b"<html>", &mut r),
        Err(ParseError::NotJson(_))
    ));
    assert_eq!(
        page::<Organisation>(br#"{"code": "x", "message": "y"}"#, &mut r).unwrap_err(),
        ParseError::NoData("organisations")
    );
}
