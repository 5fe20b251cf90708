//! The spec's sample (specs/ss12000.md §9) synced into roles, groups and guardianships.

use super::*;

// ---------------------------------------------------------------------------------------
// 1. The spec's sample (specs/ss12000.md §9), dates moved around today.

const UNIT: &str = "957809cb-9934-4389-98d4-5060032485a0";
pub(super) const HUVUDMAN: &str = "7c1113d7-9cd7-4235-92d2-c1e2b318fae4";
const ALVA: &str = "cf21d41c-076c-4968-b3d9-ebba52cf86f5";
const GUARDIAN: &str = "a355483c-dc95-4bad-86ae-8b5d6c6284e9";
const OTHER_RESPONSIBLE: &str = "5e7a0a51-0d3f-4f55-9a49-2f3c1f0c9e11";
const ERIK: &str = "3d97c9c7-68ea-4203-a1c6-954cf6c79e04";
const PRINCIPAL: &str = "8b1f7f0e-6f0a-4c1e-9b39-7a3f7b5e2d10";
const CLASS_7A: &str = "01def972-a15d-47ae-a16b-ec67e3e7e146";
const AD_CONTEXT: &str = "https://gronkoping.se/ad/sAMAccountName";

fn spec_sample() -> Dataset {
    let organisations = [
        huvudman(HUVUDMAN, "Grönköpings kommun"),
        json!({
            "id": UNIT,
            "meta": { "created": "2023-08-01T06:00:00+02:00", "modified": "2025-01-10T14:12:03+01:00" },
            "displayName": "Gröntorpsskolan 7-9",
            "organisationType": "Skolenhet",
            "organisationCode": "GTS79",
            "schoolUnitCode": "12345678",
            "schoolTypes": ["GR"],
            "municipalityCode": "9999",
            "parentOrganisation": { "id": HUVUDMAN, "displayName": "Grönköpings kommun" },
            "email": "grontorpsskolan@gronkoping.se",
            "startDate": "2023-08-01"
        }),
    ];
    let persons = [
        json!({
            "id": ALVA,
            "meta": { "created": "2023-08-01T06:00:00+02:00", "modified": "2025-08-12T09:30:00+02:00" },
            "givenName": "Alva",
            "familyName": "Lindqvist",
            "eduPersonPrincipalNames": ["alva.l7a25@edu.gronkoping.se"],
            "externalIdentifiers": [
                { "value": "alvlin0514", "context": AD_CONTEXT, "globallyUnique": false }
            ],
            "civicNo": { "value": "201205142381", "nationality": "SE" },
            "birthDate": "2012-05-14",
            "securityMarking": "Ingen",
            "personStatus": "Aktiv",
            "emails": [ { "value": "alva.lindqvist@elev.gronkoping.se", "type": "Skola elev" } ],
            "enrolments": [
                {
                    "enroledAt": { "id": UNIT },
                    "schoolType": "GR",
                    "schoolYear": 7,
                    "startDate": day(-30),
                    "endDate": day(200)
                }
            ],
            "responsibles": [
                { "person": { "id": GUARDIAN }, "relationType": "Vårdnadshavare" },
                { "person": { "id": OTHER_RESPONSIBLE }, "relationType": "Annan ansvarig" }
            ]
        }),
        json!({
            "id": GUARDIAN,
            "meta": { "created": "2023-08-01T06:00:00+02:00", "modified": "2025-08-12T09:30:00+02:00" },
            "givenName": "Karin",
            "familyName": "Lindqvist",
            "civicNo": { "value": civic("19800417", 482) },
            "securityMarking": "Ingen"
        }),
        json!({
            "id": OTHER_RESPONSIBLE,
            "meta": { "created": "2023-08-01T06:00:00+02:00", "modified": "2025-08-12T09:30:00+02:00" },
            "givenName": "Olle",
            "familyName": "Berg",
            "civicNo": { "value": civic("19750203", 137) },
            "securityMarking": "Ingen"
        }),
        json!({
            "id": ERIK,
            "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2024-06-20T10:00:00+02:00" },
            "givenName": "Erik",
            "familyName": "Sandberg",
            "civicNo": { "value": "198003021238" },
            "eduPersonPrincipalNames": ["erik.sandberg@edu.gronkoping.se"],
            "emails": [ { "value": "erik.sandberg@gronkoping.se", "type": "Skola personal" } ]
        }),
        json!({
            "id": PRINCIPAL,
            "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2024-06-20T10:00:00+02:00" },
            "givenName": "Maria",
            "familyName": "Holm",
            "civicNo": { "value": civic("19700912", 555) },
            "emails": [ { "value": "maria.holm@gronkoping.se", "type": "Skola personal" } ]
        }),
    ];
    let groups = [json!({
        "id": CLASS_7A,
        "meta": { "created": "2025-06-01T12:00:00+02:00", "modified": "2025-08-19T07:45:10+02:00" },
        "displayName": "7A",
        "groupType": "Klass",
        "schoolType": "GR",
        "organisation": { "id": UNIT },
        "startDate": day(-30),
        "endDate": day(200),
        "groupMemberships": [
            { "person": { "id": ALVA }, "startDate": day(-30) },
            { "person": { "id": "f0d60e62-54cd-45ff-ab1d-01b37023236a" }, "startDate": day(-30), "endDate": day(-5) }
        ]
    })];
    let duties = [
        json!({
            "id": "b65b4c62-66c7-4bf9-aa9c-7daec46514f1",
            "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2025-08-05T08:00:00+02:00" },
            "person": { "id": ERIK },
            "dutyAt": { "id": UNIT },
            "dutyRole": "Lärare",
            "signature": "EKS",
            "dutyPercent": 100,
            "startDate": day(-500),
            "assignmentRole": [
                {
                    "group": { "id": CLASS_7A },
                    "assignmentRoleType": "Mentor",
                    "startDate": day(-30),
                    "endDate": day(200)
                }
            ],
            "_embedded": {
                "person": {
                    "id": ERIK,
                    "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2024-06-20T10:00:00+02:00" },
                    "givenName": "Erik",
                    "familyName": "Sandberg",
                    "civicNo": { "value": "198003021238" },
                    "eduPersonPrincipalNames": ["erik.sandberg@edu.gronkoping.se"],
                    "emails": [ { "value": "erik.sandberg@gronkoping.se", "type": "Skola personal" } ]
                }
            }
        }),
        json!({
            "id": "c0ffee00-66c7-4bf9-aa9c-7daec46514f2",
            "meta": { "created": "2024-06-20T10:00:00+02:00", "modified": "2025-08-05T08:00:00+02:00" },
            "person": { "id": PRINCIPAL },
            "dutyAt": { "id": UNIT },
            "dutyRole": "Rektor",
            "startDate": day(-900)
        }),
    ];
    Dataset::from_values(&organisations, &persons, &groups, &duties).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_sample_syncs_into_roles_groups_and_guardianships() {
    let app = spawn_app().await;
    let reg = Register::start_with(spec_sample(), AD_CONTEXT).await;
    reg.sync_ok(&app, &["--full"]);

    let run = last_run(&app);
    assert_eq!(run["status"], "applied", "{run}");
    assert_eq!(run["counts"]["persons_created"], 5, "{run}");
    assert_eq!(
        run["counts"]["unresolved"]["group member not in the register"], 1,
        "the member f0d60e62 is not in the register: {run}"
    );

    // Alva: the username from the agreed context, an eppn of our own, student of 7A.
    let alva = show(&app, "alvlin0514");
    assert_eq!(alva["id"], person_id(SOURCE, ALVA));
    assert_eq!(alva["external_id"], ALVA);
    assert_eq!(alva["source"], SOURCE);
    assert_eq!(alva["active"], true);
    let alva_eppn = alva["eppn"].as_str().unwrap().to_string();
    assert_generated_eppn(&alva_eppn, "alva");
    assert_eq!(strings(&alva["roles"]), ["student@12345678"]);
    assert_eq!(strings(&alva["release"]["sisSchoolGrade"]), ["7"]);
    assert_eq!(strings(&alva["release"]["sisSchoolUnitCode"]), ["12345678"]);
    assert_eq!(group_names(&alva), ["7A"]);
    assert_eq!(alva["email"], "alva.lindqvist@elev.gronkoping.se");
    let affiliations = strings(&alva["release"]["eduPersonAffiliation"]);
    assert!(affiliations.contains(&"student".to_string()), "{alva}");
    let guardians = alva["facts"]["guardians"].as_array().unwrap();
    assert_eq!(guardians.len(), 1, "only the Vårdnadshavare: {alva}");

    // Her guardian: the guardian role, and Alva's eppn released as sisLegalGuardianFor.
    let karin = show(&app, GUARDIAN);
    assert_eq!(karin["active"], true, "{karin}");
    assert_eq!(strings(&karin["roles"]), ["guardian"]);
    assert_eq!(
        strings(&karin["release"]["sisLegalGuardianFor"]),
        [alva_eppn.as_str()]
    );
    assert!(karin["username"].as_str().unwrap().starts_with('u'));

    // "Annan ansvarig" does not make a guardian.
    let olle = show(&app, OTHER_RESPONSIBLE);
    assert!(
        !strings(&olle["roles"]).iter().any(|r| r == "guardian"),
        "{olle}"
    );
    assert!(strings(&olle["release"]["sisLegalGuardianFor"]).is_empty());
    assert_eq!(olle["active"], false, "no role at all: inactive");

    // Erik: teacher at the unit, 7A through his Mentor assignment; a generated username.
    let erik = show(&app, ERIK);
    assert_eq!(erik["id"], person_id(SOURCE, ERIK));
    assert_eq!(strings(&erik["roles"]), ["teacher@12345678"]);
    assert!(group_names(&erik).contains(&"7A".to_string()), "{erik}");
    let username = erik["username"].as_str().unwrap();
    assert!(
        username.starts_with('u') && username.len() == 9,
        "{username}"
    );
    assert_generated_eppn(erik["eppn"].as_str().unwrap(), "erik");

    // The principal.
    let maria = show(&app, PRINCIPAL);
    assert_eq!(strings(&maria["roles"]), ["principal@12345678"]);
    assert_eq!(maria["active"], true);
}
