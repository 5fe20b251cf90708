//! Front: the EGIL SCIM 2.0 server under `/scim/v2/` (RFC 7644; specs/egil-scim.md) for the
//! push sources (`[sync.sources.NAME] kind = "scim"`). Handlers parse, authenticate the
//! source and hand each change to `sync::push`, where it is checked, planned, guarded and
//! applied like a sync run's; errors are RFC 7644 §3.12 bodies.
//!
//! A source proves itself with its bearer token (compared as a SHA-256 digest, in constant
//! time) or by the pinned client key of its own mutual-TLS listener, which marks each
//! request with [`TlsSource`].

use crate::config::{Config, SourceKind};
use crate::storage::{Db, scim::Stored};
use crate::sync::egil::{self, Kind};
use crate::sync::push::{Change, Done, PushError, Pushes};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where the server is mounted.
pub const BASE: &str = "/scim/v2";

const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const MEDIA_TYPE: &str = "application/scim+json";

/// A page holds at most this many resources (`count` above it is lowered).
const MAX_PAGE: i64 = 1000;
const DEFAULT_PAGE: i64 = 100;
/// How long a client whose change is held should wait before sending it again.
const HELD_RETRY_AFTER: u64 = 3600;

/// The push source a request of a source's own mutual-TLS listener comes from.
#[derive(Clone, Debug)]
pub struct TlsSource(pub String);

#[derive(Clone)]
pub struct Scim {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    pushes: Pushes,
    /// (source, SHA-256 of its bearer token).
    tokens: Vec<(String, [u8; 32])>,
    /// The absolute base URL, for `meta.location`.
    base: String,
}

/// A push token shorter than this is refused at start: it must not be guessable.
const MIN_TOKEN: usize = 32;

impl Scim {
    /// The server for the configured push sources; None when there is none. A token file
    /// that cannot be read, or holds a short token, fails the start.
    pub fn new(config: &Config, db: Db, pushes: Pushes) -> Result<Option<Scim>, String> {
        let mut tokens = Vec::new();
        let mut any = false;
        for (name, s) in &config.sync.sources {
            if s.kind != SourceKind::Scim {
                continue;
            }
            any = true;
            if let Some(path) = &s.token_file {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| {
                        format!(
                            "cannot read the token file {} of sync.sources.{name}: {e}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string();
                if token.len() < MIN_TOKEN {
                    return Err(format!(
                        "the token in {} (sync.sources.{name}) is shorter than {MIN_TOKEN} \
                         characters; make one with: openssl rand -hex 32",
                        path.display()
                    ));
                }
                tokens.push((name.clone(), digest(token.as_bytes())));
            }
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(Scim {
            inner: Arc::new(Inner {
                db,
                pushes,
                tokens,
                base: format!("{}{BASE}", config.issuer.trim_end_matches('/')),
            }),
        }))
    }

    /// The source a request proves itself to be: its listener's pinned client key, or its
    /// bearer token.
    fn source(&self, headers: &HeaderMap, tls: Option<&TlsSource>) -> Result<String, ScimError> {
        if let Some(TlsSource(name)) = tls {
            return Ok(name.clone());
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(unauthorized)?;
        let given = digest(token.as_bytes());
        // Every token is compared, so the time does not tell which source came close.
        let mut found = None;
        for (name, expected) in &self.inner.tokens {
            if bool::from(given.ct_eq(expected)) {
                found = Some(name.clone());
            }
        }
        found.ok_or_else(unauthorized)
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn routes() -> Router<Scim> {
    Router::new()
        .route(
            &format!("{BASE}/ServiceProviderConfig"),
            get(service_provider_config),
        )
        .route(&format!("{BASE}/ResourceTypes"), get(resource_types))
        .route(&format!("{BASE}/ResourceTypes/{{id}}"), get(resource_type))
        .route(&format!("{BASE}/Schemas"), get(schemas))
        .route(&format!("{BASE}/Schemas/{{id}}"), get(schema))
        .route(
            &format!("{BASE}/{{endpoint}}"),
            get(list)
                .post(create)
                .put(replace_by_body)
                .fallback(not_implemented),
        )
        .route(
            &format!("{BASE}/{{endpoint}}/{{id}}"),
            get(read_one)
                .put(replace)
                .delete(delete)
                .fallback(not_implemented),
        )
        .fallback(|| async { ScimError::new(StatusCode::NOT_FOUND, None, "no such SCIM endpoint") })
}

/// PATCH (and any other method): RFC 7644 §3.12's 501 for what the service provider
/// does not support, as ServiceProviderConfig says.
async fn not_implemented() -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "only GET, POST, PUT and DELETE are supported (ServiceProviderConfig: patch and bulk \
         are not)",
    )
}

/// An RFC 7644 §3.12 error.
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
    retry_after: Option<u64>,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }
}

fn unauthorized() -> ScimError {
    ScimError::new(
        StatusCode::UNAUTHORIZED,
        None,
        "a push source's bearer token is required (Authorization: Bearer …)",
    )
}

impl From<PushError> for ScimError {
    fn from(e: PushError) -> Self {
        let detail = e.to_string();
        let (status, scim_type, retry) = match &e {
            PushError::NotFound(_) => (StatusCode::NOT_FOUND, None, None),
            PushError::OtherSource(_) => (StatusCode::FORBIDDEN, None, None),
            PushError::Conflict(_) => (StatusCode::CONFLICT, Some("uniqueness"), None),
            PushError::Precondition(_) => (StatusCode::PRECONDITION_FAILED, None, None),
            PushError::BadReference(_) => (StatusCode::BAD_REQUEST, Some("invalidValue"), None),
            PushError::Held { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Some(HELD_RETRY_AFTER),
            ),
            PushError::Rejected(_) => (StatusCode::CONFLICT, None, None),
            PushError::Busy => (StatusCode::SERVICE_UNAVAILABLE, None, Some(5)),
            PushError::Failed(_) => {
                tracing::warn!("a SCIM push failed: {detail}");
                (StatusCode::INTERNAL_SERVER_ERROR, None, None)
            }
        };
        ScimError {
            status,
            scim_type,
            detail,
            retry_after: retry,
        }
    }
}

impl From<egil::Invalid> for ScimError {
    fn from(e: egil::Invalid) -> Self {
        match e {
            egil::Invalid::Syntax(m) => {
                ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), m)
            }
            egil::Invalid::Value(m) => {
                ScimError::new(StatusCode::BAD_REQUEST, Some("invalidValue"), m)
            }
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut r = scim_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
        body.to_string(),
    )
        .into_response()
}

