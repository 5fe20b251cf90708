//! The metakatalog sync (issue 4), end to end: an SS 12000 mock register on a loopback port,
//! `portvakt sync run --ss12000` against the app's database, and the results as an
//! administrator (`person show`, `sync runs`), a relying party (OIDC) and an SP (SAML) see
//! them. Dates are relative to today so the tests do not rot.

use crate::helpers::*;
use crate::saml_sp::{
    SUCCESS, TestSp, attributes, fresh_id, idp_cert, redirect_sso, verified_assertion,
};
use portvakt::clock::Clock;
use portvakt::directory::ident::person_id;
use portvakt::directory::release::{CIVIC_NO_CLAIM, CIVIC_NO_SCOPE};
use portvakt::sim::ss12000::generate::{USERNAME_CONTEXT, generate, luhn_digit};
use portvakt::sim::ss12000::mock::{self, Dataset, Kind, Mock};
use portvakt::sync::plan::RunKind;
use portvakt::sync::ss12000::client::{Client, ClientConfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

/// The source name `sync run --ss12000` records its people under.
const SOURCE: &str = "ss12000";
/// `meta.modified` of every hand-written record: long before any run, so an incremental
/// run sees only what a test changes (the mock stamps `upsert`s with now).
const OLD: &str = "2024-01-02T03:04:05Z";

// ---------------------------------------------------------------------------------------
// Harness.

/// A mock register served in-process under `/v2.0/`.
struct Register {
    mock: Mock,
    url: String,
    context: String,
}

impl Register {
    async fn start(data: Dataset) -> Self {
        Self::start_with(data, USERNAME_CONTEXT).await
    }

    async fn start_with(data: Dataset, context: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mock = Mock::new(data);
        tokio::spawn(mock::serve(listener, mock.clone()));
        Register {
            mock,
            url: format!("http://{addr}/v2.0/"),
            context: context.to_string(),
        }
    }

    /// `portvakt sync run --ss12000 URL --username-context CTX EXTRA…`.
    fn sync(&self, app: &TestApp, extra: &[&str]) -> Output {
        let mut args = vec![
            "sync",
            "run",
            "--ss12000",
            &self.url,
            "--username-context",
            &self.context,
        ];
        args.extend_from_slice(extra);
        run_cli(app, &args, None)
    }

    /// A sync that must succeed; its stdout.
    fn sync_ok(&self, app: &TestApp, extra: &[&str]) -> String {
        ok(&self.sync(app, extra))
    }

    /// An ad-hoc client for `run_once`, with small pages and quick retries.
    fn client(&self, page_size: u32, max_retries: u32) -> Client {
        let mut cfg = ClientConfig::new(url::Url::parse(&self.url).unwrap());
        cfg.page_size = page_size;
        cfg.max_retries = max_retries;
        cfg.retry_base = std::time::Duration::from_millis(10);
        Client::new(cfg).unwrap()
    }

    /// Adds or replaces a record now (the register's clock is the system's).
    fn upsert(&self, kind: Kind, v: Value) {
        self.mock.upsert_at(kind, v, Clock::system().now()).unwrap();
    }

    fn delete(&self, kind: Kind, id: &str) {
        assert!(
            self.mock.delete_at(kind, id, Clock::system().now()),
            "{id} was not in the mock"
        );
    }
}

/// The CLI, without blocking the runtime that serves the mock and the app.
fn run_cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    tokio::task::block_in_place(|| cli(app, args, stdin))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "the command failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `sync runs --json`, newest first.
fn runs(app: &TestApp) -> Vec<Value> {
    let out = run_cli(app, &["sync", "runs", "--json", "--limit", "50"], None);
    serde_json::from_str(&ok(&out)).unwrap()
}

fn last_run(app: &TestApp) -> Value {
    runs(app).into_iter().next().expect("a run is recorded")
}

/// `person show KEY --json`.
fn show(app: &TestApp, key: &str) -> Value {
    let out = run_cli(app, &["person", "show", key, "--json"], None);
    serde_json::from_str(&ok(&out)).unwrap()
}

fn set_password(app: &TestApp, username: &str) {
    ok(&run_cli(
        app,
        &["user", "set-password", username, "--password-stdin"],
        Some(PASSWORD),
    ));
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn group_names(shown: &Value) -> Vec<String> {
    shown["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

/// Everyone of the sync source as stored: internal id → (username, eppn, given, family, active).
async fn directory(app: &TestApp) -> BTreeMap<String, (String, String, String, String, bool)> {
    portvakt::storage::persons::list(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.source == SOURCE)
        .map(|p| {
            (
                p.id,
                (p.username, p.eppn, p.given_name, p.family_name, p.active),
            )
        })
        .collect()
}

async fn active(app: &TestApp, register_id: &str) -> bool {
    portvakt::storage::persons::by_id(&app.db, &person_id(SOURCE, register_id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{register_id} is not in the directory"))
        .active
}

/// A generated eppn: 12 characters of the digest alphabet, a scope, no name.
fn assert_generated_eppn(eppn: &str, not_containing: &str) {
    let (local, scope) = eppn.split_once('@').expect("an eppn has a scope");
    assert_eq!(local.len(), 12, "{eppn}");
    assert!(
        local
            .chars()
            .all(|c| "abcdefghijkmnpqrstuvwxyz23456789".contains(c)),
        "{eppn}"
    );
    assert!(!scope.is_empty());
    assert!(
        !eppn.to_lowercase().contains(not_containing),
        "an eppn never carries a name: {eppn}"
    );
}

// ---------------------------------------------------------------------------------------
// Register data.

/// The register's today: it runs on the system clock, as the `portvakt` it is synced by.
fn today() -> chrono::NaiveDate {
    portvakt::directory::roles::day_of(Clock::system().now())
}

/// Today plus `offset` days, as the register writes dates.
fn day(offset: i64) -> String {
    (today() + chrono::TimeDelta::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A Luhn-valid personnummer (12 digits) for a birth date `YYYYMMDD` and a serial.
fn civic(birth: &str, serial: u32) -> String {
    let short = format!("{}{serial:03}", &birth[2..]);
    format!("{birth}{serial:03}{}", luhn_digit(&short))
}

fn meta() -> Value {
    json!({ "created": OLD, "modified": OLD })
}

fn huvudman(id: &str, name: &str) -> Value {
    json!({
        "id": id, "meta": meta(), "displayName": name, "organisationType": "Huvudman",
        "organisationNumber": "212000-0142", "startDate": "2000-01-01",
    })
}

fn school_unit(id: &str, name: &str, code: &str, parent: &str) -> Value {
    json!({
        "id": id, "meta": meta(), "displayName": name, "organisationType": "Skolenhet",
        "schoolUnitCode": code, "schoolTypes": ["GR"], "municipalityCode": "9999",
        "parentOrganisation": { "id": parent }, "startDate": "2000-08-01",
    })
}

/// A person with a username under [`USERNAME_CONTEXT`] and no roles yet.
fn person(id: &str, given: &str, family: &str, username: &str, civic_no: &str) -> Value {
    json!({
        "id": id, "meta": meta(), "givenName": given, "familyName": family,
        "externalIdentifiers": [
            { "value": username, "context": USERNAME_CONTEXT, "globallyUnique": false }
        ],
        "civicNo": { "value": civic_no, "nationality": "SE" },
        "securityMarking": "Ingen", "personStatus": "Aktiv",
    })
}

fn enrolment(unit: &str, year: i32, start: i64, end: i64) -> Value {
    json!({
        "enroledAt": { "id": unit }, "schoolType": "GR", "schoolYear": year,
        "startDate": day(start), "endDate": day(end),
    })
}

fn student(id: &str, username: &str, family: &str, unit: &str, guardians: &[&str]) -> Value {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(10);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 990;
    let mut p = person(id, "Elev", family, username, &civic("20140101", serial));
    p["enrolments"] = json!([enrolment(unit, 5, -30, 200)]);
    p["responsibles"] = guardians
        .iter()
        .map(|g| json!({ "person": { "id": g }, "relationType": "Vårdnadshavare" }))
        .collect();
    p
}

fn group(id: &str, name: &str, group_type: &str, unit: &str, members: &[&str]) -> Value {
    json!({
        "id": id, "meta": meta(), "displayName": name, "groupType": group_type,
        "schoolType": "GR", "organisation": { "id": unit },
        "startDate": day(-30), "endDate": day(200),
        "groupMemberships": members
            .iter()
            .map(|m| json!({ "person": { "id": m }, "startDate": day(-30) }))
            .collect::<Vec<_>>(),
    })
}

fn duty(id: &str, person: &str, unit: &str, role: &str) -> Value {
    json!({
        "id": id, "meta": meta(), "person": { "id": person }, "dutyAt": { "id": unit },
        "dutyRole": role, "dutyPercent": 100, "startDate": day(-400),
    })
}

/// The register's persons of a dataset, as JSON.
fn persons_of(data: &Dataset) -> Vec<Value> {
    data.records(Kind::Person)
        .map(|(_, _, j)| serde_json::from_str(j).unwrap())
        .collect()
}

fn records_of(data: &Dataset, kind: Kind) -> Vec<Value> {
    data.records(kind)
        .map(|(_, _, j)| serde_json::from_str(j).unwrap())
        .collect()
}

fn id_of(p: &Value) -> String {
    p["id"].as_str().unwrap().to_string()
}

fn username_of(p: &Value) -> String {
    p["externalIdentifiers"][0]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

fn is_student(p: &Value) -> bool {
    p["enrolments"].as_array().is_some_and(|e| !e.is_empty())
}

/// Guardian register id → the children naming them `Vårdnadshavare`.
fn children_by_guardian(persons: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in persons {
        for r in p["responsibles"].as_array().into_iter().flatten() {
            if r["relationType"] == "Vårdnadshavare" {
                out.entry(r["person"]["id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(id_of(p));
            }
        }
    }
    out
}

/// A municipality of about `n` generated persons.
fn municipality(n: usize) -> Dataset {
    generate(4711, n, today())
}

// ---------------------------------------------------------------------------------------
// 1. The spec's sample (specs/ss12000.md §9), dates moved around today.

const UNIT: &str = "957809cb-9934-4389-98d4-5060032485a0";
const HUVUDMAN: &str = "7c1113d7-9cd7-4235-92d2-c1e2b318fae4";
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

// ---------------------------------------------------------------------------------------
// 4. A failing source changes nothing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_at_a_page_changes_nothing_and_is_recorded_failed() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    let before = directory(&app).await;

    let mut renamed = persons[3].clone();
    renamed["familyName"] = json!("Bytt");
    reg.upsert(Kind::Person, renamed.clone());
    let gone = persons.iter().rev().find(|p| !is_student(p)).unwrap();
    reg.delete(Kind::Person, &id_of(gone));

    // The CLI: the groups fail with a 400 (not retried) after the persons were read.
    reg.mock.fail_page("/groups", 1, 400, 1);
    let out = reg.sync(&app, &[]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("nothing was changed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(directory(&app).await, before);
    let run = last_run(&app);
    assert_eq!(run["status"], "failed", "{run}");

    // A full read with small pages whose third page of persons keeps failing (503, retried
    // until the client gives up).
    reg.mock.fail_page("/persons", 3, 503, 10);
    let client = reg.client(50, 2);
    let err = portvakt::sync::run_once(
        &app.db,
        &app.config,
        &app.clock,
        SOURCE,
        Some(USERNAME_CONTEXT),
        &client,
        RunKind::Full,
        false,
        &|_| {},
    )
    .await
    .expect_err("the run fails");
    assert!(
        matches!(err, portvakt::sync::run::SyncError::Source(_)),
        "{err}"
    );
    assert_eq!(directory(&app).await, before);
    let all = runs(&app);
    assert_eq!(all[0]["status"], "failed");
    assert_eq!(all[0]["kind"], "full");
    assert_eq!(all[1]["status"], "failed");

    // Once the register answers again, the changes arrive.
    let out = reg.sync(&app, &[]);
    ok(&out);
    let after = directory(&app).await;
    assert_eq!(after[&person_id(SOURCE, &id_of(&renamed))].3, "Bytt");
    assert!(!after[&person_id(SOURCE, &id_of(gone))].4);
}

/// One statement on the app's database, on a connection of its own.
async fn execute(app: &TestApp, statement: &'static str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The database fails a read after the run was recorded (here: the duties table is away
/// while the plan is computed). The run is recorded `failed` with the reason, not left
/// `running`, and its lease is released so the next run goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_after_it_started_is_recorded_failed_with_the_reason() {
    let app = spawn_app().await;
    let reg = Register::start(municipality(50)).await;
    let client = reg.client(100, 0);
    let runner = portvakt::sync::run::Runner {
        db: &app.db,
        config: &app.config,
        clock: &app.clock,
        source: SOURCE,
        username_context: Some(USERNAME_CONTEXT),
        dry_run: false,
    };
    let app_ref = &app;
    let err = runner
        .run(
            RunKind::Full,
            |_| async move {
                let snapshot = client.snapshot(&|_| {}).await.map_err(|e| e.to_string())?;
                execute(app_ref, "ALTER TABLE duties RENAME TO duties_away").await?;
                Ok(portvakt::sync::run::Fetched::Full(snapshot))
            },
            &|_| {},
        )
        .await
        .expect_err("the run fails");
    assert!(
        matches!(err, portvakt::sync::run::SyncError::Storage(_)),
        "{err}"
    );
    execute(&app, "ALTER TABLE duties_away RENAME TO duties")
        .await
        .unwrap();

    let run = last_run(&app);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["finished_at"].is_i64(), "{run}");
    let reason = run["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("duties"), "{run}");
    assert!(directory(&app).await.is_empty(), "nothing was applied");

    // The lease is free: the next run goes ahead and applies.
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(last_run(&app)["status"], "applied");
}

/// An approval whose apply stops part-way (here: the refresh-token table is away when the
/// deactivations revoke tokens) is recorded `failed` with the reason, not left `approving`
/// for ever, and its lease is released so the next run goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_failing_in_the_apply_is_recorded_failed_with_the_reason() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    let guardians: Vec<String> = children_by_guardian(&persons).into_keys().collect();
    for g in &guardians[..persons.len() * 6 / 100 + 1] {
        reg.delete(Kind::Person, g);
    }
    let id = held_run_id(&reg.sync(&app, &[]));

    execute(
        &app,
        "ALTER TABLE refresh_tokens RENAME TO refresh_tokens_away",
    )
    .await
    .unwrap();
    let out = run_cli(&app, &["sync", "approve", &id.to_string()], None);
    execute(
        &app,
        "ALTER TABLE refresh_tokens_away RENAME TO refresh_tokens",
    )
    .await
    .unwrap();
    assert!(!out.status.success(), "the approval fails");
    let run = last_run(&app);
    assert_eq!(run["id"], id, "{run}");
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("applying stopped") && reason.contains("refresh_tokens"),
        "{run}"
    );

    // The lease is free and the plan is made again: held again, then approved.
    let again = held_run_id(&reg.sync(&app, &[]));
    assert_ne!(again, id);
    ok(&run_cli(
        &app,
        &["sync", "approve", &again.to_string()],
        None,
    ));
    assert_eq!(last_run(&app)["status"], "approved");
}

// ---------------------------------------------------------------------------------------
// 5. The guard.

fn held_run_id(out: &Output) -> i64 {
    assert!(!out.status.success(), "a held run exits non-zero");
    let err = text(&out.stderr);
    let id = last_id_in(&err);
    assert!(
        err.contains(&format!("sync approve {id}")) && err.contains(&format!("run {id}")),
        "{err}"
    );
    id
}

/// The run id in "run N stopped before applying".
fn last_id_in(err: &str) -> i64 {
    let rest = err
        .split("run ")
        .find_map(|s| {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty() && s[digits.len()..].starts_with(" stopped")).then_some(digits)
        })
        .unwrap_or_else(|| panic!("no run id in {err}"));
    rest.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_mass_deactivations_until_approved_or_rejected() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let n = persons.len();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);

    // Guardians only, so exactly these people are deactivated: > 5 %.
    let guardians: Vec<String> = children_by_guardian(&persons).into_keys().collect();
    let count = n * 6 / 100 + 1;
    let first: Vec<String> = guardians[..count].to_vec();
    let second: Vec<String> = guardians[count..2 * count].to_vec();
    for g in &first {
        reg.delete(Kind::Person, g);
    }
    let out = reg.sync(&app, &[]);
    let id = held_run_id(&out);
    let run = last_run(&app);
    assert_eq!(run["id"], id);
    assert_eq!(run["status"], "held");
    assert_eq!(run["counts"]["deactivations"], count, "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("deactivate"),
        "{run}"
    );
    for g in &first {
        assert!(active(&app, g).await, "nothing applied while held");
    }

    ok(&run_cli(&app, &["sync", "approve", &id.to_string()], None));
    for g in &first {
        assert!(!active(&app, g).await, "approved: deactivated");
    }
    assert_eq!(last_run(&app)["status"], "approved");
    // Approving twice is refused.
    assert!(
        !run_cli(&app, &["sync", "approve", &id.to_string()], None)
            .status
            .success()
    );

    // A second scenario, full this time, rejected.
    for g in &second {
        reg.delete(Kind::Person, g);
    }
    let out = reg.sync(&app, &["--full"]);
    let id2 = held_run_id(&out);
    assert_ne!(id, id2);
    ok(&run_cli(&app, &["sync", "reject", &id2.to_string()], None));
    for g in &second {
        assert!(active(&app, g).await, "rejected: still active");
    }
    let all = runs(&app);
    let statuses: BTreeMap<i64, String> = all
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(statuses[&id], "approved");
    assert_eq!(statuses[&id2], "rejected");
    // The register still says so: the next run is held again.
    let out = reg.sync(&app, &["--full"]);
    held_run_id(&out);
}

/// Two school units; every role of unit A moves to unit B.
fn two_units() -> (Dataset, Vec<Value>) {
    let h = uid();
    let (a, b) = (uid(), uid());
    let mut persons = Vec::new();
    for (i, unit) in [&a, &a, &b, &b, &b].iter().enumerate() {
        persons.push(student(&uid(), &format!("elev{i}"), "Ek", unit, &[]));
    }
    let teacher = uid();
    persons.push(person(
        &teacher,
        "Lärar",
        "Ek",
        "larare",
        &civic("19800101", 321),
    ));
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&a, "Ekskolan", "11111111", &h),
            school_unit(&b, "Björkskolan", "22222222", &h),
        ],
        &persons,
        &[],
        &[duty(&uid(), &teacher, &b, "Lärare")],
    )
    .unwrap();
    // Unit A's students, moved to B.
    let moved = persons[..2]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["enrolments"] = json!([enrolment(&b, 5, -30, 200)]);
            p
        })
        .collect();
    (data, moved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_a_full_plan_that_empties_a_school_unit() {
    let app = spawn_app().await;
    let (data, moved) = two_units();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@11111111"]);
    for p in moved {
        reg.upsert(Kind::Person, p);
    }
    let out = reg.sync(&app, &["--full"]);
    let id = held_run_id(&out);
    let run = last_run(&app);
    assert_eq!(run["status"], "held");
    assert_eq!(run["counts"]["deactivations"], 0);
    assert!(
        run["reason"].as_str().unwrap().contains("11111111"),
        "{run}"
    );
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@11111111"]);
    ok(&run_cli(&app, &["sync", "approve", &id.to_string()], None));
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@22222222"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_an_incremental_plan_that_empties_a_school_unit() {
    let app = spawn_app().await;
    let (data, moved) = two_units();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    for p in moved {
        reg.upsert(Kind::Person, p);
    }
    let out = reg.sync(&app, &[]);
    assert_eq!(last_run(&app)["kind"], "incremental");
    let id = held_run_id(&out);
    assert!(id > 0);
    assert_eq!(strings(&show(&app, "elev0")["roles"]), ["student@11111111"]);
}

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
// 8. Protected identities.

/// A login with `scope` through a browser; the token response.
async fn login_with_scope(app: &TestApp, client_id: &str, username: &str, scope: &str) -> Value {
    let (url, state, _, verifier) = app.authorize_url(client_id, &[]);
    let mut u = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "scope" {
                scope.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let browser = app.browser();
    let cb = browser.login(app, u.as_str(), username, PASSWORD).await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
    let code = query_param(&cb, "code").expect("a code");
    let (status, body) = app
        .token(
            client_id,
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_identities_release_no_personnummer_and_are_not_named() {
    let app = spawn_app().await;
    let h = uid();
    let unit = uid();
    let (hidden_child, open_child, open_guardian, hidden_guardian) = (uid(), uid(), uid(), uid());
    let mut hidden = student(
        &hidden_child,
        "elevskydd",
        "Skyddsson",
        &unit,
        &[&open_guardian],
    );
    hidden["securityMarking"] = json!("Skyddad folkbokföring");
    let open = student(
        &open_child,
        "elevoppen",
        "Öppensson",
        &unit,
        &[&open_guardian, &hidden_guardian],
    );
    let mut g2 = person(
        &hidden_guardian,
        "Dold",
        "Skyddsson",
        "vhskydd",
        &civic("19790505", 246),
    );
    g2["securityMarking"] = json!("Sekretessmarkering");
    let g1 = person(
        &open_guardian,
        "Öppen",
        "Öppensson",
        "vhoppen",
        &civic("19810606", 135),
    );
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&unit, "Ekskolan", "11111111", &h),
        ],
        &[hidden.clone(), open.clone(), g1.clone(), g2.clone()],
        &[],
        &[],
    )
    .unwrap();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    for u in ["elevskydd", "elevoppen", "vhoppen", "vhskydd"] {
        set_password(&app, u);
    }
    let open_eppn = show(&app, "elevoppen")["eppn"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden_eppn = show(&app, "elevskydd")["eppn"]
        .as_str()
        .unwrap()
        .to_string();

    app.add_client("civic", |s| {
        s.scopes = ["openid", "profile", "email", "school", CIVIC_NO_SCOPE]
            .map(String::from)
            .to_vec();
        s.release.push(CIVIC_NO_CLAIM.to_string());
    })
    .await;
    let scope = format!("openid profile school {CIVIC_NO_SCOPE}");
    let claims_of = |t: &Value| jwt_claims(t["id_token"].as_str().unwrap());
    let mut seen = BTreeMap::new();
    for u in ["elevskydd", "elevoppen", "vhoppen", "vhskydd"] {
        let t = login_with_scope(&app, "civic", u, &scope).await;
        let (s, info) = app.userinfo(t["access_token"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{info}");
        seen.insert(u, (claims_of(&t), info));
    }
    let civic_of = |p: &Value| p["civicNo"]["value"].as_str().unwrap().to_string();
    for (u, expected) in [
        ("elevoppen", Some(civic_of(&open))),
        ("vhoppen", Some(civic_of(&g1))),
        ("elevskydd", None),
        ("vhskydd", None),
    ] {
        let (id_token, info) = &seen[u];
        for claims in [id_token, info] {
            assert_eq!(
                claims.get(CIVIC_NO_CLAIM).and_then(Value::as_str),
                expected.as_deref(),
                "{u}: {claims}"
            );
        }
    }
    // The open guardian names the open child only; the protected guardian names no one.
    let (_, info) = &seen["vhoppen"];
    assert_eq!(
        strings(&info["guardian_of"]),
        [open_eppn.as_str()],
        "{info}"
    );
    assert!(!info.to_string().contains(&hidden_eppn));
    let (id_token, info) = &seen["vhskydd"];
    assert!(info.get("guardian_of").is_none(), "{info}");
    assert!(id_token.get("guardian_of").is_none(), "{id_token}");
    assert!(strings(&info["roles"]).contains(&"guardian".to_string()));

    // SAML: the same rules.
    let sp = TestSp::new("https://sp.example.se");
    sp.register(
        &app,
        &[
            "--release",
            "norEduPersonNIN",
            "--release",
            "sisLegalGuardianFor",
            "--release",
            "givenName",
        ],
    );
    let saml = |u: &'static str| {
        let (app, sp) = (&app, &sp);
        async move {
            let b = app.browser();
            let req = sp.authn_request(app, &fresh_id(), "", "");
            let a = redirect_sso(&b, app, sp, &req, Some(u)).await;
            assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
            attributes(&verified_assertion(&a.xml, &idp_cert(app).await))
        }
    };
    let attrs = saml("elevskydd").await;
    assert!(!attrs.contains_key("norEduPersonNIN"), "{attrs:?}");
    let attrs = saml("elevoppen").await;
    assert_eq!(attrs["norEduPersonNIN"], [civic_of(&open)]);
    let attrs = saml("vhoppen").await;
    assert_eq!(attrs["sisLegalGuardianFor"], [open_eppn.as_str()]);
    let attrs = saml("vhskydd").await;
    assert!(!attrs.contains_key("sisLegalGuardianFor"), "{attrs:?}");
    assert!(!attrs.contains_key("norEduPersonNIN"), "{attrs:?}");

    // Listings hide the protected unless asked.
    let list = |extra: &[&str]| {
        let mut args = vec!["user", "list", "--search", "skyddsson", "--json"];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(&ok(&run_cli(&app, &args, None))).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["username"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    assert!(list(&[]).is_empty(), "{:?}", list(&[]));
    assert_eq!(
        list(&["--include-protected"]),
        BTreeSet::from(["elevskydd".to_string(), "vhskydd".to_string()])
    );
    let out = ok(&run_cli(
        &app,
        &["user", "list", "--search", "elevskydd"],
        None,
    ));
    assert!(!out.contains("elevskydd"), "{out}");
}

// ---------------------------------------------------------------------------------------
// 9. End to end: sync, log in, leave.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_student_logs_in_with_school_claims_until_they_leave() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let orgs = records_of(&data, Kind::Organisation);
    let groups = records_of(&data, Kind::Group);
    let pupil = persons
        .iter()
        .find(|p| is_student(p) && p["securityMarking"] == "Ingen")
        .unwrap()
        .clone();
    let username = username_of(&pupil);
    let e = &pupil["enrolments"][0];
    let code = orgs
        .iter()
        .find(|o| o["id"] == e["enroledAt"]["id"])
        .unwrap()["schoolUnitCode"]
        .as_str()
        .unwrap()
        .to_string();
    let grade = e["schoolYear"].as_i64().unwrap().to_string();
    let mut expected_groups: Vec<String> = groups
        .iter()
        .filter(|g| {
            g["groupMemberships"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["person"]["id"] == pupil["id"])
        })
        .map(|g| g["displayName"].as_str().unwrap().to_string())
        .collect();
    expected_groups.sort();
    assert!(!expected_groups.is_empty());

    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    set_password(&app, &username);
    app.add_client("rp", |_| {}).await;
    let (browser, tokens) = app.login_tokens("rp", &username).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (s, info) = app.userinfo(&access).await;
    assert_eq!(s, 200, "{info}");
    for claims in [&jwt_claims(tokens["id_token"].as_str().unwrap()), &info] {
        assert_eq!(strings(&claims["roles"]), ["student"], "{claims}");
        assert_eq!(strings(&claims["school_unit_codes"]), [code.as_str()]);
        let aff = strings(&claims["eduperson_affiliation"]);
        assert!(
            aff.contains(&"student".into()) && aff.contains(&"member".into()),
            "{claims}"
        );
        assert_eq!(strings(&claims["school_grades"]), [grade.as_str()]);
        let mut g = strings(&claims["groups"]);
        g.sort();
        assert_eq!(g, expected_groups);
        assert_eq!(claims["given_name"], pupil["givenName"]);
    }

    let sp = TestSp::new("https://sp.example.se");
    sp.register(
        &app,
        &[
            "--release",
            "eduPersonAffiliation",
            "--release",
            "sisSchoolUnitCode",
            "--release",
            "sisSchoolGrade",
        ],
    );
    let b = app.browser();
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    let a = redirect_sso(&b, &app, &sp, &req, Some(&username)).await;
    assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
    let attrs = attributes(&verified_assertion(&a.xml, &idp_cert(&app).await));
    let mut aff = attrs["eduPersonAffiliation"].clone();
    aff.sort();
    assert_eq!(aff, ["member", "student"]);
    assert_eq!(attrs["sisSchoolUnitCode"], [code.as_str()]);
    assert_eq!(attrs["sisSchoolGrade"], [grade.as_str()]);

    // The student leaves the register.
    reg.delete(Kind::Person, &id_of(&pupil));
    reg.sync_ok(&app, &[]);
    assert_eq!(last_run(&app)["status"], "applied");
    assert!(!active(&app, &id_of(&pupil)).await);

    let (s, body) = app.userinfo(&access).await;
    assert_eq!(s, 401, "userinfo with an old access token: {body}");
    let (s, body) = app
        .token(
            "rp",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 400, "refresh after deactivation: {body}");
    // The SSO session ended: the old browser is asked to log in again …
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let r = browser.get(&url).await;
    assert_eq!(r.status, 303);
    assert!(
        r.location.as_deref().unwrap_or("").contains("/login?tx="),
        "the SSO session must be ended: {:?}",
        r.location
    );
    // … and the password no longer logs in.
    let fresh = app.browser();
    let (tx, csrf, _) = fresh.open_login(&url).await;
    let r = fresh
        .post_login(&app, &tx, &csrf, &username, PASSWORD)
        .await;
    assert_ne!(r.status, 303, "a deactivated person cannot log in");
    // Nor through SAML.
    let b = app.browser();
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    let first = b
        .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    let login_url = first.location.clone().expect("to the login page");
    let page = b.get(&login_url).await;
    let r = b
        .post_login(
            &app,
            &hidden(&page.body, "tx"),
            &hidden(&page.body, "csrf"),
            &username,
            PASSWORD,
        )
        .await;
    assert_ne!(r.status, 303, "no SAML login either");
}

// ---------------------------------------------------------------------------------------
// 10. Unknown values and fields are counted, not fatal.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_enum_values_and_fields_are_counted_in_the_report() {
    let app = spawn_app().await;
    let h = uid();
    let unit = uid();
    let (s1, s2, staff) = (uid(), uid(), uid());
    let mut a = student(&s1, "elev1", "Ek", &unit, &[]);
    a["sex"] = json!("Annat");
    a["favouriteColour"] = json!("grön");
    a["enrolments"][0]["lunchTime"] = json!("11:30");
    let mut b = student(&s2, "elev2", "Ek", &unit, &[]);
    b["sex"] = json!("Annat");
    let c = person(&staff, "Vakt", "Mästare", "vakt", &civic("19700101", 777));
    let mut d = duty(&uid(), &staff, &unit, "Vaktmästare");
    d["shoeSize"] = json!(44);
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&unit, "Ekskolan", "11111111", &h),
        ],
        &[a, b, c],
        &[group(
            &uid(),
            "Fotboll",
            "Idrottsgrupp",
            &unit,
            &[s1.as_str(), s2.as_str()],
        )],
        &[d],
    )
    .unwrap();
    let reg = Register::start(data).await;
    let out = reg.sync_ok(&app, &["--full"]);
    assert!(out.contains("Person.sex=Annat"), "{out}");
    let run = last_run(&app);
    assert_eq!(run["status"], "applied", "{run}");
    let r = &run["report"];
    assert_eq!(r["unknown_values"]["Person.sex=Annat"], 2, "{r}");
    assert_eq!(r["unknown_values"]["Duty.dutyRole=Vaktmästare"], 1, "{r}");
    assert_eq!(
        r["unknown_values"]["Group.groupType=Idrottsgrupp"], 1,
        "{r}"
    );
    assert_eq!(r["unknown_fields"]["Person.favouriteColour"], 1, "{r}");
    assert_eq!(r["unknown_fields"]["Person.enrolments.lunchTime"], 1, "{r}");
    assert_eq!(r["unknown_fields"]["Duty.shoeSize"], 1, "{r}");
    assert_eq!(run["counts"]["persons_created"], 3);

    // The records were used anyway.
    let elev = show(&app, "elev1");
    assert_eq!(strings(&elev["roles"]), ["student@11111111"]);
    assert_eq!(group_names(&elev), ["Fotboll"]);
    assert_eq!(strings(&show(&app, "vakt")["roles"]), ["staff@11111111"]);
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
    let outcome = portvakt::sync::run_once(
        &app.db,
        &cli_config,
        &app.clock,
        SOURCE,
        Some(&register.context),
        &client,
        RunKind::Full,
        false,
        &|_| {},
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

// ---------------------------------------------------------------------------------------
// The register's token from the environment; configured sources on serve's schedule.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_run_takes_its_bearer_token_from_the_environment() {
    let app = spawn_app().await;
    let register = Register::start(municipality(150)).await;
    register.mock.require_bearer("registrets-hemliga-token");
    let run = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"));
        cmd.args(["sync", "run", "--ss12000", &register.url])
            .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
            .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
            .env_remove("PORTVAKT_CONFIG")
            .env_remove("PORTVAKT_SS12000_TOKEN");
        if let Some(t) = token {
            cmd.env("PORTVAKT_SS12000_TOKEN", t);
        }
        tokio::task::block_in_place(|| cmd.output().unwrap())
    };
    let refused = run(None);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    assert!(!err.contains("registrets-hemliga-token"));
    assert!(directory(&app).await.is_empty(), "nothing written");
    let wrong = run(Some("fel-token"));
    assert!(!wrong.status.success());
    assert!(
        !text(&wrong.stderr).contains("fel-token"),
        "a token never reaches a message"
    );
    let out = run(Some("registrets-hemliga-token"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!directory(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_configured_source_on_its_schedule() {
    let register = Register::start(municipality(150)).await;
    let source: portvakt::config::SourceConfig = toml::from_str(&format!(
        "base_url = \"{}\"\nusername_context = \"{USERNAME_CONTEXT}\"\nfull_every = 3600\n",
        register.url
    ))
    .unwrap();
    let app = spawn_app_with(|c| {
        c.sync.sources.insert("kommunen".into(), source);
    })
    .await;
    // The schedule looks at once when serve starts, then every minute.
    let mut synced = Vec::new();
    for _ in 0..100 {
        synced = portvakt::storage::persons::list(&app.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.source == "kommunen")
            .collect();
        if !synced.is_empty() && !runs(&app).is_empty() && last_run(&app)["status"] == "applied" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        synced.len() > 100,
        "{} people synced by the schedule",
        synced.len()
    );
    let run = last_run(&app);
    assert_eq!(run["source"], "kommunen");
    assert_eq!(run["kind"], "full");
    assert!(synced.iter().any(|p| p.username == "elev1001"));
}
