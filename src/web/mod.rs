//! HTTP glue shared by every front: the edge middleware (request id and its log span,
//! language, security headers, access log without query strings, error pages), cookies, the
//! client address, CSRF, the message catalogue and the path constants.

pub mod csrf;
pub mod i18n;
pub mod paths;

use askama::Template;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use i18n::Lang;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A request's id: in the access log, the `x-request-id` header and on error pages.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's address: the peer, or from X-Forwarded-For behind a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The relying party a response was for: an OIDC client id or a SAML SP's entity id. A
/// front puts it into the response's extensions once it knows a registered one (never an
/// unchecked value from the request); the access log names it.
#[derive(Debug, Clone)]
pub struct RelyingParty(pub String);

impl RelyingParty {
    /// `res`, marked as answering relying party `id`.
    pub fn mark(mut res: Response, id: &str) -> Response {
        res.extensions_mut().insert(RelyingParty(id.to_string()));
        res
    }
}

/// An error that ends a request with a page. Internal detail is logged with the request id,
/// never shown.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    /// Catalogue key of the message shown to the person.
    pub message: &'static str,
    pub internal: Option<String>,
}

impl WebError {
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        Self {
            status,
            message,
            internal: None,
        }
    }
    pub fn bad_request(message: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "error.internal",
            internal: Some(detail.to_string()),
        }
    }
    /// 503 "the service is temporarily unavailable": the database cannot be reached now.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: UNAVAILABLE,
            internal: Some(detail.to_string()),
        }
    }
}

/// The catalogue key of the 503 page.
const UNAVAILABLE: &str = "error.unavailable";

/// Seconds a 503 for an unreachable database asks the client to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u32 = 5;

/// The one mapping of a domain error to a page: every error a handler does not turn into a
/// page of its own is a 500 with the request id, or a 503 when the database cannot be
/// reached ([`unavailable`]); its chain goes to the log. `web` names no domain error type
/// (WebError is not an `Error` itself, so this does not overlap `From<T> for T`, as in
/// anyhow).
impl<E: std::error::Error> From<E> for WebError {
    fn from(e: E) -> Self {
        let detail = crate::error_chain(&e);
        if e.source().is_some_and(unavailable) {
            WebError::unavailable(detail)
        } else {
            WebError::internal(detail)
        }
    }
}

/// Whether an error (or one in its source chain) says the database cannot be reached right
/// now rather than that something is wrong: no connection within `[database]
/// acquire_timeout`, a connection lost or refused, PostgreSQL shutting down or starting, or
/// SQLite's write lock still busy. These deserve a 503 that says "try again in a moment".
/// It reads sqlx's error type (not a domain one) because every domain error wraps it as
/// its source.
pub fn unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(db) = e.downcast_ref::<sqlx::Error>() {
            return db_unavailable(db);
        }
        next = e.source();
    }
    false
}

fn db_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY or SQLITE_LOCKED, extended codes included.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            } else {
                // PostgreSQL: connection exceptions (class 08), shutdown and start-up
                // (57P01-03), too many connections (53300).
                code.starts_with("08") || ["57P01", "57P02", "57P03", "53300"].contains(&&*code)
            }
        }
        _ => false,
    }
}

/// The browser's SSO cookie, read by the login front's layer on every request. Protocol
/// fronts take it as a request extension, so they need not know the cookie's name.
#[derive(Debug, Clone, Default)]
pub struct SsoCookie(pub Option<String>);