fn kind_of(endpoint: &str) -> Result<Kind, ScimError> {
    Kind::from_endpoint(endpoint).ok_or_else(|| {
        ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no SCIM endpoint {endpoint}"),
        )
    })
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{version}\"")).unwrap_or(HeaderValue::from_static("*"))
}

/// The version an `If-Match` or `If-None-Match` names: None for none or `*`; a value that is
/// no version of ours names none (-1), so it never matches.
fn version_in(headers: &HeaderMap, name: header::HeaderName) -> Option<i64> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    if v == "*" {
        return None;
    }
    let first = v.split(',').next().unwrap_or_default().trim();
    let bare = first.strip_prefix("W/").unwrap_or(first).trim_matches('"');
    Some(bare.parse().unwrap_or(-1))
}

fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Scim {
    fn render(&self, kind: Kind, s: &Stored) -> Value {
        let mut body = s.body.clone();
        body.insert("id".into(), json!(s.id));
        body.insert(
            "meta".into(),
            json!({
                "resourceType": kind.name(),
                "created": time(s.created_at),
                "lastModified": time(s.modified_at),
                "location": format!("{}/{}/{}", self.inner.base, kind.endpoint(), s.id),
                "version": format!("W/\"{}\"", s.version),
            }),
        );
        Value::Object(body)
    }

    fn stored(&self, status: StatusCode, kind: Kind, s: &Stored) -> Response {
        let mut r = scim_json(status, &self.render(kind, s));
        r.headers_mut().insert(header::ETAG, etag(s.version));
        if status == StatusCode::CREATED
            && let Ok(v) =
                HeaderValue::from_str(&format!("{}/{}/{}", self.inner.base, kind.endpoint(), s.id))
        {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }

    fn discovery(&self, doc: &str) -> Value {
        serde_json::from_str(&doc.replace("{BASE}", &self.inner.base)).unwrap_or(Value::Null)
    }
}

/// A JSON body (`application/scim+json` or `application/json`).
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ScimError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media != MEDIA_TYPE && media != "application/json" {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                format!("send {MEDIA_TYPE} or application/json, not {media}"),
            ));
        }
    }
    serde_json::from_slice(body).map_err(|e| {
        ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            format!("the body is not JSON: {e}"),
        )
    })
}

type Tls = Option<Extension<TlsSource>>;

fn tls_ref(tls: &Tls) -> Option<&TlsSource> {
    tls.as_ref().map(|Extension(t)| t)
}

async fn service_provider_config(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    s.source(&headers, tls_ref(&tls))?;
    let doc = s.discovery(include_str!("discovery/service_provider_config.json"));
    Ok(scim_json(StatusCode::OK, &doc))
}

fn list_response(items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": items.len(),
        "itemsPerPage": items.len(),
        "startIndex": 1,
        "Resources": items,
    })
}

fn one_of(doc: Value, id: &str, what: &str) -> Result<Response, ScimError> {
    let found = doc
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == id)
        .cloned();
    match found {
        Some(r) => Ok(scim_json(StatusCode::OK, &r)),
        None => Err(ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no {what} {id}"),
        )),
    }
}

const RESOURCE_TYPES: &str = include_str!("discovery/resource_types.json");
const SCHEMAS: &str = include_str!("discovery/schemas.json");

/// `/ResourceTypes` or `/Schemas`: a discovery document's resources as a list.
async fn discovery_list(
    s: &Scim,
    tls: &Tls,
    headers: &HeaderMap,
    doc: &str,
) -> Result<Response, ScimError> {
    s.source(headers, tls_ref(tls))?;
    let items = s.discovery(doc).as_array().cloned().unwrap_or_default();
    Ok(scim_json(StatusCode::OK, &list_response(items)))
}

