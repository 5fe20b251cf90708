//! The EGIL SCIM server (issue 17), driven over HTTP like a pushing register: a push source
//! configured with a bearer token, resources created, read, listed, replaced and deleted,
//! every error the server answers, the guard holding deletes, the directory and logins the
//! pushes give, and a third-party SCIM client (scim2-client) against it.

use crate::helpers::*;
use serde_json::{Value, json};

mod crud;
mod directory;
mod errors;
mod guard;
mod interop;

/// The push source the tests configure, and its token.
pub(crate) const SOURCE: &str = "egil";
pub(crate) const TOKEN: &str = "egil-push-token-0123456789abcdef0123456789";
/// A second push source, for what one source may not do to the other's resources.
const OTHER: &str = "other";
const OTHER_TOKEN: &str = "other-push-token-0123456789abcdef012345678";

pub(crate) const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const USER_EXT: &str = "urn:scim:schemas:extension:sis:school:1.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub(crate) fn sis(kind: &str) -> String {
    format!("urn:scim:schemas:extension:sis:school:1.0:{kind}")
}

/// An app with the push sources [`SOURCE`] and [`OTHER`], and `tune` applied.
pub(crate) async fn scim_app_with(
    tune: impl FnOnce(&mut portvakt::config::Config),
) -> (TestApp, Push) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, token) in [(SOURCE, TOKEN), (OTHER, OTHER_TOKEN)] {
        let path = dir.path().join(format!("{name}.token"));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        files.push((name, path));
    }
    let app = spawn_app_with(|c| {
        for (name, path) in &files {
            let source =
                serde_json::from_value(json!({ "kind": "scim", "token_file": path })).unwrap();
            c.sync.sources.insert(name.to_string(), source);
        }
        tune(c);
    })
    .await;
    // The token files were read at start.
    drop(dir);
    let push = Push::new(&app, TOKEN);
    (app, push)
}

pub(crate) async fn scim_app() -> (TestApp, Push) {
    scim_app_with(|_| {}).await
}

/// A pushing client: a bearer token and the SCIM base.
pub(crate) struct Push {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A SCIM answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// An RFC 7644 error body with this status (and scimType, if given).
    fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["schemas"], json!([ERROR]), "{}", self.body);
        assert_eq!(self.body["status"], status.to_string(), "{}", self.body);
        assert_eq!(
            self.body["scimType"].as_str(),
            scim_type,
            "scimType: {}",
            self.body
        );
        assert!(
            !self.body["detail"].as_str().unwrap_or_default().is_empty(),
            "an error says why: {}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/scim+json"),
            "{}",
            self.body
        );
    }
}

impl Push {
    fn new(app: &TestApp, token: &str) -> Self {
        Push {
            http: reqwest::Client::new(),
            base: app.url("/scim/v2"),
            token: token.to_string(),
        }
    }

    fn as_token(&self, token: &str) -> Self {
        Push {
            http: self.http.clone(),
            base: self.base.clone(),
            token: token.to_string(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn post(&self, endpoint: &str, body: &Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            endpoint,
            Some(&body.to_string()),
            &[],
        )
        .await
    }

    async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(&body.to_string()), &[])
            .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None, &[]).await
    }

    /// A create that must succeed.
    pub(crate) async fn created(&self, endpoint: &str, body: &Value) -> Value {
        let a = self.post(endpoint, body).await;
        assert_eq!(a.status, 201, "POST {endpoint}: {}", a.body);
        a.body
    }
}

fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn reference(endpoint: &str, id: &str) -> Value {
    json!({ "value": id, "$ref": format!("{endpoint}/{id}") })
}

fn organisation(id: &str, name: &str) -> Value {
    json!({ "schemas": [sis("Organisation")], "externalId": id, "displayName": name })
}

fn unit_group(id: &str, name: &str) -> Value {
    json!({ "schemas": [sis("SchoolUnitGroup")], "externalId": id, "displayName": name })
}

fn school_unit(id: &str, name: &str, code: &str, org: &str) -> Value {
    json!({
        "schemas": [sis("SchoolUnit")], "externalId": id, "displayName": name,
        "schoolUnitCode": code, "organisation": reference("Organisations", org),
        "schoolTypes": ["GR"], "municipalityCode": "9999",
    })
}

/// A User enrolled at `units` (id, school year), with guardians (`userRelations`).
fn user(
    id: &str,
    user_name: &str,
    given: &str,
    family: &str,
    units: &[(&str, i64)],
    guardians: &[&str],
) -> Value {
    json!({
        "schemas": [USER, USER_EXT],
        "externalId": id,
        "userName": user_name,
        "displayName": format!("{given} {family}"),
        "name": { "givenName": given, "familyName": family },
        "emails": [ { "value": format!("{}@skola.example.se", user_name.split('@').next().unwrap()), "type": "Skola elev" } ],
        USER_EXT: {
            "enrolments": units.iter().map(|(u, year)| json!({
                "value": u, "$ref": format!("SchoolUnits/{u}"), "schoolYear": year, "schoolType": "GR",
            })).collect::<Vec<_>>(),
            "userRelations": guardians.iter().map(|g| json!({
                "value": g, "$ref": format!("Users/{g}"), "relationType": "Vårdnadshavare",
            })).collect::<Vec<_>>(),
        },
    })
}

