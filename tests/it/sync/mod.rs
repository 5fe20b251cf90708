//! The metakatalog sync (issue 4), end to end: an SS 12000 mock register on a loopback port,
//! `portvakt sync run --ss12000` (or `--file` with its dump or a CSV file, issue 17) against
//! the app's database, and the results as an administrator (`person show`, `sync runs`), a
//! relying party (OIDC) and an SP (SAML) see them. Dates are relative to today so the tests
//! do not rot.
//!
//! This module holds the harness (the mock register, the CLI, the run and person views)
//! and the register data builders; the tests live in one submodule per section.

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

mod bulk;
mod csv;
mod end_to_end;
mod failures;
mod file;
mod guard;
mod held;
mod incremental;
mod interrupted;
mod lifecycle;
mod privacy;
mod same_facts;
mod sample;
mod schedule;
mod unknown_values;

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

    /// An ad-hoc client for in-process runs, with small pages and quick retries.
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

/// What a run in-process needs: the app's database, settings, clock and KEK.
fn env(app: &TestApp) -> portvakt::sync::Env<'_> {
    env_with(app, &app.config)
}

/// [`env`] with other settings.
fn env_with<'a>(app: &'a TestApp, config: &'a portvakt::config::Config) -> portvakt::sync::Env<'a> {
    portvakt::sync::Env {
        db: &app.db,
        config,
        clock: &app.clock,
        kek: app.state.keys.kek(),
    }
}

/// One run of [`SOURCE`] in-process on the app's clock (which a test may have moved).
async fn run_in(
    env: portvakt::sync::Env<'_>,
    client: &Client,
    context: Option<&str>,
    kind: RunKind,
) -> Result<portvakt::sync::run::Outcome, portvakt::sync::run::SyncError> {
    let mut runner = portvakt::sync::run::Runner::new(env, SOURCE);
    runner.username_context = context;
    runner
        .run_source(client, kind, &|_| {}, std::future::pending())
        .await
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
