//! Thin HTTP handlers of the OpenID Provider: parse, call the domain function, render.

use super::authorize::{self, Next, Params, Rejection};
use super::{OidcError, Op, grants, logout};
use crate::web::{
    self, ClearSsoCookie, RelyingParty, SsoCookie, WebError, csrf, i18n::Lang, paths,
};
use askama::Template;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub fn routes() -> Router<Op> {
    Router::new()
        .route(paths::DISCOVERY, get(discovery_get))
        .route(paths::JWKS, get(jwks_get))
        .route(paths::AUTHORIZE, get(authorize_get).post(authorize_post))
        .route(paths::AUTHORIZE_RESUME, get(authorize_resume_get))
        .route(paths::TOKEN, post(token_post))
        .route(paths::USERINFO, get(userinfo_get).post(userinfo_post))
        .route(paths::INTROSPECT, post(introspect_post))
        .route(paths::REVOKE, post(revoke_post))
        .route(
            paths::END_SESSION,
            get(end_session_get).post(end_session_post),
        )
        .route(paths::LOGGED_OUT, get(logged_out_get))
}

/// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
async fn discovery_get(State(op): State<Op>) -> Response {
    let body = axum::body::Bytes::from_owner(op.discovery_document().await);
    public_json(body, "public, max-age=3600")
}

/// RFC 7517. Short cache: a rotated key must reach relying parties before it signs.
async fn jwks_get(State(op): State<Op>) -> Response {
    let now = op.clock().now();
    op.keys.refresh(now).await;
    let body = axum::body::Bytes::from_owner(op.keys.jwks_document(now));
    public_json(body, "public, max-age=300")
}