async fn resource_types(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    discovery_list(&s, &tls, &headers, RESOURCE_TYPES).await
}

async fn schemas(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    discovery_list(&s, &tls, &headers, SCHEMAS).await
}

async fn resource_type(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    s.source(&headers, tls_ref(&tls))?;
    one_of(s.discovery(RESOURCE_TYPES), &id, "resource type")
}

async fn schema(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    s.source(&headers, tls_ref(&tls))?;
    one_of(s.discovery(SCHEMAS), &id, "schema")
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    filter: Option<String>,
}

async fn list(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let source = s.source(&headers, tls_ref(&tls))?;
    let kind = kind_of(&endpoint)?;
    if q.filter.is_some() {
        return Err(ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
            "filtering is not supported (ServiceProviderConfig: filter.supported is false)",
        ));
    }
    // RFC 7644 §3.4.2.4: values below 1 mean 1; a negative count means 0.
    let number = |v: &Option<String>, default: i64| -> Result<i64, ScimError> {
        match v {
            None => Ok(default),
            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                ScimError::new(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    format!("{v:?} is not a number"),
                )
            }),
        }
    };
    let start = number(&q.start_index, 1)?.max(1);
    let count = number(&q.count, DEFAULT_PAGE)?.clamp(0, MAX_PAGE);
    let (total, page) =
        crate::storage::scim::list(&s.inner.db, &source, kind.name(), start - 1, count)
            .await
            .map_err(|e| PushError::Failed(e.to_string()))?;
    let items: Vec<Value> = page.iter().map(|r| s.render(kind, r)).collect();
    Ok(scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST],
            "totalResults": total,
            "itemsPerPage": items.len(),
            "startIndex": start,
            "Resources": items,
        }),
    ))
}

async fn read_one(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<Response, ScimError> {
    let source = s.source(&headers, tls_ref(&tls))?;
    let kind = kind_of(&endpoint)?;
    let db = &s.inner.db;
    let failed = |e: crate::storage::StorageError| PushError::Failed(e.to_string());
    match crate::storage::scim::get(db, &source, kind.name(), &id)
        .await
        .map_err(failed)?
    {
        Some(r) => {
            if version_in(&headers, header::IF_NONE_MATCH) == Some(r.version) {
                let mut resp = StatusCode::NOT_MODIFIED.into_response();
                resp.headers_mut().insert(header::ETAG, etag(r.version));
                return Ok(resp);
            }
            Ok(s.stored(StatusCode::OK, kind, &r))
        }
        None => {
            let other = crate::storage::scim::of_another_source(db, &source, kind.name(), &id)
                .await
                .map_err(failed)?;
            Err(if other {
                PushError::OtherSource(format!(
                    "{}/{id} belongs to another source",
                    kind.endpoint()
                ))
            } else {
                PushError::NotFound(format!("no {}/{id}", kind.endpoint()))
            }
            .into())
        }
    }
}

async fn create(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let source = s.source(&headers, tls_ref(&tls))?;
    let kind = kind_of(&endpoint)?;
    let resource = egil::read(kind, json_body(&headers, &body)?, None)?;
    let change = Change::Put {
        resource: Box::new(resource),
        create: true,
        if_match: None,
    };
    match s.inner.pushes.submit(&source, change).await? {
        Done::Stored(r) => Ok(s.stored(StatusCode::CREATED, kind, &r)),
        Done::Deleted => Err(PushError::Failed("created, then gone".into()).into()),
    }
}

/// PUT with the id in the path (RFC 7644 §3.5.1).
async fn replace(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let source = s.source(&headers, tls_ref(&tls))?;
    let kind = kind_of(&endpoint)?;
    let resource = egil::read(kind, json_body(&headers, &body)?, Some(&id))?;
    put(&s, &source, kind, resource, &headers).await
}

/// EGIL's PUT without the id in the path: the body's `id` or `externalId` names it.
async fn replace_by_body(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let source = s.source(&headers, tls_ref(&tls))?;
    let kind = kind_of(&endpoint)?;
    let resource = egil::read(kind, json_body(&headers, &body)?, None)?;
    put(&s, &source, kind, resource, &headers).await
}

async fn put(
    s: &Scim,
    source: &str,
    kind: Kind,
    resource: egil::Resource,
    headers: &HeaderMap,
) -> Result<Response, ScimError> {
    let change = Change::Put {
        resource: Box::new(resource),
        create: false,
        if_match: version_in(headers, header::IF_MATCH),
    };
    match s.inner.pushes.submit(source, change).await? {
        Done::Stored(r) => Ok(s.stored(StatusCode::OK, kind, &r)),
        Done::Deleted => Err(PushError::Failed("replaced, then gone".into()).into()),
    }
}

async fn delete(
    State(s): State<Scim>,
    tls: Tls,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<Response, ScimError> {
    let source = s.source(&headers, tls_ref(&tls))?;
    let kind = kind_of(&endpoint)?;
    let change = Change::Delete {
        kind,
        id,
        if_match: version_in(&headers, header::IF_MATCH),
    };
    s.inner.pushes.submit(&source, change).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
