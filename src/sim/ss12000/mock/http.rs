//! The mock's HTTP side: the collection, single-entity and `/deletedEntities` endpoints
//! with opaque page tokens and `meta.modified` filters, the OAuth2 token endpoint, and the
//! SS 12000 error bodies.

use super::*;

/// The SS 12000 error body `{code, message}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "code": code, "message": message }).to_string(),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn parse_time(s: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|_| "a date-time parameter is not RFC 3339".to_string())
}

/// The paging state carried by an opaque page token: the page number, the original
/// filter, and where the previous page stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) page: u64,
    pub(super) after: Option<i64>,
    /// Entity mask, `/deletedEntities` only.
    pub(super) mask: u8,
    /// The last id served (lists) or the next tombstone index (`/deletedEntities`).
    pub(super) position: String,
}

impl Cursor {
    pub(super) fn encode(&self) -> String {
        let after = self.after.map(|a| a.to_string()).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{after}|{}|{}",
            self.page, self.mask, self.position
        ))
    }

    pub(super) fn decode(token: &str) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let mut parts = raw.splitn(4, '|');
        let page = parts.next()?.parse().ok()?;
        let after = match parts.next()? {
            "" => None,
            a => Some(a.parse().ok()?),
        };
        let mask = parts.next()?.parse().ok()?;
        let position = parts.next()?.to_string();
        Some(Cursor {
            page,
            after,
            mask,
            position,
        })
    }
}

/// `limit`, `pageToken` and the filters of one request; a filter with a token is a 400
/// (the error is the message of that 400).
struct ListQuery {
    limit: usize,
    cursor: Option<Cursor>,
    after: Option<i64>,
    entities: Vec<String>,
}

fn list_query(raw: Option<&str>, deleted: bool) -> Result<ListQuery, String> {
    let mut q = ListQuery {
        limit: MAX_PAGE,
        cursor: None,
        after: None,
        entities: Vec::new(),
    };
    let mut filtered = false;
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or("limit must be an integer ≥ 1")?;
                q.limit = n.min(MAX_PAGE);
            }
            "pageToken" => {
                q.cursor = Some(Cursor::decode(&v).ok_or("pageToken is not valid")?);
            }
            "meta.modified.after" if !deleted => {
                q.after = Some(parse_time(&v)?);
                filtered = true;
            }
            "after" if deleted => {
                q.after = Some(parse_time(&v)?);
                filtered = true;
            }
            "entities" if deleted => {
                q.entities.push(v.into_owned());
                filtered = true;
            }
            other => {
                return Err(format!("the mock does not support the parameter {other}"));
            }
        }
    }
    if filtered && q.cursor.is_some() {
        return Err("pageToken may only be combined with limit".into());
    }
    Ok(q)
}

/// `GET /{collection}`: a page of records in id order.
pub(super) async fn list_get(
    State(mock): State<Mock>,
    Path(collection): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.gate(&headers) {
        return r;
    }
    let Some(kind) = Kind::from_plural(&collection) else {
        return error(StatusCode::NOT_FOUND, "NotFound", "no such collection");
    };
    let q = match list_query(raw.as_deref(), false) {
        Ok(q) => q,
        Err(message) => return bad_request(&message),
    };
    let (page, after, last) = match q.cursor {
        Some(c) => (c.page, c.after, Some(c.position)),
        None => (1, q.after, None),
    };
    if let Some(r) = mock.fault(&format!("/{collection}"), page) {
        return r;
    }
    let data = mock.read();
    let table = &data.tables[kind.index()];
    let from = match &last {
        Some(id) => Bound::Excluded(id.as_str()),
        None => Bound::Unbounded,
    };
    let mut matching = table
        .range::<str, _>((from, Bound::Unbounded))
        .filter(|(_, r)| after.is_none_or(|a| r.modified > a));
    let mut body = String::with_capacity(q.limit * 512);
    body.push_str("{\"data\":[");
    let mut last_id = None;
    for (i, (id, r)) in matching.by_ref().take(q.limit).enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&r.json);
        last_id = Some(id);
    }
    // A token only when more records follow, so the last page says null.
    let next = match (last_id, matching.next()) {
        (Some(id), Some(_)) => Some(Cursor {
            page: page + 1,
            after,
            mask: 0,
            position: id.to_string(),
        }),
        _ => None,
    };
    drop(data);
    body.push_str("],\"pageToken\":");
    match next {
        Some(c) => {
            body.push('"');
            body.push_str(&c.encode());
            body.push('"');
        }
        None => body.push_str("null"),
    }
    body.push('}');
    json_response(body)
}

