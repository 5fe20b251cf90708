//! A built-in SS 12000 v2.1 server with fictional data, for the demo, the tests and the
//! benchmark (specs/ss12000.md §2–§4, §6, §7). It is not a register: it serves what it holds.
//!
//! Records are kept as already-serialised JSON in id order, so a page body is a
//! concatenation of stored strings and 500,000 persons stay within a few hundred MB.
//! Page tokens carry the last id served (not an offset), so paging stays correct while a
//! test changes the data between pages. Faults (an error status at page N, 429 bursts) and
//! authentication (a static bearer token, an OAuth2 client-credentials endpoint) are knobs
//! for tests. Only loopback addresses are meant to reach it.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::DateTime;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use http::{deleted_get, error, list_get, one_get, token_post};

/// The largest page the mock serves, and the page size when `limit` is absent.
pub const MAX_PAGE: usize = 1000;

/// The four entity types Portvakt reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Organisation,
    Person,
    Group,
    Duty,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Organisation, Kind::Person, Kind::Group, Kind::Duty];

    /// The collection path segment and `/deletedEntities` key (`persons`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Organisation => "organisations",
            Kind::Person => "persons",
            Kind::Group => "groups",
            Kind::Duty => "duties",
        }
    }

    /// The type name used by `/deletedEntities?entities=` (`Person`).
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Organisation => "Organisation",
            Kind::Person => "Person",
            Kind::Group => "Group",
            Kind::Duty => "Duty",
        }
    }

    fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The other `entities` values of `/deletedEntities` (valid, but the mock tracks none).
const OTHER_DELETED_TYPES: &[&str] = &[
    "Absence",
    "AttendanceEvent",
    "Attendance",
    "Grade",
    "CalendarEvent",
    "AttendanceSchedule",
    "Resource",
    "Room",
    "Activity",
    "Placement",
    "StudyPlan",
    "Programme",
    "Syllabus",
    "SchoolUnitOffering",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MockError {
    #[error("a {0:?} record is not a JSON object")]
    NotObject(Kind),
    #[error("a {0:?} record has no string \"id\"")]
    NoId(Kind),
}

#[derive(Debug, Clone)]
struct Record {
    modified: i64,
    json: Box<str>,
}

/// A deletion recorded for `/deletedEntities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub kind: Kind,
    pub id: Box<str>,
    pub deleted_at: i64,
}

/// What the mock serves: per type, records keyed (and paged) by id.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    tables: [BTreeMap<Box<str>, Record>; 4],
    tombstones: Vec<Tombstone>,
}

impl Dataset {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a record from JSON the caller already wrote; trusted input.
    pub fn insert_json(&mut self, kind: Kind, id: &str, modified: i64, json: String) {
        self.tables[kind.index()].insert(
            id.into(),
            Record {
                modified,
                json: json.into_boxed_str(),
            },
        );
    }

    /// Adds (or replaces) a record given as JSON; `meta.modified` is read when parsable
    /// (0 otherwise), the rest is served exactly as given (unknown fields, odd values).
    pub fn insert_value(&mut self, kind: Kind, value: &Value) -> Result<(), MockError> {
        let (id, modified) = id_and_modified(kind, value)?;
        self.insert_json(kind, &id, modified, value.to_string());
        Ok(())
    }

    /// A dataset from raw JSON records, e.g. the samples of the spec.
    pub fn from_values(
        organisations: &[Value],
        persons: &[Value],
        groups: &[Value],
        duties: &[Value],
    ) -> Result<Self, MockError> {
        let mut d = Dataset::new();
        for (kind, values) in Kind::ALL
            .into_iter()
            .zip([organisations, persons, groups, duties])
        {
            for v in values {
                d.insert_value(kind, v)?;
            }
        }
        Ok(d)
    }

    pub fn len(&self, kind: Kind) -> usize {
        self.tables[kind.index()].len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(BTreeMap::is_empty)
    }

    /// The stored JSON of one record.
    pub fn get(&self, kind: Kind, id: &str) -> Option<&str> {
        self.tables[kind.index()].get(id).map(|r| &*r.json)
    }

