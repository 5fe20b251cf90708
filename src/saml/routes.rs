//! Thin HTTP handlers for the SAML front.

use super::dsig::RedirectQuery;
use super::slo::{self, Step};
use super::sso::{self, Binding, Fatal, Inbound, Next, Pending};
use super::{Idp, metadata};
use crate::web::{self, ClearSsoCookie, SsoCookie, WebError, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use std::sync::LazyLock;

pub fn routes() -> Router<Idp> {
    Router::new()
        .route(paths::SAML_METADATA, get(metadata_get))
        .route(paths::SAML_SSO, get(sso_get).post(sso_post))
        .route(paths::SAML_SSO_RESUME, get(sso_resume_get))
        .route(paths::SAML_IDP_INIT, get(idp_init_get))
        .route(paths::SAML_SLO, get(slo_get).post(slo_post))
        .route(paths::SAML_SLO_NEXT, get(slo_next_get))
}

#[derive(Template)]
#[template(path = "saml_post.html")]
struct PostPage<'a> {
    lang: Lang,
    action: &'a str,
    field: &'a str,
    value: &'a str,
    relay_state: Option<&'a str>,
}

/// The one inline script (auto-submit), allowed by its hash; the page works without it.
const AUTOSUBMIT: &str = "document.forms[0].submit();";

static POST_CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    use base64::Engine;
    let hash = ring::digest::digest(&ring::digest::SHA256, AUTOSUBMIT.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(hash.as_ref());
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'sha256-{b64}'; style-src 'self'; img-src 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    ))
    .unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