fn employment(id: &str, user: &str, unit: &str, role: &str) -> Value {
    json!({
        "schemas": [sis("Employment")], "externalId": id,
        "employedAt": reference("SchoolUnits", unit), "user": reference("Users", user),
        "employmentRole": role, "signature": "ABC",
    })
}

fn student_group(id: &str, name: &str, unit: &str, members: &[&str]) -> Value {
    json!({
        "schemas": [sis("StudentGroup")], "externalId": id, "displayName": name,
        "owner": reference("SchoolUnits", unit), "studentGroupType": "Klass", "schoolType": "GR",
        "studentMemberships": members.iter().map(|m| reference("Users", m)).collect::<Vec<_>>(),
    })
}

fn activity(id: &str, name: &str, unit: &str, groups: &[&str], teachers: &[&str]) -> Value {
    json!({
        "schemas": [sis("Activity")], "externalId": id, "displayName": name,
        "owner": reference("SchoolUnits", unit),
        "groups": groups.iter().map(|g| reference("StudentGroups", g)).collect::<Vec<_>>(),
        "teachers": teachers.iter().map(|t| reference("Employments", t)).collect::<Vec<_>>(),
    })
}

/// A small school: a huvudman, a unit, a teacher with an employment, a class of `pupils`
/// students (each with a guardian), and an activity linking the teacher to the class.
struct School {
    org: String,
    unit: String,
    teacher: String,
    employment: String,
    class: String,
    activity: String,
    students: Vec<String>,
    guardians: Vec<String>,
}

impl School {
    async fn push(p: &Push, code: &str, pupils: usize) -> School {
        let s = School {
            org: uid(),
            unit: uid(),
            teacher: uid(),
            employment: uid(),
            class: uid(),
            activity: uid(),
            students: (0..pupils).map(|_| uid()).collect(),
            guardians: (0..pupils).map(|_| uid()).collect(),
        };
        p.created("Organisations", &organisation(&s.org, "Grönköpings kommun"))
            .await;
        p.created(
            "SchoolUnits",
            &school_unit(&s.unit, "Gröntorpsskolan", code, &s.org),
        )
        .await;
        p.created(
            "Users",
            &user(
                &s.teacher,
                &format!("t{code}@edu.example.se"),
                "Erik",
                "Lärarsson",
                &[],
                &[],
            ),
        )
        .await;
        p.created(
            "Employments",
            &employment(&s.employment, &s.teacher, &s.unit, "Lärare"),
        )
        .await;
        for (i, (st, g)) in s.students.iter().zip(&s.guardians).enumerate() {
            p.created(
                "Users",
                &user(
                    g,
                    &format!("g{code}x{i}@edu.example.se"),
                    "Karin",
                    "Vårdnad",
                    &[],
                    &[],
                ),
            )
            .await;
            p.created(
                "Users",
                &user(
                    st,
                    &format!("s{code}x{i}@edu.example.se"),
                    "Elev",
                    &format!("Nummer{i}"),
                    &[(&s.unit, 7)],
                    &[g],
                ),
            )
            .await;
        }
        let members: Vec<&str> = s.students.iter().map(String::as_str).collect();
        p.created(
            "StudentGroups",
            &student_group(&s.class, "7A", &s.unit, &members),
        )
        .await;
        p.created(
            "Activities",
            &activity(
                &s.activity,
                "Matematik 7A",
                &s.unit,
                &[&s.class],
                &[&s.employment],
            ),
        )
        .await;
        s
    }
}

/// The CLI, without blocking the runtime that serves the app.
fn run_cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    tokio::task::block_in_place(|| cli(app, args, stdin))
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "the command failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `person show KEY --json`.
fn show(app: &TestApp, key: &str) -> Value {
    serde_json::from_str(&ok(&run_cli(app, &["person", "show", key, "--json"], None))).unwrap()
}

/// `sync runs --json` of one source, newest first.
fn runs_of(app: &TestApp, source: &str) -> Vec<Value> {
    let all: Vec<Value> = serde_json::from_str(&ok(&run_cli(
        app,
        &["sync", "runs", "--json", "--limit", "100"],
        None,
    )))
    .unwrap();
    all.into_iter().filter(|r| r["source"] == source).collect()
}

/// The directory's person a User of [`SOURCE`] became.
pub(crate) fn person_of(app: &TestApp, user_id: &str) -> Value {
    show(app, &portvakt::directory::ident::person_id(SOURCE, user_id))
}