impl SsoCookie {
    pub fn value(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Put into a response's extensions by a front that ended the browser's SSO session; the
/// login front's layer then clears the cookie.
#[derive(Debug, Clone, Copy)]
pub struct ClearSsoCookie;

/// Carried in the response extensions; the edge middleware renders it with the request's
/// language and id.
#[derive(Debug, Clone)]
struct ErrorInfo {
    message: &'static str,
    internal: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if self.message == UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        res.extensions_mut().insert(ErrorInfo {
            message: self.message,
            internal: self.internal,
        });
        res
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    message: &'a str,
    request_id: &'a str,
}

/// Settings the edge needs, cheap to clone.
#[derive(Clone)]
pub struct EdgeConfig {
    pub trusted_proxies: Arc<Vec<IpAddr>>,
    pub tls: bool,
}

/// 64 random bits as 16 hex digits: enough to find one request in the logs.
fn new_request_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    // The system RNG does not fail on supported platforms; a zero id would still be valid.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    format!("{:016x}", u64::from_be_bytes(b))
}

/// The outermost middleware. Order inside matters: the request id and language are set
/// before the handler runs so error rendering and logs can use them. The handler runs in
/// the request's span, so every line it logs carries the request id.
pub async fn edge(State(cfg): State<EdgeConfig>, mut req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let request_id = RequestId(new_request_id());
    let chosen = query_lang(req.uri().query());
    let lang = chosen.unwrap_or_else(|| Lang::from_headers(req.headers()));
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_ip(peer, req.headers(), &cfg.trusted_proxies);
    let method = req.method().clone();
    // Only the path: query strings can carry a personnummer (login_hint) or a code.
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(request_id.clone());
    req.extensions_mut().insert(lang);
    if let Some(ip) = client {
        req.extensions_mut().insert(ClientIp(ip));
    }

    // At error level so that it is enabled whenever any line is: a warning logged under a
    // `PORTVAKT_LOG=warn` filter still names its request.
    let span = tracing::error_span!("request", request_id = %request_id.0);
    let mut res = next.run(req).instrument(span.clone()).await;
    let rp = res.extensions_mut().remove::<RelyingParty>();

    if let Some(info) = res.extensions_mut().remove::<ErrorInfo>() {
        if let Some(detail) = &info.internal {
            span.in_scope(|| tracing::error!(%path, "{detail}"));
        }
        let page = ErrorPage {
            lang,
            message: lang.t(info.message),
            request_id: &request_id.0,
        };
        let status = res.status();
        let retry_after = res.headers_mut().remove(header::RETRY_AFTER);
        res = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        };
        if let Some(v) = retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    let h = res.headers_mut();
    set_default(h, header::CONTENT_SECURITY_POLICY, CSP);
    set_default(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(h, header::X_FRAME_OPTIONS, "DENY");
    set_default(h, header::REFERRER_POLICY, "no-referrer");
    set_default(h, header::CACHE_CONTROL, "no-store");
    if cfg.tls {
        set_default(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    if let Some(l) = chosen {
        // Remember an explicit choice so the next page (e.g. after a form post) keeps it.
        let c = set_cookie(
            i18n::LANG_COOKIE,
            l.code(),
            Some(31_536_000),
            cfg.tls,
            SameSite::Lax,
        );
        h.append(header::SET_COOKIE, c);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id.0) {
        h.insert("x-request-id", v);
    }
    // The access log: who (the client address), what, for which relying party, the outcome.
    span.in_scope(|| {
        tracing::info!(
            client = %client.map_or_else(|| "-".to_string(), |ip| ip.to_string()),
            %method,
            %path,
            rp = %rp.as_ref().map_or("-", |r| r.0.as_str()),
            status = res.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    res
}

/// No scripts at all; styles only from our origin. `form-action` is left out on purpose:
/// browsers apply it to the redirect that follows a form post, which would block the
/// redirect back to a relying party after login.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

fn set_default(h: &mut HeaderMap, name: header::HeaderName, value: &'static str) {
    if !h.contains_key(&name) {
        h.insert(name, HeaderValue::from_static(value));
    }
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="))
        .and_then(Lang::parse)
}

/// The client address. Behind trusted proxies, the right-most X-Forwarded-For entry that is
/// not itself a trusted proxy; anything further left is client-controlled.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .unwrap_or(peer),
    )
}

/// Reads one cookie from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// SameSite policy for a cookie.
#[derive(Debug, Clone, Copy)]
pub enum SameSite {
    Lax,
    None,
}

/// A `Set-Cookie` value. Always HttpOnly and Path=/; Secure when served over TLS.
/// SameSite=None is only possible with Secure, so without TLS it falls back to Lax.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    secure: bool,
    same_site: SameSite,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly");
    match (same_site, secure) {
        (SameSite::None, true) => s.push_str("; SameSite=None"),
        _ => s.push_str("; SameSite=Lax"),
    }
    if secure {
        s.push_str("; Secure");
    }
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The stylesheet, compiled in so the binary is self-contained.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/portvakt.css"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    lang: Lang,
    demo: bool,
}

/// The home page: what Portvakt is, and where SPs and clients find its metadata.
pub async fn home(demo: bool, lang: Lang) -> Response {
    render(&HomePage { lang, demo }).unwrap_or_else(IntoResponse::into_response)
}

pub async fn not_found() -> WebError {
    WebError::new(StatusCode::NOT_FOUND, "error.not_found")
}

/// Renders a page template to an HTML response.
pub fn render(t: &impl Template) -> Result<Response, WebError> {
    Ok(Html(t.render()?).into_response())
}

/// Renders a page with another status than 200: a form shown again with what is wrong (400).
pub fn render_status(status: StatusCode, t: &impl Template) -> Result<Response, WebError> {
    Ok((status, Html(t.render()?)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        let peer: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(client_ip(Some(peer), &h, &[proxy]), Some(peer));
        assert_eq!(
            client_ip(Some(proxy), &h, &[proxy]),
            Some("5.6.7.8".parse().unwrap())
        );
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; portvakt_sso=xyz".parse().unwrap());
        assert_eq!(cookie(&h, "portvakt_sso"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        let c = set_cookie("n", "v", None, false, SameSite::None);
        assert_eq!(c.to_str().unwrap(), "n=v; Path=/; HttpOnly; SameSite=Lax");
    }
}