    /// `(id, modified, json)` of every record of a type, in id order.
    pub fn records(&self, kind: Kind) -> impl Iterator<Item = (&str, i64, &str)> {
        self.tables[kind.index()]
            .iter()
            .map(|(id, r)| (&**id, r.modified, &*r.json))
    }

    pub fn tombstones(&self) -> &[Tombstone] {
        &self.tombstones
    }

    /// Removes a record and records its deletion at `now`; false if it was not there.
    pub fn delete(&mut self, kind: Kind, id: &str, now: i64) -> bool {
        let removed = self.tables[kind.index()].remove(id).is_some();
        if removed {
            self.tombstones.push(Tombstone {
                kind,
                id: id.into(),
                deleted_at: now,
            });
        }
        removed
    }
}

fn id_and_modified(kind: Kind, value: &Value) -> Result<(String, i64), MockError> {
    let Value::Object(m) = value else {
        return Err(MockError::NotObject(kind));
    };
    let Some(Value::String(id)) = m.get("id") else {
        return Err(MockError::NoId(kind));
    };
    let modified = m
        .get("meta")
        .and_then(|meta| meta.get("modified"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(0, |d| d.timestamp());
    Ok((id.clone(), modified))
}

/// RFC 3339 in UTC, as the mock writes `meta.modified`.
pub fn rfc3339(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[derive(Debug)]
struct Fault {
    path: String,
    page: u64,
    status: u16,
    remaining: u32,
}

#[derive(Debug)]
struct OAuth {
    client_id: String,
    client_secret: String,
    expires_in: u64,
}

/// The test knobs; kept apart from the data so a fault check never waits for a page build.
#[derive(Debug, Default)]
struct Control {
    faults: Vec<Fault>,
    throttle: u32,
    bearer: Option<String>,
    oauth: Option<OAuth>,
    issued: HashSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    data: RwLock<Dataset>,
    control: Mutex<Control>,
    requests: AtomicU64,
    token_requests: AtomicU64,
}

/// A handle on a running (or to be started) mock; clones share the data and the knobs.
#[derive(Debug, Clone, Default)]
pub struct Mock {
    inner: Arc<Inner>,
}

impl Mock {
    pub fn new(data: Dataset) -> Self {
        Mock {
            inner: Arc::new(Inner {
                data: RwLock::new(data),
                ..Inner::default()
            }),
        }
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        // A panicked test thread must not make every later request fail.
        self.inner
            .control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Dataset> {
        self.inner
            .data
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Dataset> {
        self.inner
            .data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every API request must carry `Authorization: Bearer <token>` (or an issued token).
    pub fn require_bearer(&self, token: impl Into<String>) {
        self.control().bearer = Some(token.into());
    }

    /// Serves `POST /token` (client credentials, HTTP Basic client auth) issuing random
    /// tokens that expire after `expires_in` seconds (as announced; the mock accepts them
    /// until [`Mock::revoke_tokens`]). API requests then require a token.
    pub fn enable_client_credentials(
        &self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        expires_in: u64,
    ) {
        self.control().oauth = Some(OAuth {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expires_in,
        });
    }

    /// Forgets every issued token, as if they had expired early.
    pub fn revoke_tokens(&self) {
        self.control().issued.clear();
    }

    /// Answers `status` for page `page` (1-based) of `path` (e.g. `/persons`) the next `times` times.
    pub fn fail_page(&self, path: &str, page: u64, status: u16, times: u32) {
        self.control().faults.push(Fault {
            path: path.to_string(),
            page,
            status,
            remaining: times,
        });
    }

    /// Answers 429 with `Retry-After: 0` to the next `times` API requests.
    pub fn throttle(&self, times: u32) {
        self.control().throttle = times;
    }

    /// API requests received (the token endpoint not included).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::Relaxed)
    }

    pub fn len(&self, kind: Kind) -> usize {
        self.read().len(kind)
    }

    /// Adds or replaces a record. A missing `meta.modified`, or one not later than the stored
    /// record's, is set to `now`, so an incremental reader sees the change.
    pub fn upsert_at(&self, kind: Kind, mut value: Value, now: i64) -> Result<(), MockError> {
        let (id, modified) = id_and_modified(kind, &value)?;
        let mut data = self.write();
        let stale = data.tables[kind.index()]
            .get(id.as_str())
            .is_some_and(|old| modified <= old.modified);
        let missing = value.get("meta").and_then(|m| m.get("modified")).is_none();
        if (missing || stale)
            && let Value::Object(m) = &mut value
        {
            let meta = m
                .entry("meta")
                .or_insert_with(|| serde_json::json!({ "created": rfc3339(now) }));
            if let Value::Object(meta) = meta {
                meta.insert("modified".into(), Value::String(rfc3339(now)));
            }
        }
        data.insert_value(kind, &value)
    }

    /// Removes a record at `now` and records a tombstone; false if it was not there.
    pub fn delete_at(&self, kind: Kind, id: &str, now: i64) -> bool {
        self.write().delete(kind, id, now)
    }

    /// The API, to be nested at the caller's prefix (e.g. `/v2.0`).
    pub fn router(self) -> Router {
        Router::new()
            .route("/token", post(token_post))
            .route("/deletedEntities", get(deleted_get))
            .route("/{collection}", get(list_get))
            .route("/{collection}/{id}", get(one_get))
            .with_state(self)
    }

    /// Counts the request and applies auth and throttling; `Some` is the answer to send.
    fn gate(&self, headers: &HeaderMap) -> Option<Response> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut c = self.control();
        if c.bearer.is_some() || c.oauth.is_some() {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let ok = presented.is_some_and(|t| {
                c.bearer.as_deref() == Some(t) || (c.oauth.is_some() && c.issued.contains(t))
            });
            if !ok {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "a valid bearer token is required",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return Some(r);
            }
        }
        if c.throttle > 0 {
            c.throttle -= 1;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "slow down",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
            return Some(r);
        }
        None
    }

    /// An injected fault for this page, if one is armed.
    fn fault(&self, path: &str, page: u64) -> Option<Response> {
        let mut c = self.control();
        let f = c
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.path == path && f.page == page)?;
        f.remaining -= 1;
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some(error(status, "InjectedFault", "fault injected by the test"))
    }
}

/// Serves the mock under `/v2.0/` until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, mock: Mock) -> std::io::Result<()> {
    axum::serve(listener, Router::new().nest("/v2.0", mock.router())).await
}

/// `portvakt ss12000-mock`: generates a municipality and serves it on a loopback address.
pub async fn run_cli(
    listen: &str,
    persons: usize,
    seed: u64,
    token: Option<String>,
    allow_remote: bool,
) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    if !(100..=500_000).contains(&persons) {
        bail!("--persons must be between 100 and 500000");
    }
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .with_context(|| format!("--listen {listen} is not an address (e.g. 127.0.0.1:8900)"))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        bail!("--listen {listen} resolves to no address");
    };
    if !allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
        bail!("--listen {listen} is not a loopback address; add --allow-remote to serve it anyway");
    }
    let today = crate::directory::roles::day_of(crate::clock::Clock::system().now());
    let data = tokio::task::spawn_blocking(move || super::generate::generate(seed, persons, today))
        .await
        .context("generating the data")?;
    let count = data.len(Kind::Person);
    let mock = Mock::new(data);
    if let Some(t) = token {
        mock.require_bearer(t);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    println!("SS 12000 mock: http://{bound}/v2.0/ ({count} persons)");
    serve(listener, mock).await?;
    Ok(())
}

/// Serves `mock` on an ephemeral loopback port; the base URL ends in `/v2.0/`.
#[cfg(test)]
pub(crate) async fn spawn_for_tests(mock: Mock) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, mock));
    url::Url::parse(&format!("http://{addr}/v2.0/")).unwrap()
}

mod http;
#[cfg(test)]
mod tests;