fn post_page(lang: Lang, form: &sso::PostForm) -> Response {
    match web::render(&PostPage {
        lang,
        action: &form.action,
        field: form.field,
        value: &form.value,
        relay_state: form.relay_state.as_deref(),
    }) {
        Ok(mut res) => {
            let h = res.headers_mut();
            h.insert(header::CONTENT_SECURITY_POLICY, POST_CSP.clone());
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // The Referer must not carry our URL (with a transaction id) to the SP.
            h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn metadata_get(State(idp): State<Idp>) -> Response {
    match metadata::served(&idp, idp.clock().now()).await {
        Ok(xml) => (
            [
                (header::CONTENT_TYPE, "application/samlmetadata+xml"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            xml,
        )
            .into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct MessageForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn sso_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    RawQuery(raw): RawQuery,
) -> Response {
    // One parse of the raw query feeds both the signature check and this handler.
    let Some(query) = RedirectQuery::parse(raw.as_deref().unwrap_or_default()) else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let (Some("SAMLRequest"), Some(message)) =
        (query.message_param(), query.decoded("SAMLRequest"))
    else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let relay_state = query.decoded("RelayState");
    let inbound = Inbound {
        binding: Binding::Redirect,
        message: &message,
        relay_state: relay_state.as_deref(),
        query: Some(&query),
    };
    sso_flow(&idp, lang, &sso, &inbound).await
}

async fn sso_post(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    Form(f): Form<MessageForm>,
) -> Response {
    let Some(message) = f.saml_request.as_deref() else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let inbound = Inbound {
        binding: Binding::Post,
        message,
        relay_state: f.relay_state.as_deref(),
        query: None,
    };
    sso_flow(&idp, lang, &sso, &inbound).await
}

/// The error page of a refused SSO: 403 for a disabled SP, 400 for everything else.
fn refused(key: &'static str) -> Response {
    WebError::new(Fatal(key).status(), key).into_response()
}

async fn sso_flow(idp: &Idp, lang: Lang, sso: &SsoCookie, inbound: &Inbound<'_>) -> Response {
    let now = idp.clock().now();
    let (sp, checked) = match sso::check(idp, inbound, now).await {
        Ok(c) => c,
        Err(Fatal(key)) => return refused(key),
    };
    let res = match checked {
        Ok(pending) => decide(idp, lang, sso, &sp, pending, now).await,
        Err((p, status)) => match sso::status_response(idp, &p, status, now).await {
            Ok(form) => post_page(lang, &form),
            Err(e) => WebError::from(e).into_response(),
        },
    };
    web::RelyingParty::mark(res, sp.entity_id())
}

/// The SSO session (if any) decides: answer at once, or log in first (`sso::decide`).
async fn decide(
    idp: &Idp,
    lang: Lang,
    sso: &SsoCookie,
    sp: &super::sp::Sp,
    pending: Pending,
    now: i64,
) -> Response {
    let next = async {
        let session = idp.authn.session(sso.value(), now).await?;
        sso::decide(idp, sp, pending, session, now).await
    }
    .await;
    match next {
        Ok(next) => respond(lang, next),
        Err(e) => WebError::from(e).into_response(),
    }
}

fn respond(lang: Lang, next: Next) -> Response {
    match next {
        Next::Answer(form) => post_page(lang, &form),
        Next::Login(tx) => Redirect::to(&format!("{}?tx={tx}", paths::LOGIN)).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct TxQuery {
    tx: String,
}

async fn sso_resume_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    Query(q): Query<TxQuery>,
) -> Response {
    match sso::resume(&idp, &q.tx, sso.value(), idp.clock().now()).await {
        Ok(Ok(next)) => respond(lang, next),
        Ok(Err(key)) => refused(key),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct IdpInitQuery {
    sp: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// Unsolicited SSO: only for SPs registered with `--idp-initiated`, to their default ACS.
async fn idp_init_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    Query(q): Query<IdpInitQuery>,
) -> Response {
    let now = idp.clock().now();
    let sp = match idp.sp(&q.sp, now).await {
        Ok(Some(sp)) => sp,
        Ok(None) => return WebError::bad_request("saml.unknown_sp").into_response(),
        Err(e) => return WebError::from(e).into_response(),
    };
    if sp.disabled {
        return refused(sso::SP_DISABLED);
    }
    if !sp.policy.idp_initiated {
        return WebError::bad_request("saml.idp_init_disabled").into_response();
    }
    if sp.expired(now) {
        return WebError::bad_request("saml.metadata_expired").into_response();
    }
    if q.relay_state.as_ref().is_some_and(|r| r.len() > 1024) {
        return WebError::bad_request("saml.too_large").into_response();
    }
    let Some(acs) = sp.acs(None, None) else {
        return WebError::bad_request("saml.bad_acs").into_response();
    };
    let pending = Pending {
        sp: sp.entity_id().to_string(),
        acs: acs.location.clone(),
        request_id: None,
        relay_state: q.relay_state,
        // Unsolicited SSO is held to the SP's login policy as a request is.
        requirement: crate::authn::Requirement::default().with_policy(&sp.policy.login),
        passive: false,
        name_id_format: None,
        idp_hint: None,
    };
    decide(&idp, lang, &sso, &sp, pending, now).await
}

async fn slo_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    // One parse of the raw query feeds both the signature check and this handler.
    let Some(query) = RedirectQuery::parse(raw.as_deref().unwrap_or_default()) else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let Some((param, message)) = query
        .message_param()
        .and_then(|p| Some((p, query.decoded(p)?)))
    else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let relay_state = query.decoded("RelayState");
    let inbound = Inbound {
        binding: Binding::Redirect,
        message: &message,
        relay_state: relay_state.as_deref(),
        query: Some(&query),
    };
    let cookies = browser_cookies(&idp, &sso, &headers);
    slo_flow(&idp, lang, &inbound, param == "SAMLResponse", cookies).await
}

async fn slo_post(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    headers: HeaderMap,
    Form(m): Form<MessageForm>,
) -> Response {
    let (message, is_response) = match (&m.saml_request, &m.saml_response) {
        (Some(r), None) => (r.as_str(), false),
        (None, Some(r)) => (r.as_str(), true),
        _ => return WebError::bad_request("saml.malformed").into_response(),
    };
    let inbound = Inbound {
        binding: Binding::Post,
        message,
        relay_state: m.relay_state.as_deref(),
        query: None,
    };
    let cookies = browser_cookies(&idp, &sso, &headers);
    slo_flow(&idp, lang, &inbound, is_response, cookies).await
}

/// The SSO cookie (from the login front's layer) and the SAML front's own SLO cookie.
fn browser_cookies<'a>(
    idp: &Idp,
    sso: &'a SsoCookie,
    headers: &'a HeaderMap,
) -> slo::BrowserCookies<'a> {
    slo::BrowserCookies {
        sso: sso.value(),
        slo: web::cookie(headers, slo::cookie_name(&idp.config)),
    }
}

async fn slo_flow(
    idp: &Idp,
    lang: Lang,
    inbound: &Inbound<'_>,
    is_response: bool,
    cookies: slo::BrowserCookies<'_>,
) -> Response {
    match slo::handle(idp, inbound, is_response, cookies, idp.clock().now()).await {
        Ok(h) => handled(idp, lang, h),
        Err(f) => WebError::new(f.status(), f.0).into_response(),
    }
}

fn handled(idp: &Idp, lang: Lang, h: slo::Handled) -> Response {
    let mut res = step(lang, h.step);
    if h.ended {
        res.extensions_mut().insert(ClearSsoCookie);
    }
    if let Some(value) = h.bind {
        res.headers_mut()
            .append(header::SET_COOKIE, slo::set_cookie(&value, &idp.config));
    }
    res
}

fn step(lang: Lang, s: Step) -> Response {
    match s {
        Step::Redirect(to) => Redirect::to(&to).into_response(),
        Step::Post(form) => post_page(lang, &form),
        Step::Page(key) => WebError::bad_request(key).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ChainQuery {
    id: String,
}

async fn slo_next_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<ChainQuery>,
) -> Response {
    let cookie = web::cookie(&headers, slo::cookie_name(&idp.config));
    match slo::next(&idp, &q.id, cookie, idp.clock().now()).await {
        Ok(h) => handled(&idp, lang, h),
        Err(e) => WebError::from(e).into_response(),
    }
}