/// A public JSON document any origin may read, cached for as long as `cache_control` says.
fn public_json(body: axum::body::Bytes, cache_control: &'static str) -> Response {
    let mut res = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// https://openid.net/specs/openid-connect-core-1_0.html#AuthorizationEndpoint
async fn authorize_get(
    State(op): State<Op>,
    Extension(sso): Extension<SsoCookie>,
    RawQuery(q): RawQuery,
) -> Response {
    authorize(&op, &sso, Params::parse(q.as_deref().unwrap_or(""))).await
}

async fn authorize_post(
    State(op): State<Op>,
    Extension(sso): Extension<SsoCookie>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !is_form(&headers) {
        return WebError::bad_request("error.bad_request").into_response();
    }
    authorize(&op, &sso, Params::parse(&body)).await
}

async fn authorize(op: &Op, sso: &SsoCookie, p: Params) -> Response {
    let now = op.clock().now();
    let mut rp = None;
    let outcome = async {
        let (client, req) = authorize::validate(op, &p, now).await?;
        rp = Some(client.id().to_string());
        let session = op.authn.session(sso.value(), now).await?;
        authorize::decide(op, &client, req, session, now).await
    }
    .await;
    let res = respond(op, outcome);
    match rp {
        Some(rp) => RelyingParty::mark(res, &rp),
        None => res,
    }
}

#[derive(serde::Deserialize)]
struct TxQuery {
    tx: String,
}

async fn authorize_resume_get(
    State(op): State<Op>,
    Extension(sso): Extension<SsoCookie>,
    axum::extract::Query(q): axum::extract::Query<TxQuery>,
) -> Response {
    let outcome = authorize::resume(&op, &q.tx, sso.value(), op.clock().now()).await;
    respond(&op, outcome)
}

fn respond(op: &Op, outcome: Result<Next, Rejection>) -> Response {
    match outcome {
        Ok(Next::Redirect(url)) => Redirect::to(&url).into_response(),
        Ok(Next::Login(tx)) => Redirect::to(&format!("{}?tx={tx}", paths::LOGIN)).into_response(),
        Err(Rejection::Page(key)) => WebError::bad_request(key).into_response(),
        Err(Rejection::Disabled(key)) => {
            WebError::new(axum::http::StatusCode::FORBIDDEN, key).into_response()
        }
        Err(Rejection::Redirect {
            redirect_uri,
            state,
            error,
            description,
        }) => Redirect::to(&authorize::error_redirect(
            op,
            &redirect_uri,
            state.as_deref(),
            error,
            &description,
        ))
        .into_response(),
        Err(Rejection::Server(OidcError::Server(detail))) => {
            WebError::internal(detail).into_response()
        }
        Err(Rejection::Server(OidcError::Unavailable(detail))) => {
            WebError::unavailable(detail).into_response()
        }
        Err(Rejection::Server(e)) => WebError::internal(e.code()).into_response(),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn no_store(value: serde_json::Value) -> Response {
    let mut res = Json(value).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// Parses a client-authenticated form POST (token, introspection, revocation).
async fn client_form(
    op: &Op,
    headers: &HeaderMap,
    body: &str,
    now: i64,
) -> Result<(super::client::Client, Params), OidcError> {
    if !is_form(headers) {
        return Err(OidcError::InvalidRequest(
            "use application/x-www-form-urlencoded".into(),
        ));
    }
    let p = Params::parse(body);
    let client = grants::authenticate(op, authorization(headers), &p, now).await?;
    Ok((client, p))
}

/// RFC 6749 §3.2; https://openid.net/specs/openid-connect-core-1_0.html#TokenEndpoint
async fn token_post(
    State(op): State<Op>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, OidcError> {
    let now = op.clock().now();
    let (client, p) = client_form(&op, &headers, &body, now).await?;
    let res = match grants::token(&op, &client, &p, now).await {
        Ok(body) => no_store(body),
        Err(e) => e.into_response(),
    };
    Ok(RelyingParty::mark(res, client.id()))
}

/// RFC 7662 §2
async fn introspect_post(
    State(op): State<Op>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, OidcError> {
    let now = op.clock().now();
    let (client, p) = client_form(&op, &headers, &body, now).await?;
    Ok(no_store(grants::introspect(&op, &client, &p, now).await?))
}

/// RFC 7009 §2
async fn revoke_post(
    State(op): State<Op>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, OidcError> {
    let now = op.clock().now();
    let (client, p) = client_form(&op, &headers, &body, now).await?;
    grants::revoke(&op, &client, &p, now).await?;
    Ok(StatusCode::OK.into_response())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = authorization(headers)?;
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// https://openid.net/specs/openid-connect-core-1_0.html#UserInfo
async fn userinfo_get(State(op): State<Op>, headers: HeaderMap) -> Result<Response, OidcError> {
    let token = bearer(&headers).ok_or(OidcError::InvalidToken)?;
    Ok(no_store(
        grants::userinfo(&op, token, op.clock().now()).await?,
    ))
}

/// RFC 6750 §2.1 and §2.2: the token in the header or the form body.
async fn userinfo_post(
    State(op): State<Op>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, OidcError> {
    let p = Params::parse(&body);
    let token = match (bearer(&headers), p.get("access_token")) {
        (Some(t), None) => t.to_string(),
        (None, Some(t)) if is_form(&headers) => t.to_string(),
        _ => return Err(OidcError::InvalidToken),
    };
    Ok(no_store(
        grants::userinfo(&op, &token, op.clock().now()).await?,
    ))
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    lang: Lang,
    csrf: &'a str,
    client_id: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutPage {
    lang: Lang,
}

/// https://openid.net/specs/openid-connect-rpinitiated-1_0.html#RPLogout
async fn end_session_get(
    State(op): State<Op>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    end_session(
        &op,
        lang,
        &sso,
        Params::parse(q.as_deref().unwrap_or("")),
        false,
    )
    .await
}

async fn end_session_post(
    State(op): State<Op>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, WebError> {
    if !is_form(&headers) {
        return Err(WebError::bad_request("error.bad_request"));
    }
    end_session(&op, lang, &sso, Params::parse(&body), true).await
}

async fn end_session(
    op: &Op,
    lang: Lang,
    sso: &SsoCookie,
    p: Params,
    post: bool,
) -> Result<Response, WebError> {
    let now = op.clock().now();
    let session = op.authn.session(sso.value(), now).await?;
    let checked = logout::check(op, &p, session.as_ref(), now)
        .await
        .map_err(WebError::bad_request)?;
    let binding = session.as_ref().map_or("none", |s| s.sid.as_str());
    let confirmed = match p.get("csrf") {
        Some(token) if post => {
            if !csrf::verify(&op.keys.secrets().csrf, "logout", binding, token) {
                return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
            }
            true
        }
        _ => false,
    };
    if !(checked.hint_matches || confirmed) {
        let token = csrf::token(&op.keys.secrets().csrf, "logout", binding);
        return web::render(&LogoutPage {
            lang,
            csrf: &token,
            client_id: checked.client_id.as_deref(),
            post_logout_redirect_uri: checked.post_logout_redirect_uri.as_deref(),
            state: checked.state.as_deref(),
        });
    }
    let mut target = checked
        .redirect
        .unwrap_or_else(|| paths::LOGGED_OUT.to_string());
    if let Some(s) = &session {
        // SAML SPs of the session are visited through the browser before `target`.
        target = op.authn.end_session_in_browser(s, &target, now).await?;
    }
    let mut res = Redirect::to(&target).into_response();
    res.extensions_mut().insert(ClearSsoCookie);
    Ok(res)
}

async fn logged_out_get(Extension(lang): Extension<Lang>) -> Result<Response, WebError> {
    web::render(&LoggedOutPage { lang })
}