/// `GET /{collection}/{id}`.
pub(super) async fn one_get(
    State(mock): State<Mock>,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.gate(&headers) {
        return r;
    }
    let Some(kind) = Kind::from_plural(&collection) else {
        return error(StatusCode::NOT_FOUND, "NotFound", "no such collection");
    };
    match mock.read().get(kind, &id) {
        Some(json) => json_response(json.to_string()),
        None => error(StatusCode::NOT_FOUND, "NotFound", "no such record"),
    }
}

/// `GET /deletedEntities?after=…&entities=Person&entities=…`.
pub(super) async fn deleted_get(
    State(mock): State<Mock>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.gate(&headers) {
        return r;
    }
    let q = match list_query(raw.as_deref(), true) {
        Ok(q) => q,
        Err(message) => return bad_request(&message),
    };
    let (page, after, mask, start) = match q.cursor {
        Some(c) => match c.position.parse::<usize>() {
            Ok(start) => (c.page, c.after, c.mask, start),
            Err(_) => return bad_request("pageToken is not valid"),
        },
        None => {
            let mut mask = 0u8;
            for e in &q.entities {
                match Kind::ALL.into_iter().find(|k| k.type_name() == e) {
                    Some(k) => mask |= 1 << k.index(),
                    None if OTHER_DELETED_TYPES.contains(&e.as_str()) => {}
                    None => return bad_request("entities names an unknown type"),
                }
            }
            if q.entities.is_empty() {
                mask = 0b1111;
            }
            (1, q.after, mask, 0)
        }
    };
    if let Some(r) = mock.fault("/deletedEntities", page) {
        return r;
    }
    let data = mock.read();
    let mut ids: [Vec<&str>; 4] = Default::default();
    let mut served = 0;
    let mut next = None;
    for (i, t) in data.tombstones.iter().enumerate().skip(start) {
        if mask & (1 << t.kind.index()) == 0 || after.is_some_and(|a| t.deleted_at <= a) {
            continue;
        }
        if served == q.limit {
            next = Some(i);
            break;
        }
        ids[t.kind.index()].push(&t.id);
        served += 1;
    }
    let mut out = serde_json::Map::new();
    for k in Kind::ALL {
        if mask & (1 << k.index()) != 0 {
            out.insert(k.plural().into(), serde_json::json!(ids[k.index()]));
        }
    }
    drop(data);
    let token = next.map(|i| {
        Cursor {
            page: page + 1,
            after,
            mask,
            position: i.to_string(),
        }
        .encode()
    });
    json_response(serde_json::json!({ "data": out, "pageToken": token }).to_string())
}

/// `POST /token`: OAuth2 client credentials (RFC 6749 §4.4) with HTTP Basic client
/// authentication (§2.3.1: id and secret form-urlencoded before Basic encoding).
pub(super) async fn token_post(
    State(mock): State<Mock>,
    headers: HeaderMap,
    body: String,
) -> Response {
    mock.inner.token_requests.fetch_add(1, Ordering::Relaxed);
    let oauth_error = |status: StatusCode, code: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": code }).to_string(),
        )
            .into_response()
    };
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            Some((form_decode(id), form_decode(secret)))
        });
    let mut c = mock.control();
    let Some(oauth) = &c.oauth else {
        return error(StatusCode::NOT_FOUND, "NotFound", "no token endpoint");
    };
    let ok = presented
        .is_some_and(|(id, secret)| id == oauth.client_id && secret == oauth.client_secret);
    if !ok {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let expires_in = oauth.expires_in;
    let token = uuid::Uuid::new_v4().simple().to_string();
    c.issued.insert(token.clone());
    json_response(
        serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
        })
        .to_string(),
    )
}

/// Decodes one application/x-www-form-urlencoded component.
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}
